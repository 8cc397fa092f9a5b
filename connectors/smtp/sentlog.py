"""The sent log: what this connection has handed to its SMTP server, kept before it says ok.

SMTP has no idempotency key: a message sent twice arrives twice. The engine records a
write's link only after write() returns, so a process that dies in between would send the
same message again on the retry. The sent log closes that gap: one row per message, keyed
by the message's deterministic token (see compose.message_token):

    status "sending"  written (and committed) just before the last byte of the message (the
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

Where it lives (setting `sent_log`): by default a small SQLite file,
`.liaison-sent/<system>.sqlite` beside the config (table `sent`, synchronous=FULL). Every
process that delivers to this system must see the same log, so when workers run on several
machines give it a database instead: `sent_log: postgresql://liaison@db.internal/liaison`
(or mysql://..., the password from the environment, e.g. PGPASSWORD, or the whole URL as an
${ENV} reference); the log is then the table `liaison_smtp_sent` there, created on first
use. A network file system is no place for the SQLite file: its locks are not reliable.
Two attempts to start the same message cannot both win: the token is the primary key.
A log that cannot be reached is a TransientError: nothing is sent, the deliveries stay owed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connectors.databases import database_url as parse_url
from hub.config.model import ConnectionConfig
from hub.errors import ConnectorError, TransientError

FILE_TABLE = "sent"  # in a sent-log file of its own (the default)
DATABASE_TABLE = "liaison_smtp_sent"  # in a database that may hold other tables
MESSAGE_ID_MAX = 512  # every Message-ID compose accepts (<= 503 characters) fits, and indexes
CONNECT_TIMEOUT = 10  # seconds


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sent_log_location(connection: ConnectionConfig) -> Path | URL:
    """The `sent_log` setting: a database URL, or a file (relative to the config's
    folder); by default `.liaison-sent/<system>.sqlite` beside the config."""
    configured = connection.setting("sent_log")
    base = Path(connection.base_dir)
    if configured:
        return location_of(str(configured), base, connection)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in connection.name)
    return base / ".liaison-sent" / f"{safe}.sqlite"


def location_of(text: str, base: Path, connection: ConnectionConfig | None = None
                ) -> Path | URL:
    """A file (relative to `base`) or a database URL; a sqlite:/// URL is its file."""
    text = text.strip()
    if "://" in text:
        url = database_url(text, connection)
        if url.get_backend_name() != "sqlite":
            return url
        text = str(url.database)
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def database_url(text: str, connection: ConnectionConfig | None = None) -> URL:
    """A `sent_log` URL, checked (connectors.databases.database_url)."""
    where = "setting 'sent_log'"
    if connection is not None:
        at = connection.where_of("sent_log")
        where = f"connection {connection.name}{f' ({at})' if at else ''}: {where}"
    return parse_url(text, where=where, backends=("postgresql", "mysql", "mariadb", "sqlite"),
                     supported="PostgreSQL, MariaDB, MySQL or SQLite",
                     example="postgresql://liaison@db.internal/liaison")


