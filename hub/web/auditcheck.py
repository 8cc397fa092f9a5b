"""The dashboard's audit-trail check: the newer events at once, long checks in a thread.

    AuditCheck(store, inline_limit=INLINE_LIMIT)
    .status()       the checkpoint, the chain's head and the background check (two small reads)
    .check_new()    verify the events after the checkpoint now; in the background instead when
                    there are more than `inline_limit` of them (a first check of a big trail)
    .start_full()   re-read the whole trail in the background (one check at a time)

A request never re-hashes the whole trail (21-29 s at 1,000,000 events, measured by
bench/dashboard.py): it checks only what was appended since the last verified checkpoint
(Store.verify_audit(since_checkpoint=True)) and trusts that earlier check. An edit of an
older event is found by a full check: the "Check the whole trail" action here, or
`hub audit verify` run daily. The background check lives in this process (`hub serve` is
one process); its outcome outlives it in the store's checkpoint, and a failed check removes
the checkpoint, so the next check reads everything again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from typing import Any

from hub.errors import HubError
from hub.store import Store, VerifyResult, now_iso

log = logging.getLogger("hub.web.auditcheck")

INLINE_LIMIT = 50_000  # about a second of hashing; more is checked in the background


@dataclass
class BackgroundCheck:
    """A check running (or run) in a thread: what it reads, how far it got, its outcome."""

    kind: str  # "full": every event; "new": the events after the checkpoint
    started_at: str
    total: int  # events it has to read
    done: int = 0  # events read so far (updated every 10,000)
    finished_at: str | None = None
    result: VerifyResult | None = None
    error: str | None = None  # the store failed: nothing was concluded

    @property
    def running(self) -> bool:
        """Still reading."""
        return self.finished_at is None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (for the API and the page)."""
        r = self.result
        return {"kind": self.kind, "started_at": self.started_at, "total": self.total,
                "done": self.done, "finished_at": self.finished_at, "running": self.running,
                "ok": None if r is None else r.ok, "checked": None if r is None else r.checked,
                "bad_seq": None if r is None else r.bad_seq,
                "message": r.message if r is not None else (self.error or ""),
                "trusted": 0 if r is None else r.trusted, "error": self.error}


class AuditCheck:
    """Checks of the audit chain for the dashboard, over one store."""

    def __init__(self, store: Store, *, inline_limit: int = INLINE_LIMIT) -> None:
        self.store = store
        self.inline_limit = inline_limit
        self._lock = threading.Lock()
        self._job: BackgroundCheck | None = None
        self._thread: threading.Thread | None = None

    def status(self) -> dict[str, Any]:
        """The checkpoint, the head, how many events are not verified yet, the background
        check (None if none ran in this process); `result` is None: nothing checked now."""
        cp = self.store.audit_checkpoint()
        head = self.store.audit_head_seq()
        job = self._job
        return {"result": None, "checkpoint": dataclasses.asdict(cp) if cp else None,
                "head": head, "unverified": max(0, head - (cp.seq if cp else 0)),
                "background": job.as_dict() if job else None, "inline_limit": self.inline_limit}

    def check_new(self) -> dict[str, Any]:
        """Verify the events after the checkpoint: `status()` with `result` set, or with a
        background check started (or still running) and `result` None."""
        job = self._job
        if job is not None and job.running:
            return self.status()
        before = self.status()
        if before["unverified"] > self.inline_limit:
            self._start("new", before["unverified"])
            return self.status()
        result = self.store.verify_audit(since_checkpoint=True)
        return {**self.status(), "result": dataclasses.asdict(result)}

    def start_full(self) -> tuple[bool, str]:
        """Start re-reading the whole trail in a thread; (started, what to tell the user)."""
        head = self.store.audit_head_seq()
        if not self._start("full", head):
            return False, ("A check of the audit trail is already running; its progress "
                           "shows on the Audit page.")
        return True, (f"A full check of the audit trail ({head:,} events) started; its "
                      "progress and result show on the Audit page.")

    def wait(self, timeout: float) -> bool:
        """Wait for the background check to end (tests, shutdown); True if none runs."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _start(self, kind: str, total: int) -> bool:
        with self._lock:
            if self._job is not None and self._job.running:
                return False
            job = BackgroundCheck(kind, now_iso(), total)
            self._job = job
            self._thread = threading.Thread(target=self._run, args=(job,),
                                            name=f"audit-check-{kind}", daemon=True)
            self._thread.start()
            return True

    def _run(self, job: BackgroundCheck) -> None:
        def progress(done: int) -> None:
            job.done = done

        try:
            result = self.store.verify_audit(progress, since_checkpoint=job.kind == "new")
            job.done = result.checked
            job.result = result
        except HubError as exc:
            job.error = f"the check stopped: {exc}"
            log.warning("audit check (%s) stopped: %s", job.kind, exc)
        except Exception:  # a thread's exception is otherwise lost: the page says it failed
            job.error = "the check stopped on an internal error (see the server log)"
            log.exception("audit check (%s) failed", job.kind)
        finally:
            job.finished_at = now_iso()
