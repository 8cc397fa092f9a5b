"""The Trello connector: boards (projects) and cards (tasks), incremental through the actions feed.

Auth
    `api_key` and `token` (secrets, read at each request) sent in Trello's OAuth header, not
    the query string (see client.py for why); Trello tokens do not refresh.
Reads
    boards   GET /members/me/boards (open and closed; `board_ids` narrows cards only),
             ordered by id and paged in memory. Incremental: the boards whose dateLastActivity is at
             or after the cursor's "since" (Trello moves it on any change in the board).
             Cursor: {"since": max dateLastActivity}, mid-read also "after" (last id) and
             "mode".
    cards    the cards of every board in `board_ids` (or all boards of the member), board by
             board in id order. Full: GET /boards/{id}/cards/all (archived included; it has
             no paging, so cards are ordered by id and paged in memory; a resumed read skips
             ids <= "after", which stays right when cards are added or moved meanwhile).
             Incremental: per board, GET /boards/{id}/actions?filter=createCard,updateCard,
             deleteCard&since=<mark>, which is NEWEST FIRST, paged back with before=<oldest
             id> while a page is full; the affected cards are re-read (one cards/all per
             board, GET /cards/{id} for a card no longer on it) and a deleteCard becomes
             the tombstone {"id", "deleted": true}. The mark of a board is its newest card
             action id, taken BEFORE its cards are read (so nothing slips between); a board
             with no card action yet is marked with Trello's own clock (the Date header).
             Final cursor: {"boards": {board id: mark}}; mid-read also "mode", "done"
             (finished boards), "prev" (the marks being read from), "board", "mark", "after".
    Each card gets two fields Trello's card lacks, for the mappings: "list" ({id, name,
    closed} of its list, as Trello's nested `list=true` resource shows it) and "labelNames".
    A trailing marker "[liaison:<id>]" (see Writes) is cut from "desc".
Writes (one request per op; Trello has no batch endpoint and no idempotency key)
    cards    create: POST /cards to idList, else the list named list.name on idBoard, else
             `default_list_id`, else idBoard's first open list. Repeat-safe: the card's desc
             ends with "[liaison:<canonical id>]" (the WriteOp key when there is none) and
             before creating, the board's cards (cards/all, once per write call) are searched
             for that marker; a card found is updated instead of created again.
             update: PUT /cards/{id} (list.name moves the card to that list of its board);
             archive: PUT closed=true; delete: DELETE (already gone counts as done).
    boards   create POST /boards (same desc marker, searched among the member's boards);
             update PUT /boards/{id}; archive and delete both close the board (closed=true):
             Trello's board delete is irreversible and takes every card with it.
    A 4xx fails that op's result; a 429/5xx that outlasts the retries fails that op and
    every op after it in the call with the same transient error (they were not tried).
Rate limits
    Pacers on x-rate-limit-api-token-remaining/-interval-ms and the api-key pair slow down
    before Trello's 100 (token) / 300 (key) requests per 10 s bite; 429s are retried by
    hub.http with backoff (Trello sends no Retry-After).
Webhooks
    verify_webhook checks X-Trello-Webhook with `webhook_secret` (webhooks.py).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from connectors.trello import webhooks
from connectors.trello.client import (
    ACTIONS_LIMIT_MAX,
    DEFAULT_BASE_URL,
    TrelloClient,
    oauth_header,
)
from hub.config.model import ConnectionConfig
from hub.connector import (
    BaseConnector,
    Capabilities,
    Cursor,
    EntitySupport,
    Health,
    NativeRecord,
    Page,
    WebhookEvent,
    WebhookRequest,
    WriteOp,
    WriteResult,
)
from hub.errors import (
    AuthError,
    ConnectorError,
    HubError,
    PermanentError,
    TransientError,
)
from hub.http import Pacer, make_client

BATCH_MAX = 50  # ops per write() call: each is one request, so keep a call short
OBJECTS = ("boards", "cards")
MARKER = re.compile(r"\s*\[liaison:([^\]\s]+)\]\s*$")
CARD_WRITABLE = ("name", "desc", "due", "dueComplete", "start", "pos", "closed", "idMembers",
                 "idLabels")
BOARD_WRITABLE = ("name", "desc", "closed", "idOrganization")
SKEW_FALLBACK = timedelta(minutes=5)  # when Trello sends no Date header: our clock, minus this


def marker(ident: str) -> str:
    """The text that ends the desc of a record Liaison created, naming its canonical id."""
    return f"[liaison:{ident}]"


def strip_marker(desc: Any) -> Any:
    """The desc without Liaison's trailing marker (other values as they are)."""
    if isinstance(desc, str) and "[liaison:" in desc:
        return MARKER.sub("", desc)
    return desc


