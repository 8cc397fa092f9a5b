"""`hub check`: the config, then (with --connect) a call to every connected system.

`check_settings` verifies everything that can be without touching the store or a vendor:
it collects every problem (mappings that do not compile, unknown connectors, unknown or
missing connector settings, literal values where a secret reference is required, unset
environment variables) and raises one ConfigError naming file:line for each.

`connect_systems` then builds each connection's connector and calls its `check()` (a cheap
authenticated call), all systems at once, each bounded by a timeout, and says per system
what happened and what to do: ok, the connector's own health message, or the error in words
(temporary, refused, credentials, set-up). Messages are redacted: never a secret, never a
traceback. Systems without a connection are listed as silos, not as failures.
"""

from __future__ import annotations

import dataclasses
import difflib
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from hub import registry
from hub.config import missing_secrets, redact_text
from hub.config.model import ConnectionConfig, RetryPolicy, Secret, Settings
from hub.config.secrets import secrets_in
from hub.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    HubError,
    PermanentError,
    Problem,
    SecretError,
    TransientError,
)
from hub.sync.context import FlowContext

# Settings every connection understands, whatever its connector.
COMMON_SETTINGS = frozenset({"connector", "mappings", "retry"})


def _where(where: str, fallback: str) -> tuple[str, int | None]:
    file, _, line = where.rpartition(":")
    if file and line.isdigit():
        return file, int(line)
    return fallback, None


def check_settings(settings: Settings) -> dict[str, Any]:
    """Validate what `load` cannot: connectors, their settings, mappings, secrets."""
    problems: list[Problem] = []
    file = str(settings.file)
    for name, system in settings.systems.items():
        conn = system.connection
        if conn is None:
            continue
        key = f"systems.{name}.connection"
        try:
            cls = registry.get(conn.connector)
        except ConnectorError as exc:
            problems.append(Problem(*_where(conn.where_of("connector"), file),
                                    f"{key}.connector", str(exc)))
            continue
        caps = cls.capabilities
        if caps.settings:
            for setting in conn.settings:
                if setting not in caps.settings and setting not in COMMON_SETTINGS:
                    known = ", ".join(sorted(caps.settings))
                    close = difflib.get_close_matches(setting, list(caps.settings), n=1)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    problems.append(Problem(*_where(conn.where_of(setting), file),
                                            f"{key}.{setting}",
                                            f"unknown setting for connector {conn.connector}"
                                            f"{hint}; known settings: {known}"))
        for secret in caps.secret_settings:
            value = conn.settings.get(secret)
            if value is not None and not isinstance(value, Secret):
                problems.append(Problem(*_where(conn.where_of(secret), file), f"{key}.{secret}",
                                        "must be an environment reference like ${NAME}"))
    problems.extend(missing_secrets(settings))
    mappings = 0
    for flow in settings.flows.values():
        try:
            ctx = FlowContext.build(settings, flow)
            mappings += len(ctx.mappings)
            for sys_name in ctx.mappings:
                conn = settings.connection(sys_name)
                try:
                    caps = registry.get(conn.connector).capabilities
                except ConnectorError:
                    continue
                support = caps.entities.get(flow.entity)
                at, line = _where(flow.where, file)
                if support is None:
                    problems.append(Problem(at, line, f"flows.{flow.name}.entity",
                                            f"connector {conn.connector} (system {sys_name}) "
                                            f"does not handle {flow.entity}"))
                elif sys_name in flow.targets and not support.write:
                    problems.append(Problem(at, line, f"flows.{flow.name}.to",
                                            f"connector {conn.connector} cannot write "
                                            f"{flow.entity}"))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        # The same problem can be found twice (a connector used by a flow): report it once.
        raise ConfigError(list(dict.fromkeys(problems)))
    connected = sum(1 for s in settings.systems.values() if s.connection is not None)
    return {"file": file, "systems": len(settings.systems), "connected": connected,
            "silos": len(settings.systems) - connected, "flows": len(settings.flows),
            "mappings": mappings, "ok": True}


# -- --connect ---------------------------------------------------------------------------

Status = Literal["ok", "failed", "not connected"]
# What kind of failure it was, in words; "setup" means the connection's settings are wrong
# (the config is wrong: `hub check` exits 2), the others that the system did not pass (1).
Kind = Literal["", "unhealthy", "temporary", "refused", "credentials", "setup", "timeout",
               "unexpected"]
DEFAULT_TIMEOUT = 20.0  # seconds one system may take to answer its check
# A check is one cheap call: one quick retry covers a blip; a longer outage is reported now
# rather than waited out with the sync's patient backoff.
_CHECK_RETRY = RetryPolicy(attempts=2, backoff_initial=0.5, backoff_max=2.0)


@dataclass(frozen=True)
class SystemCheck:
    """What `hub check --connect` found for one system."""

    system: str
    connector: str | None  # None: a silo
    status: Status
    message: str  # the connector's health message or the error, redacted
    kind: Kind = ""
    error: str | None = None  # the hub.errors class that was raised (TransientError, ...)
    hint: str = ""  # what to do about a failure
    where: str = ""  # file:line of the connection block

    @property
    def ok(self) -> bool:
        """Passed, or has nothing to pass (a silo)."""
        return self.status != "failed"


