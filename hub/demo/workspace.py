"""The demo's folder: its config, a mapping override, the onboarding checklist, a README.

The folder is the demo's own: each run starts it afresh (store, spreadsheets, the Xero
token file) so a second `hub demo` in the same place behaves like the first.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from hub.demo.sandboxes import ENV_PREFIX, Endpoints
from hub.errors import HubError

CONFIG_FILE = "hub.yaml"
README_FILE = "README.txt"
SHEETS = "sheets"
CHECKLIST = "tasks.csv"
CARD_MAPPING = "mappings/onboarding-card.yaml"
CHECKLIST_FIELDS = ("id", "name", "description", "status", "priority", "due_date",
                    "updated_at")

# Flow names the rest of the demo refers to.
COMPANIES = "crm-companies-to-sheets-and-xero"
CONTACTS = "crm-contacts-to-sheets"
CHECKLIST_FLOW = "onboarding-checklist-to-trello"
JIRA_FLOW = "jira-issues-to-trello"

MARK = "# Written by `hub demo`."
CONFIG = """\
# Written by `hub demo`. The sandboxes it points at (emulators of HubSpot, Xero, Trello and
# Jira on this machine) run only while the demo runs; their credentials are made up for
# the session and reach Liaison through the environment, never through this file.
# Every option is explained in the file `hub init` writes.
version: 1
store: sqlite:///liaison.db
systems:
  hubspot:
    category: crm
    owner: Anna Berg (Sales)
    description: The CRM, where sales keeps customers and their people
    connection:
      connector: hubspot
      base_url: {hubspot_url}
      token: ${{{p}HUBSPOT_TOKEN}}
  xero:
    category: accounting
    owner: Chloe Martin (Finance)
    description: The books; every customer in the CRM needs a contact here to be invoiced
    connection:
      connector: xero
      base_url: {xero_url}
      token_url: {xero_token_url}
      tenant_id: {xero_tenant}
      client_id: ${{{p}XERO_CLIENT_ID}}
      client_secret: ${{{p}XERO_CLIENT_SECRET}}
      refresh_token: ${{{p}XERO_REFRESH_TOKEN}}
  onboarding-board:
    category: project
    owner: Ben Okafor (Operations)
    description: The Trello board where each new customer's onboarding is tracked
    connection:
      connector: trello
      base_url: {trello_url}
      api_key: ${{{p}TRELLO_KEY}}
      token: ${{{p}TRELLO_TOKEN}}
      board_ids: ["{trello_board}"]
  jira:
    category: project
    owner: Dev Patel (Engineering)
    description: Engineering's issue tracker. Its API token was revoked, so its flow fails
    connection:
      connector: jira
      base_url: {jira_url}
      email: {jira_email}
      api_token: ${{{p}JIRA_TOKEN}}
  shared-sheets:
    category: files
    owner: Ben Okafor (Operations)
    description: The spreadsheets everyone keeps a copy of, and the onboarding checklist
    connection:
      connector: spreadsheet
      path: ./{sheets}
  sales-mailbox:
    category: email
    description: The sales@ shared mailbox; nobody owns it and it is not connected yet
  legacy-erp:
    category: other
    owner: Chloe Martin (Finance)
    description: The old ERP finance still copies orders out of by hand; not connected
flows:
  # One read of the CRM's companies feeds both the spreadsheets and the books.
  {companies}:
    entity: company
    from: hubspot
    to: [shared-sheets, xero]
    schedule: "*/15 * * * *"
  {contacts}:
    entity: contact
    from: hubspot
    to: shared-sheets
    schedule: "*/15 * * * *"
  # The checklist is a spreadsheet (sheets/{checklist}); each row becomes a card whose
  # list follows the row's status (the mapping names the board's lists).
  {checklist_flow}:
    entity: task
    from: shared-sheets
    to: onboarding-board
    mappings: {{onboarding-board: {card_mapping}}}
    schedule: "*/5 * * * *"
  {jira_flow}:
    entity: task
    from: jira
    to: onboarding-board
    mappings: {{onboarding-board: {card_mapping}}}
    schedule: "*/5 * * * *"
"""

CARD_MAPPING_TEXT = """\
# Written by `hub demo`: the default Trello card mapping, adapted to one board. Trello's
# default mapping only reads a card's list as its status; this board's lists are named
# for the statuses, so a task whose status changes moves to the matching list.
version: 1
extends: trello/task
constants: {{idBoard: "{trello_board}"}}
fields:
  status:
    path: list.name
    in:
      - map: {{values: {{"To Do": open, "Doing": in_progress, "Done": done}}, fallback: null}}
    out:
      - map: {{values: {{open: "To Do", in_progress: "Doing", done: "Done", closed: "Done"}}}}
  # People are assigned on the board itself: Trello only takes its own member ids.
  assignees: null
