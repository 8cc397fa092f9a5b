"""Jira connector contract tests against the sandbox: ADF, JQL dates and overlap, paging end
conditions, expired tokens, bulk partial failures, dedupe labels, transitions, rate limits,
errors. (Conformance: test_jira_conformance.py; webhooks: test_jira_webhooks.py.)"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.jira.adf import adf_to_text, text_to_adf
from connectors.jira.client import JiraPacer, jira_error_text, jql_datetime
from connectors.jira.connector import JiraConnector
from connectors.jira.sandbox import Faults, JiraSandbox
from connectors.jira.sandbox_jql import JqlError, parse
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import Page, WriteOp
from hub.errors import AuthError, ConnectorError, PermanentError, RateLimited, TransientError

NY = ZoneInfo("America/New_York")
QUICK = RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=2.0)


def make(sandbox: JiraSandbox, retry: RetryPolicy = QUICK, **settings: Any) -> JiraConnector:
    return JiraConnector(ConnectionConfig(
        name="pm", connector="jira", base_dir=Path("."), retry=retry,
        settings={"base_url": sandbox.base_url, "email": sandbox.email,
                  "api_token": sandbox.api_token, **settings}))


def ids(pages: list[Page]) -> list[str]:
    return [r["id"] for p in pages for r in p.records]


def read(c: JiraConnector, cursor: dict[str, Any] | None = None, *, incremental: bool = False,
         page_size: int = 50) -> list[Page]:
    return list(c.read("issues", cursor, incremental=incremental, page_size=page_size))


def raw(sandbox: JiraSandbox, method: str, path: str, body: Any = None) -> httpx.Response:
    auth = base64.b64encode(f"{sandbox.email}:{sandbox.api_token}".encode()).decode()
    return httpx.request(method, sandbox.base_url + path, json=body,
                         headers={"Authorization": f"Basic {auth}"}, timeout=5)


@pytest.fixture
def sandbox() -> Iterator[JiraSandbox]:
    with JiraSandbox(seed=3, count=40) as sb:
        yield sb


@pytest.fixture
def jira(sandbox: JiraSandbox) -> Iterator[JiraConnector]:
    with make(sandbox) as c:
        yield c


# -- ADF <-> text ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1))
def test_text_to_adf_and_back_is_the_identity(text: str) -> None:
    assert adf_to_text(text_to_adf(text)) == text


def test_text_becomes_paragraphs_and_hard_breaks() -> None:
    assert text_to_adf("a\nb\n\nc") == {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "a"}, {"type": "hardBreak"},
                                          {"type": "text", "text": "b"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "c"}]}]}
    assert text_to_adf("") is None and text_to_adf(None) is None


def test_rich_adf_reads_as_its_visible_text() -> None:
    doc = {"type": "doc", "version": 1, "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Plan"}]},
        {"type": "paragraph", "content": [
            {"type": "text", "text": "Ask ", "marks": [{"type": "strong"}]},
            {"type": "mention", "attrs": {"id": "1", "text": "@Ana"}},
            {"type": "text", "text": " "}, {"type": "emoji", "attrs": {"shortName": ":tada:"}},
            {"type": "inlineCard", "attrs": {"url": "https://x.example"}}]},
        {"type": "bulletList", "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "one"}]}]},
            {"type": "listItem", "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "two"}]}]}]},
        {"type": "orderedList", "attrs": {"order": 3}, "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "three"}]}]}]},
        {"type": "blockquote", "content": [{"type": "paragraph", "content": [
            {"type": "text", "text": "quoted"}]}]},
        {"type": "rule"},
        {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "x"}}]},
        {"type": "codeBlock", "content": [{"type": "text", "text": "x = 1"}]}]}
    assert adf_to_text(doc) == ("Plan\n\nAsk @Ana :tada:https://x.example\n\n- one\n- two\n\n"
                                "3. three\n\n> quoted\n\n---\n\n\n\nx = 1")


def test_sandbox_refuses_a_plain_string_description(sandbox: JiraSandbox) -> None:
    answer = raw(sandbox, "POST", "/rest/api/3/issue", {"fields": {
        "project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "x",
        "description": "plain text"}})
    assert answer.status_code == 400
    assert "Atlassian Document" in answer.json()["errors"]["description"]
    assert answer.json()["errorMessages"] == []


def test_reads_expose_description_text_and_writes_send_adf(jira: JiraConnector,
                                                           sandbox: JiraSandbox) -> None:
    record = next(r for r in ids_records(jira) if r["fields"]["description"])
    assert record["fields"]["description_text"] == adf_to_text(record["fields"]["description"])
    assert record["browse_url"] == f"{sandbox.base_url}/browse/{record['key']}"
    # The same text written back keeps Jira's rich document (marks, mentions)...
    result, = jira.write("issues", [WriteOp("update", "u", {"fields": {
        "description_text": record["fields"]["description_text"],
        "description": record["fields"]["description"]}}, external_id=record["id"])])
    assert result.ok, result.error
    assert sandbox.issue(record["id"])["fields"]["description"] == \
        record["fields"]["description"]
    # ...new text becomes a minimal ADF document.
    result, = jira.write("issues", [WriteOp("update", "u2", {"fields": {
        "description_text": "New\n\ntext", "description": record["fields"]["description"]}},
        external_id=record["id"])])
    assert result.ok, result.error
    assert sandbox.issue(record["id"])["fields"]["description"] == text_to_adf("New\n\ntext")
    result, = jira.write("issues", [WriteOp("update", "u3", {"fields": {
        "description_text": None}}, external_id=record["id"])])
    assert sandbox.issue(record["id"])["fields"]["description"] is None


def ids_records(c: JiraConnector) -> list[dict[str, Any]]:
    return [r for p in read(c) for r in p.records]


# -- JQL dates, time zones, overlap ------------------------------------------------------------


def test_jql_datetime_is_floored_to_the_minute_in_the_users_zone() -> None:
    ms = int(datetime(2024, 5, 1, 14, 7, 59, 900000, tzinfo=UTC).timestamp() * 1000)
    assert jql_datetime(ms, NY) == "2024-05-01 10:07"
    assert jql_datetime(ms, ZoneInfo("Asia/Kolkata")) == "2024-05-01 19:37"


def test_jql_datetime_is_safe_in_the_hour_a_clock_goes_back() -> None:
    # 2024-11-03 01:30 happens twice in New York; the first time is 05:30Z.
    ms = int(datetime(2024, 11, 3, 5, 30, 20, tzinfo=UTC).timestamp() * 1000)
    literal = jql_datetime(ms, NY)
    bound = parse(f'updated >= "{literal}"', NY)  # the sandbox reads the later instant
    assert literal == "2024-11-03 00:30"
    naive = datetime.strptime(literal, "%Y-%m-%d %H:%M")
    assert max(naive.replace(tzinfo=NY, fold=f).timestamp() for f in (0, 1)) * 1000 <= ms
    assert bound.where is not None


def test_the_connector_uses_the_users_time_zone_from_myself(sandbox: JiraSandbox) -> None:
    sandbox.time_zone = "Asia/Kolkata"
    with make(sandbox) as c:
        read(c)
    assert ("GET", "/rest/api/3/myself") in sandbox.requests
    jql = next(b["jql"] for b in sandbox.bodies if isinstance(b, dict) and "jql" in b)
    assert jql.startswith('updated >= "1970-01-01 05:30"')
    sandbox.requests.clear()
    with make(sandbox, time_zone="UTC") as c:
        read(c)
    assert ("GET", "/rest/api/3/myself") not in sandbox.requests


def test_an_unknown_time_zone_is_a_connector_error(sandbox: JiraSandbox) -> None:
    with make(sandbox, time_zone="Mars/Olympus") as c, pytest.raises(ConnectorError,
                                                                     match="Mars/Olympus"):
        read(c)


def test_incremental_reads_overlap_and_skip_what_they_already_yielded(
        sandbox: JiraSandbox) -> None:
    with make(sandbox, projects="OPS,WEB") as c:
        full = read(c, page_size=7)
        cursor = full[-1].cursor
        assert cursor is not None
        since = cursor["since"]
        scoped = {sandbox.issue(i)["fields"]["project"]["key"] for i in ids(full)}
        assert scoped <= {"OPS", "WEB"}
        # Nothing changed: the overlap is read again, but nothing is yielded twice.
        again = read(c, cursor, incremental=True)
        assert ids(again) == []
        # An issue changed in the same minute as the cursor, and one that search shows only
        # now with an older time (index lag), both within the overlap.
        changed, late = ids(full)[0], ids(full)[1]
        sandbox.touch(changed, at_ms=since + 5_000, summary="changed")
        sandbox.touch(late, at_ms=since - 60_000, summary="late")
        found = read(c, again[-1].cursor, incremental=True)
        assert sorted(ids(found)) == sorted([changed, late])
        assert ids(read(c, found[-1].cursor, incremental=True)) == []
    jql = [b["jql"] for b in sandbox.bodies if isinstance(b, dict) and "jql" in b][-1]
    assert jql.startswith('project in ("OPS", "WEB") AND updated >= "')
    assert jql.endswith('" ORDER BY updated ASC, key ASC')


def test_a_change_made_during_a_read_is_not_lost(sandbox: JiraSandbox) -> None:
    with make(sandbox) as c:
        pages = c.read("issues", None, incremental=False, page_size=5)
        first = next(pages)
        sandbox.touch(first.records[0]["id"], summary="moved while paging")
        rest = list(pages)
        cursor = rest[-1].cursor
        later = read(c, cursor, incremental=True)
        assert first.records[0]["id"] in ids(rest) + ids(later)


# -- paging end conditions ---------------------------------------------------------------------


@pytest.mark.parametrize("lazy", [False, True])
def test_paging_ends_on_is_last_or_a_missing_token(lazy: bool) -> None:
    with JiraSandbox(seed=4, count=20, lazy_is_last=lazy) as sb, make(sb) as c:
        pages = read(c, page_size=10)
        assert sorted(ids(pages)) == sb.issue_ids()
        assert [len(p.records) for p in pages] == ([10, 10, 0] if lazy else [10, 10])
        assert all(p.cursor for p in pages)


def test_jira_may_send_fewer_than_asked_and_paging_still_completes() -> None:
    with JiraSandbox(seed=5, count=23, max_results_cap=4) as sb, make(sb) as c:
        pages = read(c, page_size=50)
        assert max(len(p.records) for p in pages) == 4
        assert sorted(ids(pages)) == sb.issue_ids()


def test_only_id_comes_back_unless_fields_are_listed(sandbox: JiraSandbox) -> None:
    answer = raw(sandbox, "POST", "/rest/api/3/search/jql",
                 {"jql": 'project = "OPS"', "maxResults": 2})
    assert all(set(i) == {"id"} for i in answer.json()["issues"])
    assert raw(sandbox, "POST", "/rest/api/3/search/jql",
               {"jql": "ORDER BY key ASC"}).status_code == 400  # unbounded
    assert raw(sandbox, "POST", "/rest/api/3/search", {"jql": "x = 1"}).status_code == 410


def test_a_token_jira_no_longer_takes_restarts_the_query(sandbox: JiraSandbox) -> None:
    with make(sandbox) as c:
        pages = read(c, page_size=6)
        sandbox.expire_tokens()
        rest = read(c, pages[1].cursor, page_size=6)
    expected = set(ids(pages[2:]))
    assert expected <= set(ids(rest)), "records after the cursor were lost"
    assert len(ids(rest)) == len(set(ids(rest)))


def test_project_pages_follow_start_at_until_is_last(sandbox: JiraSandbox) -> None:
    for key in ("AAA", "BBB", "CCC"):
        sandbox.add_project(key, f"Project {key}")
    with make(sandbox) as c:
        pages = list(c.read("projects", None, incremental=False, page_size=2))
    assert [p.cursor for p in pages] == [{"startAt": 2}, {"startAt": 4}, None]
    keys = [r["key"] for p in pages for r in p.records]
    assert keys == sorted(sandbox.projects)
    record = pages[0].records[0]
    assert record["lead"]["accountId"] and "description" in record


# -- writes -----------------------------------------------------------------------------------


def issue(summary: str, **fields: Any) -> dict[str, Any]:
    return {"fields": {"project": {"key": "WEB"}, "summary": summary, **fields}}


def test_bulk_create_reports_each_failure_in_its_result(jira: JiraConnector,
                                                        sandbox: JiraSandbox) -> None:
    ops = [WriteOp("create", "a", issue("Good one"), canonical_id="c-a"),
           WriteOp("create", "b", issue(""), canonical_id="c-b"),
           WriteOp("create", "c", issue("Bad label", labels=["has space"]), canonical_id="c-c"),
           WriteOp("create", "d", issue("Good two", duedate="2030-01-31"), canonical_id="c-d")]
    results = jira.write("issues", ops)
    assert [r.key for r in results] == ["a", "b", "c", "d"]
    assert [r.ok for r in results] == [True, False, False, True]
    assert "summary" in str(results[1].error) and "record c-b" in str(results[1].error)
    assert "spaces" in str(results[2].error)
    assert isinstance(results[1].error, PermanentError)
    assert sandbox.issue(str(results[3].external_id))["fields"]["duedate"] == "2030-01-31"
    assert ("POST", "/rest/api/3/issue/bulk") in sandbox.requests


def test_a_bulk_create_in_which_every_issue_fails_is_still_per_record(
        jira: JiraConnector) -> None:
    results = jira.write("issues", [WriteOp("create", "x", issue("")),
                                    WriteOp("create", "y", issue("ok", project={"key": "NOPE"}))])
    assert [r.ok for r in results] == [False, False]
    assert "project" in str(results[1].error)


def test_a_repeated_create_finds_the_issue_by_its_label(sandbox: JiraSandbox) -> None:
    op = WriteOp("create", "k", issue("Once only"), canonical_id="0190aaaa-bbbb-7ccc-8ddd-e1")
    with make(sandbox) as first:
        made, = first.write("issues", [op])
    with make(sandbox) as second:  # a new process: nothing remembered, found by search
        again, = second.write("issues", [op])
    assert made.ok and again.ok and made.external_id == again.external_id
    stored = sandbox.issue(str(made.external_id))
    assert "liaison-0190aaaa-bbbb-7ccc-8ddd-e1" in stored["fields"]["labels"]
    with make(sandbox) as c:
        read_back = c.fetch("issues", str(made.external_id))
    assert read_back is not None and read_back["fields"]["labels"] == []
    assert read_back["liaison_labels"] == ["liaison-0190aaaa-bbbb-7ccc-8ddd-e1"]


def test_a_create_repeated_before_search_catches_up_is_not_duplicated() -> None:
    with JiraSandbox(count=0, index_lag_ms=60_000) as sb, make(sb) as c:
        op = WriteOp("create", "k", issue("Lagging"), canonical_id="lag-1")
        first, = c.write("issues", [op])
        second, = c.write("issues", [op])
        assert first.external_id == second.external_id
        assert len(sb.issue_ids()) == 1


def test_status_is_written_through_a_transition(jira: JiraConnector,
                                                sandbox: JiraSandbox) -> None:
    made, = jira.write("issues", [WriteOp("create", "n", issue(
        "Ship it", status={"name": "In Progress"}))])
    assert made.ok, made.error
    assert sandbox.issue(str(made.external_id))["fields"]["status"]["name"] == "In Progress"
    done, = jira.write("issues", [WriteOp("update", "d", {"fields": {"status": {"name": "Done"}}},
                                          external_id=made.external_id)])
    assert done.ok, done.error
    stored = sandbox.issue(str(made.external_id))["fields"]
    assert stored["status"]["name"] == "Done" and stored["resolutiondate"]
    transitions = [r for r in sandbox.requests if r[1].endswith("/transitions")]
    assert ("POST", f"/rest/api/3/issue/{made.external_id}/transitions") in transitions
    blocked, = jira.write("issues", [WriteOp("update", "b", {"fields": {
        "summary": "renamed", "status": {"name": "Blocked"}}}, external_id=made.external_id)])
    assert not blocked.ok and "Blocked" in str(blocked.error) and "reachable" in str(
        blocked.error)
    assert sandbox.issue(str(made.external_id))["fields"]["summary"] == "renamed"


def test_put_cannot_set_status_directly(sandbox: JiraSandbox) -> None:
    answer = raw(sandbox, "PUT", f"/rest/api/3/issue/{sandbox.issue_ids()[0]}",
                 {"fields": {"status": {"name": "Done"}}})
    assert answer.status_code == 400
    assert "cannot be set" in answer.json()["errors"]["status"]


def test_delete_archive_and_unknown_ids(jira: JiraConnector, sandbox: JiraSandbox) -> None:
    victim = sandbox.issue_ids()[0]
    results = jira.write("issues", [
        WriteOp("delete", "del", {}, external_id=victim),
        WriteOp("delete", "gone", {}, external_id="99999"),  # already gone: done
        WriteOp("archive", "arc", {}, external_id=sandbox.issue_ids()[1]),
        WriteOp("update", "ghost", issue("x"), external_id="88888")])
    assert [r.ok for r in results] == [True, True, False, False]
    assert "archived" in str(results[2].error)
    assert "Issue does not exist" in str(results[3].error)
    assert victim not in sandbox.issue_ids()
    assert jira.fetch("issues", victim) is None
    assert jira.fetch("projects", "OPS") is not None and jira.fetch("projects", "ZZZ") is None


def test_a_transient_failure_fails_the_rest_of_the_call(sandbox: JiraSandbox) -> None:
    with make(sandbox, retry=RetryPolicy(attempts=1)) as c:
        sandbox.faults = Faults(server_error=1.0)
        results = c.write("issues", [WriteOp("create", "a", issue("a")),
                                     WriteOp("update", "b", issue("b"),
                                             external_id=sandbox.issue_ids()[0])])
    assert [r.ok for r in results] == [False, False]
    assert all(isinstance(r.error, TransientError) for r in results)


def test_projects_are_read_only(jira: JiraConnector) -> None:
    with pytest.raises(PermanentError, match="read-only"):
        jira.write("projects", [WriteOp("create", "p", {"key": "NEW"})])


# -- errors, auth, rate limits -------------------------------------------------------------


def test_wrong_credentials_fail_check_without_leaking_the_token(sandbox: JiraSandbox) -> None:
    with make(sandbox, api_token="wrong-token-123") as c:
        health = c.check()
        assert not health.ok
        assert "Client must be authenticated" in health.message
        assert "wrong-token-123" not in health.message
        with pytest.raises(AuthError):
            read(c)


def test_missing_settings_name_the_setting(sandbox: JiraSandbox) -> None:
    c = JiraConnector(ConnectionConfig(name="pm", connector="jira", base_dir=Path("."),
                                       settings={"base_url": sandbox.base_url, "email": "a@b"}))
    health = c.check()
    assert not health.ok and "'api_token' is missing" in health.message
    with pytest.raises(ConnectorError, match="api_token"):
        read_projects = list(c.read("projects", None, incremental=False, page_size=5))
        assert not read_projects
    site = JiraConnector(ConnectionConfig(name="pm", connector="jira", base_dir=Path("."),
                                          settings={"site": "acme"}))
    assert site.base_url == "https://acme.atlassian.net"


def test_jira_error_bodies_become_one_line() -> None:
    body = {"errorMessages": ["Bad thing."], "errors": {"summary": "Too long."}}
    assert jira_error_text(body) == "Bad thing.; summary: Too long."
    assert jira_error_text("nope") == ""


def test_429_with_retry_after_is_retried(sandbox: JiraSandbox) -> None:
    sandbox.faults = Faults(burst_limit=3, burst_window=1.0)
    with make(sandbox) as c:
        c.pacer.sleep = lambda s: None  # the pacer's pauses are checked below, not slept
        pages = read(c, page_size=5)
    assert sorted(ids(pages)) == sandbox.issue_ids()
    assert sandbox.waits_sent, "the burst limit never answered 429"
    assert all(w >= 1 for w in sandbox.waits_sent)


def test_a_long_retry_after_goes_back_to_the_engine(sandbox: JiraSandbox) -> None:
    sandbox.faults = Faults(rate_limit=1.0, retry_after=30)
    with make(sandbox) as c, pytest.raises(RateLimited) as info:
        read(c)
    assert info.value.retry_after == 30


def test_the_pacer_slows_down_before_the_limit() -> None:
    waited: list[float] = []
    pacer = JiraPacer(reserve=3, sleep=waited.append, clock=lambda: 1_700_000_000.0)
    reset = datetime.fromtimestamp(1_700_000_004, UTC).isoformat()
    pacer(httpx.Response(200, headers={"X-RateLimit-Remaining": "1",
                                       "X-RateLimit-Reset": reset}))
    assert waited == [pytest.approx(2.0)]
    pacer(httpx.Response(200, headers={"X-RateLimit-Remaining": "50"}))
    pacer(httpx.Response(429, headers={"X-RateLimit-Remaining": "0"}))
    assert len(waited) == 1
    pacer(httpx.Response(200, headers={"X-RateLimit-Remaining": "10",
                                       "X-RateLimit-NearLimit": "true"}))
    assert waited[-1] == pacer.near_limit_pause


def test_sandbox_rate_headers_drive_the_pacer(sandbox: JiraSandbox) -> None:
    sandbox.faults = Faults(burst_limit=8, burst_window=5.0)
    with make(sandbox) as c:
        c.pacer.sleep = lambda s: None
        read(c, page_size=10)
        assert c.pacer.waited, "the pacer never slowed down near the limit"


# -- the sandbox's JQL ------------------------------------------------------------------------


def test_jql_parser_subset() -> None:
    zone = ZoneInfo("UTC")
    q = parse('project in ("OPS", web) AND (labels = x OR NOT status = "Done") '
              'ORDER BY updated DESC, key', zone)
    assert q.order == (("updated", True), ("key", False))
    assert parse('updated >= "2024/05/01"', zone).where is not None
    for bad in ('updated >= "yesterday at noon"', "nosuchfield = 1", 'project = "A" AND',
                'project in ("A"', "summary ~ x"):
        with pytest.raises(JqlError):
            parse(bad, zone)
