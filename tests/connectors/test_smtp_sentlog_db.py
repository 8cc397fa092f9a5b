"""The smtp sent log in a database, shared by workers on several machines.

On one machine the log is a SQLite file beside the config; workers on several machines give
it a database URL instead (`sent_log: postgresql://...`). These tests use the real
PostgreSQL and MariaDB servers and a real SMTP server on loopback: a send cut off on one
"machine" (a process killed between the message's last byte and the server's answer, with
its own config folder) is not repeated by a worker on another, and the operator settles it
through the same URL. A log file written by earlier versions still works.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.smtp.connector import SmtpConnector
from connectors.smtp.sentlog import DATABASE_TABLE, SentLog
from hub.config.model import ConnectionConfig
from hub.errors import TransientError
from tests.connectors.smtp_server import SmtpServer
from tests.connectors.sql_servers import Database, open_database
from tests.connectors.test_smtp import HELLO, ROOT, create, failed, killed_mid_send


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    """A plain SMTP server recording what arrives."""
    with SmtpServer() as s:
        yield s


@pytest.fixture(params=["postgresql", "mariadb"])
def shared(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A database for the sent log, without a log in it before or after the test."""
    for db in open_database(request.param):
        db.sql(f"DROP TABLE IF EXISTS {DATABASE_TABLE}")
        db.made.append(DATABASE_TABLE)
        yield db


def machine(server: SmtpServer, folder: Path, **settings: Any) -> SmtpConnector:
    """The smtp connection as a worker on one machine has it: its own config folder."""
    folder.mkdir(parents=True, exist_ok=True)
    return SmtpConnector(ConnectionConfig(name="mailer", connector="smtp",
                                          settings=server.settings(**settings),
                                          base_dir=folder))


def settle(location: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connectors.smtp.sentlog", location, *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_a_send_cut_off_on_one_machine_is_not_repeated_on_another(
        shared: Database, server: SmtpServer, tmp_path: Path) -> None:
    (tmp_path / "machine-a").mkdir()
    killed_mid_send(server, tmp_path / "machine-a", server.settings(sent_log=shared.url))
    assert len(server.messages) == 1  # the server kept it; the client never heard
    mid = server.messages[0].message_id

    other = machine(server, tmp_path / "machine-b", sent_log=shared.url)
    retry, = other.write("messages", [create(HELLO, "k", "rec-9")])
    reason = failed(retry)
    assert "may have arrived" in reason and mid in reason
    assert len(server.messages) == 1, "the other machine sent it again"
    assert not (tmp_path / "machine-b" / ".liaison-sent").exists()  # no file of its own

    # The operator settles it through the URL the dead letter names.
    shown = sa.make_url(shared.url).render_as_string(hide_password=True)
    assert f"python -m connectors.smtp.sentlog {shown}" in reason.replace("'", "")
    listed = settle(shared.url, "list")
    assert listed.returncode == 0, listed.stderr
    assert "sending" in listed.stdout and mid in listed.stdout
    done = settle(shared.url, "sent", mid)
    assert done.returncode == 0, done.stderr
    replay, = other.write("messages", [create(HELLO, "k", "rec-9")])
    assert replay.ok and replay.external_id == mid
    assert len(server.messages) == 1
    other.close()


def test_a_message_sent_by_one_machine_is_recognised_by_another(
        shared: Database, server: SmtpServer, tmp_path: Path) -> None:
    a = machine(server, tmp_path / "a", sent_log=shared.url)
    b = machine(server, tmp_path / "b", sent_log=shared.url)
    first, = a.write("messages", [create(HELLO, "k", "rec-1")])
    assert first.ok, first
    # The process died before the engine stored the link: the job is retried on b.
    again, = b.write("messages", [create(HELLO, "k", "rec-1")])
    assert again.ok and again.external_id == first.external_id
    assert len(server.messages) == 1
    [row] = shared.rows(DATABASE_TABLE)
    assert row["status"] == "sent" and row["message_id"] == first.external_id
    assert b.check().ok, b.check().message
    a.close()
    b.close()


