"""The sent log: what this connection has handed to its SMTP server, kept before it says ok.

SMTP has no idempotency key: a message sent twice arrives twice. The engine records a
write's link only after write() returns, so a process that dies in between would send the
same message again on the retry. The sent log closes that gap. It is a small SQLite file
(setting `sent_log`, default `.liaison-sent/<system>.sqlite` beside the config), one row per
message, keyed by the message's deterministic token (see compose.message_token):

    status "sending"  written (and fsynced) just before the last byte of the message (the
                      terminating ".") leaves for the server
    status "sent"     written as soon as the server answers 250, before write() returns
    (no row)          the server refused it for certain, or nothing was sent yet

A retry that finds "sent" reports ok without sending. One that finds "sending" cannot know
whether the server kept the message (the connection or the process died between the "."
and the server's answer: RFC 1047's window, which no SMTP client can close), so it does NOT
send again (at most once): the record is dead-lettered with words saying so. The operator
looks in the recipient's mailbox or the Bcc copy, then runs one of

    python -m connectors.smtp.sentlog <sent log> sent '<message id>'    # it arrived: keep
    python -m connectors.smtp.sentlog <sent log> unsent '<message id>'  # it did not: send

and replays the dead letter (`hub dlq replay N`): "sent" makes the replay ok without
sending, "unsent" sends it. `... <sent log> list` shows the log.

The file must be visible to every process that delivers to this system (the engine runs
one deliverer per target at a time); on several machines, put it on shared storage.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hub.config.model import ConnectionConfig

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    token       TEXT PRIMARY KEY,
    message_id  TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('sending', 'sent')),
    recipients  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    reply       TEXT
);
CREATE INDEX IF NOT EXISTS sent_message_id ON sent (message_id);
"""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sent_log_path(connection: ConnectionConfig) -> Path:
    """The `sent_log` setting (relative to the config's folder), else
    `.liaison-sent/<system>.sqlite` beside the config."""
    configured = connection.setting("sent_log")
    base = Path(connection.base_dir)
    if configured:
        path = Path(str(configured)).expanduser()
        return path if path.is_absolute() else base / path
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in connection.name)
    return base / ".liaison-sent" / f"{safe}.sqlite"


@dataclass(frozen=True)
class Entry:
    """One row of the log."""

    token: str
    message_id: str
    status: str
    recipients: str
    subject: str
    started_at: str
    finished_at: str | None
    reply: str | None


class SentLog:
    """The log file; every change is committed (synchronous=FULL) before the call returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        # One connection, possibly used from a worker's other threads: one user at a time.
        self._lock = threading.RLock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _rows(self, sql: str, args: tuple[str, ...] = ()) -> list[Entry]:
        with self._lock:
            return [Entry(*r) for r in self._db().execute(sql, args).fetchall()]

    def get(self, token: str) -> Entry | None:
        """The row for `token`, or None."""
        rows = self._rows("SELECT * FROM sent WHERE token = ?", (token,))
        return rows[0] if rows else None

    def by_message_id(self, message_id: str) -> list[Entry]:
        """Rows with this Message-ID (angle brackets optional)."""
        mid = message_id.strip()
        mid = mid if mid.startswith("<") else f"<{mid}>"
        return self._rows("SELECT * FROM sent WHERE message_id = ?", (mid,))

    def begin(self, token: str, message_id: str, recipients: list[str], subject: str) -> bool:
        """Mark `token` as being sent now; False if a row for it already exists."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM sent WHERE token = ?", (token,)).fetchone():
                return False
            db.execute("INSERT INTO sent (token, message_id, status, recipients, subject, "
                       "started_at) VALUES (?, ?, 'sending', ?, ?, ?)",
                       (token, message_id, ", ".join(recipients), subject[:200], _now()))
        return True

    def sent(self, token: str, reply: str) -> None:
        """The server accepted the message."""
        with self._tx() as db:
            db.execute("UPDATE sent SET status = 'sent', finished_at = ?, reply = ? "
                       "WHERE token = ?", (_now(), reply[:500], token))

    def forget(self, token: str) -> None:
        """Nothing was sent for `token` (the server refused it, or we stopped before the
        end of the message): a later attempt may send it."""
        with self._tx() as db:
            db.execute("DELETE FROM sent WHERE token = ?", (token,))

    def entries(self) -> list[Entry]:
        """Every row, oldest first."""
        return self._rows("SELECT * FROM sent ORDER BY started_at, token")

    def close(self) -> None:
        """Close the file (reopened on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


# ---------------------------------------------------------------- operator command

def _resolve(log: SentLog, message_id: str, status: str | None) -> str:
    found = log.by_message_id(message_id)
    if not found:
        return f"no message {message_id} in {log.path}"
    for entry in found:
        if status is None:
            log.forget(entry.token)
        else:
            log.sent(entry.token, f"marked {status} by the operator")
    if status is None:
        return (f"{message_id}: forgotten; replaying its dead letter sends it (once) "
                "(`hub dlq replay N`)")
    return (f"{message_id}: marked sent; replaying its dead letter records it without "
            "sending it again")


def main(argv: list[str] | None = None) -> int:
    """`python -m connectors.smtp.sentlog PATH list|sent ID|unsent ID`."""
    parser = argparse.ArgumentParser(
        prog="python -m connectors.smtp.sentlog",
        description="Show or settle the sent log of an smtp connection.")
    parser.add_argument("path", help="the sent log file (setting sent_log)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every message in the log")
    for name, text in (("sent", "it arrived: a replay records it without sending"),
                       ("unsent", "it did not arrive: a replay sends it")):
        sub.add_parser(name, help=text).add_argument("message_id")
    args = parser.parse_args(argv)
    path = Path(args.path)
    if not path.is_file():
        print(f"no sent log at {path}", file=sys.stderr)
        return 2
    log = SentLog(path)
    try:
        if args.command == "list":
            for e in log.entries():
                print(f"{e.status:8} {e.started_at} {e.message_id} to {e.recipients}: "
                      f"{e.subject}" + (f" [{e.reply}]" if e.reply else ""))
            return 0
        message = _resolve(log, args.message_id, "sent" if args.command == "sent" else None)
        print(message)
        return 0 if not message.startswith("no message") else 1
    finally:
        log.close()


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in tests
    raise SystemExit(main())
