"""The dashboard as a whole: its guards, its actions, login and logout, static files.

    Dashboard(settings, store, auth_config, run_now=..., public_url=...)
    .routes()      every dashboard route: pages (hub.web.pages), /api/v1 (hub.web.api),
                   /login, /logout, /static/*; hub.web.app adds them to the app

Every page and API answer passes through `scrub`, which replaces the values of the
config's secrets and of the dashboard's own credentials with "***", and JSON passes
through `redact` first (values under secret-looking keys). Pages and API answers are
`Cache-Control: no-store`. Actions (replay, discard, run now) are the same functions for
a form and an API call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from hub.config import redact, redact_text
from hub.config.model import REDACTED, Settings
from hub.errors import HubError, StoreError
from hub.observers import run_observers
from hub.store import Store
from hub.sync.engine import SyncEngine
from hub.sync.replay import ReplayOutcome, discard, replay
from hub.web.auditcheck import AuditCheck
from hub.web.auth import (
    FLASH_COOKIE,
    FLASH_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Auth,
    AuthConfig,
    Session,
    read_form,
)
from hub.web.trigger import FlowTrigger

log = logging.getLogger("hub.web.dashboard")

HERE = Path(__file__).parent
STATIC = {"dashboard.css": "text/css; charset=utf-8",
          "dashboard.js": "text/javascript; charset=utf-8"}
LOGIN_DELAY = 0.5  # seconds a wrong login waits: slows guessing, invisible to a person
RunNow = Callable[[str], bool]


class NotFound(HubError):
    """The thing asked for does not exist (404)."""


class BadRequest(HubError):
    """The request's parameters are wrong (400)."""


@dataclass
class PageContext:
    """What a page endpoint gets besides the request."""

    session: Session
    flash: dict[str, str] | None = None
    cookies: list[tuple[str, str, int]] = field(default_factory=list)  # (name, value, age)


PageEndpoint = Callable[[Request, PageContext], Awaitable[Response]]
ApiEndpoint = Callable[[Request], Awaitable[tuple[Any, int]]]


def _json(data: Any) -> str:
    return orjson.dumps(redact(data), default=str, option=orjson.OPT_INDENT_2).decode()


