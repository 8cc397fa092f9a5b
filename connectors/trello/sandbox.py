"""A stateful emulator of the Trello REST API subset the connector uses, on loopback.

Faithful to the lead's vendor-apis.md, section 3:
- Auth: `key` and `token` query parameters, or `Authorization: OAuth oauth_consumer_key="KEY",
  oauth_token="TOKEN"`. A missing/unknown key answers 401 `invalid key`, a bad token 401
  `invalid token`, both as PLAIN TEXT, as Trello does.
- Errors are plain text: `invalid id` (400, an id that is not a 24-hex ObjectId),
  `The requested resource was not found.` (404), `invalid value for <param>` (400).
- Ids are ObjectIds whose first 8 hex characters are the creation unix time; dates are
  ISO-8601 UTC with milliseconds.
- GET /members/me/boards, /boards/{id}, /boards/{id}/lists?filter=, /boards/{id}/cards[/all|
  open|closed] (no paging, no modified-since), /cards/{id}, /lists/{id}, all with `fields=`.
- GET /boards/{id}/actions?filter=&since=&before=&limit= : NEWEST FIRST; since/before take an
  action id or an ISO date; limit defaults to 50, at most 1000.
- POST /cards (idList required), PUT /cards/{id} (closed=true archives), DELETE /cards/{id};
  POST /lists, PUT /lists/{id}; POST /boards (with the default To Do/Doing/Done lists),
  PUT /boards/{id}. Parameters come from the query string, a JSON body or a form body.
  Card changes record createCard / updateCard (with data.old) / deleteCard actions.
- Rate limits: 100 requests per 10 s per token and 300 per key (both configurable); every
  answer carries x-rate-limit-api-token-{max,remaining,interval-ms} and the api-key ones;
  over the limit: 429 `{"error":"API_TOKEN_LIMIT_EXCEEDED","message":"Rate limit exceeded"}`
  (or API_KEY_LIMIT_EXCEEDED), no Retry-After (none is documented).
- Webhooks: `deliver` POSTs `{"action","model","webhook"}` signed with X-Trello-Webhook =
  base64(HMAC-SHA1(app secret, rawBody + callbackURL)); `handshake` sends the HEAD request
  Trello sends when a webhook is created and returns the status it got.

Emulator choices where the reference is silent are marked [emu]: DELETE answers
`{"limits": {}}`; `since`/`before` are exclusive; an unknown label or member id in a write is
`invalid value for idLabels/idMembers`; a board's dateLastActivity follows its cards' changes.

Faults (429s, 5xx, dropped answers, latency) come from a seeded generator, so runs repeat.
Answers are built whole and sent in one write with TCP_NODELAY.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from connectors.sandbox_http import SandboxHandler, SandboxServer, ServedSandbox
from connectors.sandbox_pump import WebhookPump
from connectors.trello import fakedata
from connectors.trello.fakedata import ObjectIds, iso, short_link, slug

OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
OAUTH_PART = re.compile(r'(oauth_consumer_key|oauth_token)="([^"]*)"')
NOT_FOUND = "The requested resource was not found."
ACTIONS_LIMIT_DEFAULT = 50
ACTIONS_LIMIT_MAX = 1000
CARD_KEYS = ("id", "name", "desc", "closed", "idBoard", "idList", "idMembers", "idLabels",
             "labels", "pos", "due", "dueComplete", "start", "dateLastActivity", "idShort",
             "shortLink", "shortUrl", "url", "badges")
BOARD_KEYS = ("id", "name", "desc", "closed", "idOrganization", "url", "shortUrl",
              "dateLastActivity", "prefs")
LIST_KEYS = ("id", "name", "closed", "idBoard", "pos", "subscribed")
CARD_ACTION_TYPES = ("createCard", "updateCard", "deleteCard")


@dataclass(frozen=True)
class Faults:
    """Injected failures; fractions are per request, drawn from `seed`."""

    rate_limit: float = 0.0  # answer 429 API_TOKEN_LIMIT_EXCEEDED without doing anything
    server_error: float = 0.0  # answer 500/502/503 without doing anything
    drop_response: float = 0.0  # do the work, then close the connection unanswered
    latency: float = 0.0  # seconds added to every answer
    seed: int = 0


class ApiError(Exception):
    """An error answer: plain text like Trello's, or JSON when `body` is given."""

    def __init__(self, status: int, text: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.body = body


def sign(secret: str, body: bytes, callback_url: str) -> str:
    """Trello's X-Trello-Webhook: base64(HMAC-SHA1(secret, rawBody + callbackURL))."""
    digest = hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def parse_time(value: str) -> int | None:
    """An ISO date(time) as epoch ms; None if it is not one."""
    text = value.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ApiError(400, f"invalid value for {name}")


def _id_list(name: str, value: Any) -> list[str]:
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    out = [str(i).strip() for i in items if str(i).strip()]
    if not all(OBJECT_ID.match(i) for i in out):
        raise ApiError(400, f"invalid value for {name}")
    return out


def _pick(record: Mapping[str, Any], keys: Sequence[str], fields: str | None) -> dict[str, Any]:
    """The record with only `fields` (and id); all keys when fields is absent or 'all'."""
    if not fields or fields == "all":
        return {k: _copy(record.get(k)) for k in keys}
    wanted = {f.strip() for f in fields.split(",")}
    return {k: _copy(record.get(k)) for k in keys if k == "id" or k in wanted}


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


class TrelloSandbox(ServedSandbox):
    """The emulator: start it, point the connector at `.base_url` with `.api_key`/`.token`."""

    def __init__(self, seed: int = 1, count: int = 0, port: int = 0, *,
                 boards: int | None = None, api_key: str = "sandbox-key",
                 token: str = "sandbox-token", app_secret: str = "sandbox-app-secret",
                 faults: Faults = Faults(), token_limit: int = 100, key_limit: int = 300,
                 interval_ms: int = 10_000, clock: Callable[[], int] | None = None) -> None:
        self.seed = seed
        self.api_key = api_key
        self.token = token
        self.app_secret = app_secret  # signs webhook deliveries
        self.faults = faults
        self.token_limit = token_limit
        self.key_limit = key_limit
        self.interval_ms = interval_ms
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._last_ms = 0
        self._requested_port = port
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._fault_rng = random.Random(faults.seed)
        self._ids = ObjectIds(self._rng)
        self._token_window: deque[float] = deque()
        self._key_window: deque[float] = deque()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._pump: WebhookPump | None = None
        self.requests: deque[tuple[str, str]] = deque(maxlen=100_000)  # (method, path?query)
        self.auth_seen: deque[str] = deque(maxlen=10_000)  # "query" or "header" per request
        self.members: dict[str, dict[str, Any]] = {}
        self.boards: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, dict[str, Any]] = {}
        self.cards: dict[str, dict[str, Any]] = {}
        self.actions: list[dict[str, Any]] = []  # oldest first
        self._delivered = 0  # actions already sent by deliver_pending
        n_boards = boards if boards is not None else (3 if count else 1)
        data = fakedata.generate(seed, count, n_boards, self._ids, self._rng)
        for m in data.members:
            self.members[m["id"]] = m
        self.me = data.members[0]
        for b in data.boards:
            self.boards[b["id"]] = b
        for lst in data.lists:
            self.lists[lst["id"]] = lst
        for label in data.labels:
            self.labels[label["id"]] = label
        for c in data.cards:
            self.cards[c["id"]] = c

    # -- lifecycle ----------------------------------------------------------------------------

    label = "Trello"

    def _make_server(self) -> SandboxServer:
        return _Server(("127.0.0.1", self._requested_port), _Handler)

    def _before_stop(self) -> None:
        self.unsubscribe()

    @property
    def base_url(self) -> str:
        """The URL to configure as the connection's base_url (Trello's ends in /1)."""
        return self.origin + "/1"

    # -- helpers for tests (server-side changes, as a Trello user would make them) ------------

    def board_lists(self, board_id: str) -> list[dict[str, Any]]:
        """A board's lists (open and closed) by position."""
        with self._lock:
            return sorted((dict(v) for v in self.lists.values() if v["idBoard"] == board_id),
                          key=lambda v: v["pos"])

    def list_named(self, board_id: str, name: str) -> dict[str, Any]:
        """A board's list by name."""
        return next(v for v in self.board_lists(board_id) if v["name"] == name)

    def create_card(self, id_list: str, **fields: Any) -> dict[str, Any]:
        """Create a card server-side (records a createCard action)."""
        with self._lock:
            card: dict[str, Any] = _copy(self._create_card({"idList": id_list, **fields}))
            return card

    def update_card(self, card_id: str, **fields: Any) -> dict[str, Any]:
        """Change a card server-side (records an updateCard action)."""
        with self._lock:
            card: dict[str, Any] = _copy(self._update_card(self._card(card_id), fields))
            return card

    def delete_card(self, card_id: str) -> None:
        """Delete a card server-side (records a deleteCard action)."""
        with self._lock:
            self._delete_card(self._card(card_id))

    def rename_list(self, list_id: str, name: str) -> None:
        """Rename a list (records no card action, as in Trello)."""
        with self._lock:
            self.lists[list_id]["name"] = name

    def card_actions(self, board_id: str) -> list[dict[str, Any]]:
        """A board's card actions, newest first."""
        with self._lock:
            return [_copy(a) for a in reversed(self.actions)
                    if a["data"].get("board", {}).get("id") == board_id
                    and a["type"] in CARD_ACTION_TYPES]

    # -- webhooks -----------------------------------------------------------------------------

    def handshake(self, callback_url: str) -> int:
        """The HEAD request Trello sends when a webhook is created; the status answered."""
        return httpx.head(callback_url, timeout=5.0).status_code

    def deliver(self, callback_url: str, action: Mapping[str, Any], *,
                secret: str | None = None, tamper: Callable[[bytes], bytes] | None = None,
                signature: str | None = None) -> httpx.Response:
        """POST one signed delivery of `action` (model: its board) to `callback_url`.

        `tamper` changes the body after signing; `signature` replaces the header value.
        """
        board_id = action.get("data", {}).get("board", {}).get("id")
        with self._lock:
            model = _pick(self.boards[board_id], BOARD_KEYS, None) \
                if board_id in self.boards else {}
        body = orjson.dumps({"action": action, "model": model, "webhook": {
            "id": "5" + "0" * 23, "description": "liaison", "idModel": board_id,
            "callbackURL": callback_url, "active": True}})
        sig = signature if signature is not None else sign(secret or self.app_secret, body,
                                                           callback_url)
        if tamper is not None:
            body = tamper(body)
        return httpx.post(callback_url, content=body, timeout=5.0,
                          headers={"X-Trello-Webhook": sig,
                                   "Content-Type": "application/json"})

    def deliver_pending(self, callback_url: str) -> list[httpx.Response]:
        """Deliver every action recorded since the last call, oldest first."""
        with self._lock:
            pending = self.actions[self._delivered:]
            self._delivered = len(self.actions)
        return [self.deliver(callback_url, a) for a in pending]

    def subscribe(self, callback_url: str, *, interval: float = 0.5) -> WebhookPump:
        """Deliver new actions to `callback_url` every `interval` s until stopped.

        Like deliver_pending, but an action counts as delivered only once the receiver
        answered 2xx (Trello retries failed deliveries).
        """
        self.unsubscribe()

        def pending() -> bool:
            with self._lock:
                return self._delivered < len(self.actions)

        def send() -> None:
            while True:
                with self._lock:
                    if self._delivered >= len(self.actions):
                        return
                    index = self._delivered
                    action = self.actions[index]
                if not self.deliver(callback_url, action).is_success:
                    return  # tried again next tick
                with self._lock:
                    self._delivered = max(self._delivered, index + 1)

        self._pump = WebhookPump("trello-sandbox-webhooks", pending, send,
                                 interval=interval).start()
        return self._pump

    def unsubscribe(self) -> None:
        """Stop automatic delivery (actions not delivered yet stay pending)."""
        if self._pump is not None:
            self._pump.stop()
            self._pump = None

    # -- request handling ---------------------------------------------------------------------

    def authenticate(self, query: Mapping[str, list[str]], header: str | None) -> str:
        """The token of an authorised request; raises the plain-text 401 otherwise."""
        key = (query.get("key") or [""])[0]
        token = (query.get("token") or [""])[0]
        how = "query"
        if header and header.startswith("OAuth "):
            parts = dict(OAUTH_PART.findall(header))
            key = parts.get("oauth_consumer_key", key)
            token = parts.get("oauth_token", token)
            how = "header"
        self.auth_seen.append(how)
        if not key:
            raise ApiError(401, "invalid key")
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise ApiError(401, "invalid key")
        if not token or not hmac.compare_digest(token.encode(), self.token.encode()):
            raise ApiError(401, "invalid token")
        return token

    def throttle(self) -> tuple[ApiError | None, dict[str, str]]:
        """Count the request in both windows; a 429 if either is full, and the headers."""
        now = time.monotonic()
        span = self.interval_ms / 1000.0
        with self._lock:
            for window in (self._token_window, self._key_window):
                while window and now - window[0] > span:
                    window.popleft()
            error = None
            if len(self._token_window) >= self.token_limit:
                error = ApiError(429, "", {"error": "API_TOKEN_LIMIT_EXCEEDED",
                                           "message": "Rate limit exceeded"})
            elif len(self._key_window) >= self.key_limit:
                error = ApiError(429, "", {"error": "API_KEY_LIMIT_EXCEEDED",
                                           "message": "Rate limit exceeded"})
            else:
                self._token_window.append(now)
                self._key_window.append(now)
            headers = {
                "x-rate-limit-api-token-interval-ms": str(self.interval_ms),
                "x-rate-limit-api-token-max": str(self.token_limit),
                "x-rate-limit-api-token-remaining": str(max(0, self.token_limit
                                                            - len(self._token_window))),
                "x-rate-limit-api-key-interval-ms": str(self.interval_ms),
                "x-rate-limit-api-key-max": str(self.key_limit),
                "x-rate-limit-api-key-remaining": str(max(0, self.key_limit
                                                          - len(self._key_window))),
            }
        return error, headers

    def fault(self) -> ApiError | str | None:
        """The injected fault for the next request (None: serve it)."""
        f = self.faults
        with self._lock:
            roll = self._fault_rng.random()
            drop = self._fault_rng.random()
        if roll < f.rate_limit:
            return ApiError(429, "", {"error": "API_TOKEN_LIMIT_EXCEEDED",
                                      "message": "Rate limit exceeded"})
        if roll < f.rate_limit + f.server_error:
            status = (500, 502, 503)[int(roll * 1000) % 3]
            return ApiError(status, "Internal Server Error")
        if drop < f.drop_response:
            return "drop"
        return None

    def handle(self, method: str, path: str, params: dict[str, Any]) -> Any:
        """Serve one authorised request; the JSON answer, or ApiError."""
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "1":
            raise ApiError(404, NOT_FOUND)
        parts = parts[1:]
        with self._lock:
            return self._route(method, parts, params)

    def _route(self, method: str, parts: list[str], p: dict[str, Any]) -> Any:
        fields = p.get("fields")
        fields = str(fields) if fields is not None else None
        head = parts[0] if parts else ""
        n = len(parts)
        if head == "members" and n == 3 and parts[1] == "me" and parts[2] == "boards" \
                and method == "GET":
            wanted = str(p.get("filter") or "all")
            return [_pick(b, BOARD_KEYS, fields) for b in sorted(self.boards.values(),
                                                                  key=lambda b: b["id"])
                    if wanted == "all" or b["closed"] == (wanted == "closed")]
        if head == "boards":
            if n == 1 and method == "POST":
                return _pick(self._create_board(p), BOARD_KEYS, None)
            if n < 2:
                raise ApiError(404, NOT_FOUND)
            board = self._board(parts[1])
            if n == 2 and method == "GET":
                return _pick(board, BOARD_KEYS, fields)
            if n == 2 and method == "PUT":
                return _pick(self._update_board(board, p), BOARD_KEYS, None)
            if n == 3 and parts[2] == "lists" and method == "GET":
                wanted = str(p.get("filter") or "open")
                return [_pick(v, LIST_KEYS, fields) for v in self.board_lists(board["id"])
                        if wanted == "all" or v["closed"] == (wanted == "closed")]
            if parts[2] == "cards" and method == "GET" and n in (3, 4):
                which = parts[3] if n == 4 else "open"
                if which not in ("all", "open", "closed"):
                    raise ApiError(400, "invalid value for filter")
                return [_pick(c, CARD_KEYS, fields) for c in self._board_cards(board["id"])
                        if which == "all" or c["closed"] == (which == "closed")]
            if n == 3 and parts[2] == "actions" and method == "GET":
                return self._actions(board["id"], p)
            raise ApiError(404, NOT_FOUND)
        if head == "cards":
            if n == 1 and method == "POST":
                return _pick(self._create_card(p), CARD_KEYS, None)
            if n != 2:
                raise ApiError(404, NOT_FOUND)
            card = self._card(parts[1])
            if method == "GET":
                return _pick(card, CARD_KEYS, fields)
            if method == "PUT":
                return _pick(self._update_card(card, p), CARD_KEYS, None)
            if method == "DELETE":
                self._delete_card(card)
                return {"limits": {}}  # [emu]
        if head == "lists":
            if n == 1 and method == "POST":
                board = self._board(str(p.get("idBoard") or ""), param="idBoard")
                name = str(p.get("name") or "").strip()
                if not name:
                    raise ApiError(400, "invalid value for name")
                last = max((v["pos"] for v in self.board_lists(board["id"])), default=0)
                lst = {"id": self._new_id(), "name": name, "closed": False,
                       "idBoard": board["id"], "pos": last + 16384, "subscribed": False}
                self.lists[lst["id"]] = lst
                return _pick(lst, LIST_KEYS, None)
            if n == 2:
                lst = self._list(parts[1])
                if method == "GET":
                    return _pick(lst, LIST_KEYS, fields)
                if method == "PUT":
                    if "name" in p:
                        lst["name"] = str(p["name"])
                    if "closed" in p:
                        lst["closed"] = _bool("closed", p["closed"])
                    return _pick(lst, LIST_KEYS, None)
        raise ApiError(404, NOT_FOUND)

    # -- state changes ------------------------------------------------------------------------

    def _now(self) -> int:
        # Strictly rising ms: two changes never share a dateLastActivity.
        ms = max(self._clock(), self._last_ms + 1)
        self._last_ms = ms
        return ms

    def _new_id(self, ms: int | None = None) -> str:
        return self._ids.make((ms if ms is not None else self._now()) // 1000)

    def _board(self, board_id: str, param: str | None = None) -> dict[str, Any]:
        if not OBJECT_ID.match(board_id):
            raise ApiError(400, f"invalid value for {param}" if param else "invalid id")
        board = self.boards.get(board_id)
        if board is None:
            raise ApiError(400 if param else 404,
                           f"invalid value for {param}" if param else NOT_FOUND)
        return board

    def _list(self, list_id: str, param: str | None = None) -> dict[str, Any]:
        if not OBJECT_ID.match(list_id):
            raise ApiError(400, f"invalid value for {param}" if param else "invalid id")
        lst = self.lists.get(list_id)
        if lst is None:
            raise ApiError(400 if param else 404,
                           f"invalid value for {param}" if param else NOT_FOUND)
        return lst

    def _card(self, card_id: str) -> dict[str, Any]:
        if not OBJECT_ID.match(card_id):
            raise ApiError(400, "invalid id")
        card = self.cards.get(card_id)
        if card is None:
            raise ApiError(404, NOT_FOUND)
        return card

    def _board_cards(self, board_id: str) -> list[dict[str, Any]]:
        lists = {v["id"]: v["pos"] for v in self.lists.values() if v["idBoard"] == board_id}
        # Trello orders by list then position, not by id: the connector must not rely on it.
        return sorted((c for c in self.cards.values() if c["idBoard"] == board_id),
                      key=lambda c: (lists.get(c["idList"], 0), c["pos"]))

    def _actions(self, board_id: str, p: dict[str, Any]) -> list[dict[str, Any]]:
        raw_limit = p.get("limit", ACTIONS_LIMIT_DEFAULT)
        try:
            limit = int(raw_limit)
        except (TypeError, ValueError):
            raise ApiError(400, "invalid value for limit") from None
        if not 0 <= limit <= ACTIONS_LIMIT_MAX:
            raise ApiError(400, "invalid value for limit")
        types = {t for t in str(p.get("filter") or "all").split(",") if t}
        since = self._bound("since", p.get("since"))
        before = self._bound("before", p.get("before"))
        out: list[dict[str, Any]] = []
        for action in reversed(self.actions):  # newest first
            if len(out) >= limit:
                break
            if action["data"].get("board", {}).get("id") != board_id:
                continue
            if "all" not in types and action["type"] not in types:
                continue
            if since is not None and not since(action, 1):
                continue
            if before is not None and not before(action, -1):
                continue
            out.append(_copy(action))
        return out

    @staticmethod
    def _bound(name: str, raw: Any) -> Callable[[dict[str, Any], int], bool] | None:
        """since/before as a test: an action id compares by id, a date by the action's date."""
        if raw is None or raw == "":
            return None
        text = str(raw)
        if OBJECT_ID.match(text):
            return lambda a, sign_: (a["id"] > text) if sign_ > 0 else (a["id"] < text)
        ms = parse_time(text)
        if ms is None:
            raise ApiError(400, f"invalid value for {name}")
        return lambda a, sign_: ((parse_time(a["date"]) or 0) > ms) if sign_ > 0 \
            else ((parse_time(a["date"]) or 0) < ms)

    def _record(self, kind: str, data: dict[str, Any], ms: int) -> None:
        me = self.me
        self.actions.append({
            "id": self._new_id(ms), "idMemberCreator": me["id"], "type": kind,
            "date": iso(ms), "data": data,
            "memberCreator": {"id": me["id"], "username": me["username"],
                              "fullName": me["fullName"]}})

    def _touch_board(self, board_id: str, ms: int) -> None:
        board = self.boards.get(board_id)
        if board is not None:
            board["dateLastActivity"] = iso(ms)

    def _card_ref(self, card: Mapping[str, Any]) -> dict[str, Any]:
        return {"id": card["id"], "name": card["name"], "idShort": card["idShort"],
                "shortLink": card["shortLink"]}

    def _board_ref(self, board_id: str) -> dict[str, Any]:
        board = self.boards[board_id]
        return {"id": board_id, "name": board["name"], "shortLink": board["shortLink"]}

    def _list_ref(self, list_id: str) -> dict[str, Any]:
        return {"id": list_id, "name": self.lists[list_id]["name"]}

    def _card_values(self, card: dict[str, Any], p: Mapping[str, Any],
                     board_id: str) -> dict[str, Any]:
        """Validated new values for the card fields present in `p`."""
        out: dict[str, Any] = {}
        if "name" in p:
            out["name"] = "" if p["name"] is None else str(p["name"])
        if "desc" in p:
            out["desc"] = "" if p["desc"] is None else str(p["desc"])
        for key in ("due", "start"):
            if key in p:
                value = p[key]
                if value is None or value == "" or value == "null":
                    out[key] = None
                else:
                    ms = parse_time(str(value))
                    if ms is None:
                        raise ApiError(400, f"invalid value for {key}")
                    out[key] = iso(ms)
        for key in ("dueComplete", "closed"):
            if key in p:
                out[key] = _bool(key, p[key])
        if "idMembers" in p:
            members = _id_list("idMembers", p["idMembers"])
            if any(m not in self.members for m in members):
                raise ApiError(400, "invalid value for idMembers")
            out["idMembers"] = members
        if "idLabels" in p:
            labels = _id_list("idLabels", p["idLabels"])
            if any(self.labels.get(i, {}).get("idBoard") != board_id for i in labels):
                raise ApiError(400, "invalid value for idLabels")
            out["idLabels"] = labels
            out["labels"] = [{"id": i, "name": self.labels[i]["name"],
                              "color": self.labels[i]["color"]} for i in labels]
        if "pos" in p:
            out["pos"] = self._pos(board_id, card.get("idList"), p["pos"])
        return out

    def _pos(self, board_id: str, list_id: Any, raw: Any) -> float | int:
        here = [c["pos"] for c in self.cards.values() if c["idList"] == list_id]
        if raw in ("top", "bottom", None, ""):
            if raw == "top":
                return min(here, default=65535) / 2
            return max(here, default=0) + 65535
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ApiError(400, "invalid value for pos") from None

    def _create_card(self, p: Mapping[str, Any]) -> dict[str, Any]:
        if not p.get("idList"):
            raise ApiError(400, "invalid value for idList")
        lst = self._list(str(p["idList"]), param="idList")
        board_id = lst["idBoard"]
        ms = self._now()
        link = short_link(self._rng)
        short = 1 + max((c["idShort"] for c in self.cards.values() if c["idBoard"] == board_id),
                        default=0)
        card: dict[str, Any] = {
            "id": self._new_id(ms), "name": "", "desc": "", "closed": False,
            "idBoard": board_id, "idList": lst["id"], "idMembers": [], "idLabels": [],
            "labels": [], "pos": 0, "due": None, "dueComplete": False, "start": None,
            "dateLastActivity": iso(ms), "idShort": short, "shortLink": link,
            "shortUrl": f"https://trello.com/c/{link}", "url": "", "badges": {}}
        card.update(self._card_values(card, {"pos": "bottom", **p}, board_id))
        card["url"] = f"https://trello.com/c/{link}/{short}-{slug(card['name'])}"
        self.cards[card["id"]] = card
        self._record("createCard", {"card": self._card_ref(card),
                                    "list": self._list_ref(lst["id"]),
                                    "board": self._board_ref(board_id)}, ms)
        self._touch_board(board_id, ms)
        return card

    def _update_card(self, card: dict[str, Any], p: Mapping[str, Any]) -> dict[str, Any]:
        board_id = card["idBoard"]
        moved_to: dict[str, Any] | None = None
        if "idBoard" in p and p["idBoard"] not in (None, "", board_id):
            board_id = self._board(str(p["idBoard"]), param="idBoard")["id"]
        if p.get("idList"):
            moved_to = self._list(str(p["idList"]), param="idList")
            board_id = moved_to["idBoard"]
        elif board_id != card["idBoard"]:
            raise ApiError(400, "invalid value for idList")  # a new board needs its list
        values = self._card_values(card, p, board_id)
        if moved_to is not None:
            values["idList"] = moved_to["id"]
        if board_id != card["idBoard"]:
            values["idBoard"] = board_id
        old = {k: _copy(card.get(k)) for k, v in values.items() if card.get(k) != v}
        ms = self._now()
        before_list = card["idList"]
        card.update(values)
        card["dateLastActivity"] = iso(ms)
        data: dict[str, Any] = {"card": {**self._card_ref(card),
                                         **{k: _copy(card[k]) for k in old}},
                                "old": {k: v for k, v in old.items() if k != "labels"},
                                "board": self._board_ref(card["idBoard"]),
                                "list": self._list_ref(card["idList"])}
        if "idList" in old:
            data["listBefore"] = self._list_ref(before_list)
            data["listAfter"] = self._list_ref(card["idList"])
        self._record("updateCard", data, ms)
        self._touch_board(card["idBoard"], ms)
        return card

    def _delete_card(self, card: dict[str, Any]) -> None:
        ms = self._now()
        del self.cards[card["id"]]
        self._record("deleteCard", {"card": {"id": card["id"], "idShort": card["idShort"]},
                                    "board": self._board_ref(card["idBoard"]),
                                    "list": self._list_ref(card["idList"])}, ms)
        self._touch_board(card["idBoard"], ms)

    def _create_board(self, p: Mapping[str, Any]) -> dict[str, Any]:
        name = str(p.get("name") or "").strip()
        if not name:
            raise ApiError(400, "invalid value for name")
        ms = self._now()
        link = short_link(self._rng)
        board: dict[str, Any] = {"id": self._new_id(ms), "name": name,
                                 "desc": str(p.get("desc") or ""),
                 "closed": False, "idOrganization": p.get("idOrganization"),
                 "url": f"https://trello.com/b/{link}/{slug(name)}",
                 "shortUrl": f"https://trello.com/b/{link}", "shortLink": link,
                 "dateLastActivity": iso(ms), "prefs": {"permissionLevel": "private"}}
        self.boards[board["id"]] = board
        if _bool("defaultLists", p.get("defaultLists", True)):
            for pos, list_name in enumerate(fakedata.LIST_NAMES, start=1):
                lst = {"id": self._new_id(ms), "name": list_name, "closed": False,
                       "idBoard": board["id"], "pos": 16384 * pos, "subscribed": False}
                self.lists[lst["id"]] = lst
        self._record("createBoard", {"board": self._board_ref(board["id"])}, ms)
        return board

    def _update_board(self, board: dict[str, Any], p: Mapping[str, Any]) -> dict[str, Any]:
        old: dict[str, Any] = {}
        if "name" in p:
            name = str(p["name"] or "").strip()
            if not name:
                raise ApiError(400, "invalid value for name")
            old["name"], board["name"] = board["name"], name
        if "desc" in p:
            old["desc"], board["desc"] = board["desc"], "" if p["desc"] is None \
                else str(p["desc"])
        if "closed" in p:
            old["closed"], board["closed"] = board["closed"], _bool("closed", p["closed"])
        ms = self._now()
        board["dateLastActivity"] = iso(ms)
        self._record("updateBoard", {"board": self._board_ref(board["id"]), "old": old}, ms)
        return board


# -- HTTP plumbing ----------------------------------------------------------------------------


class _Server(SandboxServer):
    sandbox: TrelloSandbox


class _Handler(SandboxHandler):
    methods: ClassVar[frozenset[str]] = frozenset({"DELETE", "GET", "POST", "PUT"})
    server: _Server

    def _serve(self, method: str) -> None:
        sandbox = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        # Record the path without the credentials (tests check that none were sent in it).
        sandbox.requests.append((method, self.path))
        if sandbox.faults.latency:
            time.sleep(sandbox.faults.latency)
        try:
            sandbox.authenticate(query, self.headers.get("Authorization"))
        except ApiError as exc:
            self._answer(exc, {})
            return
        limited, headers = sandbox.throttle()
        if limited is not None:
            self._answer(limited, headers)
            return
        fault = sandbox.fault()
        if isinstance(fault, ApiError):
            self._answer(fault, headers)
            return
        params: dict[str, Any] = {k: v[0] for k, v in query.items()
                                  if k not in ("key", "token")}
        try:
            params.update(self._body_params(raw))
            payload = orjson.dumps(sandbox.handle(method, parts.path, params))
        except ApiError as exc:
            self._answer(exc, headers)
            return
        if fault == "drop":
            self.close_connection = True
            return
        self._send(200, payload, "application/json; charset=utf-8", headers)

    def _body_params(self, raw: bytes) -> dict[str, Any]:
        if not raw:
            return {}
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise ApiError(400, "invalid JSON") from None
            if not isinstance(body, dict):
                raise ApiError(400, "invalid JSON")
            return body
        form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in form.items()}

    def _answer(self, exc: ApiError, headers: dict[str, str]) -> None:
        if exc.body is not None:
            self._send(exc.status, orjson.dumps(exc.body), "application/json; charset=utf-8",
                       headers)
        else:
            self._send(exc.status, exc.text.encode(), "text/plain; charset=utf-8", headers)

    def _send(self, status: int, payload: bytes, kind: str, headers: dict[str, str]) -> None:
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {kind}",
                 f"Content-Length: {len(payload)}",
                 f"Date: {self.date_time_string()}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + payload)  # one write: see the module docstring


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground and print how to connect to it."""
    parser = argparse.ArgumentParser(prog="hub sandbox trello",
                                     description="Run the Trello REST API emulator on loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=200, help="fake cards to create")
    parser.add_argument("--boards", type=int, default=3, help="fake boards to create")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--api-key", default="sandbox-key")
    parser.add_argument("--token", default="sandbox-token")
    parser.add_argument("--app-secret", default="sandbox-app-secret",
                        help="the secret webhook deliveries are signed with")
    parser.add_argument("--token-limit", type=int, default=100,
                        help="requests per 10 s per token before 429")
    parser.add_argument("--rate-limit", type=float, default=0.0,
                        help="fraction of requests answered 429")
    parser.add_argument("--server-error", type=float, default=0.0,
                        help="fraction of requests answered 5xx")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per answer")
    parser.add_argument("--webhook-url", help="POST signed card actions here; it is the "
                        "callback URL Trello signs (e.g. http://127.0.0.1:8000/webhooks/trello)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    faults = Faults(rate_limit=args.rate_limit, server_error=args.server_error,
                    latency=args.latency, seed=args.seed)
    sandbox = TrelloSandbox(seed=args.seed, count=args.count, boards=args.boards,
                            port=args.port, api_key=args.api_key, token=args.token,
                            app_secret=args.app_secret, faults=faults,
                            token_limit=args.token_limit)
    with sandbox:
        print(f"Trello sandbox listening on {sandbox.base_url}")
        print(f"  {len(sandbox.boards)} boards, {len(sandbox.cards)} cards (seed {args.seed})")
        print("  connection settings:")
        print(f"    base_url: {sandbox.base_url}")
        print("    api_key: ${TRELLO_API_KEY}")
        print("    token: ${TRELLO_TOKEN}")
        print("    webhook_secret: ${TRELLO_WEBHOOK_SECRET}")
        print(f"  export TRELLO_API_KEY={sandbox.api_key}   # sandbox values, not real secrets")
        print(f"  export TRELLO_TOKEN={sandbox.token}")
        print(f"  export TRELLO_WEBHOOK_SECRET={sandbox.app_secret}")
        if args.webhook_url:
            sandbox.subscribe(args.webhook_url)
            print(f"  webhooks: card actions are sent to {args.webhook_url}, signed with "
                  "${TRELLO_WEBHOOK_SECRET} over the body and that callback URL (set "
                  f"callback_url: {args.webhook_url} if the hub sees another URL)")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
