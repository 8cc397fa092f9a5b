"""The store: canonical records, links, cursors, runs, dead letters, outbox and audit chain."""

from hub.store.repo import (
    STORE_WAIT_SECONDS,
    AuditCheckpoint,
    AuditInput,
    LinkRow,
    RecordRow,
    Store,
    VerifyResult,
    decode_sources,
    encode_shared_source,
    encode_sources,
    now_iso,
)

__all__ = ["STORE_WAIT_SECONDS", "AuditCheckpoint", "AuditInput", "LinkRow", "RecordRow", "Store", "VerifyResult",
           "decode_sources", "encode_shared_source", "encode_sources", "now_iso"]