def marker_of(desc: Any) -> str | None:
    """The canonical id named by a desc's trailing marker, if any."""
    if isinstance(desc, str) and "[liaison:" in desc:
        found = MARKER.search(desc)
        return found.group(1) if found else None
    return None


def _with_marker(desc: Any, ident: str) -> str:
    text = strip_marker(desc) if isinstance(desc, str) else ""
    return f"{text}\n\n{marker(ident)}" if text else marker(ident)


@dataclass
class _WriteContext:
    """Look-ups shared by the ops of one write() call."""

    lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # board -> lists
    markers: dict[str, dict[str, str]] = field(default_factory=dict)  # board -> marker -> id
    board_markers: dict[str, str] | None = None


class TrelloConnector(BaseConnector):
    """Trello REST (API key + token): boards as projects, cards as tasks."""

    name: ClassVar[str] = "trello"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={
            "project": EntitySupport(object="boards", incremental=True, deletes=True,
                                     archive=True),
            "task": EntitySupport(object="cards", incremental=True, deletes=True,
                                  archive=True),
        },
        batch_size=BATCH_MAX,
        webhooks=True,
        settings={
            "base_url": f"API base URL (default {DEFAULT_BASE_URL})",
            "api_key": "the Trello API key, as a ${ENV} reference",
            "token": "a Trello token of the member to sync as, as a ${ENV} reference",
            "board_ids": "board ids to sync cards from (a list or comma-separated); "
                         "default: every board of the member",
            "default_list_id": "the list new cards go to when the record names none",
            "webhook_secret": "the app secret Trello signs webhooks with, as a ${ENV} "
                              "reference (needed only for webhooks)",
            "callback_url": "the exact callback URL the webhook was registered with, when it "
                            "differs from the URL the hub is called on",
            "webhook_max_age": "seconds after which a delivered action is refused as stale "
                               f"(default {webhooks.DEFAULT_MAX_AGE}; 0: never)",
            "actions_limit": f"actions read per page of the feed (default and most "
                             f"{ACTIONS_LIMIT_MAX})",
            "dedupe_creates": "search for Liaison's desc marker before creating, so a "
                              "repeated create makes no duplicate (default true)",
            "rate_remaining_header": "header with the requests left in the token's window "
                                     "(default x-rate-limit-api-token-remaining)",
            "rate_interval_header": "header with the window length in ms "
                                    "(default x-rate-limit-api-token-interval-ms)",
            "timeout": "seconds to wait for an answer (default 30)",
        },
        secret_settings=frozenset({"api_key", "token", "webhook_secret"}),
    )

    def __init__(self, connection: ConnectionConfig) -> None:
        super().__init__(connection)
        self._api: TrelloClient | None = None
        remaining = str(connection.setting("rate_remaining_header")
                        or "x-rate-limit-api-token-remaining")
        interval = str(connection.setting("rate_interval_header")
                       or "x-rate-limit-api-token-interval-ms")
        self.pacer = Pacer(remaining_header=remaining, interval_ms_header=interval, reserve=5)
        self.key_pacer = Pacer(remaining_header="x-rate-limit-api-key-remaining",
                               interval_ms_header="x-rate-limit-api-key-interval-ms",
                               reserve=5)
        self._list_board: dict[str, str] = {}  # list id -> board id (lists never move boards)

    # -- plumbing ------------------------------------------------------------------------

    @property
    def api(self) -> TrelloClient:
        """The Trello client, built on first use (no I/O in the constructor)."""
        if self._api is None:
            base_url = str(self.connection.setting("base_url") or DEFAULT_BASE_URL).rstrip("/")
            http = make_client(base_url, system=f"Trello ({self.connection.name})",
                               auth_headers=self._auth_headers, retry=self.connection.retry,
                               timeout=float(self.connection.setting("timeout", 30.0)),
                               user_agent="liaison-hub/trello", on_response=self._paced)
            self._api = TrelloClient(http, self._credentials)
        return self._api

    def _paced(self, response: httpx.Response) -> None:
        self.pacer(response)
        self.key_pacer(response)

    def _credentials(self) -> tuple[str, str]:
        values = []
        for key, what in (("api_key", "the Trello API key"), ("token", "a Trello token")):
            value = self.connection.setting(key)  # revealed now, at use, never stored
            if not value:
                where = self.connection.where_of(key)
                at = f" ({where})" if where else ""
                raise ConnectorError(f"connection {self.connection.name}{at}: setting "
                                     f"{key!r} is missing ({what}, as ${{ENV}})")
            values.append(str(value))
        return values[0], values[1]

    def _auth_headers(self) -> dict[str, str]:
        return oauth_header(*self._credentials())

    def _int_setting(self, key: str, default: int) -> int:
        value = self.connection.setting(key, default)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConnectorError(f"connection {self.connection.name}: setting {key!r} must be "
                                 f"a whole number, got {value!r}") from None

    def _board_ids_setting(self) -> list[str] | None:
        raw = self.connection.setting("board_ids")
        if raw in (None, "", []):
            return None
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
        return sorted({str(i).strip() for i in items if str(i).strip()})

    @staticmethod
    def _check_object(object: str) -> None:
        if object not in OBJECTS:
            raise PermanentError(f"Trello has no object {object!r} here (known: "
                                 f"{', '.join(OBJECTS)})")

    def check(self) -> Health:
        """List the member's boards: proves Trello answers and accepts the key and token."""
        try:
            boards = self.api.member_boards(fields="name")
        except AuthError as exc:
            return Health(ok=False, message=f"Trello refused the key or token: {exc}")
        except HubError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, message=f"Trello answered; the member sees {len(boards)} "
                                       "board(s)")

    def verify_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Check a delivery's X-Trello-Webhook signature and age; list the change it announces.

        A HEAD (Trello's check when the webhook is created) carries nothing: no events.
        """
        if request.method.upper() == "HEAD":
            return []
        secret = self.connection.setting("webhook_secret")  # revealed now, at use
        if not secret:
            where = self.connection.where_of("webhook_secret")
            at = f" ({where})" if where else ""
            raise ConnectorError(f"connection {self.connection.name}{at}: setting "
                                 "'webhook_secret' is missing (the Trello app secret, as "
                                 "${ENV}); webhooks cannot be checked without it")
        callback = str(self.connection.setting("callback_url") or request.url)
        webhooks.check_signature(request, str(secret), callback)
        max_age = self._int_setting("webhook_max_age", webhooks.DEFAULT_MAX_AGE)
        return webhooks.parse_events(request.body, now=time.time(), max_age=max_age)

    def fetch(self, object: str, external_id: str) -> NativeRecord | None:
        """One board or card as read() shows it; None when Trello no longer has it."""
        self._check_object(object)
        try:
            if object == "boards":
                return self.api.board(external_id)
            card = self.api.card(external_id)
        except PermanentError as exc:
            if exc.status in (400, 404) and not isinstance(exc, AuthError):
                return None  # 400 is Trello's "invalid id": no such record can exist
            raise
        lists = {v["id"]: v for v in self.api.lists(card["idBoard"])}
        return self._enrich(card, lists)

    def close(self) -> None:
        """Close the HTTP connections."""
        if self._api is not None:
            self._api.http.close()
            self._api = None

    # -- reads ------------------------------------------------------------------------------

    def read(self, object: str, cursor: Cursor | None, *, incremental: bool,
             page_size: int) -> Iterator[Page]:
        """Yield pages of native records (see the module docstring for the cursor shapes)."""
        self._check_object(object)
        size = max(1, page_size)
        if object == "boards":
            yield from self._read_boards(cursor or {}, incremental, size)
        else:
            yield from self._read_cards(cursor or {}, incremental, size)

    def _boards(self) -> list[dict[str, Any]]:
        # Every board of the member: `board_ids` narrows the cards read, not the projects.
        return sorted((_clean_board(b) for b in self.api.member_boards()),
                      key=lambda b: str(b["id"]))

    def _read_boards(self, cursor: Cursor, incremental: bool, size: int) -> Iterator[Page]:
        mode = cursor.get("mode") or ("inc" if incremental and cursor.get("since") else "full")
        since = cursor.get("since") if mode == "inc" else None
        after = cursor.get("after")
        top = str(cursor.get("max") or cursor.get("since") or "")
        boards = self._boards()
        for board in boards:
            top = max(top, str(board.get("dateLastActivity") or ""))
        chosen = [b for b in boards
                  if (after is None or str(b["id"]) > after)
                  and (since is None or _ms(b.get("dateLastActivity")) >= _ms(since))]
        if not chosen:
            yield Page([], {"since": top} if top else {})
            return
        for start in range(0, len(chosen), size):
            chunk = chosen[start:start + size]
            if start + size >= len(chosen):
                yield Page(chunk, {"since": top} if top else {})
            else:
                mid: Cursor = {"mode": mode, "after": str(chunk[-1]["id"]), "max": top}
                if since is not None:
                    mid["since"] = since
                yield Page(chunk, mid)

    def _card_board_ids(self) -> list[str]:
        chosen = self._board_ids_setting()
        if chosen is not None:
            return chosen
        return sorted(str(b["id"]) for b in self.api.member_boards(fields="name"))

    def _read_cards(self, cursor: Cursor, incremental: bool, size: int) -> Iterator[Page]:
        if "mode" in cursor:  # resuming a read that stopped part way
            mode = str(cursor["mode"])
            prev = dict(cursor.get("prev") or {})
            done = dict(cursor.get("done") or {})
            current, current_mark = cursor.get("board"), cursor.get("mark")
            after = cursor.get("after")
        else:
            mode = "inc" if incremental and cursor.get("boards") else "full"
            prev = dict(cursor.get("boards") or {}) if mode == "inc" else {}
            done, current, current_mark, after = {}, None, None, None
        todo = [b for b in self._card_board_ids() if b not in done]
        if not todo:
            yield Page([], {"boards": done})
            return
        for index, board in enumerate(todo):
            last_board = index == len(todo) - 1
            resuming = board == current
            mark = current_mark if resuming else None
            since = prev.get(board) if mode == "inc" else None
            if since is None:
                if mark is None:
                    mark = self._mark(board)
                records = self._board_cards(board)
            else:
                actions, newest = self._actions_since(board, str(since))
                if mark is None:
                    mark = newest or since
                records = self._changed_cards(board, actions)
            records.sort(key=lambda r: str(r["id"]))
            if resuming and after:
                records = [r for r in records if str(r["id"]) > after]
            finished = {**done, board: mark}
            for start in range(0, len(records), size):
                chunk = records[start:start + size]
                if start + size < len(records):
                    yield Page(chunk, _mid(mode, prev, done, board, mark, chunk[-1]["id"]))
                elif last_board:
                    yield Page(chunk, {"boards": finished})
                else:
                    yield Page(chunk, _mid(mode, prev, finished))
            if not records and last_board:
                yield Page([], {"boards": finished})
            done = finished

    def _mark(self, board: str) -> str:
        """Where the next incremental read of a board starts: its newest card action."""
        newest, date = self.api.newest_action(board)
        if newest:
            return newest
        when = None
        if date:
            try:
                when = email.utils.parsedate_to_datetime(date)
            except (TypeError, ValueError):
                when = None
        if when is None:
            when = datetime.now(UTC) - SKEW_FALLBACK
        # Date has whole seconds: one more second back keeps an action of this second in.
        return _iso(when - timedelta(seconds=1))

    def _actions_since(self, board: str, since: str) -> tuple[list[dict[str, Any]], str | None]:
        """Every card action after `since`, paging back through the newest-first feed."""
        limit = max(1, min(self._int_setting("actions_limit", ACTIONS_LIMIT_MAX),
                           ACTIONS_LIMIT_MAX))
        page = self.api.actions(board, since=since, limit=limit)
        found = list(page)
        newest = max((str(a["id"]) for a in page), default=None)
        while len(page) >= limit:
            oldest = min(str(a["id"]) for a in page)
            page = self.api.actions(board, since=since, before=oldest, limit=limit)
            if page and min(str(a["id"]) for a in page) >= oldest:
                raise TransientError(f"Trello actions of board {board}: paging back with "
                                     f"before={oldest} did not move back; try again later")
            found.extend(page)
        return found, newest

    def _board_cards(self, board: str) -> list[dict[str, Any]]:
        lists = {v["id"]: v for v in self.api.lists(board)}
        return [self._enrich(c, lists) for c in self.api.cards(board)]

    def _changed_cards(self, board: str, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The current state of every card the actions touched; tombstones for deleted ones."""
        deleted: set[str] = set()
        touched: set[str] = set()
        for action in actions:
            card = (action.get("data") or {}).get("card") or {}
            card_id = card.get("id")
            if not card_id:
                continue
            (deleted if action.get("type") == "deleteCard" else touched).add(str(card_id))
        touched -= deleted
        out: list[dict[str, Any]] = [{"id": i, "deleted": True} for i in sorted(deleted)]
        if not touched:
            return out
        lists = {v["id"]: v for v in self.api.lists(board)}
        for card in self.api.cards(board):
            if card["id"] in touched:
                touched.discard(card["id"])
                out.append(self._enrich(card, lists))
        for card_id in sorted(touched):  # moved to another board, or deleted since
            found = self.fetch("cards", card_id)
            out.append(found if found is not None else {"id": card_id, "deleted": True})
        return out

    @staticmethod
    def _enrich(card: dict[str, Any], lists: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        lst = lists.get(str(card.get("idList")))
        if lst is not None:
            card["list"] = {"id": lst["id"], "name": lst.get("name"),
                            "closed": bool(lst.get("closed"))}
        card["labelNames"] = [str(label["name"]) for label in card.get("labels") or []
                              if isinstance(label, Mapping) and label.get("name")]
        if "desc" in card:
            card["desc"] = strip_marker(card["desc"])
        return card

    # -- writes -----------------------------------------------------------------------------

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply up to 50 ops, one request each; one WriteResult per op, in order."""
        self._check_object(object)
        if len(ops) > BATCH_MAX:
            raise PermanentError(f"Trello takes at most {BATCH_MAX} records per write, "
                                 f"got {len(ops)}")
        ctx = _WriteContext()
        results: list[WriteResult] = []
        one = self._write_board if object == "boards" else self._write_card
        for i, op in enumerate(ops):
            try:
                results.append(one(op, ctx))
            except AuthError:
                raise  # the whole connection is refused: the engine stops the run
            except TransientError as exc:
                # Rate limited or down after the retries: leave the rest for later too.
                results.extend(WriteResult(o.key, False, o.external_id, error=exc)
                               for o in ops[i:])
                break
            except PermanentError as exc:
                results.append(WriteResult(op.key, False, op.external_id, error=exc))
        return results

    # cards

    def _write_card(self, op: WriteOp, ctx: _WriteContext) -> WriteResult:
        if op.action in ("archive", "delete"):
            ext = self._need_id(op, "cards")
            if op.action == "archive":
                self.api.update_card(ext, {"closed": True})
                return WriteResult(op.key, True, ext)
            try:
                self.api.delete_card(ext)
            except PermanentError as exc:
                if exc.status != 404 or isinstance(exc, AuthError):
                    raise
            return WriteResult(op.key, True, ext)  # deleted now or before: done either way
        record = op.record
        body = _body(record, CARD_WRITABLE)
        if op.action == "update" and op.external_id:
            board = record.get("idBoard")
            target = self._list_for(record, board, ctx) if board else None
            if target is None and _list_name(record) is not None:
                board = board or self.api.card(op.external_id)["idBoard"]
                target = self._list_for(record, str(board), ctx)
            if target is not None:
                body["idList"] = target
                body["idBoard"] = self._board_of_list(target)
            card = self.api.update_card(op.external_id, body)
            return WriteResult(op.key, True, card["id"], record=self._enriched(card, ctx))
        if op.action == "update":
            raise PermanentError(f"Trello card {op.key}: an update needs the card's id")
        return self._create_card(op, body, ctx)

    def _create_card(self, op: WriteOp, body: dict[str, Any],
                     ctx: _WriteContext) -> WriteResult:
        record = op.record
        board = str(record["idBoard"]) if record.get("idBoard") else None
        target = self._list_for(record, board, ctx) if board else None
        if target is None:
            target = self._default_list(board, ctx)
        board = self._board_of_list(target)
        ident = op.canonical_id or op.key
        if _truthy(self.connection.setting("dedupe_creates", True)):
            existing = self._markers(board, ctx).get(ident)
            if existing is not None:
                # Created before (a retried delivery): bring it up to date instead.
                body = {**body, "idList": target}
                if "desc" in body:
                    body["desc"] = _with_marker(body["desc"], ident)
                card = self.api.update_card(existing, body)
                return WriteResult(op.key, True, card["id"], record=self._enriched(card, ctx))
        body = {**body, "idList": target, "desc": _with_marker(body.get("desc"), ident)}
        card = self.api.create_card(body)
        ctx.markers.setdefault(board, {})[ident] = card["id"]
        return WriteResult(op.key, True, card["id"], record=self._enriched(card, ctx))

    def _enriched(self, card: dict[str, Any], ctx: _WriteContext) -> dict[str, Any]:
        lists = {v["id"]: v for v in ctx.lists.get(str(card.get("idBoard")), [])}
        return self._enrich(card, lists)

    def _lists(self, board: str, ctx: _WriteContext) -> list[dict[str, Any]]:
        if board not in ctx.lists:
            ctx.lists[board] = sorted(self.api.lists(board), key=lambda v: v.get("pos") or 0)
            for lst in ctx.lists[board]:
                self._list_board[str(lst["id"])] = board
        return ctx.lists[board]

    def _list_for(self, record: NativeRecord, board: str | None,
                  ctx: _WriteContext) -> str | None:
        """The list a record names: idList, or list.name on its board (None: it names none)."""
        if record.get("idList"):
            return str(record["idList"])
        name = _list_name(record)
        if name is None or board is None:
            return None
        lists = self._lists(board, ctx)
        for want_open in (True, False):
            for lst in lists:
                if lst.get("name") == name and bool(lst.get("closed")) != want_open:
                    return str(lst["id"])
        known = ", ".join(repr(v.get("name")) for v in lists if not v.get("closed"))
        raise PermanentError(f"Trello board {board} has no list named {name!r} (its lists: "
                             f"{known or 'none'}); change the status map of the task mapping "
                             "or add the list in Trello")

    def _default_list(self, board: str | None, ctx: _WriteContext) -> str:
        configured = self.connection.setting("default_list_id")
        if configured and (board is None or self._board_of_list(str(configured)) == board):
            return str(configured)
        if board is not None:
            for lst in self._lists(board, ctx):
                if not lst.get("closed"):
                    return str(lst["id"])
            raise PermanentError(f"Trello board {board} has no open list to put the card in")
        raise PermanentError("Trello card has no list: map its project (idBoard) or set "
                             "default_list_id on the connection")

    def _board_of_list(self, list_id: str) -> str:
        if list_id not in self._list_board:
            self._list_board[list_id] = str(self.api.list_(list_id)["idBoard"])
        return self._list_board[list_id]

    def _markers(self, board: str, ctx: _WriteContext) -> dict[str, str]:
        if board not in ctx.markers:
            index: dict[str, str] = {}
            for card in self.api.cards(board, fields="desc"):
                found = marker_of(card.get("desc"))
                if found is not None:
                    index.setdefault(found, str(card["id"]))
            ctx.markers[board] = index
        return ctx.markers[board]

    # boards

    def _write_board(self, op: WriteOp, ctx: _WriteContext) -> WriteResult:
        if op.action in ("archive", "delete"):
            ext = self._need_id(op, "boards")
            self.api.update_board(ext, {"closed": True})
            return WriteResult(op.key, True, ext)
        body = _body(op.record, BOARD_WRITABLE)
        if op.action == "update" and op.external_id:
            board = self.api.update_board(op.external_id, body)
            return WriteResult(op.key, True, board["id"], record=_clean_board(board))
        if op.action == "update":
            raise PermanentError(f"Trello board {op.key}: an update needs the board's id")
        if not body.get("name"):
            raise PermanentError(f"Trello board {op.key}: a new board needs a name")
        ident = op.canonical_id or op.key
        if _truthy(self.connection.setting("dedupe_creates", True)):
            if ctx.board_markers is None:
                ctx.board_markers = {}
                for b in self.api.member_boards(fields="desc"):
                    found = marker_of(b.get("desc"))
                    if found is not None:
                        ctx.board_markers.setdefault(found, str(b["id"]))
            existing = ctx.board_markers.get(ident)
            if existing is not None:
                if "desc" in body:
                    body["desc"] = _with_marker(body["desc"], ident)
                board = self.api.update_board(existing, body)
                return WriteResult(op.key, True, board["id"], record=_clean_board(board))
        board = self.api.create_board({**body, "desc": _with_marker(body.get("desc"), ident)})
        if ctx.board_markers is not None:
            ctx.board_markers[ident] = str(board["id"])
        return WriteResult(op.key, True, board["id"], record=_clean_board(board))

    @staticmethod
    def _need_id(op: WriteOp, object: str) -> str:
        if not op.external_id:
            raise PermanentError(f"Trello {object}: cannot {op.action} record {op.key}: it has "
                                 "no Trello id (it was never written there)")
        return op.external_id


# -- helpers ------------------------------------------------------------------------------------


def _mid(mode: str, prev: Mapping[str, Any], done: Mapping[str, Any], board: str | None = None,
         mark: str | None = None, after: str | None = None) -> Cursor:
    cursor: Cursor = {"mode": mode, "done": dict(done)}
    if prev:
        cursor["prev"] = dict(prev)
    if board is not None:
        cursor.update({"board": board, "mark": mark, "after": str(after)})
    return cursor


def _body(record: NativeRecord, writable: Sequence[str]) -> dict[str, Any]:
    """The fields Trello takes on a write, with flags as JSON booleans and no null desc."""
    body = {k: record[k] for k in writable if k in record}
    if "desc" in body and body["desc"] is None:
        body["desc"] = ""
    for flag in ("closed", "dueComplete"):
        value = body.get(flag)
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("true", "false"):
                body[flag] = low == "true"
    return body


def _list_name(record: NativeRecord) -> str | None:
    lst = record.get("list")
    name = lst.get("name") if isinstance(lst, Mapping) else None
    return str(name) if name not in (None, "") else None


def _clean_board(board: dict[str, Any]) -> dict[str, Any]:
    if "desc" in board:
        board["desc"] = strip_marker(board["desc"])
    return board


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() not in ("false", "0", "no", "off", "")


def _ms(value: Any) -> int:
    if not value:
        return 0
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return 0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _iso(when: datetime) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