def connect_systems(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> list[SystemCheck]:
    """Check every connected system at once, each within `timeout` seconds; in config order.

    Each check runs in a daemon thread: one that does not answer in time is reported as a
    timeout and left behind, so a hung vendor cannot hang `hub check` (the process exits).
    """
    results: dict[str, SystemCheck] = {}
    threads: dict[str, threading.Thread] = {}
    for name, system in settings.systems.items():
        conn = system.connection
        if conn is None:
            results[name] = SystemCheck(name, None, "not connected",
                                        "not connected (a silo)")
            continue
        thread = threading.Thread(target=_check_one, args=(settings, conn, results),
                                  name=f"hub-check-{name}", daemon=True)
        threads[name] = thread
        thread.start()
    deadline = time.monotonic() + timeout
    for name, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():  # still waiting: the check's own timeouts are longer
            conn = settings.connection(name)
            # setdefault: the check may finish right now; then its own outcome stands.
            results.setdefault(name, _failed(
                settings, conn, "timeout", None,
                f"no answer within {timeout:g} second{'' if timeout == 1 else 's'}",
                f"check that {name} is up and reachable from this machine (its address in "
                f"the connection at {conn.where or settings.file}); if it is only slow, run "
                f"`hub check --connect --timeout {max(timeout * 3, 60):g}`"))
    return [results[name] for name in settings.systems]


def _check_one(settings: Settings, conn: ConnectionConfig,
               results: dict[str, SystemCheck]) -> None:
    """Build the connector, call check(), close it; the outcome goes into `results`."""
    quick = dataclasses.replace(conn, retry=RetryPolicy(
        attempts=min(conn.retry.attempts, _CHECK_RETRY.attempts),
        backoff_initial=min(conn.retry.backoff_initial, _CHECK_RETRY.backoff_initial),
        backoff_max=min(conn.retry.backoff_max, _CHECK_RETRY.backoff_max)))
    connector = None
    try:
        connector = registry.create(quick)
        health = connector.check()
        outcome = (SystemCheck(conn.name, conn.connector, "ok",
                               redact_text(health.message or "answered", settings),
                               where=conn.where) if health.ok
                   else _failed(settings, conn, "unhealthy", None,
                                health.message or "its check failed", _hint(settings, conn)))
    except Exception as exc:  # noqa: BLE001 - every failure is reported as words, per system
        outcome = _from_error(settings, conn, exc)
    finally:
        if connector is not None:
            try:
                connector.close()
            except Exception:  # noqa: BLE001, S110 - closing must not mask the check's outcome
                pass
    results.setdefault(conn.name, outcome)


def _from_error(settings: Settings, conn: ConnectionConfig, exc: Exception) -> SystemCheck:
    """A raised error as a failed check, in words, with what to do."""
    name, where = conn.name, conn.where or str(settings.file)
    error = type(exc).__name__ if isinstance(exc, HubError) else None
    if isinstance(exc, AuthError):
        return _failed(settings, conn, "credentials", error,
                       f"{conn.connector} refused the credentials: {exc}",
                       _hint(settings, conn, credentials=True))
    if isinstance(exc, TransientError):
        return _failed(settings, conn, "temporary", error,
                       f"a temporary failure (worth retrying later): {exc}",
                       f"check that {name} is up and reachable from this machine (its address "
                       f"in the connection at {where}), then run `hub check --connect` again")
    if isinstance(exc, PermanentError):
        return _failed(settings, conn, "refused", error,
                       f"{conn.connector} refused the call (retrying will not help): {exc}",
                       _hint(settings, conn))
    if isinstance(exc, (ConnectorError, SecretError, ConfigError)):
        return _failed(settings, conn, "setup", error, f"cannot be set up: {exc}",
                       f"fix the settings of the connection at {where}, then run "
                       "`hub check --connect` again")
    first = (str(exc).strip().splitlines() or [""])[0]
    return _failed(settings, conn, "unexpected", error,
                   f"the {conn.connector} connector failed unexpectedly: "
                   f"{type(exc).__name__}{': ' + first if first else ''}",
                   f"this looks like a bug in the {conn.connector} connector: pass this "
                   "message on to whoever maintains it")


def _hint(settings: Settings, conn: ConnectionConfig, *, credentials: bool = False) -> str:
    """What to check for a system that answered wrongly: its settings and its secrets."""
    where = conn.where or str(settings.file)
    refs = sorted({s.ref for _, s in secrets_in(settings, [conn.name])})
    secrets = f"the environment variable{'s' if len(refs) > 1 else ''} {', '.join(refs)}"
    if credentials:
        what = (f"check that {secrets} hold{'s' if len(refs) == 1 else ''} valid, unexpired "
                "credentials with the access Liaison needs" if refs
                else f"check the credentials in the connection at {where}")
        return f"{what} (connection at {where}), then run `hub check --connect` again"
    also = f" and {secrets}" if refs else ""
    return (f"check the connection's settings at {where}{also}, and that {conn.name} is "
            "reachable; then run `hub check --connect` again")


def _failed(settings: Settings, conn: ConnectionConfig, kind: Kind, error: str | None,
            message: str, hint: str) -> SystemCheck:
    return SystemCheck(conn.name, conn.connector, "failed", redact_text(message, settings),
                       kind, error, redact_text(hint, settings), conn.where)


def connection_lines(checks: list[SystemCheck]) -> list[str]:
    """The per-system report `hub check --connect` prints, one block per system."""
    lines: list[str] = []
    for c in checks:
        if c.connector is None:
            lines.append(f"  {c.system}: {c.message}")
            continue
        words = _KIND_WORDS.get(c.kind)
        head = "ok" if c.status == "ok" else f"FAILED ({words})" if words else "FAILED"
        first, *rest = c.message.splitlines() or [""]
        lines.append(f"  {c.system} ({c.connector}): {head}: {first}")
        lines.extend(f"      {line}" for line in rest)
        if c.hint:
            lines.append(f"      what to do: {c.hint}")
    return lines


# The connector's own health message says what went wrong ("unhealthy"): no words added.
_KIND_WORDS = {"temporary": "temporary failure",
               "refused": "refused", "credentials": "credentials refused",
               "setup": "connection settings are wrong", "timeout": "no answer",
               "unexpected": "connector error"}