def _table(name: str) -> Table:
    return Table(
        name, MetaData(),
        Column("token", String(64), primary_key=True),
        Column("message_id", String(MESSAGE_ID_MAX), nullable=False),
        Column("status", String(8), nullable=False),
        Column("recipients", Text, nullable=False),
        Column("subject", String(200), nullable=False),
        Column("started_at", String(20), nullable=False),
        Column("finished_at", String(20)),
        Column("reply", String(500)),
        CheckConstraint("status IN ('sending', 'sent')", name=f"{name}_status"),
        Index(f"{name}_message_id", "message_id"),
    )


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
    """The log; every change is committed (durably) before the call returns.

    `location` is a file (a SQLite database of its own) or a database URL. The table is
    created on first use unless `create` is False (the operator's command only reads and
    settles an existing log)."""

    def __init__(self, location: Path | URL, *, create: bool = True) -> None:
        self.location = location
        # Shown in messages and commands: never a password.
        if isinstance(location, Path):
            self.where, self.table = str(location), _table(FILE_TABLE)
        else:
            self.where = location.render_as_string(hide_password=True)
            self.table = _table(DATABASE_TABLE)
        self._create = create
        self._engine: Engine | None = None

    def _db(self) -> Engine:
        if self._engine is None:
            if isinstance(self.location, Path):
                if self._create:
                    self.location.parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(URL.create("sqlite", database=str(self.location)),
                                       connect_args={"timeout": 30,
                                                     "check_same_thread": False})
                event.listen(engine, "connect", _full_sync)
            else:
                engine = create_engine(self.location, pool_pre_ping=True, pool_size=1,
                                       max_overflow=2, pool_timeout=CONNECT_TIMEOUT,
                                       connect_args={"connect_timeout": CONNECT_TIMEOUT})
            try:
                if self._create:
                    self.table.create(engine, checkfirst=True)
                elif not inspect(engine).has_table(self.table.name):
                    raise ConnectorError(f"no sent log in {self.where} (no table "
                                         f"{self.table.name})")
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
        return self._engine

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A transaction, committed on leaving; a database that cannot be used is a
        TransientError naming the log (the deliveries stay owed and are tried again)."""
        try:
            with self._db().begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc  # the driver's own error, if any
            raise TransientError(f"the sent log {self.where} cannot be used: "
                                 f"{type(cause).__name__}: {_first_line(cause)}") from None

    def _rows(self, where: Any) -> list[Entry]:
        t = self.table
        query = select(t).where(where).order_by(t.c.started_at, t.c.token)
        with self._tx() as conn:
            return [Entry(*row) for row in conn.execute(query)]

    def get(self, token: str) -> Entry | None:
        """The row for `token`, or None."""
        rows = self._rows(self.table.c.token == token)
        return rows[0] if rows else None

    def by_message_id(self, message_id: str) -> list[Entry]:
        """Rows with this Message-ID (angle brackets optional)."""
        mid = message_id.strip()
        mid = mid if mid.startswith("<") else f"<{mid}>"
        return self._rows(self.table.c.message_id == mid)

    def begin(self, token: str, message_id: str, recipients: list[str], subject: str) -> bool:
        """Mark `token` as being sent now; False if a row for it already exists (the
        primary key decides between two attempts at the same moment)."""
        try:
            with self._tx() as conn:
                conn.execute(self.table.insert().values(
                    token=token, message_id=message_id, status="sending",
                    recipients=", ".join(recipients), subject=subject[:200],
                    started_at=_now()))
        except IntegrityError:
            return False
        return True

    def sent(self, token: str, reply: str) -> None:
        """The server accepted the message."""
        t = self.table
        with self._tx() as conn:
            conn.execute(update(t).where(t.c.token == token).values(
                status="sent", finished_at=_now(), reply=reply[:500]))

    def forget(self, token: str) -> None:
        """Nothing was sent for `token` (the server refused it, or we stopped before the
        end of the message): a later attempt may send it."""
        t = self.table
        with self._tx() as conn:
            conn.execute(delete(t).where(t.c.token == token))

    def entries(self) -> list[Entry]:
        """Every row, oldest first."""
        return self._rows(self.table.c.token.is_not(None))

    def close(self) -> None:
        """Close the connections (reopened on next use)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()


def _full_sync(dbapi_conn: Any, _record: Any) -> None:
    # A "sending" mark must be on disk before the message's last byte leaves.
    dbapi_conn.execute("PRAGMA synchronous=FULL")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


# ---------------------------------------------------------------- operator command

def _resolve(log: SentLog, message_id: str, status: str | None) -> str:
    found = log.by_message_id(message_id)
    if not found:
        return f"no message {message_id} in {log.where}"
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
    """`python -m connectors.smtp.sentlog FILE|URL list|sent ID|unsent ID`."""
    parser = argparse.ArgumentParser(
        prog="python -m connectors.smtp.sentlog",
        description="Show or settle the sent log of an smtp connection.")
    parser.add_argument("location", help="the sent log: its file, or its database URL "
                                         "(setting sent_log; a password from the "
                                         "environment, e.g. PGPASSWORD)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every message in the log")
    for name, text in (("sent", "it arrived: a replay records it without sending"),
                       ("unsent", "it did not arrive: a replay sends it")):
        sub.add_parser(name, help=text).add_argument("message_id")
    args = parser.parse_args(argv)
    try:
        location = location_of(args.location, Path.cwd())
    except ConnectorError as exc:
        print(exc, file=sys.stderr)
        return 2
    if isinstance(location, Path) and not location.is_file():
        print(f"no sent log at {location}", file=sys.stderr)
        return 2
    log = SentLog(location, create=False)
    try:
        if args.command == "list":
            for e in log.entries():
                print(f"{e.status:8} {e.started_at} {e.message_id} to {e.recipients}: "
                      f"{e.subject}" + (f" [{e.reply}]" if e.reply else ""))
            return 0
        message = _resolve(log, args.message_id, "sent" if args.command == "sent" else None)
        print(message)
        return 0 if not message.startswith("no message") else 1
    except (ConnectorError, TransientError) as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        log.close()


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in tests
    raise SystemExit(main())