class Dashboard:
    """Pages, JSON API and actions over one config and store."""

    def __init__(self, settings: Settings, store: Store, auth: AuthConfig, *,
                 run_now: RunNow | None = None, public_url: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self.auth = Auth(auth, public_url=public_url)
        self.run_now = run_now
        self.audit_check = AuditCheck(store)  # the Audit page's chain checks
        self._hidden = sorted(auth.hidden_values(), key=len, reverse=True)
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html", "svg"], default_for_string=True),
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["sentence"] = lambda text: str(text)[:1].upper() + str(text)[1:]
        self._static = {name: (HERE / "static" / name).read_bytes() for name in STATIC}

    # -- output --------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """`text` with every secret value the hub knows of replaced by ***."""
        text = redact_text(text, self.settings)
        for value in self._hidden:
            text = text.replace(value, REDACTED)
        return text

    def json(self, data: Any, status: int = 200) -> Response:
        """A JSON answer, redacted and scrubbed."""
        return Response(self.scrub(_json(data)), status_code=status,
                        media_type="application/json",
                        headers={"cache-control": "no-store"})

    def render(self, template: str, ctx: PageContext, status: int = 200,
               **values: Any) -> HTMLResponse:
        """A page from its template, scrubbed."""
        html = self.templates.get_template(template).render(
            csrf=ctx.session.csrf, flash=ctx.flash, auth_enabled=self.auth.config.enabled,
            subject=ctx.session.subject, **values)
        return HTMLResponse(self.scrub(html), status_code=status)

    def problem_page(self, ctx: PageContext | None, status: int, title: str,
                     message: str) -> HTMLResponse:
        """A page that says what went wrong and what to do, without a traceback."""
        html = self.templates.get_template("problem.html").render(
            csrf=ctx.session.csrf if ctx else "", flash=None,
            auth_enabled=self.auth.config.enabled and ctx is not None,
            subject=ctx.session.subject if ctx else "", title=title, message=message)
        return HTMLResponse(self.scrub(html), status_code=status,
                            headers={"cache-control": "no-store"})

    # -- guards --------------------------------------------------------------------------

    def page(self, endpoint: PageEndpoint, *, post: bool = False
             ) -> Callable[[Request], Awaitable[Response]]:
        """A page endpoint behind login (302 to /login) and, for POST, the CSRF check."""

        async def guarded(request: Request) -> Response:
            if not self.auth.host_ok(request):
                return self.problem_page(None, 403, "Not on this address",
                                         "This dashboard runs without login and answers only "
                                         "at http://127.0.0.1.")
            session = self.auth.session(request)
            ctx_cookies: list[tuple[str, str, int]] = []
            if session is None:
                if self.auth.config.enabled:
                    target = request.url.path + (f"?{request.url.query}"
                                                 if request.url.query else "")
                    code = 303 if post else 302
                    return RedirectResponse(f"/login?next={quote(target, safe='')}", code)
                session, cookie = self.auth.new_session("anonymous")
                ctx_cookies.append((SESSION_COOKIE, cookie, SESSION_SECONDS))
            ctx = PageContext(session, cookies=ctx_cookies)
            if post:
                refused = await self._check_form(request, session)
                if refused:
                    return self.problem_page(ctx, 403, "Action refused", refused)
            else:
                ctx.flash = self._take_flash(request)
            try:
                response = await endpoint(request, ctx)
            except NotFound as exc:
                response = self.problem_page(ctx, 404, "Not found", str(exc))
            except StoreError as exc:
                response = self.problem_page(
                    ctx, 503, "The store is not answering",
                    f"{exc}. Check that the database is running, then reload this page.")
            return self._finish(request, response, ctx, had_flash=ctx.flash is not None)

        return guarded

    async def _check_form(self, request: Request, session: Session) -> str | None:
        if self.auth.foreign_origin(request):
            return "This action was sent from another web site, so it was not carried out."
        form = await read_form(request)
        if form is None or not self.auth.csrf_ok(session, form.get("csrf")):
            return ("This form has expired or did not come from this dashboard, so nothing "
                    "was done. Go back, reload the page and try again.")
        request.state.form = form
        return None

    def _finish(self, request: Request, response: Response, ctx: PageContext, *,
                had_flash: bool) -> Response:
        response.headers["cache-control"] = "no-store"
        args = self.auth.cookie_args(request)
        for name, value, age in ctx.cookies:
            response.set_cookie(name, value, max_age=age, **args)
        if had_flash:
            response.delete_cookie(FLASH_COOKIE, **args)
        return response

    def _take_flash(self, request: Request) -> dict[str, str] | None:
        data = self.auth.unsign(request.cookies.get(FLASH_COOKIE))
        if not data or not isinstance(data.get("m"), str):
            return None
        return {"message": str(data["m"]), "kind": str(data.get("k", "info"))}

    def flash(self, ctx: PageContext, message: str, kind: str = "info") -> None:
        """Show `message` on the next page this browser loads (after a redirect)."""
        ctx.cookies.append((FLASH_COOKIE, self.auth.sign({"m": message, "k": kind}),
                            FLASH_SECONDS))

    def api(self, endpoint: ApiEndpoint, *, post: bool = False
            ) -> Callable[[Request], Awaitable[Response]]:
        """An API endpoint behind a bearer token or a session (401 otherwise)."""

        async def guarded(request: Request) -> Response:
            if not self.auth.host_ok(request):
                return self.json({"error": "this hub runs without login and answers only "
                                           "at 127.0.0.1"}, 403)
            has_header = "authorization" in request.headers
            bearer = self.auth.bearer_ok(request)
            session = None if has_header else self.auth.session(request)
            open_mode = not self.auth.config.enabled
            if (has_header and not bearer) or not (bearer or session or open_mode):
                response = self.json({"error": "not signed in: send Authorization: Bearer "
                                               "<HUB_DASHBOARD_TOKEN>, or sign in at /login"},
                                     401)
                response.headers["www-authenticate"] = 'Bearer realm="liaison"'
                return response
            if post:
                refused = self._check_api_post(request, bearer, session)
                if refused:
                    return self.json({"error": refused}, 403)
            try:
                data, status = await endpoint(request)
            except NotFound as exc:
                return self.json({"error": str(exc)}, 404)
            except BadRequest as exc:
                return self.json({"error": str(exc)}, 400)
            except StoreError as exc:
                return self.json({"error": f"the store is not answering: {exc}"}, 503)
            except HubError as exc:
                return self.json({"error": str(exc)}, 409)
            return self.json(data, status)

        return guarded

    def _check_api_post(self, request: Request, bearer: bool,
                        session: Session | None) -> str | None:
        if self.auth.foreign_origin(request):
            return "refused: the request came from another web site"
        if bearer:
            return None
        if session is not None and self.auth.csrf_ok(session,
                                                     request.headers.get("x-csrf-token")):
            return None
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if session is None and ctype == "application/json":
            return None  # --no-auth: a cross-site page cannot send JSON without a preflight
        return ("a POST signed in by cookie needs the X-CSRF-Token header; scripts should "
                "use Authorization: Bearer <HUB_DASHBOARD_TOKEN>")

    # -- actions ---------------------------------------------------------------------------

    def engine(self) -> SyncEngine:
        """A sync engine observed as `hub dlq` and `hub sync` are (audit trail, metrics)."""
        return SyncEngine(self.settings, self.store,
                          observers=run_observers(self.settings, self.store))

    def _dead_letter_exists(self, dl_id: int) -> None:
        with self.store.connect() as conn:
            if self.store.get_dead_letter(conn, dl_id) is None:
                raise NotFound(f"there is no dead letter {dl_id}")

    async def replay(self, dl_id: int) -> ReplayOutcome:
        """Replay one dead letter (the same code as `hub dlq replay`)."""
        def work() -> ReplayOutcome:
            self._dead_letter_exists(dl_id)
            return replay(self.engine(), dl_id)

        return await run_in_threadpool(work)

    async def discard(self, dl_id: int) -> ReplayOutcome:
        """Discard one dead letter (the same code as `hub dlq discard`)."""
        def work() -> ReplayOutcome:
            self._dead_letter_exists(dl_id)
            return discard(self.engine(), dl_id)

        return await run_in_threadpool(work)

    def start_run(self, flow: str) -> tuple[bool, str]:
        """Queue a run of `flow` now; (queued, message)."""
        if flow not in self.settings.flows:
            raise NotFound(f"there is no flow named {flow}")
        if self.run_now is None:
            raise HubError("this server cannot start runs; use `hub sync "
                           f"{flow}` on the command line")
        if self.run_now(flow):
            return True, f"A run of {flow} was queued; it shows in the history when it starts."
        return False, f"A run of {flow} is already waiting to start; nothing more was queued."

    # -- login, logout, static --------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        """GET /login: the form (or straight on when already signed in)."""
        nxt = _safe_next(request.query_params.get("next"))
        if not self.auth.config.enabled or self.auth.session(request) is not None:
            return RedirectResponse(nxt, 302)
        return self._login_form(nxt, None, 200)

    def _login_form(self, nxt: str, error: str | None, status: int) -> Response:
        cfg = self.auth.config
        html = self.templates.get_template("login.html").render(
            next=nxt, error=error, token_login=bool(cfg.token),
            password_login=bool(cfg.user and cfg.password), csrf="", flash=None,
            auth_enabled=False, subject="")
        return HTMLResponse(self.scrub(html), status_code=status,
                            headers={"cache-control": "no-store"})

    async def login(self, request: Request) -> Response:
        """POST /login: check the credentials, set the session cookie, go on."""
        if not self.auth.config.enabled:
            return RedirectResponse("/", 303)
        if self.auth.foreign_origin(request):
            return self._login_form("/", "This sign-in came from another web site.", 403)
        form = await read_form(request) or {}
        nxt = _safe_next(form.get("next"))
        subject = self.auth.check_login(form)
        if subject is None:
            await asyncio.sleep(LOGIN_DELAY)
            log.warning("dashboard sign-in refused from %s",
                        request.client.host if request.client else "?")
            return self._login_form(nxt, "That did not match. Check the token (or user name "
                                         "and password) and try again.", 401)
        _, cookie = self.auth.new_session(subject)
        response = RedirectResponse(nxt, 303)
        response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_SECONDS,
                            **self.auth.cookie_args(request))
        response.headers["cache-control"] = "no-store"
        return response

    async def logout(self, request: Request, ctx: PageContext) -> Response:
        """POST /logout: forget the session cookie."""
        response = RedirectResponse("/login" if self.auth.config.enabled else "/", 303)
        response.delete_cookie(SESSION_COOKIE, **self.auth.cookie_args(request))
        return response

    async def static(self, request: Request) -> Response:
        """GET /static/{name}: the stylesheet and the small script."""
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", 404, media_type="text/plain")
        return Response(self._static[name], media_type=STATIC[name],
                        headers={"cache-control": "public, max-age=300"})

    def routes(self) -> list[BaseRoute]:
        """Every route of the dashboard and its API."""
        from hub.web.api import routes as api_routes
        from hub.web.pages import routes as page_routes

        return [
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.page(self.logout, post=True), methods=["POST"]),
            Route("/static/{name}", self.static, methods=["GET"]),
            *api_routes(self),
            *page_routes(self),
        ]


def run_now_trigger(settings: Settings, store: Store,
                    send: Callable[..., object] | None = None) -> FlowTrigger:
    """The queue behind the Run now buttons; runs are recorded with trigger "dashboard".

    With `send` (a dramatiq actor's send, production mode) a run becomes a job for the
    workers; without, it runs in this process's background thread, one at a time.
    """
    if send is not None:
        job = send
        return FlowTrigger(settings, store,
                           run_flow=lambda flow: job(flow, "dashboard", False, None))

    def run(flow: str) -> object:
        engine = SyncEngine(settings, store, observers=run_observers(settings, store))
        return engine.run(flow, trigger="dashboard")

    return FlowTrigger(settings, store, run_flow=run)


def _safe_next(value: str | None) -> str:
    """A local path to go to after signing in; anything else (another site) becomes /."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
