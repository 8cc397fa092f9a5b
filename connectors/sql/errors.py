"""The one boundary where SQLAlchemy and driver exceptions become Liaison's errors.

    connection refused, timeouts, server going away,     -> TransientError (retried)
    deadlocks, lock waits, serialization failures
    wrong password, unknown database/role, no privilege  -> PermanentError for the call
    unknown table or column (the table changed under us)    (the run fails; ops must act)
    NOT NULL, unique, foreign key, CHECK, too long,      -> a record error: that op's
    bad value, out of range                                 PermanentError, others go on

Messages use the driver's own first line (never SQLAlchemy's text, which repeats the SQL
and its parameters) with the connection's password cut out, and say in words what to do.
PostgreSQL errors are classified by SQLSTATE (psycopg), MariaDB/MySQL errors by the server's
error number (PyMySQL); psycopg reports connection failures without a SQLSTATE, so those are
read from the message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import exc as sa_exc

from hub.errors import PermanentError, SyncError, TransientError

Kind = Literal["transient", "permanent", "record"]

# MariaDB/MySQL server and client error numbers.
_MYSQL_TRANSIENT = frozenset({
    1040,  # too many connections
    1053,  # server shutdown in progress
    1158, 1159, 1160, 1161,  # network read/write errors and timeouts
    1205,  # lock wait timeout
    1213,  # deadlock
    1927,  # connection killed
    2002, 2003, 2005, 2006, 2013, 2055,  # cannot connect / server gone away / lost
    3024,  # query execution interrupted (max_execution_time)
    4031,  # disconnected for inactivity
})
_MYSQL_PERMANENT = {
    1044: "the user may not use this database: grant it access",
    1045: "the server refused the user name or password: check the connection URL's user "
          "and its password in the environment",
    1049: "the database does not exist: check the database name at the end of the URL",
    1129: "the server blocked this host after too many failed connections: run "
          "FLUSH HOSTS on the server",
    1130: "the server does not let this host connect: grant the user access from it",
    1251: "the server wants an authentication method the driver lacks: change the user's "
          "authentication plugin",
    1698: "the server refused the user name or password: check the connection URL's user "
          "and its password in the environment",
    1054: "a column is not in the table (it was renamed or dropped): run `hub check` and "
          "correct the mapping or the table settings",
    1142: "the user lacks a privilege on this table: grant SELECT, INSERT, UPDATE, DELETE",
    1143: "the user lacks a privilege on a column: grant it",
    1146: "the table does not exist (it was renamed or dropped): correct setting 'tables'",
    1227: "the user lacks a privilege: grant it",
}
_MYSQL_RECORD = {
    1048: "a required column is empty (NOT NULL)",
    1062: "another row already has this value in a unique column (duplicate)",
    1216: "a referenced row does not exist (foreign key)",
    1217: "other rows still refer to this row (foreign key)",
    1264: "a number is out of the column's range",
    1292: "a value is not valid for the column's type",
    1364: "a required column has no value and no default (NOT NULL)",
    1366: "a value does not fit the column's type",
    1406: "a text is longer than the column allows",
    1451: "other rows still refer to this row (foreign key)",
    1452: "a referenced row does not exist (foreign key)",
    1265: "a value was cut to fit the column",
    1690: "a number is out of the column's range",
    3819: "a CHECK constraint rejected the row",
    4025: "a CHECK constraint rejected the row",
    4078: "a value has the wrong type for the column",
}

_PG_RECORD = {
    "23502": "a required column is empty (NOT NULL)",
    "23505": "another row already has this value in a unique column (duplicate)",
    "23503": "the row refers to a row that does not exist, or is still referred to "
             "(foreign key)",
    "23514": "a CHECK constraint rejected the row",
    "23P01": "an exclusion constraint rejected the row",
    "22001": "a text is longer than the column allows",
    "22003": "a number is out of the column's range",
    "22007": "a date or time value is not valid for the column",
    "22008": "a date or time value is out of range",
    "22P02": "a value does not fit the column's type",
    "42804": "a value has the wrong type for the column",
    "22021": "a text holds bytes that are not valid in the database's encoding",
    "22P05": "a text holds a character the database cannot store",
}
_PG_TRANSIENT_PREFIXES = ("08", "53", "57", "58")
_PG_TRANSIENT = frozenset({"40001", "40P01", "55P03", "55006"})
_PG_PERMANENT = {
    "28000": "the server refused this user from this host (pg_hba.conf)",
    "28P01": "the server refused the password: check it in the environment",
    "3D000": "the database does not exist: check the database name at the end of the URL",
    "42501": "the user lacks a privilege on this table: grant SELECT, INSERT, UPDATE, DELETE",
    "42P01": "the table does not exist (it was renamed or dropped): correct setting 'tables'",
    "42703": "a column is not in the table (it was renamed or dropped): run `hub check` and "
             "correct the mapping or the table settings",
    "25006": "the database is read-only here (a replica?): point the URL at the primary",
}
# psycopg reports a failed connection without a SQLSTATE: recognise the server's words.
_PG_CONNECT_PERMANENT: tuple[tuple[tuple[str, ...], str], ...] = (
    (("password authentication failed",),
     "the server refused the password: check it in the environment"),
    (("no pg_hba.conf entry",), "the server refused this user from this host (pg_hba.conf)"),
    (("role", "does not exist"),
     "the user does not exist on the server: check the URL's user name"),
    (("database", "does not exist"),
     "the database does not exist: check the database name at the end of the URL"),
    (("permission denied",), "the user may not connect to this database: grant CONNECT"),
)
_RETRIED = "the database did not answer or gave way to another transaction; it will be retried"


@dataclass(frozen=True)
class Redactor:
    """Cuts secrets (the URL's password, plain and URL-encoded) out of any text."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: Iterable[str | None]) -> Redactor:
        """A redactor for these secret values (empty ones ignored)."""
        found: set[str] = set()
        for value in values:
            if value:
                found.update({value, quote(value, safe="")})
        return cls(tuple(sorted(found, key=len, reverse=True)))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def driver_message(exc: BaseException, redact: Redactor) -> str:
    """The driver's own first line about the failure, without secrets."""
    orig: Any = getattr(exc, "orig", None) or exc
    if _mysql_code(orig) is not None and len(orig.args) >= 2:
        text = str(orig.args[1])
    else:
        text = str(orig)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return redact(lines[0] if lines else type(orig).__name__)


def _mysql_code(orig: Any) -> int | None:
    if type(orig).__module__.startswith("pymysql") and orig.args \
            and isinstance(orig.args[0], int):
        return int(orig.args[0])
    return None


def _sqlstate(orig: Any) -> str | None:
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) and state else None


