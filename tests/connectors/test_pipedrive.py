"""PipedriveConnector against the Pipedrive sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from connectors.pipedrive.client import from_rfc3339, to_rfc3339
from connectors.pipedrive.connector import PipedriveConnector
from connectors.pipedrive.fakedata import CUSTOM_FIELDS
from connectors.pipedrive.sandbox import Faults, PipedriveSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import Page, WriteOp
from hub.errors import AuthError, PermanentError, RateLimited, TransientError
from hub.http import no_inline_retries

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
NOW = 1_800_000_000  # epoch seconds after every generated timestamp


def connection(sandbox: PipedriveSandbox, token: str | None = None,
               retry: RetryPolicy | None = None, **settings: Any) -> ConnectionConfig:
    return ConnectionConfig(
        name="crm", connector="pipedrive", base_dir=Path("."),
        settings={"base_url": sandbox.base_url, "api_token": token or sandbox.api_token,
                  **settings},
        retry=retry or RetryPolicy(attempts=4, backoff_initial=0.01, backoff_max=0.05))


@pytest.fixture
def sandbox() -> Iterator[PipedriveSandbox]:
    with PipedriveSandbox(seed=3, count=120) as sb:
        yield sb


@pytest.fixture
def pipedrive(sandbox: PipedriveSandbox) -> Iterator[PipedriveConnector]:
    with PipedriveConnector(connection(sandbox)) as connector:
        yield connector


def read_all(connector: PipedriveConnector, object: str, cursor: dict[str, Any] | None = None,
             *, incremental: bool = False,
             page_size: int = 100) -> tuple[list[Page], list[dict[str, Any]]]:
    pages = list(connector.read(object, cursor, incremental=incremental, page_size=page_size))
    return pages, [r for p in pages for r in p.records]


def queries(sandbox: PipedriveSandbox, path: str) -> list[dict[str, list[str]]]:
    return [parse_qs(q) for m, p, q in sandbox.requests if m == "GET" and p == path]


# -- reads ------------------------------------------------------------------------------------


def test_full_read_pages_through_everything_once(pipedrive: PipedriveConnector,
                                                 sandbox: PipedriveSandbox) -> None:
    pages, records = read_all(pipedrive, "persons", page_size=25)
    ids = [r["id"] for r in records]
    assert len(ids) == 120 == len(set(ids)) and ids == sorted(ids)
    assert [len(p.records) for p in pages] == [25, 25, 25, 25, 20]  # no empty last page
    newest = max(r["update_time"] for r in sandbox.records("persons"))
    assert pages[-1].cursor == {"since": newest}
    sent = queries(sandbox, "/api/v2/persons")
    assert all(q["sort_by"] == ["id"] and q["limit"] == ["25"] for q in sent)
    assert "cursor" not in sent[0] and all("cursor" in q for q in sent[1:])


def test_full_read_resumes_from_every_cursor(pipedrive: PipedriveConnector) -> None:
    pages, records = read_all(pipedrive, "deals", page_size=7)
    everything = [r["id"] for r in records]
    for i, page in enumerate(pages[:-1]):
        _, rest = read_all(pipedrive, "deals", page.cursor, page_size=7)
        done = [r["id"] for p in pages[: i + 1] for r in p.records]
        assert done + [r["id"] for r in rest] == everything


def test_page_size_above_the_vendor_maximum_is_clamped(pipedrive: PipedriveConnector,
                                                       sandbox: PipedriveSandbox) -> None:
    _, records = read_all(pipedrive, "persons", page_size=5000)
    assert len(records) == 120
    assert queries(sandbox, "/api/v2/persons")[0]["limit"] == ["500"]


def test_record_shapes_follow_the_v2_reference(pipedrive: PipedriveConnector) -> None:
    _, persons = read_all(pipedrive, "persons")
    for p in persons[:40]:
        assert isinstance(p["id"], int) and p["is_deleted"] is False
        assert RFC3339.match(p["add_time"]) and RFC3339.match(p["update_time"])
        assert all(set(e) == {"value", "primary", "label"} for e in p["emails"] + p["phones"])
        assert sum(e["primary"] for e in p["emails"]) == 1
        assert all(re.fullmatch(r"[0-9a-f]{40}", k) for k in p["custom_fields"])
        assert p["name"] == f"{p['first_name']} {p['last_name']}"
    _, deals = read_all(pipedrive, "deals")
    assert {d["status"] for d in deals} <= {"open", "won", "lost"}
    won = [d for d in deals if d["status"] == "won"]
    assert won and all(RFC3339.match(d["won_time"]) for d in won)


def test_incremental_uses_updated_since_and_returns_only_changes(
        pipedrive: PipedriveConnector, sandbox: PipedriveSandbox) -> None:
    pages, _ = read_all(pipedrive, "persons")
    cursor = pages[-1].cursor
    assert cursor is not None
    people = sandbox.records("persons")
    sandbox.touch("persons", people[5]["id"], at=NOW, name="Changed Five")
    sandbox.touch("persons", people[9]["id"], at=NOW + 3, name="Changed Nine")
    pages, got = read_all(pipedrive, "persons", cursor, incremental=True)
    # >=: the record(s) of the cursor's own second come back first; nothing older does
    assert all(r["update_time"] == cursor["since"] for r in got[:-2])
    assert [r["id"] for r in got[-2:]] == [people[5]["id"], people[9]["id"]]
    assert got[-2]["first_name"] == "Changed" and got[-2]["last_name"] == "Five"
    assert pages[-1].cursor == {"since": to_rfc3339(NOW + 3)}
    sent = queries(sandbox, "/api/v2/persons")[-1]
    assert sent["updated_since"] == [cursor["since"]]
    assert sent["sort_by"] == ["update_time"] and sent["sort_direction"] == ["asc"]
    _, again = read_all(pipedrive, "persons", pages[-1].cursor, incremental=True)
    assert [r["id"] for r in again] == [people[9]["id"]]  # only the boundary record


def test_incremental_resumes_without_loss_and_sees_changes_made_while_paging(
        pipedrive: PipedriveConnector, sandbox: PipedriveSandbox) -> None:
    ids = [r["id"] for r in sandbox.records("organizations")]
    for n, oid in enumerate(ids):
        sandbox.touch("organizations", oid, at=NOW + n // 3)  # three records per second
    start = {"since": to_rfc3339(NOW)}
    pages = []
    for page in pipedrive.read("organizations", start, incremental=True, page_size=4):
        pages.append(page)
        if len(pages) == 1:  # changed behind the cursor while we page: read again later
            sandbox.touch("organizations", ids[0], at=NOW + 100, name="Moved Ltd")
    got = [r["id"] for p in pages for r in p.records]
    assert set(got) == set(ids) and got.count(ids[0]) == 2
    assert pages[-1].cursor == {"since": to_rfc3339(NOW + 100)}
    for i, page in enumerate(pages[:-1]):
        assert page.cursor and page.cursor["mode"] == "incremental"
        _, rest = read_all(pipedrive, "organizations", page.cursor, incremental=True,
                           page_size=4)
        before = {r["id"] for p in pages[: i + 1] for r in p.records}
        assert before | {r["id"] for r in rest} == set(ids)


def test_overlap_setting_moves_the_window_back(sandbox: PipedriveSandbox) -> None:
    with PipedriveConnector(connection(sandbox, overlap_seconds=30)) as pd:
        read_all(pd, "persons", {"since": to_rfc3339(NOW)}, incremental=True)
    assert queries(sandbox, "/api/v2/persons")[-1]["updated_since"] == [to_rfc3339(NOW - 30)]


def test_deleted_deals_are_read_with_status_deleted(pipedrive: PipedriveConnector,
                                                    sandbox: PipedriveSandbox) -> None:
    pages, _ = read_all(pipedrive, "deals")
    cursor = pages[-1].cursor
    victim = sandbox.records("deals")[2]["id"]
    sandbox.delete("deals", victim, at=NOW)
    _, changed = read_all(pipedrive, "deals", cursor, incremental=True)
    gone = [r for r in changed if r["id"] == victim]
    assert len(gone) == 1 and gone[0]["is_deleted"] is True and gone[0]["status"] == "deleted"
    assert any(q.get("status") == ["deleted"] for q in queries(sandbox, "/api/v2/deals"))
    _, everything = read_all(pipedrive, "deals")
    assert [r["id"] for r in everything].count(victim) == 1


def test_deleted_persons_are_not_listed_but_fetch_reports_them(
        pipedrive: PipedriveConnector, sandbox: PipedriveSandbox) -> None:
    victim = sandbox.records("persons")[0]["id"]
    sandbox.delete("persons", victim, at=NOW)
    _, records = read_all(pipedrive, "persons")
    assert victim not in {r["id"] for r in records}
    fetched = pipedrive.fetch("persons", str(victim))
    assert fetched is not None and fetched["is_deleted"] is True
    assert pipedrive.fetch("persons", "987654") is None


def test_sandbox_refuses_what_pipedrive_refuses(sandbox: PipedriveSandbox) -> None:
    headers = {"x-api-token": sandbox.api_token}
    base = f"{sandbox.base_url}/api/v2"
    for params in ({"limit": "501"}, {"updated_since": "2024-01-04 10:44:11"},
                   {"sort_by": "name"}, {"status": "open"}):
        answer = httpx.get(f"{base}/persons", params=params, headers=headers)
        assert answer.status_code == 400, params
        body = answer.json()
        assert body["success"] is False and body["error"] and body["data"] is None
    first = httpx.get(f"{base}/persons", params={"limit": 5}, headers=headers).json()
    cursor = first["additional_data"]["next_cursor"]
    other = httpx.get(f"{base}/persons", params={"cursor": cursor, "sort_by": "update_time"},
                      headers=headers)
    assert other.status_code == 400 and "cursor" in other.json()["error"]
    last = httpx.get(f"{base}/persons", params={"limit": 500}, headers=headers).json()
    assert last["additional_data"]["next_cursor"] is None
    by_query = httpx.get(f"{base}/persons", params={"api_token": sandbox.api_token, "limit": 1})
    assert by_query.status_code == 200


# -- writes -----------------------------------------------------------------------------------


def person_op(email: str, key: str = "k", **fields: Any) -> WriteOp:
    return WriteOp("create", key, {"emails": [{"value": email, "label": "work"}], **fields},
                   match={"email": email})


def test_person_create_is_deduplicated_by_email(pipedrive: PipedriveConnector,
                                                sandbox: PipedriveSandbox) -> None:
    before = len(sandbox.records("persons"))
    first, = pipedrive.write("persons", [person_op("new.person@example.com",
                                                   first_name="New", last_name="Person")])
    again, = pipedrive.write("persons", [person_op("New.Person@Example.com",
                                                   first_name="Newer")])
    assert first.ok and again.ok and first.external_id == again.external_id
    assert len(sandbox.records("persons")) == before + 1
    stored = sandbox.get("persons", str(first.external_id))
    assert stored["name"] == "Newer Person"  # last_name kept from the stored person
    assert stored["emails"][0]["primary"] is True
    assert any(p.endswith("/persons/search") and "exact_match=true" in q
               for _, p, q in sandbox.requests)


def test_a_deleted_person_is_not_reused(pipedrive: PipedriveConnector,
                                        sandbox: PipedriveSandbox) -> None:
    old = sandbox.records("persons")[0]
    sandbox.delete("persons", old["id"])
    result, = pipedrive.write("persons", [person_op(old["emails"][0]["value"], name="Back")])
    assert result.ok and result.external_id != str(old["id"])


def test_first_and_last_name_become_name(pipedrive: PipedriveConnector,
                                         sandbox: PipedriveSandbox) -> None:
    person = sandbox.records("persons")[3]
    result, = pipedrive.write("persons", [WriteOp("update", "u", {
        "last_name": "Okonkwo", "id": person["id"], "update_time": "2020-01-01T00:00:00Z"},
        external_id=str(person["id"]))])
    assert result.ok, result.error
    stored = sandbox.get("persons", person["id"])
    assert stored["name"] == f"{person['first_name']} Okonkwo"
    assert stored["update_time"] != "2020-01-01T00:00:00Z"  # read-only fields not sent


def test_references_from_links_are_sent_as_numbers(pipedrive: PipedriveConnector,
                                                   sandbox: PipedriveSandbox) -> None:
    org = sandbox.records("organizations")[1]["id"]
    result, = pipedrive.write("deals", [WriteOp("create", "d", {
        "title": "Linked", "org_id": str(org), "owner_id": "1002", "value": 10,
        "currency": "EUR"})])
    assert result.ok, result.error
    stored = sandbox.get("deals", str(result.external_id))
    assert stored["org_id"] == org and stored["owner_id"] == 1002


def test_partial_failures_map_to_the_right_records(pipedrive: PipedriveConnector,
                                                   sandbox: PipedriveSandbox) -> None:
    existing = sandbox.records("persons")[0]["id"]
    ops = [
        person_op("ok.one@example.com", "a", name="Ok One"),
        person_op("no.name@example.com", "b"),
        WriteOp("update", "c", {"name": "Boss Person"}, external_id=str(existing)),
        WriteOp("update", "d", {"nonsense": "x"}, external_id=str(existing)),
        WriteOp("update", "e", {"name": "Ghost"}, external_id="999999"),
        person_op("ok.two@example.com", "f", name="Ok Two"),
    ]
    results = pipedrive.write("persons", ops)
    assert [r.key for r in results] == ["a", "b", "c", "d", "e", "f"]
    assert [r.ok for r in results] == [True, False, True, False, False, True]
    assert "name" in str(results[1].error) and "nonsense" in str(results[3].error)
    assert "999999" in str(results[4].error) and "not found" in str(results[4].error)
    assert all(isinstance(r.error, PermanentError) for r in results if not r.ok)
    assert sandbox.get("persons", existing)["name"] == "Boss Person"
    assert results[0].record is not None and results[0].record["name"] == "Ok One"


def test_organization_creates_are_not_deduplicated(pipedrive: PipedriveConnector,
                                                   sandbox: PipedriveSandbox) -> None:
    """Documented limit: nothing unique to search organizations by, so two creates, two."""
    op = WriteOp("create", "o", {"name": "Same Name GmbH"})
    a, = pipedrive.write("organizations", [op])
    b, = pipedrive.write("organizations", [op])
    assert a.ok and b.ok and a.external_id != b.external_id
    assert not any(p.endswith("/search") for _, p, _ in sandbox.requests)


def test_custom_fields_are_written_by_hash_key(pipedrive: PipedriveConnector,
                                               sandbox: PipedriveSandbox) -> None:
    key = next(iter(CUSTOM_FIELDS["organizations"]))
    target = sandbox.records("organizations")[0]["id"]
    ok, bad = pipedrive.write("organizations", [
        WriteOp("update", "ok", {"custom_fields": {key: "acme.example"}},
                external_id=str(target)),
        WriteOp("update", "bad", {"custom_fields": {"0" * 40: "x"}}, external_id=str(target))])
    assert ok.ok and not bad.ok and "0" * 40 in str(bad.error)
    assert sandbox.get("organizations", target)["custom_fields"][key] == "acme.example"


def test_delete_is_soft_and_repeatable(pipedrive: PipedriveConnector,
                                       sandbox: PipedriveSandbox) -> None:
    target = sandbox.records("organizations")[2]["id"]
    op = WriteOp("delete", "z", {}, external_id=str(target))
    first, second = pipedrive.write("organizations", [op, op])
    assert first.ok and second.ok  # the second finds it gone: done, not an error
    assert sandbox.get("organizations", target)["is_deleted"] is True
    missing, = pipedrive.write("organizations", [WriteOp("archive", "y", {})])
    assert not missing.ok and "no Pipedrive id" in str(missing.error)


def test_a_transient_failure_stops_the_rest_of_the_write() -> None:
    with PipedriveSandbox(count=0, faults=Faults(server_error=1.0)) as sb, \
            PipedriveConnector(connection(sb, retry=RetryPolicy(attempts=1))) as pd:
        results = pd.write("deals", [WriteOp("create", str(i), {"title": f"D{i}"})
                                     for i in range(3)])
    assert [r.ok for r in results] == [False, False, False]
    assert all(isinstance(r.error, TransientError) for r in results)
    assert "not sent" in str(results[2].error)
    assert len([m for m, _, _ in sb.requests if m == "POST"]) == 1


def test_lost_answers_and_server_errors_make_no_duplicate_persons() -> None:
    faults = Faults(server_error=0.25, drop_response=0.25, seed=4)
    with PipedriveSandbox(count=0, faults=faults, burst_limit=100_000) as sb, \
            PipedriveConnector(connection(sb, timeout=2)) as pd:
        ops = [person_op(f"p{i}@example.com", str(i), name=f"P {i}") for i in range(20)]
        for _ in range(4):  # what the engine does with transient results: send again
            results = [pd.write("persons", [op])[0] for op in ops]
            if all(r.ok for r in results):
                break
        emails = [r["emails"][0]["value"] for r in sb.records("persons")]
        assert sorted(emails) == sorted(f"p{i}@example.com" for i in range(20))
        posts = [m for m, _, _ in sb.requests if m == "POST"]
        assert len(posts) > 20  # faults really hit some creates


# -- auth and rate limits ---------------------------------------------------------------------


def test_bad_token_is_an_auth_error_and_never_echoed(sandbox: PipedriveSandbox) -> None:
    with PipedriveConnector(connection(sandbox, token="wrong-token-value")) as pd:
        health = pd.check()
        assert not health.ok and "401" in health.message
        assert "unauthorized access" in health.message
        assert "wrong-token-value" not in health.message
        with pytest.raises(AuthError):
            read_all(pd, "persons")
        with pytest.raises(AuthError):
            pd.write("persons", [person_op("a@example.com")])


def test_missing_token_names_the_setting(sandbox: PipedriveSandbox) -> None:
    conn = ConnectionConfig(name="crm", connector="pipedrive", base_dir=Path("."),
                            settings={"base_url": sandbox.base_url})
    with PipedriveConnector(conn) as pd:
        assert "api_token" in pd.check().message


def test_pacer_slows_down_before_the_burst_limit() -> None:
    with PipedriveSandbox(count=8, burst_limit=5) as sb, \
            PipedriveConnector(connection(sb)) as pd:
        waits: list[float] = []
        pd.pacer.sleep = waits.append
        _, records = read_all(pd, "persons", page_size=2)
        assert len(records) == 8
        assert len(waits) == 2 and all(0 < w <= 2 for w in waits)  # at 2 and 1 remaining
        assert not sb.limited  # no 429 was needed


def test_429_waits_for_the_reset_and_is_retried() -> None:
    faults = Faults(rate_limit=0.4, reset_seconds=1, seed=11)
    with PipedriveSandbox(seed=2, count=60, faults=faults) as sb, \
            PipedriveConnector(connection(sb)) as pd:
        waits: list[float] = []
        pd.pacer.sleep = waits.append
        _, records = read_all(pd, "persons", page_size=10)
        assert len({r["id"] for r in records}) == 60
        assert sb.limited and 0.05 in waits  # min(reset 1 s, backoff_max 0.05)
        result, = pd.write("deals", [WriteOp("create", "d", {"title": "After 429"})])
        assert result.ok
    assert [d["title"] for d in sb.records("deals")].count("After 429") == 1


def test_worker_mode_raises_rate_limited_without_sleeping() -> None:
    with PipedriveSandbox(count=5, faults=Faults(rate_limit=1.0)) as sb, \
            PipedriveConnector(connection(sb)) as pd:
        waits: list[float] = []
        pd.pacer.sleep = waits.append
        with no_inline_retries(), pytest.raises(RateLimited):
            read_all(pd, "persons")
        assert waits == [] and len(sb.requests) == 1


def test_unknown_object_is_permanent(pipedrive: PipedriveConnector) -> None:
    with pytest.raises(PermanentError, match="leads"):
        read_all(pipedrive, "leads")


def test_base_url_may_carry_the_api_path(sandbox: PipedriveSandbox) -> None:
    with PipedriveConnector(connection(sandbox, base_url=sandbox.base_url + "/api/v2/")) as pd:
        assert pd.check().ok


def test_timestamps_round_trip() -> None:
    assert to_rfc3339(from_rfc3339("2024-01-04T10:44:11Z")) == "2024-01-04T10:44:11Z"
    assert from_rfc3339("2024-01-04T12:44:11+02:00") == from_rfc3339("2024-01-04T10:44:11Z")
