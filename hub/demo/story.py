"""What the demo does with its systems: sync everything, change a few things, sync again.

The second round shows that only changes move (a renamed job title, a new phone number, a
ticked-off checklist item and a new one) and leaves run history and audit updates to look
at. The Jira flow fails both times, on purpose, with the message an ops person would get.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from hub.config.model import Settings
from hub.demo import workspace
from hub.demo.sandboxes import ENV_PREFIX, DemoSandboxes
from hub.sync.engine import RunReport, SyncEngine

Echo = Callable[[str], None]
EXPECTED_FAILURE = workspace.JIRA_FLOW
NEW_TITLE = "Head of Partnerships"
NEW_PHONE = "+1 415 555 0142"
JIRA_FIX = (
    f"{EXPECTED_FAILURE} fails on purpose: Jira refuses the API token in "
    f"${{{ENV_PREFIX}JIRA_TOKEN}}, as it would once a token has expired or been revoked. "
    "The fix: create a new token at https://id.atlassian.com/manage-profile/security/"
    "api-tokens, put it in that variable, then run the flow again "
    f"(`hub sync {EXPECTED_FAILURE}`, or Run now on the dashboard).")


def run_line(report: RunReport) -> str:
    """One run as a line of the demo's output."""
    c = report.counts
    return (f"{report.flow}: {report.status}; read {c.read}, created {c.created}, updated "
            f"{c.updated}, unchanged {c.unchanged}, skipped {c.skipped}, dead-lettered "
            f"{c.dead_lettered + c.write_failed}; written to targets {c.written} "
            f"({report.seconds:.2f}s)")


def sync_round(engine: SyncEngine, settings: Settings, echo: Echo) -> list[RunReport]:
    """Run every flow once, in config order, and print each outcome."""
    reports = []
    for flow in settings.flows:
        report = engine.run(flow)
        reports.append(report)
        echo("  " + run_line(report))
        if report.error:
            echo(f"    error: {report.error}")
    return reports


def change_things(sandboxes: DemoSandboxes, sheets: Path) -> list[str]:
    """Make a few changes in the systems, as their users would; what was done, in words."""
    hubspot = sandboxes.hubspot
    contacts = hubspot.records("contacts")[:3]
    for rec in contacts:
        hubspot.touch("contacts", rec["id"], jobtitle=NEW_TITLE)
    company = hubspot.records("companies")[0]
    hubspot.touch("companies", company["id"], phone=NEW_PHONE)
    checklist = sheets / workspace.CHECKLIST
    rows = workspace.read_checklist(checklist)
    status = workspace.CHECKLIST_FIELDS.index("status")
    stamp = workspace.CHECKLIST_FIELDS.index("updated_at")
    done = rows[-2]  # "Book the kick-off call"
    done[status], done[stamp] = "done", workspace.now()
    rows.append(["T5", "Schedule the 30-day review", "", "open", "normal", "2027-01-05",
                 workspace.now()])
    workspace.write_checklist(checklist, rows)
    return [
        f"the job title of {len(contacts)} contacts in the CRM (now {NEW_TITLE})",
        f"the phone number of {company['properties'].get('name')} in the CRM",
        f"\"{done[1]}\" ticked off in the onboarding checklist, and one item added",
    ]


def outcome(first: Sequence[RunReport], again: Sequence[RunReport]) -> int:
    """0 when the demo went as written: every flow succeeded but the one meant to fail."""
    for report in (*first, *again):
        expected = "failed" if report.flow == EXPECTED_FAILURE else "succeeded"
        if report.status != expected:
            return 1
    return 0


def summary(settings: Settings) -> str:
    """The inventory in a line: categories, islands and systems without an owner."""
    silos = [n for n, s in settings.systems.items() if s.connection is None]
    unowned = [n for n, s in settings.systems.items() if not s.owner]
    categories = sorted({s.category for s in settings.systems.values()})
    return (f"Systems: {len(settings.systems)} declared ({', '.join(categories)}), "
            f"{len(settings.systems) - len(silos)} connected; still islands: "
            f"{', '.join(silos) or 'none'}; without an owner: {', '.join(unowned) or 'none'}.")