def classify(exc: BaseException) -> tuple[Kind, str]:
    """What the engine should do about `exc`, and a hint in words for the ops person."""
    if isinstance(exc, sa_exc.TimeoutError):  # no free connection in the pool in time
        return "transient", "all connections to the database are busy"
    if isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError):
        # Raised before the server saw anything: a value the driver cannot send.
        return "record", "a value cannot be sent to the database in this column's type"
    if not isinstance(exc, sa_exc.DBAPIError):
        return "permanent", "unexpected database error"
    orig = exc.orig
    code = _mysql_code(orig)
    if code is not None:
        if code in _MYSQL_TRANSIENT:
            return "transient", _RETRIED
        if code in _MYSQL_RECORD:
            return "record", _MYSQL_RECORD[code]
        if code in _MYSQL_PERMANENT:
            return "permanent", _MYSQL_PERMANENT[code]
    state = _sqlstate(orig)
    if state is not None and code is None:
        if state in _PG_RECORD:
            return "record", _PG_RECORD[state]
        if state in _PG_TRANSIENT or state.startswith(_PG_TRANSIENT_PREFIXES):
            return "transient", _RETRIED
        if state in _PG_PERMANENT:
            return "permanent", _PG_PERMANENT[state]
        if state.startswith(("22", "23")):
            return "record", "the database refused the row"
    if isinstance(exc, sa_exc.OperationalError) and code is None and state is None:
        text = str(orig).lower()
        if "fatal:" in text:
            for words, hint in _PG_CONNECT_PERMANENT:
                if all(w in text for w in words):
                    return "permanent", hint
        # Refused, reset, timed out, starting up, shutting down, too many clients.
        return "transient", "the database did not answer; it will be retried"
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
        return "transient", "the connection to the database was lost; it will be retried"
    if isinstance(exc, (sa_exc.IntegrityError, sa_exc.DataError)):
        return "record", "the database refused the row"
    return "permanent", "the database refused the statement"


def translate(exc: BaseException, where: str, redact: Redactor) -> SyncError:
    """`exc` as a TransientError or PermanentError whose message starts with `where`."""
    kind, hint = classify(exc)
    message = f"{where}: {hint} ({driver_message(exc, redact)})"
    return TransientError(message) if kind == "transient" else PermanentError(message)


def is_record_error(exc: BaseException) -> bool:
    """Whether `exc` concerns one row (a constraint, a bad value), not the connection."""
    return classify(exc)[0] == "record"


def record_problem(exc: BaseException, redact: Redactor) -> str:
    """Why the database refused one row, in words, with the constraint and column it named."""
    _, hint = classify(exc)
    orig: Any = getattr(exc, "orig", None)
    diag = getattr(orig, "diag", None)
    named: list[str] = []
    detail = ""
    if diag is not None:  # psycopg names the constraint and column separately
        if getattr(diag, "constraint_name", None):
            named.append(f"constraint {diag.constraint_name}")
        if getattr(diag, "column_name", None):
            named.append(f"column {diag.column_name}")
        detail = str(getattr(diag, "message_detail", None) or "")
    where = f" [{', '.join(named)}]" if named else ""
    extra = f" {redact(detail)}" if detail else ""
    return f"{hint}{where}: {driver_message(exc, redact)}{extra}"
