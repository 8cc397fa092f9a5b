"""End to end: `hub sync` reads a real Dovecot mailbox into a spreadsheet, as an ops person
would run it: no duplicates on re-runs, expunged mail removed, and a folder whose
UIDVALIDITY changed read again without leaving duplicate rows behind."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from tests.servers.dovecot import Dovecot, dovecot  # noqa: F401 - the fixture

CONFIG = """\
version: 1
store: sqlite:///{tmp}/liaison.db
systems:
  mail:
    category: email
    owner: Ops (shared mailbox)
    connection:
      connector: imap
      host: 127.0.0.1
      port: {port}
      ca_file: {ca}
      user: {user}
      password: ${{IMAP_PASSWORD}}
      folders: [INBOX, Sales]
  sheet:
    category: files
    owner: Ops
    connection:
      connector: spreadsheet
      path: ./sheet
flows:
  mail-to-sheet:
    entity: message
    from: mail
    to: sheet
    on_delete: delete
"""


def _message(subject: str, msgid: str) -> bytes:
    return (f"From: Ana <ana@example.com>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n"
            f"Message-ID: {msgid}\r\nDate: Tue, 01 Oct 2024 10:00:00 +0000\r\n\r\n"
            "See you.\r\n").encode()


def _sync(tmp: Path, password: str, *, process: bool = False) -> dict[str, Any]:
    """`hub sync mail-to-sheet --json`: as a process (what a scheduler runs), or in this
    process through click's runner (the same command, without a second of imports)."""
    args = ["--config", str(tmp / "hub.yaml"), "sync", "mail-to-sheet", "--json"]
    if process:
        proc = subprocess.run([sys.executable, "-m", "hub.cli", *args], cwd=tmp,
                              env={"IMAP_PASSWORD": password, "PATH": "/usr/bin:/bin",
                                   "PYTHONDONTWRITEBYTECODE": "1"},
                              capture_output=True, text=True, timeout=120, check=False)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        from click.testing import CliRunner

        from hub.cli import main

        result = CliRunner().invoke(main, args, env={"IMAP_PASSWORD": password,
                                                     "HUB_CONFIG": None})
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exception
        code, out, err = result.exit_code, result.stdout, result.stderr
    assert "Traceback" not in err, err
    assert password not in out + err
    assert code == 0, out + err
    report: dict[str, Any] = json.loads(out)
    return report


def _store(tmp: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(canonical messages, ids of contacts) in the store."""
    with closing(sqlite3.connect(tmp / "liaison.db")) as db:
        messages = [json.loads(d) for (d,) in db.execute(
            "SELECT data FROM records WHERE entity = 'message' AND NOT deleted")]
        people = [i for (i,) in db.execute("SELECT id FROM records WHERE entity = 'contact'")]
    return messages, people


def _rows(tmp: Path) -> list[dict[str, str]]:
    with (tmp / "sheet" / "messages.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_hub_sync_copies_a_mailbox_to_a_sheet_without_duplicates(dovecot: Dovecot,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    user = dovecot.new_user("ops")
    for i in range(3):
        dovecot.append(user, "INBOX", _message(f"Inbox {i}", f"<in{i}@example.com>"))
    for i in range(2):
        dovecot.append(user, "Sales", _message(f"Sales {i}", f"<sa{i}@example.com>"))
    (tmp_path / "sheet").mkdir()
    (tmp_path / "hub.yaml").write_text(CONFIG.format(
        tmp=tmp_path, port=dovecot.imaps_port, ca=dovecot.ca_file, user=user))

    first = _sync(tmp_path, dovecot.PASSWORD, process=True)
    assert first["counts"]["created"] == 5
    rows = _rows(tmp_path)
    assert sorted(r["subject"] for r in rows) == [
        "Inbox 0", "Inbox 1", "Inbox 2", "Sales 0", "Sales 1"]
    assert {r["from"] for r in rows} == {"ana@example.com"}
    assert {r["date"] for r in rows} == {"2024-10-01T10:00:00Z"}
    messages, people = _store(tmp_path)
    assert len(people) == 2  # ana and bob: placeholders until a CRM brings them
    assert all(sorted(m["contacts"]) == sorted(people) for m in messages)

    again = _sync(tmp_path, dovecot.PASSWORD)
    assert again["counts"]["read"] == 0 and again["counts"]["written"] == 0
    assert _rows(tmp_path) == rows

    with dovecot.session(user) as imap:  # someone deletes a message in the mailbox
        imap.select("INBOX")
        imap.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
        imap.expunge()
    _sync(tmp_path, dovecot.PASSWORD)
    assert sorted(r["subject"] for r in _rows(tmp_path)) == [
        "Inbox 0", "Inbox 2", "Sales 0", "Sales 1"]

    with dovecot.session(user) as imap:  # the Sales folder is deleted and made again
        assert imap.delete("Sales")[0] == "OK"
    for i in range(2):
        dovecot.append(user, "Sales", _message(f"Sales {i}", f"<sa{i}@example.com>"))
    renumbered = _sync(tmp_path, dovecot.PASSWORD)
    assert renumbered["counts"]["deleted"] == 2 and renumbered["counts"]["created"] == 2
    subjects = sorted(r["subject"] for r in _rows(tmp_path))
    assert subjects == ["Inbox 0", "Inbox 2", "Sales 0", "Sales 1"]

    last = _sync(tmp_path, dovecot.PASSWORD)
    assert last["counts"]["read"] == 0
