"""What one connector instance has seen of its collection, so a write can tell whether a
member was changed by someone else after the run read the collection.

A two-way run reads the collection, reads the other system, then delivers. A member edited
on the server in between must not be overwritten with a version that never saw that edit.
The baseline holds the ETag of every member read, listed (ETag mode) or written by this
instance, and in sync-token mode the token the read reached. Before a write() call the
connector asks the server what changed since that token (one sync-collection REPORT);
members changed to an ETag we did not see are "foreign". An update or delete of a foreign
member, or of one whose ETag differs from the one seen, is a concurrent edit.

An instance that never read the collection (a one-way flow into it, or a delivery job on
another worker) has no baseline: it catches a change between its own GET and PUT, and in a
two-way flow the engine's WriteOp.as_last_seen tells it whether the member still is the
version Liaison last read or wrote (connectors/dav/base.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from connectors.dav import xml
from connectors.dav.client import DavClient, InvalidSyncToken

log = logging.getLogger(__name__)


@dataclass
class Baseline:
    """ETags seen by this instance, the sync-token its read reached, and foreign changes."""

    etags: dict[str, str] = field(default_factory=dict)  # href -> ETag read/listed/written
    token: str | None = None  # sync-token mode: what the read reflects
    foreign: dict[str, str | None] = field(default_factory=dict)  # href -> ETag (None: gone)

    def saw(self, href: str, etag: str | None) -> None:
        """This instance read, listed or wrote this version of the member."""
        if etag:
            self.etags[href] = etag
            self.foreign.pop(href, None)

    def forget(self, href: str) -> None:
        """The member is gone (we deleted it)."""
        self.etags.pop(href, None)
        self.foreign.pop(href, None)

    def refresh(self, client: DavClient) -> None:
        """Sync-token mode: note the members others changed since the token (one REPORT)."""
        if self.token is None:
            return
        try:
            answer = client.sync_collection(self.token, (xml.GETETAG,))
        except InvalidSyncToken:
            log.warning("%s: the sync-token of this run's read expired; edits made since "
                        "cannot be told apart from ours", client.path)
            self.token = None
            return
        for response in answer.responses:
            href = response.href
            if href == client.path or href.endswith("/"):
                continue
            if response.status in (404, 410):
                if href in self.etags:  # not our own delete: that one was forgotten
                    self.foreign[href] = None
            elif response.etag != self.etags.get(href):
                self.foreign[href] = response.etag
        self.token = answer.sync_token or self.token

    def conflict(self, href: str, current: str | None) -> str | None:
        """Why writing over `current` (the member's ETag now) would lose someone's edit;
        None when it would not."""
        if href in self.foreign:
            return "it changed on the server after this run read it"
        expected = self.etags.get(href)
        if expected is not None and current is not None and expected != current:
            return f"its ETag was {expected} when this run read it and is {current} now"
        return None
