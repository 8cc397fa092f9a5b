"""The JSON API under /api/v1, declared as one route table that hub.web.openapi documents.

Every answer is JSON; an error is {"error": "<what is wrong and what to do>"} with 400
(bad parameter), 401 (not signed in), 403 (refused: CSRF or another site), 404, 409 (the
action could not be done, e.g. the record is gone from its system) or 503 (store down).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from hub.insights import Overview, overview
from hub.insights.health import FlowView, SystemView
from hub.insights.listings import (
    audit_rows,
    dead_letter_detail,
    dead_letter_rows,
    parse_time,
    run_dict,
    run_rows,
)
from hub.insights.maturity import PHASES, Maturity
from hub.sync.replay import ReplayOutcome

if TYPE_CHECKING:
    from hub.web.dashboard import Dashboard

PREFIX = "/api/v1"
DEAD_STATUSES = ("open", "replayed", "discarded", "resolved", "all")
Handler = Callable[["Dashboard", Request], Awaitable[tuple[Any, int]]]


@dataclass(frozen=True)
class Param:
    """A query parameter."""

    name: str
    type: str  # string|integer
    description: str
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiRoute:
    """One documented endpoint."""

    method: str
    path: str  # below PREFIX
    handler: Handler
    summary: str
    schema: str  # the component schema of a successful answer
    status: int = 200
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = (401,)


# -- helpers ---------------------------------------------------------------------------------


def _bad(message: str) -> Exception:
    from hub.web.dashboard import BadRequest

    return BadRequest(message)


def _missing(message: str) -> Exception:
    from hub.web.dashboard import NotFound

    return NotFound(message)


def _int(request: Request, name: str, default: int, top: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"{name} must be a whole number, not {raw!r}") from None
    if not 1 <= value <= top:
        raise _bad(f"{name} must be between 1 and {top}, not {value}")
    return value


def _path_int(request: Request, name: str) -> int:
    raw = request.path_params[name]
    try:
        return int(raw)
    except ValueError:
        raise _missing(f"{raw!r} is not a {name.replace('_', ' ')} number") from None


def _time(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name) or None
    if raw is None:
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise _bad(f"{name}: {exc}") from None


def _text(request: Request, name: str) -> str | None:
    return (request.query_params.get(name) or "").strip() or None


async def _overview(dash: Dashboard) -> Overview:
    return await run_in_threadpool(overview, dash.settings, dash.store)


def system_json(s: SystemView) -> dict[str, Any]:
    """A system as the API gives it."""
    return {**dataclasses.asdict(s), "owner_missing": s.owner_missing}


def flow_json(f: FlowView) -> dict[str, Any]:
    """A flow as the API gives it."""
    return dataclasses.asdict(f)


def maturity_json(m: Maturity) -> dict[str, Any]:
    """The maturity assessment as the API gives it."""
    return {"phase": m.phase, "name": m.name, "phases": list(PHASES),
            "measures": dataclasses.asdict(m.measures),
            "criteria": [dataclasses.asdict(c) for c in m.criteria],
            "missing_for_next_phase": [dataclasses.asdict(c) for c in m.missing]}


def outcome_json(o: ReplayOutcome) -> dict[str, Any]:
    """What a replay or discard did."""
    failed = o.counts.dead_lettered + o.counts.write_failed
    return {"dead_letter": o.dead_letter, "status": o.status, "run_id": o.run_id,
            "delivered": o.status == "replayed" and not failed, "message": o.message,
            "counts": o.counts.as_row()}


# -- handlers --------------------------------------------------------------------------------


async def get_silo_map(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """The silo map."""
    ov = await _overview(dash)
    m = ov.map
    return {"generated_at": ov.facts.now.isoformat(), "categories": list(m.categories),
            "systems": [system_json(s) for s in m.systems],
            "flows": [flow_json(f) for f in m.flows],
            "edges": [dataclasses.asdict(e) for e in m.edges],
            "coverage": {**dataclasses.asdict(m.coverage), "ratio": round(m.coverage.ratio, 4)},
            "states": m.by_state}, 200


async def get_systems(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """Every declared system."""
    ov = await _overview(dash)
    return {"systems": [system_json(s) for s in ov.map.systems]}, 200


async def get_system(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """One system."""
    name = request.path_params["name"]
    ov = await _overview(dash)
    for s in ov.map.systems:
        if s.name == name:
            return {"system": system_json(s),
                    "flows": [flow_json(f) for f in ov.map.flows if name in f.sources
                              or name in f.targets]}, 200
    raise _missing(f"there is no system named {name}")


async def get_flows(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """Every flow with its state."""
    ov = await _overview(dash)
    return {"flows": [flow_json(f) for f in ov.map.flows]}, 200


async def get_flow(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """One flow and its run history."""
    name = request.path_params["name"]
    if name not in dash.settings.flows:
        raise _missing(f"there is no flow named {name}")
    ov = await _overview(dash)
    view = next(f for f in ov.map.flows if f.name == name)
    runs = await run_in_threadpool(run_rows, dash.store, name, _int(request, "limit", 50, 500))
    return {"flow": flow_json(view), "runs": runs}, 200


async def post_flow_run(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """Queue a run of the flow now."""
    name = request.path_params["name"]
    queued, message = dash.start_run(name)
    return {"flow": name, "queued": queued, "message": message}, 202


async def get_runs(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """Run history, newest first."""
    flow = _text(request, "flow")
    if flow is not None and flow not in dash.settings.flows:
        raise _missing(f"there is no flow named {flow}")
    rows = await run_in_threadpool(run_rows, dash.store, flow, _int(request, "limit", 50, 1000))
    return {"runs": rows}, 200


async def get_run(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """One run."""
    run_id = _path_int(request, "run_id")

    def load() -> Any:
        with dash.store.connect() as conn:
            return dash.store.get_run(conn, run_id)

    row = await run_in_threadpool(load)
    if row is None:
        raise _missing(f"there is no run {run_id}")
    return {"run": run_dict(row)}, 200


def dead_filters(request: Request) -> tuple[str | None, str | None, str | None]:
    """(status or None for all, flow, entity) from the query."""
    status = _text(request, "status") or "open"
    if status not in DEAD_STATUSES:
        raise _bad(f"status must be one of {', '.join(DEAD_STATUSES)}, not {status!r}")
    return (None if status == "all" else status), _text(request, "flow"), \
        _text(request, "entity")


async def get_dead_letters(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """Dead letters, newest first."""
    status, flow, entity = dead_filters(request)
    limit = _int(request, "limit", 200, 1000)
    rows = await run_in_threadpool(lambda: dead_letter_rows(
        dash.store, status=status, flow=flow, entity=entity, limit=limit))
    return {"dead_letters": rows}, 200


async def get_dead_letter(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """One dead letter with the record as it was."""
    dl_id = _path_int(request, "dl_id")
    row = await run_in_threadpool(dead_letter_detail, dash.store, dl_id)
    if row is None:
        raise _missing(f"there is no dead letter {dl_id}")
    return {"dead_letter": row}, 200


async def post_replay(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """Replay a dead letter."""
    return outcome_json(await dash.replay(_path_int(request, "dl_id"))), 200


async def post_discard(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """Discard a dead letter."""
    return outcome_json(await dash.discard(_path_int(request, "dl_id"))), 200


async def get_audit(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """Audit events matching the filters."""
    since, until = _time(request, "since"), _time(request, "until")
    record, system, flow = _text(request, "record"), _text(request, "system"), \
        _text(request, "flow")
    limit = _int(request, "limit", 100, 1000)
    rows = await run_in_threadpool(lambda: audit_rows(
        dash.store, record=record, system=system, flow=flow, since=since, until=until,
        limit=limit))
    return {"events": rows}, 200


async def get_audit_verify(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """Check the audit chain's events after the verified checkpoint (hub.web.auditcheck)."""
    chain = await run_in_threadpool(dash.audit_check.check_new)
    return audit_verify_json(chain), 200


