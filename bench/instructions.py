"""Instructions per record on each side of an ingest: figures that do not vary with the hour.

Records/s on our shared machines moves by 10-30 % between runs, so a change worth 5 % cannot
be seen in them. Instruction counts (valgrind's callgrind) hardly move (about 0.5 % between
counts of the same code, with the hash seed fixed; up to 2 % between seeds): this tool records
one ingest's pages once, then counts what each side of the read-ahead pipeline executes
per record, fed the same recorded input every time:

- engine: the engine process alone (identity, merge, store, audit), replaying the mapped
  pages the reading child sent;
- reader: the child's mapping, checks, preparation and pickling of the native pages (its
  HTTP and JSON work is left out: it does not depend on the engine's code).

    python bench/instructions.py record [--records 30000]   # starts a sandbox, ~15 s
    python bench/instructions.py count [--side engine|reader|both]   # ~3 min a side

Each count runs the side twice under callgrind, with 40 and 140 pages, and divides the
difference by the 10,000 records between them, so start-up and imports cancel out.
`replay-engine` and `replay-reader` are what callgrind runs (also usable alone, timed).
Needs valgrind (Debian package `valgrind`); prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import measure  # the benchmark's own engine set-up: same config and observers

DEFAULT_DIR = HERE / "results" / "recorded"
FEW, MANY = 40, 140  # pages counted in the two callgrind runs


def _engine(workdir: Path, base_url: str, token: str) -> Any:
    args = argparse.Namespace(token=token, target_token=None, base_url=base_url,
                              target_url=None)
    return measure._engine(args, workdir, with_target=False)


def record(records: int, out: Path) -> None:
    """Run one ingest against a sandbox; keep its native pages and the mapped pages the
    reading child sent the engine."""
    from run import Sandbox

    import hub.sync.engine as engine_module
    from hub.sync.context import FlowContext

    mapped: list[Any] = []
    real = engine_module.ReadAhead

    class Recording(real):  # type: ignore[misc, valid-type]
        def __next__(self) -> Any:
            page = super().__next__()
            mapped.append(page)
            return page

    engine_module.ReadAhead = Recording
    sandbox = Sandbox.start(records)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine, store = _engine(Path(tmp), sandbox.base_url, sandbox.token)
            report = engine.run("contacts")
            ctx = FlowContext.build(engine.settings, engine.settings.flows["contacts"],
                                    engine.factory)
            mapping = ctx.mappings["crm"]
            connector = ctx.factory(engine.settings.connection("crm"))
            natives = [p.records for p in connector.read(mapping.object, None,
                                                         incremental=False, page_size=100)]
            connector.close()
            store.close()
    finally:
        sandbox.stop()
        engine_module.ReadAhead = real
    if report.status != "succeeded":
        raise SystemExit(f"the recorded ingest did not succeed: {report.status} {report.error}")
    out.mkdir(parents=True, exist_ok=True)
    with (out / "mapped.pkl").open("wb") as fh:
        pickle.dump(mapped, fh, protocol=pickle.HIGHEST_PROTOCOL)
    with (out / "natives.pkl").open("wb") as fh:
        pickle.dump(natives, fh, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"recorded {report.counts.read:,} records in {len(mapped)} mapped pages and "
          f"{len(natives)} native pages under {out}")


def replay_engine(folder: Path, pages: int) -> None:
    """Feed recorded mapped pages to the engine, as if a reading child sent them."""
    import hub.sync.batch as batch_module
    import hub.sync.engine as engine_module
    from hub.sync import readahead

    # Batches commit after 20,000 records or one second, and at full speed the second
    # mostly decides. Under callgrind (~50x slower) the count would then follow the clock
    # (a commit every few hundred records): commit by records only, every 5,000 as in every
    # count recorded before the limit grew, so that the 10,000 records between the two
    # runs hold two commits and the counts stay comparable.
    batch_module.COMMIT_SECONDS = float("inf")
    batch_module.COMMIT_RECORDS = 5000
    with (folder / "mapped.pkl").open("rb") as fh:
        recorded = pickle.load(fh)[:pages]

    class Replay:
        def __init__(self, *_args: Any, **_kwargs: Any) -> None:
            self._pages: Iterator[Any] = iter(recorded)

        def __iter__(self) -> Replay:
            return self

        def __next__(self) -> Any:
            return next(self._pages)

        def tell(self, _resolved: Any) -> None:
            pass

        def close(self) -> None:
            pass

    engine_module.ReadAhead = Replay  # type: ignore[misc, assignment]
    readahead.available = lambda *_args: True
    with tempfile.TemporaryDirectory() as tmp:
        engine, store = _engine(Path(tmp), "http://127.0.0.1:9", "unused")
        t0 = time.perf_counter()
        report = engine.run("contacts")
        seconds = time.perf_counter() - t0
        store.close()
    n = max(1, report.counts.read)
    print(f"engine: {report.counts.read:,} records, {seconds / n * 1e6:.1f} us/record "
          f"({report.status})")


def replay_reader(folder: Path, pages: int) -> None:
    """Map recorded native pages as the reading child does, pickling each for the pipe."""
    from hub.sync.context import FlowContext
    from hub.sync.mapped import Prepare, child_page

    with (folder / "natives.pkl").open("rb") as fh:
        natives = pickle.load(fh)[:pages]
    with tempfile.TemporaryDirectory() as tmp:
        engine, store = _engine(Path(tmp), "http://127.0.0.1:9", "unused")
        ctx = FlowContext.build(engine.settings, engine.settings.flows["contacts"],
                                engine.factory)
        store.close()
    mapping = ctx.mappings["crm"]
    prepare = Prepare("crm", 1, mapping.sensitive_fields)
    known: dict[tuple[str, str], str] = {}
    n = 0
    t0 = time.perf_counter()
    for records in natives:
        page = child_page(mapping, None, records, known=known, keep=ctx.filter,
                          prepare=prepare)
        pickle.dumps((0, tuple(page), []), protocol=pickle.HIGHEST_PROTOCOL)
        for key in page.wanted:  # as if the engine had resolved them and told the child
            known[key] = "01900000-0000-7000-8000-000000000000"
        n += len(records)
    seconds = time.perf_counter() - t0
    print(f"reader: {n:,} records, {seconds / max(1, n) * 1e6:.1f} us/record")


def _instructions(side: str, folder: Path, pages: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
             sys.executable, __file__, f"replay-{side}", "--dir", str(folder),
             "--pages", str(pages)],
            capture_output=True, text=True, check=False, cwd=ROOT,
            # A fixed hash seed: dict and set layouts, and with them the instructions
            # spent in lookups, otherwise change from one process to the next.
            env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed on the {side}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def count(side: str, folder: Path) -> None:
    """Print instructions per record for one side (or both)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    for name in (("engine", "reader") if side == "both" else (side,)):
        few, many = _instructions(name, folder, FEW), _instructions(name, folder, MANY)
        per = (many - few) / ((MANY - FEW) * 100)
        print(f"{name}: {per:,.0f} instructions per record "
              f"(callgrind, pages {FEW} and {MANY} of 100 records)", flush=True)


def main() -> int:
    """Record, count or replay (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["record", "count", "replay-engine", "replay-reader"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="recorded pages")
    parser.add_argument("--records", type=int, default=30_000, help="records to record")
    parser.add_argument("--side", choices=["engine", "reader", "both"], default="both")
    parser.add_argument("--pages", type=int, default=1 << 30, help="pages to replay")
    args = parser.parse_args()
    os.environ.setdefault("HUB_LOG", "warning")
    if args.action == "record":
        record(args.records, args.dir)
    elif args.action == "count":
        if not (args.dir / "mapped.pkl").exists():
            raise SystemExit(f"nothing recorded under {args.dir}: run "
                             "`python bench/instructions.py record` first")
        count(args.side, args.dir)
    elif args.action == "replay-engine":
        replay_engine(args.dir, args.pages)
    else:
        replay_reader(args.dir, args.pages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
