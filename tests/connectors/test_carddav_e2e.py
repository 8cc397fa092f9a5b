"""End to end through the `hub` command: a Radicale address book and task list synced with a
spreadsheet, both ways for contacts; a second run writes nothing; a bad card is dead-lettered
with its href; edits on either side arrive on the other; unknown card lines survive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.radicale_server import PASSWORD_ENV, Radicale, radicale_fixture  # noqa: F401
from tests.e2e.conftest import Result, invoke, read_csv, run_hub, write_csv

VCARD = "text/vcard; charset=utf-8"
ICS = "text/calendar; charset=utf-8"
SHEET_COLUMNS = ["id", "first_name", "last_name", "title", "email", "phone", "mobile", "owner",
                 "tags", "city", "country"]

CONFIG = """\
version: 1
systems:
  addressbook:
    category: crm
    owner: Anna (Sales)
    connection:
      connector: carddav
      base_url: {url}{book}
      username: {user}
      password: ${{{env}}}
      retry: {{attempts: 2, backoff_initial: 0.01, backoff_max: 0.1}}
  todo:
    category: project
    owner: Ben (Ops)
    connection:
      connector: caldav
      base_url: {url}{cal}
      username: {user}
      password: ${{{env}}}
      sync: etag
  sheet:
    category: files
    owner: Chloe (Office)
    connection:
      connector: spreadsheet
      path: ./sheet
flows:
  people:
    entity: contact
    from: addressbook
    to: sheet
    direction: two-way
  tasks:
    entity: task
    from: todo
    to: sheet
