"""`hub demo`: the whole hub on one machine, with no accounts and nothing to install.

Starts emulators of HubSpot (crm), Xero (accounting), Trello and Jira (project) on loopback,
writes a config with seven systems across the categories (a shared mailbox and a legacy ERP
declared but not connected, the mailbox without an owner) and four flows: the CRM's
companies to the spreadsheets and the books, its contacts to the spreadsheets, an
onboarding checklist to Trello, and Jira issues to Trello, which fails on purpose (a
revoked token) with the message an ops person would get. It syncs everything, changes a
few records, syncs again, prints what happened, then serves the dashboard over the result
until Ctrl-C (`serve=False`: it stops after the second round).

    hub.demo.sandboxes   the four sandboxes and their session credentials
    hub.demo.workspace   the demo folder: config, mapping override, checklist, README
    hub.demo.story       the two rounds of syncs and the changes between them
    hub.demo.serve       the dashboard, the last step
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from hub.config import load
from hub.demo import story, workspace
from hub.demo.sandboxes import DemoSandboxes
from hub.observers import run_observers
from hub.store import Store
from hub.sync.engine import SyncEngine

__all__ = ["run_demo"]


def run_demo(directory: Path, count: int, echo: Callable[[str], None] = print, *,
             serve: bool = False, port: int = 0) -> int:
    """Run the demo in `directory`; returns the exit code (0: it went as written).

    With `serve`, the dashboard is served on 127.0.0.1:`port` (0: a free port) after the
    syncs, and the sandboxes keep running until the server is stopped."""
    directory = directory.resolve()
    with ExitStack() as stack:
        sock = None
        if serve:
            # Imported (and the port taken) first: a problem shows before any sync runs.
            from hub.demo.serve import listen

            sock = stack.enter_context(listen(port))
        code = _play(directory, count, echo, sock)
    if serve:
        echo("Stopped the dashboard and the sandboxes.")
    return code


def _play(directory: Path, count: int, echo: Callable[[str], None],
          sock: socket.socket | None) -> int:
    sheets = workspace.reset(directory)
    with DemoSandboxes(count) as sandboxes:
        sandboxes.export()
        config = workspace.write(directory, sandboxes.endpoints())
        settings = load(config)
        store = Store(settings.store_url)
        try:
            echo("Sandboxes on this machine: "
                 + ", ".join(f"{k} {v}" for k, v in sandboxes.urls().items())
                 + f"; HubSpot has {count} contacts.")
            echo(f"Config written to {config}")
            # The observers `hub sync` has: the dashboard's /metrics counts these runs too.
            engine = SyncEngine(settings, store, observers=run_observers(settings, store))
            echo("First sync:")
            first = story.sync_round(engine, settings, echo)
            echo("Changed " + "; ".join(story.change_things(sandboxes, sheets)) + ".")
            echo("Second sync (only the changes move):")
            again = story.sync_round(engine, settings, echo)
            echo(story.JIRA_FIX)
            echo(story.summary(settings))
            echo(f"Spreadsheets: {sheets}. Audit: `hub -c {config} audit`, check it with "
                 f"`hub -c {config} audit verify`. More in {directory / workspace.README_FILE}")
            code = story.outcome(first, again)
            if sock is not None:
                from hub.demo.serve import serve_dashboard

                serve_dashboard(settings, store, directory, sock, echo)
        finally:
            store.close()
    return code
