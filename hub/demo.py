"""`hub demo`: the main job on the embedded default, on one machine, with no accounts.

Starts the HubSpot sandbox seeded with fake companies and contacts, writes a config with
systems across the categories (two connected, two disconnected silos, one without an owner),
syncs companies then contacts from the CRM into a spreadsheet folder, changes a few contacts
in the CRM and syncs again incrementally, then prints the summary and where to look.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from connectors.hubspot.sandbox import HubSpotSandbox
from hub.audit import AuditObserver
from hub.config import load
from hub.store import Store
from hub.sync.engine import RunReport, SyncEngine

TOKEN_VAR = "LIAISON_DEMO_HUBSPOT_TOKEN"

CONFIG = """\
# Written by `hub demo`. Every option is explained in the file `hub init` writes.
version: 1
store: sqlite:///liaison.db
systems:
  hubspot:
    category: crm
    owner: Anna Berg (Sales)
    description: The CRM sandbox (an emulator of HubSpot's API on this machine)
    connection:
      connector: hubspot
      base_url: {base_url}
      token: ${{{token_var}}}
  shared-sheets:
    category: files
    owner: Ben Okafor (Operations)
    description: The spreadsheets everyone keeps a copy of
    connection:
      connector: spreadsheet
      path: ./sheets
  xero:
    category: accounting
    owner: Chloe Martin (Finance)
    description: Accounting; not connected yet, so it is still an island
  sales-mailbox:
    category: email
    description: sales@ shared mailbox; nobody owns it yet
flows:
  crm-companies-to-sheets:
    entity: company
    from: hubspot
    to: shared-sheets
    schedule: "*/15 * * * *"
  crm-contacts-to-sheets:
    entity: contact
    from: hubspot
    to: shared-sheets
    schedule: "*/15 * * * *"
"""


def _line(report: RunReport) -> str:
    c = report.counts
    return (f"{report.flow}: {report.status}; read {c.read}, created {c.created}, updated "
            f"{c.updated}, unchanged {c.unchanged}, skipped {c.skipped}, dead-lettered "
            f"{c.dead_lettered + c.write_failed}; written to targets {c.written} "
            f"({report.seconds:.2f}s)")


def run_demo(directory: Path, count: int, echo: Callable[[str], None] = print) -> int:
    """Run the demo in `directory`; returns the exit code."""
    directory = directory.resolve()
    sheets = directory / "sheets"
    sheets.mkdir(parents=True, exist_ok=True)
    # The demo starts afresh each time: its own store and spreadsheets, nothing else.
    for leftover in [*directory.glob("liaison.db*"), *sheets.glob("*.csv")]:
        leftover.unlink()
    sandbox = HubSpotSandbox(seed=7, count=count)
    sandbox.start()
    try:
        os.environ[TOKEN_VAR] = sandbox.token
        config = directory / "hub.yaml"
        config.write_text(CONFIG.format(base_url=sandbox.base_url, token_var=TOKEN_VAR),
                          encoding="utf-8")
        settings = load(config)
        store = Store(settings.store_url)
        engine = SyncEngine(settings, store, observers=[AuditObserver(store)])
        echo(f"HubSpot sandbox on {sandbox.base_url} with {count} contacts; "
             f"config written to {config}")
        echo("First sync:")
        reports = [engine.run(f) for f in settings.flows]
        for r in reports:
            echo("  " + _line(r))
        contacts = sandbox.records("contacts")[:3]
        for rec in contacts:
            sandbox.touch("contacts", rec["id"], jobtitle="Head of Partnerships")
        echo(f"Changed the job title of {len(contacts)} contacts in the CRM. Second sync "
             "(only the changes move):")
        again = [engine.run(f) for f in settings.flows]
        for r in again:
            echo("  " + _line(r))
        silos = [n for n, s in settings.systems.items() if s.connection is None]
        unowned = [n for n, s in settings.systems.items() if not s.owner]
        echo(f"Systems: {len(settings.systems)} declared, "
             f"{len(settings.systems) - len(silos)} connected; still islands: "
             f"{', '.join(silos)}; without an owner: {', '.join(unowned) or 'none'}.")
        echo(f"Spreadsheets: {directory / 'sheets'}. Audit: "
             f"`hub -c {config} audit`, check it with `hub -c {config} audit verify`.")
        store.close()
        return max(r.exit_code for r in reports + again)
    finally:
        sandbox.stop()