def test_two_attempts_at_the_same_message_cannot_both_start(shared: Database) -> None:
    logs = [SentLog(sa.make_url(shared.url)) for _ in range(2)]
    try:
        started = [log.begin("tok", "<m@x>", ["bob@example.com"], "Hi") for log in logs]
        assert started == [True, False]
        entry = logs[1].get("tok")
        assert entry is not None and entry.status == "sending"
        logs[1].forget("tok")
        assert logs[0].get("tok") is None and logs[0].begin("tok", "<m@x>", ["b@x"], "Hi")
    finally:
        for log in logs:
            log.close()


def test_an_unreachable_log_sends_nothing_and_says_which_log(server: SmtpServer,
                                                              tmp_path: Path) -> None:
    nowhere = "postgresql://liaison@127.0.0.1:1/liaison"  # nothing listens on port 1
    c = machine(server, tmp_path, sent_log=nowhere)
    result, = c.write("messages", [create(HELLO, "k", "rec-1")])
    assert isinstance(result.error, TransientError)  # retried later: nothing is lost
    assert "the sent log postgresql+psycopg://liaison@127.0.0.1:1/liaison cannot be used" \
        in failed(result)
    assert server.messages == []
    health = c.check()
    assert not health.ok and "cannot use the sent log" in health.message
    c.close()


def test_a_sent_log_url_that_is_no_database_is_named_as_the_setting(
        server: SmtpServer, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="setting 'sent_log': 'redis' databases are not "
                                        "supported"):
        machine(server, tmp_path, sent_log="redis://127.0.0.1:6379/0")


OLD_SCHEMA = """
CREATE TABLE sent (
    token       TEXT PRIMARY KEY,
    message_id  TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('sending', 'sent')),
    recipients  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    reply       TEXT
);
CREATE INDEX sent_message_id ON sent (message_id);
"""


def test_a_sent_log_file_from_an_earlier_version_is_read_and_settled(tmp_path: Path) -> None:
    path = tmp_path / "mailer.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(OLD_SCHEMA)
        old.execute("INSERT INTO sent VALUES ('tok', '<m@x>', 'sending', 'bob@example.com', "
                    "'Hi', '2026-11-01T10:00:00Z', NULL, NULL)")
    old.close()
    listed = settle(str(path), "list")
    assert listed.returncode == 0 and "sending" in listed.stdout and "<m@x>" in listed.stdout
    assert settle(str(path), "sent", "m@x").returncode == 0
    log = SentLog(path)
    try:
        entry = log.get("tok")
        assert entry is not None and entry.status == "sent"
        assert entry.reply == "marked sent by the operator"
        assert not log.begin("tok", "<m@x>", ["bob@example.com"], "Hi")
    finally:
        log.close()


def test_an_email_the_server_accepted_is_reported_sent_when_the_log_then_fails(
        server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit-level: the log goes away between the server's 250 and the "sent" mark (a
    stand-in for that one call). The record must count as delivered, or the engine would
    retry it and dead-letter a message that certainly arrived."""
    c = machine(server, tmp_path)

    def unreachable(_token: str, _reply: str) -> None:
        raise TransientError("the sent log cannot be used: connection refused")

    monkeypatch.setattr(c.log, "sent", unreachable)
    result, = c.write("messages", [create(HELLO, "k", "rec-1")])
    assert result.ok and result.external_id == server.messages[0].message_id
    assert len(server.messages) == 1
    c.close()


def test_a_sqlite_url_is_the_file_it_names(server: SmtpServer, tmp_path: Path) -> None:
    c = machine(server, tmp_path, sent_log=f"sqlite:///{tmp_path / 'mail' / 'sent.sqlite'}")
    sent, = c.write("messages", [create(HELLO, "k", "rec-1")])
    assert sent.ok
    c.close()
    with sqlite3.connect(tmp_path / "mail" / "sent.sqlite") as log:
        assert log.execute("SELECT status FROM sent").fetchall() == [("sent",)]
    log.close()