def audit_verify_json(chain: dict[str, Any]) -> dict[str, Any]:
    """An AuditCheck answer as the API's AuditVerify: `ok` is null when nothing was checked
    in this request because a background check reads the events (see `background`)."""
    r = chain["result"]
    if r is None:
        bg = chain["background"] or {}
        r = {"ok": None, "checked": 0, "bad_seq": None, "trusted": 0, "trusted_at": None,
             "message": f"a {bg.get('kind', '')} check of {bg.get('total', 0):,} events runs in "
                        f"the background ({bg.get('done', 0):,} read so far): ask again for "
                        "its progress"}
    return {**r, "checkpoint": chain["checkpoint"], "head": chain["head"],
            "unverified": chain["unverified"], "background": chain["background"]}


async def post_audit_verify_full(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """Start re-reading the whole audit chain in the background."""
    started, message = await run_in_threadpool(dash.audit_check.start_full)
    return {"started": started, "message": message}, 202


async def get_next_steps(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """What to do next."""
    ov = await _overview(dash)
    return {"steps": [dataclasses.asdict(s) for s in ov.steps]}, 200


async def get_maturity(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """The maturity phase with its criteria."""
    ov = await _overview(dash)
    return maturity_json(ov.maturity), 200


async def get_openapi(dash: Dashboard, request: Request) -> tuple[Any, int]:
    """This API's OpenAPI 3.1 document."""
    from hub.web.openapi import document

    return document(), 200


_LIMIT = Param("limit", "integer", "How many to return (newest first).")
_FLOW = Param("flow", "string", "Only this flow.")

ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("GET", "/silo-map", get_silo_map, "Systems by category, flows as edges, the "
             "state of each, and coverage", "SiloMap"),
    ApiRoute("GET", "/systems", get_systems, "Every declared system with its state", "Systems"),
    ApiRoute("GET", "/systems/{name}", get_system, "One system and the flows that use it",
             "SystemDetail", errors=(401, 404)),
    ApiRoute("GET", "/flows", get_flows, "Every flow with its state", "Flows"),
    ApiRoute("GET", "/flows/{name}", get_flow, "One flow and its run history", "FlowDetail",
             query=(_LIMIT,), errors=(400, 401, 404)),
    ApiRoute("POST", "/flows/{name}/run", post_flow_run, "Queue a run of the flow now",
             "RunQueued", status=202, errors=(401, 403, 404, 409)),
    ApiRoute("GET", "/runs", get_runs, "Run history with counts, durations and problems",
             "Runs", query=(_FLOW, _LIMIT), errors=(400, 401, 404)),
    ApiRoute("GET", "/runs/{run_id}", get_run, "One run", "RunDetail", errors=(401, 404)),
    ApiRoute("GET", "/dead-letters", get_dead_letters, "Dead letters, newest first",
             "DeadLetters", query=(
                 Param("status", "string", "Which ones (default open).", DEAD_STATUSES),
                 _FLOW, Param("entity", "string", "Only this kind of record."), _LIMIT),
             errors=(400, 401)),
    ApiRoute("GET", "/dead-letters/{dl_id}", get_dead_letter, "One dead letter with its "
             "record and reason", "DeadLetterDetail", errors=(401, 404)),
    ApiRoute("POST", "/dead-letters/{dl_id}/replay", post_replay, "Send the record through "
             "its flow again (safe to repeat)", "ActionOutcome", errors=(401, 403, 404, 409)),
    ApiRoute("POST", "/dead-letters/{dl_id}/discard", post_discard, "Give up on the record "
             "on purpose (kept, marked discarded)", "ActionOutcome",
             errors=(401, 403, 404, 409)),
    ApiRoute("GET", "/audit", get_audit, "Search the audit trail, newest first", "AuditEvents",
             query=(Param("record", "string", "A canonical id or a system's id."),
                    Param("system", "string", "Only changes in this system."), _FLOW,
                    Param("since", "string", "At or after this time (2026-11-01 or "
                          "2026-11-01T08:00:00Z)."),
                    Param("until", "string", "Before this time."), _LIMIT),
             errors=(400, 401)),
    ApiRoute("GET", "/audit/verify", get_audit_verify, "Check the audit trail's hash chain "
             "after the last verified event (many: in the background)", "AuditVerify"),
    ApiRoute("POST", "/audit/verify/full", post_audit_verify_full, "Re-read the whole audit "
             "trail in the background; GET /audit/verify shows its progress",
             "AuditVerifyStarted", status=202, errors=(401, 403)),
    ApiRoute("GET", "/next-steps", get_next_steps, "What to do next, from measured data",
             "NextSteps"),
    ApiRoute("GET", "/maturity", get_maturity, "The maturity phase and its criteria",
             "Maturity"),
    ApiRoute("GET", "/openapi.json", get_openapi, "This document", "OpenAPI"),
)


def routes(dash: Dashboard) -> list[BaseRoute]:
    """The API's Starlette routes, each behind the API guard."""
    out: list[BaseRoute] = []
    for r in ROUTES:
        async def endpoint(request: Request, _r: ApiRoute = r) -> tuple[Any, int]:
            return await _r.handler(dash, request)

        out.append(Route(PREFIX + r.path, dash.api(endpoint, post=r.method == "POST"),
                         methods=[r.method]))
    return out