"""

CHECKLIST_ROWS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("T1", "Send the welcome pack", "Brochure, contract copy, contacts", "done", "normal",
     "2026-12-01"),
    ("T2", "Create the customer in Xero", "Check the billing address", "in_progress", "high",
     "2026-12-02"),
    ("T3", "Book the kick-off call", "With the customer's project lead", "open", "high",
     "2026-12-04"),
    ("T4", "Grant access to the customer portal", "", "open", "normal", "2026-12-08"),
)

README = """\
Liaison demo
============

Written by `hub demo`. What is here:

  {config}
      the config: seven systems of every category, four flows
  {card_mapping}
      a mapping adapted from the default one (Trello cards for the checklist)
  {sheets}/
      the shared spreadsheets: companies and contacts from the CRM, and the
      onboarding checklist ({checklist}) that feeds the Trello board
  liaison.db
      the store: records, links, runs, dead letters, audit trail

Look around (these read the store; they work after the demo has stopped):

  hub -c {config_path} systems
  hub -c {config_path} runs
  hub -c {config_path} audit
  hub -c {config_path} audit verify
{login}"""


def reset(directory: Path) -> Path:
    """Empty what an earlier demo left in `directory` (the demo's files only); returns the
    sheets folder. A folder whose hub.yaml the demo did not write is left alone."""
    config = directory / CONFIG_FILE
    if config.exists() and not config.read_text(encoding="utf-8").startswith(MARK):
        raise HubError(f"{config} was not written by `hub demo`, and the demo would replace "
                       "it (and the store and spreadsheets beside it): choose another "
                       "folder with --dir")
    sheets = directory / SHEETS
    sheets.mkdir(parents=True, exist_ok=True)
    for leftover in [*directory.glob("liaison.db*"), *sheets.glob("*.csv")]:
        leftover.unlink()
    # Xero's rotated refresh token belongs to the previous session's sandbox.
    shutil.rmtree(directory / ".liaison-tokens", ignore_errors=True)
    return sheets


def write(directory: Path, endpoints: Endpoints) -> Path:
    """Write the config, the card mapping and the checklist; returns the config's path."""
    values = {**endpoints.as_dict(), "p": ENV_PREFIX, "sheets": SHEETS,
              "checklist": CHECKLIST, "card_mapping": CARD_MAPPING, "companies": COMPANIES,
              "contacts": CONTACTS, "checklist_flow": CHECKLIST_FLOW, "jira_flow": JIRA_FLOW}
    mapping = directory / CARD_MAPPING
    mapping.parent.mkdir(parents=True, exist_ok=True)
    mapping.write_text(CARD_MAPPING_TEXT.format(**values), encoding="utf-8")
    write_checklist(directory / SHEETS / CHECKLIST, CHECKLIST_ROWS)
    config = directory / CONFIG_FILE
    config.write_text(CONFIG.format(**values), encoding="utf-8")
    write_readme(directory, login="")
    return config


def now() -> str:
    """The current time as the checklist writes it (RFC 3339, UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_checklist(path: Path, rows: Sequence[Sequence[str]]) -> None:
    """Write the checklist with `rows` (without updated_at: they are stamped now)."""
    stamp = now()
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(CHECKLIST_FIELDS)
        out.writerows([*row, stamp] if len(row) < len(CHECKLIST_FIELDS) else row
                      for row in rows)


def read_checklist(path: Path) -> list[list[str]]:
    """The checklist's rows (without the header), as lists in CHECKLIST_FIELDS order."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [[r.get(f) or "" for f in CHECKLIST_FIELDS] for r in csv.DictReader(fh)]


def write_readme(directory: Path, login: str) -> Path:
    """Write README.txt; `login` (the dashboard's address and token) may be empty.

    A README holding a login is readable by its owner only."""
    path = directory / README_FILE
    text = README.format(config=CONFIG_FILE, config_path=directory / CONFIG_FILE,
                         card_mapping=CARD_MAPPING, sheets=SHEETS, checklist=CHECKLIST,
                         login=login)
    path.touch()
    path.chmod(0o600 if login else 0o644)  # before the login is in it
    path.write_text(text, encoding="utf-8")
    return path
