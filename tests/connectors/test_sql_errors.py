"""Driver exceptions leave the connector as TransientError or PermanentError, password-free."""

from __future__ import annotations

import socket
import threading
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from connectors.sql.errors import Redactor, translate
from hub.connector import WriteOp
from hub.errors import PermanentError, TransientError
from tests.connectors.sql_servers import Database, db  # noqa: F401 - the fixture

PASSWORD = "s3cr:t/p@ss"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _url(target: Database, **parts: Any) -> str:
    return make_url(target.url).set(**parts).render_as_string(hide_password=False)


def _read(connector: Any, obj: str = "things") -> list[Any]:
    return list(connector.read(obj, None, incremental=False, page_size=10))


def _hidden(text: str) -> None:
    assert PASSWORD not in text and quote(PASSWORD, safe="") not in text


def test_a_server_that_does_not_answer_is_transient(db: Database) -> None:  # noqa: F811
    c = db.connector({}, url=_url(db, port=_free_port(), password=PASSWORD),
                     connect_timeout=3)
    with pytest.raises(TransientError, match="did not answer") as caught:
        _read(c)
    _hidden(str(caught.value))
    with pytest.raises(TransientError):
        c.write("things", [WriteOp("create", "k", {"id": 1})])
    health = c.check()
    assert not health.ok and "did not answer" in health.message
    _hidden(health.message)
    assert "***" in health.message  # the URL is shown, its password is not
    c.close()


def test_an_unknown_database_is_permanent_and_says_so(db: Database) -> None:  # noqa: F811
    c = db.connector({}, url=_url(db, database="no_such_db_sqlconn"))
    with pytest.raises(PermanentError, match="the database does not exist"):
        _read(c)
    c.close()


def test_refused_credentials_are_permanent_and_the_password_never_shows(
        db: Database) -> None:  # noqa: F811
    # PostgreSQL here trusts loopback, so an unknown role is what it refuses.
    c = db.connector({}, url=_url(db, username="nobody_sqlconn", password=PASSWORD))
    with pytest.raises(PermanentError) as caught:
        _read(c)
    message = str(caught.value)
    assert "check the URL's user" in message or "refused the user name or password" in message
    _hidden(message)
    _hidden(c.check().message)
    c.close()


def test_a_table_dropped_after_it_was_checked_is_permanent(db: Database) -> None:  # noqa: F811
    table = db.table("id INTEGER PRIMARY KEY")
    c = db.connector({"things": table})
    assert c.check().ok
    _read(c)
    db.sql(f"DROP TABLE {table}")
    with pytest.raises(PermanentError, match="the table does not exist"):
        _read(c)
    with pytest.raises(PermanentError, match="the table does not exist"):
        c.write("things", [WriteOp("create", "k", {"id": 1})])
    c.close()


def test_a_deadlock_is_transient(db: Database) -> None:  # noqa: F811
    table = db.table("id INTEGER PRIMARY KEY, n INTEGER")
    db.sql(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
    engine = sa.create_engine(db.url)
    bound = "SET SESSION innodb_lock_wait_timeout = 20" if db.mysql \
        else "SET lock_timeout = '20s'"
    errors: list[DBAPIError] = []
    a, b = engine.connect(), engine.connect()
    try:
        for conn, row in ((a, 1), (b, 2)):
            conn.execute(sa.text(bound))
            conn.execute(sa.text(f"UPDATE {table} SET n = 1 WHERE id = {row}"))

        def lock(conn: sa.Connection, row: int) -> None:
            try:
                conn.execute(sa.text(f"UPDATE {table} SET n = 2 WHERE id = {row}"))
            except DBAPIError as exc:
                errors.append(exc)

        other = threading.Thread(target=lock, args=(a, 2))
        other.start()
        lock(b, 1)  # each now waits for the other: the server must pick a victim
        other.join(timeout=30)
        assert not other.is_alive()
    finally:
        a.rollback()
        b.rollback()
        a.close()
        b.close()
        engine.dispose()
    assert len(errors) == 1, errors
    translated = translate(errors[0], "system 'erp'", Redactor())
    assert isinstance(translated, TransientError), translated
    assert "retried" in str(translated)


def test_messages_never_hold_the_password_even_url_encoded() -> None:
    redact = Redactor.of([PASSWORD])
    text = f"failed for {PASSWORD} and {quote(PASSWORD, safe='')}"
    assert redact(text) == "failed for *** and ***"


def test_a_statement_that_waits_too_long_is_given_up_as_transient(db: Database) -> None:  # noqa: F811
    table = db.table("id INTEGER PRIMARY KEY")
    c = db.connector({"things": table}, statement_timeout=1)
    assert c.check().ok  # bound before the table is locked
    engine = sa.create_engine(db.url)
    holder = engine.connect()
    try:
        lock = f"LOCK TABLES {table} WRITE" if db.mysql else \
            f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        if not db.mysql:
            holder.begin()
        holder.execute(sa.text(lock))
        with pytest.raises(TransientError, match="retried"):
            _read(c)
    finally:
        if db.mysql:
            holder.execute(sa.text("UNLOCK TABLES"))
        holder.rollback()
        holder.close()
        engine.dispose()
        c.close()
