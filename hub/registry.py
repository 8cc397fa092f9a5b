"""Connector discovery: the `hub.connectors` entry-point group, name -> connector class.

Built-in connectors register through the same group as any third-party plugin (see
pyproject.toml), so there is no private back door here. `get`/`create` import only the entry
point they name (a `hub sync` must not pay for importing every installed connector);
`available()`/`failures()` import them all, once per process (cached; `reload()` forgets
both). A connector whose import fails, or whose class does not look like a connector, is
reported with a short reason and skipped: one broken plugin never stops the hub.

    available()                  -> {"hubspot": HubSpotConnector, "spreadsheet": ...}
    get("hubspt")                -> ConnectorError: unknown connector 'hubspt'; installed
                                    connectors: hubspot, spreadsheet (did you mean 'hubspot'?)
    create(connection)           -> a connector instance for one configured connection
    with register("fake", Fake): -> tests add a class for the block's duration, explicitly
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from hub.config.model import ConnectionConfig
from hub.connector import Capabilities, Connector
from hub.errors import ConnectorError, HubError

GROUP = "hub.connectors"
_REASON_MAX = 200  # a failure reason is one dashboard line, not a traceback


@dataclass
class _Scan:
    """The result of one entry-point scan."""

    classes: dict[str, type] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


_scan: _Scan | None = None
_named = _Scan()  # entry points loaded one by one by get(), before (or without) a full scan
_registered: dict[str, type] = {}  # explicit additions (tests); shadow entry points


def _short(exc: BaseException) -> str:
    """One line naming the exception: enough for an ops person to pass on to a developer."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return reason if len(reason) <= _REASON_MAX else reason[: _REASON_MAX - 3] + "..."


def validate(name: str, cls: object) -> type:
    """Return `cls` if it looks like a connector registered as `name`; ConnectorError if not."""
    if not isinstance(cls, type):
        raise ConnectorError(f"connector {name!r} is {type(cls).__name__}, not a class")
    declared = getattr(cls, "name", None)
    if not isinstance(declared, str) or not declared:
        raise ConnectorError(f"connector {name!r} ({cls.__qualname__}) has no `name`")
    if declared != name:
        raise ConnectorError(f"connector {name!r} ({cls.__qualname__}) declares "
                             f"name {declared!r}; the entry point and the class must agree")
    if not isinstance(getattr(cls, "capabilities", None), Capabilities):
        raise ConnectorError(f"connector {name!r} ({cls.__qualname__}) has no `capabilities` "
                             "(a hub.connector.Capabilities)")
    return cls


def _load(ep: EntryPoint) -> type:
    """Import one entry point and check what it names."""
    try:
        obj = ep.load()
    except Exception as exc:  # any plugin import failure is reported, not raised
        raise ConnectorError(f"cannot import {ep.value}: {_short(exc)}") from exc
    return validate(ep.name, obj)


def _discover() -> _Scan:
    """Scan the entry-point group once; collect classes and failures."""
    scan = _Scan()
    origin: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in origin:
            if ep.value != origin[ep.name]:
                # Two installed distributions claim one name: keep the first, say so.
                scan.failures[ep.name] = (f"registered twice ({origin[ep.name]} and "
                                          f"{ep.value}); using {origin[ep.name]}")
            continue
        origin[ep.name] = ep.value
        try:
            scan.classes[ep.name] = _load(ep)
        except ConnectorError as exc:
            scan.failures[ep.name] = str(exc)[:_REASON_MAX]
    return scan


def _current() -> _Scan:
    global _scan
    if _scan is None:
        _scan = _discover()
    return _scan


def _load_named(name: str) -> type | None:
    """The class of the entry point called `name`, importing only it; None if none is.

    A broken one raises ConnectorError with its reason. The first of several entry points
    with one name wins, as in the full scan.
    """
    if _scan is not None:
        scan = _scan
    elif name in _named.classes or name in _named.failures:
        scan = _named
    else:
        scan = _named
        for ep in entry_points(group=GROUP, name=name):
            try:
                scan.classes[name] = _load(ep)
            except ConnectorError as exc:
                scan.failures[name] = str(exc)[:_REASON_MAX]
            break
    cls = scan.classes.get(name)
    if cls is None and name in scan.failures:
        raise ConnectorError(f"connector {name!r} is installed but failed to load: "
                             f"{scan.failures[name]}")
    return cls


def reload() -> None:
    """Forget the cached scan; the next call discovers the entry points again."""
    global _scan, _named
    _scan = None
    _named = _Scan()


def available() -> dict[str, type[Connector]]:
    """Every loadable connector class by name (entry points, then explicit registrations)."""
    classes = dict(_current().classes)
    classes.update(_registered)
    return dict(sorted(classes.items()))


def failures() -> dict[str, str]:
    """Connectors that are installed but could not be loaded: name -> short reason."""
    return {name: reason for name, reason in sorted(_current().failures.items())
            if name not in _registered}


def get(name: str) -> type[Connector]:
    """The connector class called `name`; ConnectorError naming the installed ones if none.

    Imports only that connector; the full scan runs only to word the error for an unknown name.
    """
    registered = _registered.get(name)
    if registered is not None:
        return registered
    cls = _load_named(name)
    if cls is not None:
        return cls
    classes = available()
    broken_names = list(failures())
    known = ", ".join(classes) or "none"
    message = f"unknown connector {name!r}; installed connectors: {known}"
    if broken_names:
        message += f" (failed to load: {', '.join(broken_names)})"
    close = difflib.get_close_matches(name, [*classes, *broken_names], n=1, cutoff=0.6)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    raise ConnectorError(message)


def create(connection: ConnectionConfig) -> Connector:
    """A connector instance for `connection`; construction errors become ConnectorError."""
    cls = get(connection.connector)
    try:
        instance: Connector = cls(connection)
    except HubError:
        raise
    except Exception as exc:  # a plugin constructor bug must not be a traceback
        at = f"{connection.where}: " if connection.where else ""
        raise ConnectorError(f"{at}connector {connection.connector!r} for system "
                             f"{connection.name!r} could not be set up: {_short(exc)}") from exc
    return instance


@contextmanager
def register(name: str, cls: type) -> Iterator[type]:
    """Make `cls` available as `name` for the duration of the block (tests, embedding)."""
    validate(name, cls)
    previous = _registered.get(name)
    _registered[name] = cls
    try:
        yield cls
    finally:
        if previous is None:
            del _registered[name]
        else:
            _registered[name] = previous
