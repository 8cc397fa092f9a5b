"""Reading folders into pages of native records, and the cursor that resumes them.

The cursor (a JSON dict) holds, per folder, what was read:

    {"folders": {"INBOX": {"uidvalidity": 1700000000, "uidnext": 812, "modseq": 9071,
                           "uids": "1:640,655:811"}},
     "pass": {...}}                       # only while a read is under way (see Progress)

`uidnext`: every UID below it was read; `modseq`: the folder's HIGHESTMODSEQ when it was
last read to its end (CONDSTORE servers); `uids`: the UIDs read and believed present, as
an IMAP sequence set (it grows with how scattered deletions are, not with the message
count). A folder is read in three stages, each resumable from the cursor of any page:

1. If its UIDVALIDITY changed, every UID of `uids` belongs to a numbering that no longer
   exists: each becomes a deleted record, and the folder is read again from UID 1. Its
   messages come back under new ids, so they are new canonical records and the old ones
   are deleted: no message is there twice, but nothing links the old record to the new.
2. Expunged messages (QRESYNC's VANISHED, else the UID list diffed with `uids`) become
   deleted records; messages whose flags changed since `modseq` (CONDSTORE CHANGEDSINCE)
   are read again. Without CONDSTORE, flag changes are seen by full reads only.
3. New messages: UIDs from `uidnext` on, in ascending order.

A full read (incremental=False) reads every folder from UID 1 and reports no deletions:
the engine finds them by what it did not see.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.imap import parse
from connectors.imap.client import FolderStatus, ImapSession
from connectors.imap.wire import UidSet, Value
from hub.connector import Cursor, NativeRecord, Page
from hub.errors import PermanentError

# The engine dead-letters a record carrying ERROR_KEY with that reason, keeping RAW_KEY as
# its payload (the same convention as the spreadsheet connector; see hub/sync/ingest.py).
ERROR_KEY = "__error__"
RAW_KEY = "__raw__"
HTML_FACTOR = 4  # HTML needs more bytes than plain text for the same words


@dataclass
class FolderState:
    """What has been read of one folder (see the module docstring)."""

    uidvalidity: int
    uidnext: int = 1
    modseq: int | None = None
    uids: UidSet = field(default_factory=UidSet)

    def dump(self) -> dict[str, Any]:
        """The JSON form kept in the cursor."""
        return {"uidvalidity": self.uidvalidity, "uidnext": self.uidnext,
                "modseq": self.modseq, "uids": str(self.uids)}

    @classmethod
    def load(cls, raw: Any) -> FolderState:
        """From the cursor's JSON form; ValueError when it is not one."""
        if not isinstance(raw, dict):
            raise TypeError("a folder entry is not an object")
        modseq = raw.get("modseq")
        return cls(uidvalidity=_positive(raw.get("uidvalidity"), "uidvalidity"),
                   uidnext=_positive(raw.get("uidnext", 1), "uidnext"),
                   modseq=None if modseq is None else _positive(modseq, "modseq"),
                   uids=UidSet.parse(str(raw.get("uids", ""))))


@dataclass
class Progress:
    """A read under way: full or incremental, folders finished, and where in the current
    folder it is (stage "changed": re-read changed UIDs above `after`, below `below`;
    stage "new": read from the folder's `uidnext`)."""

    full: bool
    done: list[str] = field(default_factory=list)
    folder: str | None = None
    stage: str = ""
    after: int = 0
    below: int = 0

    def dump(self) -> dict[str, Any]:
        """The JSON form kept in the cursor."""
        return {"full": self.full, "done": list(self.done), "folder": self.folder,
                "stage": self.stage, "after": self.after, "below": self.below}

    @classmethod
    def load(cls, raw: Any) -> Progress:
        """From the cursor's JSON form; ValueError when it is not one."""
        if not isinstance(raw, dict) or not isinstance(raw.get("done", []), list):
            raise TypeError("the read in progress is not an object with a 'done' list")
        folder = raw.get("folder")
        stage = str(raw.get("stage") or "")
        if stage not in ("", "changed", "new"):
            raise ValueError(f"unknown stage {stage!r}")
        return cls(full=bool(raw.get("full")), done=[str(d) for d in raw.get("done", [])],
                   folder=None if folder is None else str(folder), stage=stage,
                   after=int(raw.get("after") or 0), below=int(raw.get("below") or 0))


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} is {value!r}, not a whole number")
    return value