"""


def vcf(uid: str, given: str, family: str, email: str, *extra: str) -> str:
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{given} {family}",
             f"N:{family};{given};;;", f"EMAIL;TYPE=work:{email}", *extra, "END:VCARD"]
    return "\r\n".join(lines) + "\r\n"


class Hub:
    """A workspace folder with hub.yaml; runs `hub -c hub.yaml ...` as a real process."""

    def __init__(self, root: Path, server: Radicale) -> None:
        self.root = root
        self.sheet = root / "sheet"
        self.sheet.mkdir(parents=True)
        self.book = server.addressbook()
        self.cal = server.calendar()
        (root / "hub.yaml").write_text(CONFIG.format(url=server.url, book=self.book,
                                                     cal=self.cal, user=server.user,
                                                     env=PASSWORD_ENV), encoding="utf-8")

    def hub(self, *args: str, process: bool = False) -> Result:
        """`hub -c hub.yaml ARGS`: as a real process, or in this one (a process start costs
        seconds of imports, so only the first sync of each test pays it)."""
        if process:
            return run_hub("-c", str(self.root / "hub.yaml"), *args, cwd=self.root)
        return invoke("-c", str(self.root / "hub.yaml"), *args)

    def sync(self, flow: str, *, process: bool = False) -> dict[str, Any]:
        result = self.hub("sync", flow, "--json", process=process)
        assert result.code in (0, 1), str(result)
        data: dict[str, Any] = json.loads(result.out)
        return data

    def contacts(self) -> dict[str, dict[str, str]]:
        return {r["email"]: r for r in read_csv(self.sheet / "contacts.csv")}


def etags(server: Radicale, path: str) -> dict[str, str]:
    body = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop>'
            "</d:propfind>")
    answer = server.request("PROPFIND", path, content=body, headers={"Depth": "1"})
    from connectors.dav.xml import parse_multistatus

    return {r.href: r.etag or "" for r in parse_multistatus(answer.content).responses
            if r.href != path}


@pytest.fixture
def ws(radicale: Radicale, tmp_path: Path) -> Hub:
    return Hub(tmp_path / "hub", radicale)


def test_contacts_both_ways_with_a_dead_letter_and_idle_reruns(
        ws: Hub, radicale: Radicale) -> None:
    book = ws.book
    radicale.put(f"{book}ana.vcf", vcf("ana", "Ana", "Lopez", "ana@example.com",
                                       "TEL;TYPE=work:+442071234567", "BDAY:19900401",
                                       "X-MASTODON:@ana@example.social"), VCARD)
    radicale.put(f"{book}bob.vcf", vcf("bob", "Bob", "Smith", "bob@example.com",
                                       "TEL;TYPE=cell:+14155552671"), VCARD)
    radicale.put(f"{book}bad.vcf", vcf("bad", "Cy", "Young", "cy@example.com",
                                       "TEL;TYPE=work:call me maybe"), VCARD)

    first = ws.sync("people", process=True)
    counts = first["counts"]
    assert (counts["created"], counts["dead_lettered"]) == (2, 1), first
    rows = ws.contacts()
    assert set(rows) == {"ana@example.com", "bob@example.com"}
    assert rows["ana@example.com"]["last_name"] == "Lopez"
    assert rows["ana@example.com"]["phone"] == "+442071234567"
    assert rows["bob@example.com"]["mobile"] == "+14155552671"
    dead = json.loads(ws.hub("dlq", "list", "--json").out)
    assert len(dead) == 1 and f"{book}bad.vcf" in dead[0]["error"]
    assert "call me maybe" in dead[0]["error"]

    books, sheet = etags(radicale, book), (ws.sheet / "contacts.csv").read_bytes()
    second = ws.sync("people")
    assert second["counts"]["written"] == 0, second
    assert etags(radicale, book) == books and (ws.sheet / "contacts.csv").read_bytes() == sheet

    # The office edits the sheet: Bob's new family name, and a new person.
    table = read_csv(ws.sheet / "contacts.csv")
    for row in table:
        if row["email"] == "bob@example.com":
            row["last_name"] = "Smithers"
    table.append({"id": "row-dee", "first_name": "Dee", "last_name": "Diaz",
                  "email": "dee@example.com", "phone": "+14155550123"})
    write_csv(ws.sheet / "contacts.csv", [[r.get(c, "") for c in SHEET_COLUMNS] for r in table],
              SHEET_COLUMNS)
    third = ws.sync("people")
    assert third["counts"]["written"] >= 2, third
    cards = {href.rsplit("/", 1)[1]: radicale.request("GET", href).text
             for href in etags(radicale, book)}
    assert "N:Smithers;Bob;;;" in cards["bob.vcf"] and "FN:Bob Smithers" in cards["bob.vcf"]
    dee = [text for text in cards.values() if "dee@example.com" in text]
    assert len(dee) == 1 and "N:Diaz;Dee;;;" in dee[0] and "+14155550123" in dee[0]

    # Sales edits a card in their address book app: the sheet follows; unknown lines stay.
    radicale.put(f"{book}ana.vcf", vcf("ana", "Ana", "Lopez", "ana@example.com",
                                       "TEL;TYPE=work:+442071234567", "BDAY:19900401",
                                       "X-MASTODON:@ana@example.social", "TITLE:CFO"), VCARD)
    fourth = ws.sync("people")
    assert fourth["counts"]["updated"] == 1, fourth
    assert ws.contacts()["ana@example.com"]["title"] == "CFO"
    assert "X-MASTODON:@ana@example.social" in radicale.request("GET", f"{book}ana.vcf").text

    books, sheet = etags(radicale, book), (ws.sheet / "contacts.csv").read_bytes()
    idle = ws.sync("people")
    assert idle["counts"]["written"] == 0, idle
    assert etags(radicale, book) == books and (ws.sheet / "contacts.csv").read_bytes() == sheet


def test_tasks_into_the_sheet_and_a_rerun_writes_nothing(
        ws: Hub, radicale: Radicale) -> None:
    cal = ws.cal
    for uid, lines in (("t1", ["SUMMARY:Book the venue", "DUE;VALUE=DATE:20240601",
                               "STATUS:IN-PROCESS", "PRIORITY:1", "CATEGORIES:offsite"]),
                       ("t2", ["SUMMARY:Send invites", "STATUS:COMPLETED",
                               "COMPLETED:20240502T080000Z"])):
        text = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN", "BEGIN:VTODO",
                            f"UID:{uid}", "DTSTAMP:20240501T000000Z", *lines, "END:VTODO",
                            "END:VCALENDAR"]) + "\r\n"
        assert radicale.put(f"{cal}{uid}.ics", text, ICS).status_code == 201
    first = ws.sync("tasks", process=True)
    assert first["status"] == "succeeded" and first["counts"]["created"] == 2, first
    rows = {r["name"]: r for r in read_csv(ws.sheet / "tasks.csv")}
    assert rows["Book the venue"]["status"] == "in_progress"
    assert rows["Book the venue"]["priority"] == "urgent"
    assert rows["Book the venue"]["due_date"] == "2024-06-01"
    assert rows["Send invites"]["status"] == "done"
    assert rows["Send invites"]["completed_at"] == "2024-05-02T08:00:00Z"
    before = (ws.sheet / "tasks.csv").read_bytes()
    again = ws.sync("tasks")
    assert again["counts"]["written"] == 0 and again["counts"]["read"] == 0, again
    assert (ws.sheet / "tasks.csv").read_bytes() == before
