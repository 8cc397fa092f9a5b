"""The dashboard's server-rendered pages (templates in hub/web/templates).

    GET  /                          overview: phase, coverage, map, what to do next
    GET  /silo-map                  the map, its legend and every system in a table
    GET  /flows                     every flow and its state (?system= to narrow)
    GET  /flows/{name}              a flow's runs, errors and a Run now button
    POST /flows/{name}/run
    GET  /dead-letters              open (or ?status=...) dead letters
    GET  /dead-letters/{id}         one, with its record, reason, Replay and Discard
    POST /dead-letters/{id}/replay
    POST /dead-letters/{id}/discard
    GET  /audit                     search form, changes with field diffs, chain check
    POST /audit/verify-full         re-read the whole chain in the background
    GET  /next-steps                next steps and the maturity phase with its criteria

Actions answer with a redirect to the page they were pressed on and a one-time message.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from hub.config import redact
from hub.config.semantics import ENTITIES
from hub.errors import HubError
from hub.insights import Overview, overview
from hub.insights.health import STATES, since_text
from hub.insights.listings import (
    audit_rows,
    dead_letter_detail,
    dead_letter_rows,
    parse_time,
    run_rows,
)
from hub.insights.maturity import PHASES
from hub.web.api import DEAD_STATUSES, outcome_json
from hub.web.silosvg import layout

if TYPE_CHECKING:
    from hub.web.dashboard import Dashboard, PageContext, PageEndpoint

RUNS_SHOWN = 50
AUDIT_SHOWN = 200


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _common(ov: Overview) -> dict[str, Any]:
    now = ov.facts.now
    return {"since": lambda when: since_text(when, now), "n": _n, "states": STATES,
            "now": now}


class Pages:
    """The page endpoints of one dashboard."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash

    async def _overview(self) -> Overview:
        return await run_in_threadpool(overview, self.dash.settings, self.dash.store)

    async def home(self, request: Request, ctx: PageContext) -> Response:
        """GET /"""
        ov = await self._overview()
        return self.dash.render("overview.html", ctx, page="home", ov=ov,
                                layout=layout(ov.map), steps=ov.steps[:5],
                                phases=PHASES, **_common(ov))

    async def silo_map(self, request: Request, ctx: PageContext) -> Response:
        """GET /silo-map"""
        ov = await self._overview()
        return self.dash.render("silomap.html", ctx, page="map", ov=ov, layout=layout(ov.map),
                                **_common(ov))

    async def flows(self, request: Request, ctx: PageContext) -> Response:
        """GET /flows"""
        ov = await self._overview()
        system = request.query_params.get("system") or None
        flows = [f for f in ov.map.flows
                 if system is None or system in f.sources or system in f.targets]
        return self.dash.render("flows.html", ctx, page="flows", ov=ov, flows=flows,
                                system=system, **_common(ov))

    async def flow(self, request: Request, ctx: PageContext) -> Response:
        """GET /flows/{name}"""
        from hub.web.dashboard import NotFound

        name = request.path_params["name"]
        if name not in self.dash.settings.flows:
            raise NotFound(f"There is no flow named {name}. The Flows page lists them all.")
        ov = await self._overview()
        view = next(f for f in ov.map.flows if f.name == name)
        runs = await run_in_threadpool(run_rows, self.dash.store, name, RUNS_SHOWN)
        return self.dash.render("flow.html", ctx, page="flows", ov=ov, flow=view, runs=runs,
                                can_run=self.dash.run_now is not None, **_common(ov))

    async def run_flow(self, request: Request, ctx: PageContext) -> Response:
        """POST /flows/{name}/run"""
        name = request.path_params["name"]
        try:
            queued, message = self.dash.start_run(name)
            self.dash.flash(ctx, message, "ok" if queued else "info")
        except HubError as exc:
            self.dash.flash(ctx, f"The run could not be started: {exc}", "error")
        return RedirectResponse(f"/flows/{name}", 303)

    async def dead_letters(self, request: Request, ctx: PageContext) -> Response:
        """GET /dead-letters"""
        status = request.query_params.get("status") or "open"
        if status not in DEAD_STATUSES:
            status = "open"
        flow = request.query_params.get("flow") or None
        entity = request.query_params.get("entity") or None
        rows = await run_in_threadpool(lambda: dead_letter_rows(
            self.dash.store, status=None if status == "all" else status, flow=flow,
            entity=entity, limit=500))
        return self.dash.render("deadletters.html", ctx, page="dead", rows=rows,
                                status_filter=status, statuses=DEAD_STATUSES, flow=flow,
                                entity=entity, flows=list(self.dash.settings.flows),
                                entities=ENTITIES, n=_n)

    async def dead_letter(self, request: Request, ctx: PageContext) -> Response:
        """GET /dead-letters/{id}"""
        from hub.web.dashboard import NotFound

        raw = request.path_params["dl_id"]
        row = await run_in_threadpool(dead_letter_detail, self.dash.store, int(raw)) \
            if raw.isdigit() else None
        if row is None:
            raise NotFound(f"There is no dead letter {raw}. The Dead letters page lists them.")
        payload = json.dumps(redact(row["payload"]), indent=2, ensure_ascii=False,
                             default=str)
        return self.dash.render("deadletter.html", ctx, page="dead", dl=row, payload=payload)

    async def _act(self, request: Request, ctx: PageContext, what: str) -> Response:
        raw = request.path_params["dl_id"]
        back = f"/dead-letters/{raw}"
        if not raw.isdigit():
            return RedirectResponse("/dead-letters", 303)
        action = self.dash.replay if what == "replay" else self.dash.discard
        try:
            out = outcome_json(await action(int(raw)))
        except HubError as exc:
            self.dash.flash(ctx, f"Nothing was done: {exc}", "error")
            return RedirectResponse(back, 303)
        kind = "ok" if out["delivered"] or out["status"] == "discarded" else (
            "info" if out["status"].startswith("already") else "error")
        self.dash.flash(ctx, out["message"], kind)
        return RedirectResponse(back, 303)

    async def replay(self, request: Request, ctx: PageContext) -> Response:
        """POST /dead-letters/{id}/replay"""
        return await self._act(request, ctx, "replay")

    async def discard(self, request: Request, ctx: PageContext) -> Response:
        """POST /dead-letters/{id}/discard"""
        return await self._act(request, ctx, "discard")

    async def audit(self, request: Request, ctx: PageContext) -> Response:
        """GET /audit"""
        q = {k: (request.query_params.get(k) or "").strip()
             for k in ("record", "system", "flow", "since", "until")}
        problems = []
        times: dict[str, str | None] = {}
        for key in ("since", "until"):
            try:
                times[key] = parse_time(q[key]) if q[key] else None
            except ValueError as exc:
                problems.append(f"{'From' if key == 'since' else 'Until'}: {exc}")
                times[key] = None
        searched = any(q.values())
        events: list[dict[str, Any]] = []
        if not problems:
            events = await run_in_threadpool(lambda: audit_rows(
                self.dash.store, record=q["record"] or None, system=q["system"] or None,
                flow=q["flow"] or None, since=times["since"], until=times["until"],
                limit=AUDIT_SHOWN))
        # The chain check reads only the events after the verified checkpoint (or starts a
        # background check when there are many); without ?verify the page shows how far
        # the trail was verified, from two small reads.
        check = self.dash.audit_check
        chain = await run_in_threadpool(check.check_new if request.query_params.get("verify")
                                        else check.status)
        return self.dash.render("audit.html", ctx, page="audit", q=q, events=events,
                                problems=problems, searched=searched, chain=chain,
                                verify=chain["result"], n=_n,
                                limit=AUDIT_SHOWN, systems=list(self.dash.settings.systems),
                                flows=list(self.dash.settings.flows))

    async def audit_verify_full(self, request: Request, ctx: PageContext) -> Response:
        """POST /audit/verify-full"""
        started, message = await run_in_threadpool(self.dash.audit_check.start_full)
        self.dash.flash(ctx, message, "ok" if started else "info")
        return RedirectResponse("/audit", 303)

    async def next_steps(self, request: Request, ctx: PageContext) -> Response:
        """GET /next-steps"""
        ov = await self._overview()
        return self.dash.render("nextsteps.html", ctx, page="next", ov=ov, steps=ov.steps,
                                phases=PHASES, **_common(ov))


def routes(dash: Dashboard) -> list[BaseRoute]:
    """The page routes, each behind the page guard."""
    p = Pages(dash)
    get = dash.page

    def post(endpoint: PageEndpoint) -> Callable[[Request], Awaitable[Response]]:
        return dash.page(endpoint, post=True)

    return [
        Route("/", get(p.home), methods=["GET"]),
        Route("/silo-map", get(p.silo_map), methods=["GET"]),
        Route("/flows", get(p.flows), methods=["GET"]),
        Route("/flows/{name}", get(p.flow), methods=["GET"]),
        Route("/flows/{name}/run", post(p.run_flow), methods=["POST"]),
        Route("/dead-letters", get(p.dead_letters), methods=["GET"]),
        Route("/dead-letters/{dl_id}", get(p.dead_letter), methods=["GET"]),
        Route("/dead-letters/{dl_id}/replay", post(p.replay), methods=["POST"]),
        Route("/dead-letters/{dl_id}/discard", post(p.discard), methods=["POST"]),
        Route("/audit", get(p.audit), methods=["GET"]),
        Route("/audit/verify-full", post(p.audit_verify_full), methods=["POST"]),
        Route("/next-steps", get(p.next_steps), methods=["GET"]),
    ]