@dataclass
class ReadState:
    """The whole cursor: folder states plus the read in progress."""

    folders: dict[str, FolderState] = field(default_factory=dict)
    progress: Progress | None = None

    def dump(self) -> Cursor:
        """The cursor to hand the engine (a fresh JSON-able dict)."""
        out: Cursor = {"folders": {k: v.dump() for k, v in self.folders.items()}}
        if self.progress is not None:
            out["pass"] = self.progress.dump()
        return out

    @classmethod
    def load(cls, cursor: Cursor | None, where: str) -> ReadState:
        """From a cursor this connector wrote; PermanentError naming the fix otherwise."""
        if not cursor:
            return cls()
        try:
            folders = cursor.get("folders", {})
            if not isinstance(folders, dict):
                raise TypeError("'folders' is not an object")
            progress = cursor.get("pass")
            return cls({str(k): FolderState.load(v) for k, v in folders.items()},
                       Progress.load(progress) if progress is not None else None)
        except (ValueError, TypeError, AttributeError) as exc:
            raise PermanentError(f"{where}: the stored cursor was not written by this "
                                 f"connector ({exc}); run the flow with --full to read "
                                 "every folder again") from None


Loaded = tuple[int, NativeRecord | None]


class Reader:
    """Reads the configured folders of one session into pages."""

    def __init__(self, session: ImapSession, folders: Sequence[str], *, page_size: int,
                 header_bytes: int, preview_bytes: int) -> None:
        self.session = session
        self.folders = list(folders)
        self.page_size = max(1, page_size)
        self.header_bytes = header_bytes
        self.preview_bytes = preview_bytes

    # -- pages -----------------------------------------------------------------------------

    def pages(self, cursor: Cursor | None, *, incremental: bool) -> Iterator[Page]:
        """Pages of at most page_size records; each page's cursor resumes right after it."""
        state = ReadState.load(cursor, self.session.where)
        if state.progress is None:
            state.progress = Progress(full=not incremental)
        buffer: list[NativeRecord] = []
        for record in self._records(state):
            buffer.append(record)
            if len(buffer) >= self.page_size:
                yield Page(buffer, state.dump())
                buffer = []
        state.progress = None
        for gone in set(state.folders) - set(self.folders):
            del state.folders[gone]  # no longer configured: forget it
        yield Page(buffer, state.dump())

    def _records(self, state: ReadState) -> Iterator[NativeRecord]:
        # Each record is yielded only after the state says it was read, so the cursor of
        # the page it lands on resumes after it.
        progress = state.progress
        assert progress is not None
        for folder in self.folders:
            if folder in progress.done:
                continue
            yield from self._folder(folder, state, progress)
            progress.done.append(folder)
            progress.folder, progress.stage, progress.after, progress.below = None, "", 0, 0

    def _folder(self, name: str, state: ReadState, progress: Progress) -> Iterator[NativeRecord]:
        status = self.session.examine(name)
        resuming = progress.folder == name
        known = state.folders.get(name)
        if progress.full and not resuming:
            known = None  # a full read takes the folder from its first UID
        if not resuming:
            progress.folder, progress.stage, progress.after, progress.below = name, "", 0, 0
        if known is not None and known.uidvalidity != status.uidvalidity:
            for uid in list(known.uids):
                known.uids.discard(uid)
                yield parse.tombstone(name, known.uidvalidity, uid)
            known = None
            progress.stage = ""
        if known is None:
            known = FolderState(uidvalidity=status.uidvalidity)
            state.folders[name] = known
        if progress.stage != "new":
            yield from self._changes(name, status, known, progress)
            progress.stage = "new"
        upto = status.uidnext - 1 if status.uidnext else None
        for chunk in _chunks(self.session.search(known.uidnext, upto), self.page_size):
            for uid, record in self.load(name, known.uidvalidity, chunk):
                known.uidnext = uid + 1
                if record is not None:
                    known.uids.add(uid)
                    yield record
        if status.uidnext:
            known.uidnext = max(known.uidnext, status.uidnext)
        known.modseq = status.highestmodseq

    def _changes(self, name: str, status: FolderStatus, known: FolderState,
                 progress: Progress) -> Iterator[NativeRecord]:
        """Stage 2: deleted records for expunged UIDs, and changed messages read again."""
        if progress.stage != "changed":
            progress.stage, progress.after, progress.below = "changed", 0, known.uidnext
        if not known.uids:
            return
        changed: list[int] = []
        session = self.session
        if known.modseq is not None and status.highestmodseq is not None:
            if status.highestmodseq == known.modseq:
                return  # nothing was flagged, added or expunged since
            changed, gone = session.changes(known.modseq, progress.below - 1)
            if not session.qresync:
                gone = self._diff(known, status)
        else:
            gone = self._diff(known, status)
        for uid in [u for u in gone if u in known.uids]:
            known.uids.discard(uid)
            yield parse.tombstone(name, known.uidvalidity, uid)
        todo = [u for u in changed if u in known.uids and progress.after < u < progress.below]
        for chunk in _chunks(todo, self.page_size):
            for uid, record in self.load(name, known.uidvalidity, chunk):
                progress.after = uid
                if record is not None:
                    yield record

    def _diff(self, known: FolderState, status: FolderStatus) -> UidSet:
        """UIDs we know that the folder no longer has (by listing its UIDs)."""
        upto = status.uidnext - 1 if status.uidnext else None
        newer = self.session.search(known.uidnext, upto)
        if status.exists == len(known.uids) + len(newer):
            return UidSet()  # the count adds up: nothing was expunged
        present = set(self.session.search(1, upto))
        return UidSet(u for u in known.uids if u not in present)

    # -- messages --------------------------------------------------------------------------

    def load(self, folder: str, uidvalidity: int, uids: Sequence[int]) -> Iterator[Loaded]:
        """(uid, record) for each UID in order; None for a message that is gone, an
        __error__ record for one the server or the parser could not give."""
        summaries, refusal = self.session.summaries(uids, self.header_bytes)
        plans: dict[int, tuple[list[parse.Part] | None, parse.Part | None, list[str]]] = {}
        groups: dict[tuple[str, int], list[int]] = {}
        for uid in uids:
            items = summaries.get(uid)
            if items is None or (refusal and not _headers(items)):
                continue
            plans[uid] = plan = parse.structure(items.get("BODYSTRUCTURE"))
            part = plan[1]
            if part is not None:
                limit = self.preview_bytes * (HTML_FACTOR if part.type == "text/html" else 1)
                groups.setdefault((part.section, limit), []).append(uid)
        previews: dict[int, bytes] = {}
        for (section, limit), group in groups.items():
            found, failed = self.session.partials(section, group, limit)
            previews.update(found)
            for uid in group:
                if failed and uid not in found:
                    plans[uid][2].append(f"the text could not be read: {failed}")
        for uid in uids:
            items = summaries.get(uid)
            if uid in plans and items is not None:
                leaves, part, notes = plans[uid]
                yield uid, self._record(folder, uidvalidity, uid, items, previews.get(uid),
                                        leaves, part, notes)
            elif refusal:
                yield uid, self._error(folder, uidvalidity, uid, refusal)
            else:
                yield uid, None  # expunged since it was listed

    def _error(self, folder: str, uidvalidity: int, uid: int, why: str) -> NativeRecord:
        return {ERROR_KEY: f"folder {folder!r} UID {uid}: the message could not be read: "
                           f"{why}",
                RAW_KEY: {"id": parse.record_id(folder, uidvalidity, uid), "folder": folder,
                          "uidvalidity": uidvalidity, "uid": uid}}

    def _record(self, folder: str, uidvalidity: int, uid: int, items: dict[str, Value],
                preview: bytes | None, leaves: list[parse.Part] | None,
                part: parse.Part | None, notes: list[str]) -> NativeRecord:
        headers = _headers(items)
        try:
            return parse.build_record(folder, uidvalidity, uid, items, headers, preview, part,
                                      leaves, notes)
        except Exception as exc:  # noqa: BLE001 - mail is untrusted input: one odd message
            # must become one dead letter naming it, never the end of the run
            return self._error(folder, uidvalidity, uid, f"{type(exc).__name__}: {exc}")


def _headers(items: dict[str, Value]) -> bytes | None:
    found = next((v for k, v in items.items() if k.startswith("BODY[HEADER.FIELDS")), None)
    return found if isinstance(found, bytes) else None


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
