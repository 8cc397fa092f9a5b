"""The metrics Liaison exports: names, kinds, labels and help, in one table.

Names follow Prometheus conventions: the `liaison_` prefix, `_total` on counters, base units
(`_seconds`, `_timestamp_seconds`). Records carry one label set everywhere:
system, connector, flow, entity, direction (`in`: read from the system into the hub,
`out`: delivered from the hub to the system).
"""

from __future__ import annotations

from dataclasses import dataclass

RECORD_LABELS = ("system", "connector", "flow", "entity", "direction")
FLOW_LABELS = ("flow", "entity")
CALL_LABELS = ("system", "connector")


@dataclass(frozen=True)
class Spec:
    """One exported metric family."""

    name: str
    kind: str  # counter|gauge|histogram
    labels: tuple[str, ...]
    help: str
    source: str  # "pipeline" (counted where work happens) or "store"/"broker" (at scrape)


RECORDS_READ = Spec("liaison_records_read_total", "counter", RECORD_LABELS,
                    "Records read from a system and committed to the hub.", "pipeline")
RECORDS_WRITTEN = Spec("liaison_records_written_total", "counter", RECORD_LABELS,
                       "Records written: created or updated in the hub (direction in), "
                       "created, updated or archived in a target (direction out).", "pipeline")
RECORDS_UNCHANGED = Spec("liaison_records_unchanged_total", "counter", RECORD_LABELS,
                         "Records that needed no change (already up to date).", "pipeline")
RECORDS_SKIPPED = Spec("liaison_records_skipped_total", "counter", RECORD_LABELS,
                       "Records skipped on purpose (filtered out, nothing to sync).", "pipeline")
RECORDS_DEAD = Spec("liaison_records_dead_lettered_total", "counter", RECORD_LABELS,
                    "Records dead-lettered: kept with the reason, not delivered.", "pipeline")
RUNS = Spec("liaison_runs_total", "counter", (*FLOW_LABELS, "status"),
            "Finished runs of a flow by status (succeeded, partial, failed).", "pipeline")
RUN_DURATION = Spec("liaison_run_duration_seconds", "histogram", FLOW_LABELS,
                    "Wall-clock time from a run's start to its end, over every step and "
                    "worker that took part.", "pipeline")
RETRIES = Spec("liaison_retries_total", "counter", (*CALL_LABELS, "cause"),
               "Vendor calls that failed transiently and are retried (in place or later by "
               "the job layer), by cause: timeout, rate_limit, server_error, connection.",
               "pipeline")
QUOTA = Spec("liaison_api_quota_remaining", "gauge", (*CALL_LABELS, "header"),
             "Requests left in a vendor's rate-limit window, as its last response said "
             "(the header it came from is a label).", "pipeline")
LAST_SUCCESS = Spec("liaison_flow_last_success_timestamp_seconds", "gauge", FLOW_LABELS,
                    "When the flow's newest run that went through (succeeded or partial) "
                    "finished; 0 if none has.", "store")
FLOW_FAILING = Spec("liaison_flow_failing", "gauge", FLOW_LABELS,
                    "1 when an enabled flow is failing: its newest finished run failed, or "
                    "records dead-lettered in the last 24 h are still open.", "store")
FLOW_STALE = Spec("liaison_flow_stale", "gauge", FLOW_LABELS,
                  "1 when an enabled flow, not failing, has no run that went through "
                  "(succeeded or partial) since its schedule's third-newest slot (24 h for "
                  "unscheduled flows), or never had one.", "store")
DEAD_LETTERS_OPEN = Spec("liaison_dead_letters_open", "gauge", RECORD_LABELS,
                         "Dead letters waiting to be replayed or discarded (the backlog).",
                         "store")
SYSTEMS = Spec("liaison_systems", "gauge", ("state",),
               "Declared systems by state: healthy, failing, stale, disconnected (no "
               "connection, or no enabled flow uses it).", "store")
SYSTEM_STATE = Spec("liaison_system_state", "gauge", (*CALL_LABELS, "state"),
                    "1 for the state each declared system is in, 0 for the others.", "store")
SYSTEM_LAST_SYNC = Spec("liaison_system_last_sync_timestamp_seconds", "gauge", CALL_LABELS,
                        "When a run that went through last touched the system (absent for a "
                        "system never synced).", "store")
QUEUE_DEPTH = Spec("liaison_queue_depth", "gauge", ("queue",),
                   "Jobs waiting for a worker (0 with the in-process broker).", "broker")
QUEUE_DELAYED = Spec("liaison_queue_delayed", "gauge", ("queue",),
                     "Jobs scheduled for later (retries waiting out a backoff).", "broker")
STORE_UP = Spec("liaison_store_up", "gauge", (),
                "1 when the store answered this scrape's queries.", "store")
BROKER_UP = Spec("liaison_broker_up", "gauge", (),
                 "1 when the broker answered this scrape's queue-length queries.", "broker")

ALL = (RECORDS_READ, RECORDS_WRITTEN, RECORDS_UNCHANGED, RECORDS_SKIPPED, RECORDS_DEAD, RUNS,
       RUN_DURATION, RETRIES, QUOTA, LAST_SUCCESS, FLOW_FAILING, FLOW_STALE, DEAD_LETTERS_OPEN,
       SYSTEMS, SYSTEM_STATE, SYSTEM_LAST_SYNC, QUEUE_DEPTH, QUEUE_DELAYED, STORE_UP, BROKER_UP)

STATES = ("healthy", "failing", "stale", "disconnected")
# The dramatiq queues the hub's actors use (hub.jobs.actors); a test keeps them in step.
QUEUES = ("flows", "deliveries")
