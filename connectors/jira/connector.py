"""The Jira Cloud connector: projects (read) and issues (read, incremental, write), REST v3.

Auth
    Basic `email:api_token` (the token a secret, read at each request) against the site's
    base URL, https://<site>.atlassian.net (setting `base_url`, or `site` for the name).
Reads
    projects  GET /rest/api/3/project/search?startAt&maxResults&orderBy=key&expand=description,
              lead,url until isLast. Jira keeps no modified time on projects, so every read is
              a full read (incremental=False declared); a deleted project disappears and the
              engine's full refresh notices. Cursor mid-read {"startAt": n}; the last page's
              cursor is None (the next read starts from the beginning).
    issues    POST /rest/api/3/search/jql with
                  [project in (<projects>) AND ]updated >= "<yyyy-MM-dd HH:mm>"
                  ORDER BY updated ASC, key ASC
              paged with nextPageToken until isLast (or no token). A full read starts the
              window at 1970 (the new search refuses unbounded JQL), an incremental read at
              the cursor's "since" minus `overlap_minutes`. JQL datetimes have minute precision
              and are read in the API user's time zone (setting `time_zone`, else /myself's
              timeZone), so the literal is floored to the minute in that zone (see
              client.jql_datetime for the hour a clock goes back) and the window overlaps the
              last read; issues already yielded are skipped by (id, updated), kept in the
              cursor as "seen" ("<id>@<updated ms>", the newest MAX_SEEN of the overlap).
              Final cursor {"since": ms, "seen": [...]}: "since" is the newest `updated` read,
              but never later than when the read started (an issue changed while we paged
              may have moved behind a page already read). Mid-read cursor: {"jql_from",
              "token", "since", "skip", "recent", "max", "started"}; a token Jira no longer
              takes (they expire after 7 days) restarts the same query, skipping what was
              already yielded.
    Each issue gets fields Jira's lacks, for the mappings: fields.description_text (the ADF
    description as plain text, see adf.py) and browse_url (<site>/browse/<KEY>); the
    connector's own dedupe labels are moved from fields.labels to liaison_labels.
    Deleted issues never appear in search: the engine's full refresh notices their absence,
    and the jira:issue_deleted webhook announces them.
Writes (issues; at most 50 ops per call)
    create    POST /rest/api/3/issue (one) or POST /rest/api/3/issue/bulk (several, per-element
              errors by failedElementNumber, also when Jira answers 400 because all failed).
              Jira has no idempotency key: every created issue carries the label
              `<dedupe_label_prefix><canonical id>` (the WriteOp key's hash without a canonical
              id), and before creating, one JQL search `labels in (...)` finds issues a
              previous attempt already made; those are updated instead. Search lags writes,
              so the connector also remembers the labels it created itself.
    update    PUT /rest/api/3/issue/{id} -> 204 (project is not sent: moving an issue is a
              different operation).
    status    fields.status.name is not settable by PUT: the issue's current status is read
              and, when it differs, the transition leading to that status (GET/POST
              /issue/{id}/transitions) is made; no such transition fails that record.
    delete    DELETE /rest/api/3/issue/{id} -> 204; an issue already gone counts as deleted.
    archive   not offered (issue archiving is a Jira Premium feature); such ops fail.
    fields.description_text is converted to an ADF document (Jira's own document is kept
    when it already shows that text); issuetype defaults to `issue_type`, the project to
    `default_project` (else the first of `projects`).
    A 4xx fails that op's result; a 429/5xx that outlasts the retries fails that op and
    every op after it in the call with the same transient error (they were not tried).
Rate limits
    JiraPacer slows down on X-RateLimit-Remaining / X-RateLimit-Reset / X-RateLimit-NearLimit;
    429s are retried by hub.http after Retry-After (seconds).
Webhooks
    verify_webhook checks X-Hub-Signature (sha256=hex HMAC of the body) with `webhook_secret`,
    refuses stale deliveries by the body's timestamp, and uses X-Atlassian-Webhook-Identifier
    as the event id (webhooks.py).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.jira import webhooks
from connectors.jira.adf import adf_to_text, text_to_adf
from connectors.jira.client import (
    BULK_MAX,
    ISSUE_FIELDS,
    SEARCH_MAX_RESULTS,
    ErrorCapture,
    JiraClient,
    JiraPacer,
    SearchPage,
    jql_datetime,
    jql_string,
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
    SyncError,
    TransientError,
)
from hub.http import HttpClient, make_client

DEFAULT_OVERLAP_MINUTES = 2
DEFAULT_ISSUE_TYPE = "Task"
DEFAULT_LABEL_PREFIX = "liaison-"
MAX_SEEN = 5000  # (id, updated) pairs a cursor keeps for de-duplicating the overlap
MINUTE_MS = 60_000
T = TypeVar("T")
# Fields a read returns that Jira computes: never sent back.
READ_ONLY_FIELDS = frozenset({"created", "updated", "resolutiondate", "resolution", "creator",
                              "lastViewed", "statuscategorychangedate", "votes", "watches",
                              "description_text", "status"})


class JiraConnector(BaseConnector):
    """Jira Cloud REST v3 (Basic email + API token): projects and issues."""

    name: ClassVar[str] = "jira"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={
            "project": EntitySupport(object="projects", read=True, write=False,
                                     incremental=False, deletes=False, archive=False),
            "task": EntitySupport(object="issues", read=True, write=True, incremental=True,
                                  deletes=False, archive=False),
        },
        batch_size=BULK_MAX,
        webhooks=True,
        settings={
            "base_url": "the Jira site, e.g. https://yourcompany.atlassian.net",
            "site": "the site's name, instead of base_url (yourcompany for "
                    "https://yourcompany.atlassian.net)",
            "email": "the Atlassian account email the API token belongs to",
            "api_token": "the Atlassian API token, as a ${ENV} reference",
            "webhook_secret": "the secret the admin webhook was registered with, as a ${ENV} "
                              "reference (needed only for webhooks)",
            "projects": "project keys to sync issues of (a list, or comma-separated); "
                        "default: every project the account sees",
            "default_project": "project key for new issues that name none (default: the "
                               "first of projects)",
            "issue_type": f"issue type of new issues (default {DEFAULT_ISSUE_TYPE})",
            "overlap_minutes": "incremental reads re-read this many minutes before the "
                               "cursor, because JQL has minute precision and search lags "
                               f"writes (default {DEFAULT_OVERLAP_MINUTES})",
            "time_zone": "the API user's Jira time zone (e.g. Europe/Berlin), in which JQL "
                         "reads dates; default: asked from Jira (/myself)",
            "dedupe_label_prefix": "label prefix that marks issues Liaison created, so a "
                                   f"repeated create finds them (default {DEFAULT_LABEL_PREFIX}"
                                   "; empty: off)",
            "extra_fields": "more issue fields to read, for mappings (a list, or "
                            "comma-separated)",
            "webhook_max_age_seconds": "older webhook deliveries are refused as stale "
                                       f"(default {webhooks.MAX_AGE_MS // 1000})",
            "timeout": "seconds to wait for an answer (default 30)",
        },
        secret_settings=frozenset({"api_token", "webhook_secret"}),
    )

    def __init__(self, connection: ConnectionConfig) -> None:
        super().__init__(connection)
        self._api: JiraClient | None = None
        self._zone: ZoneInfo | None = None
        self.pacer = JiraPacer()
        self.capture = ErrorCapture()
        self.clock: Callable[[], float] = time.time  # when a read starts (tests may pin it)
        # Labels this connector created -> issue id: search lags writes, so a create repeated
        # at once would not find the first one by its label yet.
        self._created: dict[str, str] = {}

    # -- plumbing ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The site URL the API lives under."""
        base = self.connection.setting("base_url")
        if not base:
            site = self.connection.setting("site")
            if not site:
                raise self._missing("base_url", "the Jira site, e.g. "
                                    "https://yourcompany.atlassian.net (or `site`)")
            base = f"https://{site}.atlassian.net"
        return str(base).rstrip("/")

    @property
    def api(self) -> JiraClient:
        """The Jira client, built on first use (no I/O in the constructor)."""
        if self._api is None:
            pacer, capture = self.pacer, self.capture

            def on_response(response: Any) -> None:
                capture(response)
                pacer(response)

            http: HttpClient = make_client(
                self.base_url, system=f"Jira ({self.connection.name})",
                auth_headers=self._auth_headers, retry=self.connection.retry,
                timeout=float(self.connection.setting("timeout", 30.0)),
                user_agent="liaison-hub/jira", on_response=on_response)
            self._api = JiraClient(http, capture)
        return self._api

    def _missing(self, key: str, what: str) -> ConnectorError:
        where = self.connection.where_of(key)
        at = f" ({where})" if where else ""
        return ConnectorError(f"connection {self.connection.name}{at}: setting {key!r} is "
                              f"missing ({what})")

    def _auth_headers(self) -> dict[str, str]:
        email = self.connection.setting("email")
        token = self.connection.setting("api_token")  # revealed now, at use, never stored
        if not email:
            raise self._missing("email", "the Atlassian account email of the API token")
        if not token:
            raise self._missing("api_token", "an Atlassian API token, as ${ENV}")
        basic = base64.b64encode(f"{email}:{token}".encode()).decode("ascii")
        return {"Authorization": f"Basic {basic}"}

    def _int_setting(self, key: str, default: int) -> int:
        value = self.connection.setting(key, default)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConnectorError(f"connection {self.connection.name} "
                                 f"({self.connection.where_of(key)}): setting {key!r} must be "
                                 f"a whole number, got {value!r}") from None

    def _list_setting(self, key: str) -> list[str]:
        value = self.connection.setting(key)
        if not value:
            return []
        items = value.split(",") if isinstance(value, str) else list(value)
        return [str(v).strip() for v in items if str(v).strip()]

    @property
    def label_prefix(self) -> str:
        """The dedupe label prefix ("" when switched off)."""
        value = self.connection.setting("dedupe_label_prefix", DEFAULT_LABEL_PREFIX)
        return "" if value is None else str(value)

    def zone(self) -> ZoneInfo:
        """The time zone Jira reads JQL dates in: the setting, else the API user's."""
        if self._zone is None:
            name = self.connection.setting("time_zone") or self.api.myself().get("timeZone")
            try:
                self._zone = ZoneInfo(str(name or "UTC"))
            except (ZoneInfoNotFoundError, ValueError):
                raise ConnectorError(f"connection {self.connection.name} "
                                     f"({self.connection.where_of('time_zone')}): time zone "
                                     f"{name!r} is unknown (expected a name like "
                                     "Europe/Berlin)") from None
        return self._zone

    @staticmethod
    def _check_object(object: str) -> None:
        if object not in ("projects", "issues"):
            raise PermanentError(f"Jira has no object {object!r} here (known: issues, "
                                 "projects)")

    def check(self) -> Health:
        """GET /myself: proves the site answers and accepts the email and token."""
        try:
            me = self.api.myself()
        except AuthError as exc:
            return Health(ok=False, message=f"Jira refused the credentials: {exc}")
        except HubError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, message=f"Jira answered; signed in as "
                                       f"{me.get('displayName') or me.get('accountId')}")

    def verify_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Check a delivery's X-Hub-Signature and age, then list the change it announces."""
        secret = self.connection.setting("webhook_secret")  # revealed now, at use
        if not secret:
            raise self._missing("webhook_secret", "the secret of the Jira admin webhook, as "
                                "${ENV}; webhooks cannot be checked without it")
        webhooks.check_signature(request, str(secret))
        max_age = self._int_setting("webhook_max_age_seconds", webhooks.MAX_AGE_MS // 1000)
        return webhooks.parse_event(request, max_age_ms=max_age * 1000)

    def close(self) -> None:
        """Close the HTTP connections."""
        if self._api is not None:
            self._api.http.close()
            self._api = None

    # -- reads --------------------------------------------------------------------------------

    def read(self, object: str, cursor: Cursor | None, *, incremental: bool,
             page_size: int) -> Iterator[Page]:
        """Yield pages of native records (see the module docstring for the cursor shapes)."""
        self._check_object(object)
        if object == "projects":
            yield from self._read_projects(cursor, page_size)
        elif cursor and "token" in cursor:
            yield from self._read_issues(cursor, page_size)
        elif incremental and cursor and cursor.get("since") is not None:
            since = int(cursor["since"])
            lower = since - self._int_setting("overlap_minutes", DEFAULT_OVERLAP_MINUTES) \
                * MINUTE_MS
            yield from self._read_issues({
                "jql_from": jql_datetime(lower, self.zone()), "since": since,
                "skip": list(cursor.get("seen") or ()), "started": self._now_ms()}, page_size)
        else:  # first run, or a full refresh asked for
            yield from self._read_issues({"jql_from": jql_datetime(0, self.zone()),
                                          "since": None, "started": self._now_ms()}, page_size)

    def fetch(self, object: str, external_id: str) -> NativeRecord | None:
        """One issue (by id) or project (by key) as a read returns it; None if gone."""
        self._check_object(object)
        try:
            if object == "projects":
                return self._project(self.api.project(external_id))
            return self._issue(self.api.issue(external_id, self._fields()))
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _fields(self) -> list[str]:
        return list(dict.fromkeys([*ISSUE_FIELDS, *self._list_setting("extra_fields")]))

    def _read_projects(self, cursor: Cursor | None, page_size: int) -> Iterator[Page]:
        start = int((cursor or {}).get("startAt") or 0)
        while True:
            page = self.api.project_page(start, max(1, page_size))
            start = page.start_at + len(page.values)
            records = [self._project(p) for p in page.values]
            if page.is_last:
                yield Page(records, None)
                return
            yield Page(records, {"startAt": start})

    def _jql(self, jql_from: str) -> str:
        projects = self._list_setting("projects")
        scope = ""
        if projects:
            scope = f"project in ({', '.join(jql_string(p) for p in projects)}) AND "
        return f"{scope}updated >= {jql_string(jql_from)} ORDER BY updated ASC, key ASC"

    def _read_issues(self, state: Cursor, page_size: int) -> Iterator[Page]:
        jql = self._jql(str(state["jql_from"]))
        fields = self._fields()
        limit = max(1, min(page_size, SEARCH_MAX_RESULTS))
        token: str | None = state.get("token")
        skip = set(state.get("skip") or ())
        recent: dict[str, int] = {k: _seen_ms(k) for k in state.get("recent") or ()}
        since = state.get("since")
        newest = int(state.get("max") or since or 0)
        started = int(state.get("started") or self._now_ms())
        margin = self._int_setting("overlap_minutes", DEFAULT_OVERLAP_MINUTES) * MINUTE_MS \
            + MINUTE_MS
        restarted = False
        while True:
            try:
                page = self.api.search(jql, fields, limit, token)
            except PermanentError as exc:
                if not token or restarted or exc.status != 400 or isinstance(exc, AuthError):
                    raise
                # The token expired or is no longer valid: run the query again from its start,
                # skipping what this read already yielded.
                restarted, token = True, None
                skip |= set(recent)
                continue
            records = []
            for issue in page.issues:
                updated = _updated_ms(issue)
                mark = f"{issue.get('id')}@{updated}"
                recent[mark] = updated
                newest = max(newest, updated)
                if mark in skip:
                    continue  # yielded by an earlier read of the overlap
                records.append(self._issue(issue))
            floor = min(newest, started) - margin
            recent = _prune(recent, floor)
            token = page.next_token
            if token is None:
                yield Page(records, _final_cursor(since, newest, started, recent, margin))
                return
            yield Page(records, {"jql_from": state["jql_from"], "token": token,
                                 "since": since, "skip": sorted(skip), "recent": list(recent),
                                 "max": newest, "started": started})

    # -- normalising native records ---------------------------------------------------------

    def _browse(self, key: Any) -> str | None:
        return f"{self.base_url}/browse/{key}" if key else None

    def _project(self, project: dict[str, Any]) -> NativeRecord:
        project["browse_url"] = self._browse(project.get("key"))
        return project

    def _issue(self, issue: dict[str, Any]) -> NativeRecord:
        fields = issue.get("fields")
        if isinstance(fields, dict):
            if "description" in fields:
                fields["description_text"] = adf_to_text(fields["description"])
            labels = fields.get("labels")
            prefix = self.label_prefix
            if labels and prefix:
                marks = [label for label in labels if label.startswith(prefix)]
                if marks:
                    fields["labels"] = [label for label in labels
                                        if not label.startswith(prefix)]
                    issue["liaison_labels"] = marks
        issue["browse_url"] = self._browse(issue.get("key"))
        return issue

    # -- writes -------------------------------------------------------------------------------

    def write(self, object: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply up to 50 ops; one WriteResult per op, in the same order."""
        self._check_object(object)
        if object == "projects":
            raise PermanentError("Jira projects are read-only in Liaison: create and change "
                                 "them in Jira")
        if len(ops) > BULK_MAX:
            raise PermanentError(f"Jira takes at most {BULK_MAX} issues per write, got "
                                 f"{len(ops)}")
        results: dict[int, WriteResult] = {}
        creates: list[int] = []
        updates: list[tuple[int, str]] = []
        for i, op in enumerate(ops):
            if op.action == "archive":
                results[i] = WriteResult(op.key, False, op.external_id, error=PermanentError(
                    "Jira issues cannot be archived through the API Liaison uses; use the "
                    "flow's delete_policy delete (or ignore)"))
            elif op.action == "delete":
                continue
            elif op.external_id:
                updates.append((i, op.external_id))
            else:
                creates.append(i)
        try:
            found = self._existing(ops, creates)
            updates.extend((i, ext) for i, ext in found.items())
            creates = [i for i in creates if i not in found]
            for i, op in enumerate(ops):
                if op.action == "delete":
                    results[i] = self._delete(op)
            for i, ext in sorted(updates):
                results[i] = self._update(ops[i], ext)
            results.update(self._create(ops, creates))
        except _Stop as stop:
            for i in range(len(ops)):
                results.setdefault(i, WriteResult(ops[i].key, False, ops[i].external_id,
                                                  error=stop.error))
        return [results[i] for i in range(len(ops))]

    def _marker(self, op: WriteOp) -> str | None:
        prefix = self.label_prefix
        if not prefix:
            return None
        ident = op.canonical_id or "k" + hashlib.sha256(op.key.encode()).hexdigest()[:24]
        return prefix + "".join(c if c.isalnum() or c in "-_." else "_" for c in ident)

    def _existing(self, ops: Sequence[WriteOp], creates: list[int]) -> dict[int, str]:
        """Creates a previous attempt already made: op index -> issue id (by dedupe label)."""
        marks = {i: m for i in creates if (m := self._marker(ops[i])) is not None}
        if not marks:
            return {}
        found = {m: self._created[m] for m in marks.values() if m in self._created}
        wanted = sorted(set(marks.values()) - set(found))
        if wanted:
            jql = f"labels in ({', '.join(jql_string(m) for m in wanted)}) ORDER BY created ASC"
            token: str | None = None
            while True:
                page = self._search_guarded(jql, token)
                for issue in page.issues:
                    for label in (issue.get("fields") or {}).get("labels") or ():
                        if label in marks.values():
                            found.setdefault(label, str(issue["id"]))  # the oldest wins
                token = page.next_token
                if token is None:
                    break
        return {i: found[m] for i, m in marks.items() if m in found}

    def _search_guarded(self, jql: str, token: str | None) -> SearchPage:
        return _guard(lambda: self.api.search(jql, ["labels"], SEARCH_MAX_RESULTS, token))

    def _outgoing(self, op: WriteOp, *, creating: bool) -> tuple[dict[str, Any], str | None]:
        """(the fields to send, the status name wanted) for one op's native record."""
        given = op.record.get("fields")
        fields = dict(given) if isinstance(given, Mapping) else {}
        status = fields.get("status")
        wanted = status.get("name") if isinstance(status, Mapping) else status
        if "description_text" in fields:
            text = fields["description_text"]
            doc = fields.get("description")
            # Keep Jira's own document when it shows the same text: no formatting is lost.
            if not (isinstance(doc, Mapping) and adf_to_text(doc) == text):
                fields["description"] = text_to_adf(text)
        elif isinstance(fields.get("description"), str):
            fields["description"] = text_to_adf(fields["description"])
        for name in READ_ONLY_FIELDS & fields.keys():
            del fields[name]
        assignee = fields.get("assignee")
        if isinstance(assignee, Mapping) and not assignee.get("accountId"):
            fields["assignee"] = None  # {"accountId": null} from a mapping: unassigned
        priority = fields.get("priority")
        if priority is None and "priority" in fields or \
                isinstance(priority, Mapping) and not priority.get("name") \
                and not priority.get("id"):
            del fields["priority"]  # Jira cannot clear a priority
        marker = self._marker(op) if creating or op.canonical_id else None
        if marker and (creating or "labels" in fields):
            labels = [str(v) for v in fields.get("labels") or () if v]
            fields["labels"] = [*labels, marker] if marker not in labels else labels
        if creating:
            if not fields.get("project"):
                project = self.connection.setting("default_project") or next(
                    iter(self._list_setting("projects")), None)
                if project:
                    fields["project"] = {"key": str(project)}
            if not fields.get("issuetype"):
                fields["issuetype"] = {"name": str(self.connection.setting(
                    "issue_type", DEFAULT_ISSUE_TYPE))}
        else:
            fields.pop("project", None)  # moving an issue is not an edit in Jira
        return fields, str(wanted) if wanted else None

    def _delete(self, op: WriteOp) -> WriteResult:
        if not op.external_id:
            return WriteResult(op.key, False, error=PermanentError(
                f"cannot delete record {op.key}: it has no Jira issue id (never written there)"))
        try:
            _guard(lambda: self.api.delete(str(op.external_id)))
        except AuthError:
            raise
        except PermanentError as exc:
            if exc.status != 404:
                return WriteResult(op.key, False, op.external_id, error=exc)
        return WriteResult(op.key, True, op.external_id)

    def _update(self, op: WriteOp, ext: str) -> WriteResult:
        fields, wanted = self._outgoing(op, creating=False)
        try:
            if fields:
                _guard(lambda: self.api.update(ext, fields))
        except AuthError:
            raise
        except PermanentError as exc:
            return WriteResult(op.key, False, ext, error=exc)
        return self._with_status(op, ext, wanted)

    def _with_status(self, op: WriteOp, ext: str, wanted: str | None) -> WriteResult:
        if wanted:
            try:
                self._set_status(ext, wanted)
            except AuthError:
                raise
            except PermanentError as exc:
                return WriteResult(op.key, False, ext, error=exc)
        return WriteResult(op.key, True, ext)

    def _set_status(self, ext: str, wanted: str) -> None:
        """Move the issue to the status named `wanted` through a workflow transition."""
        issue = _guard(lambda: self.api.issue(ext, ["status"]))
        current = ((issue.get("fields") or {}).get("status") or {}).get("name")
        if str(current or "").casefold() == wanted.casefold():
            return
        transitions = _guard(lambda: self.api.transitions(ext))
        chosen = next((str(t["id"]) for t in transitions
                       if str((t.get("to") or {}).get("name") or "").casefold()
                       == wanted.casefold()), None)
        if chosen is not None:
            _guard(lambda: self.api.transition(ext, chosen))
            return
        reachable = ", ".join(sorted({str((t.get("to") or {}).get("name"))
                                      for t in transitions}))
        raise PermanentError(f"Jira issue {ext}: the fields were written, but no workflow "
                             f"transition leads from {current!r} to status {wanted!r} "
                             f"(reachable: {reachable or 'none'})")

    def _create(self, ops: Sequence[WriteOp], idx: list[int]) -> dict[int, WriteResult]:
        out: dict[int, WriteResult] = {}
        first: dict[str, int] = {}  # marker -> op that creates it (the same record twice)
        later: list[int] = []
        sends: list[tuple[int, dict[str, Any], str | None]] = []
        for i in idx:
            marker = self._marker(ops[i])
            if marker and marker in first:
                later.append(i)
                continue
            if marker:
                first[marker] = i
            fields, wanted = self._outgoing(ops[i], creating=True)
            sends.append((i, fields, wanted))
        if len(sends) == 1:
            i, fields, wanted = sends[0]
            try:
                made = _guard(lambda: self.api.create(fields))
            except AuthError:
                raise
            except PermanentError as exc:
                out[i] = WriteResult(ops[i].key, False, error=exc)
            else:
                out[i] = self._created_ok(ops[i], str(made["id"]), wanted)
        elif sends:
            answer = _guard(lambda: self.api.bulk_create([f for _, f, _ in sends]))
            created: Iterator[dict[str, Any] | None] = iter(answer.issues)  # successes come in input order, failures left out
            for n, (i, _, wanted) in enumerate(sends):
                if n in answer.errors:
                    out[i] = WriteResult(ops[i].key, False, error=PermanentError(
                        f"Jira refused issue {n + 1} of the bulk create (record "
                        f"{ops[i].canonical_id or ops[i].key}): {answer.errors[n]}",
                        status=answer.statuses.get(n)))
                    continue
                item = next(created, None)
                if item is None:
                    out[i] = WriteResult(ops[i].key, False, error=TransientError(
                        "Jira's bulk create answered without this issue; it is retried "
                        "(its dedupe label prevents a duplicate)"))
                    continue
                out[i] = self._created_ok(ops[i], str(item["id"]), wanted)
        for i in later:
            marker = self._marker(ops[i])
            owner = first[str(marker)]
            ext = out[owner].external_id if out[owner].ok else None
            out[i] = self._update(ops[i], ext) if ext else WriteResult(
                ops[i].key, False, error=out[owner].error)
        return out

    def _created_ok(self, op: WriteOp, ext: str, wanted: str | None) -> WriteResult:
        marker = self._marker(op)
        if marker:
            self._created[marker] = ext
        return self._with_status(op, ext, wanted)


# -- helpers ----------------------------------------------------------------------------------


class _Stop(Exception):
    """A transient failure or refused credentials: stop the write call here."""

    def __init__(self, error: SyncError) -> None:
        super().__init__(str(error))
        self.error = error


def _guard(call: Callable[[], T]) -> T:
    """Run one request; a transient failure stops the rest of the write call (_Stop).

    Auth failures are raised as they are: they concern every record, the engine stops.
    """
    try:
        return call()
    except TransientError as exc:
        raise _Stop(exc) from None


def _updated_ms(issue: Mapping[str, Any]) -> int:
    value = (issue.get("fields") or {}).get("updated")
    if not value:
        return 0
    try:
        return int(datetime.fromisoformat(str(value)).timestamp() * 1000)
    except ValueError:
        return 0


def _seen_ms(mark: str) -> int:
    try:
        return int(mark.rsplit("@", 1)[1])
    except (IndexError, ValueError):
        return 0


def _prune(recent: dict[str, int], floor: int) -> dict[str, int]:
    """The (id@updated) marks at or after `floor`, at most MAX_SEEN of the newest."""
    kept = {k: v for k, v in recent.items() if v >= floor}
    if len(kept) > MAX_SEEN:
        # Dropping marks only means re-reading those issues once more, never missing one.
        kept = dict(sorted(kept.items(), key=lambda kv: kv[1])[-MAX_SEEN:])
    return kept


def _final_cursor(since: Any, newest: int, started: int, recent: dict[str, int],
                  margin: int) -> Cursor:
    base = max(int(since or 0), newest)
    new_since = min(base, started) if base else started
    seen = _prune(recent, new_since - margin)
    cursor: Cursor = {"since": new_since}
    if seen:
        cursor["seen"] = sorted(seen)
    return cursor
