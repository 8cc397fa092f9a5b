"""Counters shared by processes: prometheus-client's multiprocess mode, wired for the hub.

Every process that counts (each `hub worker` process, `hub serve`, a `hub sync` started
with the variable set) writes its metrics to files in one folder, $PROMETHEUS_MULTIPROC_DIR;
a scrape of `hub serve`'s /metrics adds up every file, so one scrape sees the work of every
worker on the machine (or sharing the folder through a volume). `hub serve` and
`hub worker` pick the folder before any metric exists: the variable if it is set, else
`<temp dir>/liaison-metrics-<hash of the config file's path>`, so that both agree on one
machine without being told.

Files are named `<kind>_<host>-<pid>.db`, so processes of several containers can share a
volume without two of them writing the same file. When a process ends, its counters are
folded into `<kind>_archive.db` files (`retire`) and its live gauges removed
(`multiprocess.mark_process_dead`); the files of processes of this host that died without
doing so (SIGKILL) are folded by `sweep`, which `hub serve` and `hub worker` run at start
and the worker exporter every minute. Folding and scraping hold a lock on the folder, so a
scrape never counts a process twice or not at all, and totals never go backwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"
ARCHIVE = "archive"
_LOCK = ".lock"
# Kinds whose values add up across processes, so a dead process's file can be folded in.
_ADDITIVE = ("counter", "histogram", "summary", "gauge_sum", "gauge_livesum")


def _host() -> str:
    # "_" separates the parts of a file name and "-" the host from the pid.
    return re.sub(r"[^A-Za-z0-9.]", ".", socket.gethostname()) or "host"


def identity(pid: int | None = None) -> str:
    """This process's name in file names: host-pid (distinct across containers)."""
    return f"{_host()}-{os.getpid() if pid is None else pid}"


def default_dir(config_file: Path) -> Path:
    """The folder `hub serve` and `hub worker` agree on for one config on one machine."""
    digest = hashlib.sha256(str(config_file.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"liaison-metrics-{digest}"


def current() -> Path | None:
    """The multiprocess folder in use, or None (metrics stay in this process)."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def enable(config_file: Path, folder: Path | None = None) -> Path:
    """Turn multiprocess mode on for this process and its children (before metrics exist).

    Keeps $PROMETHEUS_MULTIPROC_DIR when set; else uses `folder`, else the default for
    `config_file`. Creates the folder and folds what dead processes left behind.
    """
    chosen = current() or folder or default_dir(config_file)
    chosen.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(chosen)
    if "prometheus_client.values" in sys.modules:
        use_identity()
    sweep(chosen)
    return chosen


def use_identity() -> None:
    """Make new metric values of this process write to host-pid files (if multiprocess)."""
    from prometheus_client import values

    if current() is not None:
        make: Any = values.MultiProcessValue  # untyped in prometheus-client
        values.ValueClass = make(process_identifier=identity)


@contextlib.contextmanager
def locked(folder: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the folder's lock: shared to read the files, exclusive to fold them."""
    with open(folder / _LOCK, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _owner(file: str) -> tuple[str, str] | None:
    """(kind, identity) of a metrics file name, None for names not ours."""
    stem = os.path.basename(file)[:-3]
    kind, _, ident = stem.rpartition("_")
    if not kind or not ident:
        return None
    return kind, ident


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _dead_here(idents: Iterable[str]) -> set[str]:
    """Identities of processes of this host that are gone."""
    host = _host()
    dead = set()
    for ident in idents:
        name, _, pid = ident.rpartition("-")
        if name == host and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            dead.add(ident)
    return dead


def sweep(folder: Path) -> int:
    """Fold the files of this host's dead processes; returns how many processes."""
    with locked(folder, exclusive=True):
        owners = [o for o in map(_owner, glob.glob(str(folder / "*.db"))) if o is not None]
        dead = _dead_here({ident for _, ident in owners if ident != ARCHIVE})
        for ident in dead:
            _fold(folder, ident)
    return len(dead)


def retire(folder: Path | None = None, pid: int | None = None) -> None:
    """Fold a process's files (this one by default) when it ends."""
    folder = folder or current()
    if folder is None or not folder.is_dir():
        return
    with locked(folder, exclusive=True):
        _fold(folder, identity(pid))


def _fold(folder: Path, ident: str) -> None:
    """Add a finished process's counters to the archive files; drop its live gauges.

    The caller holds the exclusive lock.
    """
    from prometheus_client import mmap_dict, multiprocess

    from hub.metrics.series import close_files

    # prometheus-client's file API is untyped.
    files: Any = mmap_dict.MmapedDict
    mark_dead: Any = multiprocess.mark_process_dead

    if ident == identity():
        close_files()  # this process stops writing before its files are folded
    mark_dead(ident, str(folder))
    for file in glob.glob(str(folder / f"*_{ident}.db")):
        owner = _owner(file)
        if owner is None or owner[0] not in _ADDITIVE:
            continue
        archive = files(str(folder / f"{owner[0]}_{ARCHIVE}.db"))
        try:
            for key, value, _ts, _pos in files.read_all_values_from_file(file):
                before, _ = archive.read_value(key)
                archive.write_value(key, before + value, 0.0)
        finally:
            archive.close()
        os.remove(file)


def collector(folder: Path) -> Any:
    """A collector adding up every process's files, under the folder's shared lock."""
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.registry import Collector

    merge: Any = MultiProcessCollector.merge  # untyped in prometheus-client

    class _Locked(Collector):
        def collect(self) -> Any:
            with locked(folder, exclusive=False):
                return merge(glob.glob(str(folder / "*.db")), accumulate=True)

    return _Locked()
