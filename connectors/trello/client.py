"""Thin typed calls to the Trello REST endpoints the connector uses.

Every call goes through `hub.http` (retries, timeouts, error translation); this module only
knows paths, parameters and answer shapes.

Credentials travel in Trello's documented header, `Authorization: OAuth
oauth_consumer_key="KEY", oauth_token="TOKEN"`, never as `key=&token=` query parameters:
httpx logs every request URL (INFO, logger "httpx"), proxies and access logs keep query
strings, and hub.http redacts only header values from its messages. As a second guard,
every error raised here has the bare key and token replaced by *** before it leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.errors import HubError
from hub.http import HttpClient

DEFAULT_BASE_URL = "https://api.trello.com/1"
BOARD_FIELDS = "name,desc,closed,idOrganization,url,shortUrl,dateLastActivity"
CARD_FIELDS = ("name,desc,closed,idBoard,idList,idMembers,idLabels,labels,pos,due,dueComplete,"
               "start,dateLastActivity,idShort,shortLink,shortUrl,url")
LIST_FIELDS = "name,closed,idBoard,pos"
CARD_ACTIONS = "createCard,updateCard,deleteCard"
ACTIONS_LIMIT_MAX = 1000  # Trello's maximum `limit` for actions
REDACTED = "***"

Credentials = Callable[[], tuple[str, str]]  # (api key, token), read at use


def oauth_header(key: str, token: str) -> dict[str, str]:
    """Trello's Authorization header for an API key and a token."""
    return {"Authorization": f'OAuth oauth_consumer_key="{key}", oauth_token="{token}"'}


class TrelloClient:
    """The Trello endpoints the connector calls; answers are Trello's JSON as is."""

    def __init__(self, http: HttpClient, credentials: Credentials) -> None:
        self.http = http
        self._credentials = credentials

    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              body: Mapping[str, Any] | None = None) -> Any:
        try:
            response = self.http.request(method, path, params=params,
                                         json=dict(body) if body is not None else None)
            return self.http.parse_json(response, method, path)
        except HubError as exc:
            self._scrub(exc)
            raise

    def _scrub(self, exc: HubError) -> None:
        """Replace the bare key and token in the error's message (in place, type kept)."""
        try:
            secrets = [s for s in self._credentials() if len(s) >= 4]
        except HubError:
            return
        text = str(exc)
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        exc.args = (text,)

    # -- boards -----------------------------------------------------------------------------

    def member_boards(self, fields: str = BOARD_FIELDS) -> list[dict[str, Any]]:
        """GET /members/me/boards: every board of the token's member, open and closed."""
        return list(self._call("GET", "/members/me/boards",
                               params={"fields": fields, "filter": "all"}) or [])

    def board(self, board_id: str) -> dict[str, Any]:
        """GET /boards/{id}."""
        result: dict[str, Any] = self._call("GET", f"/boards/{board_id}",
                                            params={"fields": BOARD_FIELDS})
        return result

    def create_board(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /boards (Trello adds its default To Do/Doing/Done lists)."""
        result: dict[str, Any] = self._call("POST", "/boards", body=body)
        return result

    def update_board(self, board_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT /boards/{id}."""
        result: dict[str, Any] = self._call("PUT", f"/boards/{board_id}", body=body)
        return result

    # -- lists ------------------------------------------------------------------------------

    def lists(self, board_id: str, which: str = "all") -> list[dict[str, Any]]:
        """GET /boards/{id}/lists?filter=open|closed|all."""
        return list(self._call("GET", f"/boards/{board_id}/lists",
                               params={"filter": which, "fields": LIST_FIELDS}) or [])

    def list_(self, list_id: str) -> dict[str, Any]:
        """GET /lists/{id}: a list (its idBoard says which board it is on)."""
        result: dict[str, Any] = self._call("GET", f"/lists/{list_id}",
                                            params={"fields": LIST_FIELDS})
        return result

    # -- cards ------------------------------------------------------------------------------

    def cards(self, board_id: str, fields: str = CARD_FIELDS) -> list[dict[str, Any]]:
        """GET /boards/{id}/cards/all: every card, archived included (no paging)."""
        return list(self._call("GET", f"/boards/{board_id}/cards/all",
                               params={"fields": fields}) or [])

    def card(self, card_id: str) -> dict[str, Any]:
        """GET /cards/{id}."""
        result: dict[str, Any] = self._call("GET", f"/cards/{card_id}",
                                            params={"fields": CARD_FIELDS})
        return result

    def create_card(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /cards (idList required)."""
        result: dict[str, Any] = self._call("POST", "/cards", body=body)
        return result

    def update_card(self, card_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT /cards/{id} (closed=true archives)."""
        result: dict[str, Any] = self._call("PUT", f"/cards/{card_id}", body=body)
        return result

    def delete_card(self, card_id: str) -> None:
        """DELETE /cards/{id}."""
        self._call("DELETE", f"/cards/{card_id}")

    # -- actions ----------------------------------------------------------------------------

    def actions(self, board_id: str, *, since: str | None, before: str | None = None,
                limit: int = ACTIONS_LIMIT_MAX,
                types: str = CARD_ACTIONS) -> list[dict[str, Any]]:
        """GET /boards/{id}/actions: one page, NEWEST FIRST (page back with before=)."""
        params: dict[str, Any] = {"filter": types, "limit": min(limit, ACTIONS_LIMIT_MAX)}
        if since:
            params["since"] = since
        if before:
            params["before"] = before
        return list(self._call("GET", f"/boards/{board_id}/actions", params=params) or [])

    def newest_action(self, board_id: str) -> tuple[str | None, str | None]:
        """The id of the board's newest card action, and the server's Date header.

        The Date (Trello's clock) is the `since` mark for a board with no card actions yet,
        so the skew between our clock and Trello's cannot open a gap.
        """
        path = f"/boards/{board_id}/actions"
        try:
            response = self.http.request("GET", path,
                                         params={"filter": CARD_ACTIONS, "limit": 1})
            found = self.http.parse_json(response, "GET", path) or []
        except HubError as exc:
            self._scrub(exc)
            raise
        newest = str(found[0]["id"]) if found and isinstance(found[0], dict) else None
        return newest, response.headers.get("Date")
