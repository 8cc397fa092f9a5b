"""QuickBooksConnector against the QuickBooks sandbox over real HTTP on 127.0.0.1: the
fiddly parts (query language, dates, paging ends, CDC deletions, SyncToken 5010, batches,
requestid, token rotation, 429 without Retry-After)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.quickbooks.client import RateGate, qbo_time, seconds_of
from connectors.quickbooks.connector import QuickBooksConnector
from connectors.quickbooks.query import QueryError, build, parse, quote
from connectors.quickbooks.sandbox import Faults, QuickBooksSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import Page, WriteOp
from hub.errors import AuthError, PermanentError, RateLimited, TransientError

FAST: dict[str, Any] = {"per_second": 10_000, "per_minute": 100_000, "batch_per_minute": 10_000}


class Clock:
    """A sandbox clock that moves only when told (QBO times have whole seconds)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def connection(sandbox: QuickBooksSandbox, base_dir: Path, *, attempts: int = 3,
               backoff_max: float = 2.0, **settings: Any) -> ConnectionConfig:
    return ConnectionConfig(
        name="books", connector="quickbooks", base_dir=base_dir,
        settings={"base_url": sandbox.base_url, "token_url": sandbox.token_url,
                  "realm_id": sandbox.realm_id, "client_id": sandbox.client_id,
                  "client_secret": sandbox.client_secret,
                  "refresh_token": sandbox.refresh_token, "requests_per_second": 0,
                  **settings},
        retry=RetryPolicy(attempts=attempts, backoff_initial=0.01, backoff_max=backoff_max))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(clock: Clock) -> Iterator[QuickBooksSandbox]:
    with QuickBooksSandbox(seed=5, count=40, clock=clock, **FAST) as sb:
        yield sb


@pytest.fixture
def qbo(sandbox: QuickBooksSandbox, tmp_path: Path) -> Iterator[QuickBooksConnector]:
    with QuickBooksConnector(connection(sandbox, tmp_path)) as connector:
        yield connector


def read_all(connector: QuickBooksConnector, object: str, cursor: dict[str, Any] | None = None,
             *, incremental: bool = False, page_size: int = 100) -> tuple[list[Page], list[Any]]:
    pages = list(connector.read(object, cursor, incremental=incremental, page_size=page_size))
    return pages, [r for p in pages for r in p.records]


def queries(sandbox: QuickBooksSandbox) -> list[str]:
    """The query texts the connector sent, in order."""
    return [parse_qs(q)["query"][0] for _m, _p, _h, q in sandbox.api_requests("/query")]


def direct(sandbox: QuickBooksSandbox, connector: QuickBooksConnector, method: str,
           resource: str, **kwargs: Any) -> httpx.Response:
    """A hand-made call with the connector's current access token."""
    headers = {"Authorization": f"Bearer {connector.api.auth.token()}",
               "Accept": "application/json", **kwargs.pop("headers", {})}
    return httpx.request(method, f"{sandbox.base_url}/v3/company/{sandbox.realm_id}/{resource}",
                         headers=headers, **kwargs)


# -- the query language ---------------------------------------------------------------------


@given(st.text(max_size=40))
def test_quoted_text_survives_the_parser(text: str) -> None:
    parsed = parse(build("Customer", [("DisplayName", "=", text)]))
    assert parsed.where[0].values == (text,)
    assert quote("Bob's") == "'Bob\\'s'"


@pytest.mark.parametrize(("text", "message"), [
    ("SELECT Id FROM Customer", "no projections"),
    ("SELECT * FROM Customer WHERE Active = true OR Id = '1'", "OR is not supported"),
    ("SELECT * FROM Customer STARTPOSITION 0", "1-based"),
    ("SELECT * FROM Customer MAXRESULTS 1001", "between 1 and 1000"),
    ("SELECT * FROM Customer WHERE DisplayName = 'Bob", "unterminated string"),
    ("SELECT * FROM Customer WHERE Id != '1'", "expected =, <, >"),
    ("SELECT * FROM Customer ORDERBY", "a field name"),
    ("SELECT * FROM Customer; DROP", "unexpected character ';'"),
])
def test_the_parser_refuses_what_qbo_refuses(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse(text)


def test_query_answers_faults_empty_results_and_hidden_inactive_customers(
        sandbox: QuickBooksSandbox, qbo: QuickBooksConnector) -> None:
    bad = direct(sandbox, qbo, "GET", "query", params={"query": "SELECT * FROM Customer OR"})
    assert bad.status_code == 400
    fault = bad.json()["Fault"]
    assert fault["type"] == "ValidationFault" and fault["Error"][0]["code"] == "4000"
    empty = direct(sandbox, qbo, "GET", "query",
                   params={"query": "SELECT * FROM Invoice WHERE DocNumber = 'none'"})
    assert empty.status_code == 200 and empty.json()["QueryResponse"] == {}
    everyone = [c for c in sandbox.records("Customer")]
    inactive = [c for c in everyone if not c["Active"]]
    assert inactive
    plain = direct(sandbox, qbo, "POST", "query", content=b"SELECT * FROM Customer MAXRESULTS 1000",
                   headers={"Content-Type": "application/text"}).json()["QueryResponse"]
    assert len(plain["Customer"]) == len(everyone) - len(inactive)
    assert plain["startPosition"] == 1 and plain["maxResults"] == len(plain["Customer"])
    _, read = read_all(qbo, "Customer")
    assert len(read) == len(everyone)  # the connector asks for Active IN (true,false)


# -- dates and paging -------------------------------------------------------------------------


def test_times_are_company_local_and_cursors_utc_seconds(sandbox: QuickBooksSandbox,
                                                          qbo: QuickBooksConnector) -> None:
    pages, records = read_all(qbo, "Invoice", page_size=30)
    stamp = records[0]["MetaData"]["LastUpdatedTime"]
    assert stamp.endswith("-07:00") and len(stamp) == 25
    assert seconds_of("2024-05-01T10:00:00-07:00") == seconds_of("2024-05-01T17:00:00Z")
    assert qbo_time(1_714_582_800) == "2024-05-01T17:00:00+00:00"
    times = [seconds_of(r["MetaData"]["LastUpdatedTime"]) or 0 for r in records]
    assert times == sorted(times)
    final = pages[-1].cursor
    assert final is not None and final["since"] == times[-1]
    restart = pages[-2].cursor
    assert restart is not None and "start" in restart
    last_query = queries(sandbox)[-1]
    assert f"MetaData.LastUpdatedTime >= '{qbo_time(restart['since'])}'" in last_query
    assert "ORDERBY MetaData.LastUpdatedTime" in last_query
    assert all(v == "75" for v in sandbox.minor_versions)
    assert len(sandbox.minor_versions) == len(sandbox.api_requests())


def test_paging_ends_on_a_short_page_or_an_empty_answer(tmp_path: Path) -> None:
    with QuickBooksSandbox(seed=2, count=0, **FAST) as empty, \
            QuickBooksConnector(connection(empty, tmp_path / "e")) as qbo:
        pages, records = read_all(qbo, "Customer", page_size=10)
        assert records == [] and len(pages) == 1
        assert pages[0].cursor is not None and pages[0].cursor["since"] == 0
        assert len(empty.api_requests("/query")) == 1
    with QuickBooksSandbox(seed=2, count=20, **FAST) as sb, \
            QuickBooksConnector(connection(sb, tmp_path / "f")) as qbo:
        pages, records = read_all(qbo, "Customer", page_size=10)
        assert len({r["Id"] for r in records}) == len(records) == 20
        # Restarting at the newest second read brings its record back once (dropped), so
        # the second page holds 9 new ones and a third, short page ends the walk.
        assert [len(p.records) for p in pages] == [10, 9, 1]
        sent = queries(sb)[-3:]
        assert "STARTPOSITION 1 MAXRESULTS 10" in sent[0] and ">=" not in sent[0]
        assert all(">=" in q and "STARTPOSITION 1 " in q for q in sent[1:])


def test_a_record_changed_mid_read_cannot_hide_another(sandbox: QuickBooksSandbox,
                                                       qbo: QuickBooksConnector,
                                                       clock: Clock) -> None:
    everything = {r["Id"] for r in sandbox.records("Customer")}
    reader = qbo.read("Customer", None, incremental=False, page_size=10)
    first = next(reader)
    clock.now += 5
    sandbox.touch("Customer", first.records[0]["Id"], CompanyName="moved to the end")
    rest = [r for p in reader for r in p.records]
    seen = {r["Id"] for r in first.records} | {r["Id"] for r in rest}
    assert seen == everything
    assert rest[-1]["CompanyName"] == "moved to the end"


def test_a_change_in_the_cursors_second_is_read_once(sandbox: QuickBooksSandbox,
                                                     qbo: QuickBooksConnector,
                                                     clock: Clock) -> None:
    pages, _ = read_all(qbo, "Customer")
    ids = [r["Id"] for r in sandbox.records("Customer") if r["Active"]][:2]
    clock.now += 10
    sandbox.touch("Customer", ids[0], CompanyName="first")
    pages, changed = read_all(qbo, "Customer", pages[-1].cursor, incremental=True)
    assert [r["Id"] for r in changed] == [ids[0]]
    cursor = pages[-1].cursor
    # The same second again: the first record's old version is dropped by its SyncToken,
    # its new version (and another record) are read.
    sandbox.touch("Customer", ids[0], CompanyName="first, again")
    sandbox.touch("Customer", ids[1], CompanyName="second")
    pages, changed = read_all(qbo, "Customer", cursor, incremental=True)
    assert sorted(r["Id"] for r in changed) == sorted(ids)
    _, nothing = read_all(qbo, "Customer", pages[-1].cursor, incremental=True)
    assert nothing == []


# -- CDC deletions ------------------------------------------------------------------------------


def unpaid_invoices(sandbox: QuickBooksSandbox) -> list[dict[str, Any]]:
    return [i for i in sandbox.records("Invoice") if not i["LinkedTxn"]]


def test_incremental_reads_report_deleted_invoices_from_cdc(sandbox: QuickBooksSandbox,
                                                            qbo: QuickBooksConnector,
                                                            clock: Clock) -> None:
    pages, _ = read_all(qbo, "Invoice")
    cursor = pages[-1].cursor
    assert cursor is not None and cursor["cdc"] == int(clock.now)
    clock.now += 10
    gone = unpaid_invoices(sandbox)[0]["Id"]
    sandbox.delete("Invoice", gone)
    # Read in the deletion's second: the new cdc mark is that second, so the next read
    # sees the tombstone once more (whole seconds: twice rather than never).
    pages, changed = read_all(qbo, "Invoice", cursor, incremental=True)
    assert [r["Id"] for r in changed] == [gone]
    clock.now += 1
    pages, changed = read_all(qbo, "Invoice", cursor, incremental=True)
    assert changed[0] == {"Id": gone, "status": "Deleted", "domain": "QBO",
                          "MetaData": {"LastUpdatedTime": changed[0]["MetaData"]
                                       ["LastUpdatedTime"]}}
    assert len(changed) == 1  # nothing else changed
    cdc_call = sandbox.api_requests("/cdc")[-1][3]
    assert parse_qs(cdc_call)["entities"] == ["Invoice"]
    assert parse_qs(cdc_call)["changedSince"] == [qbo_time(cursor["cdc"])]
    clock.now += 10
    _, again = read_all(qbo, "Invoice", pages[-1].cursor, incremental=True)
    assert again == []  # the new cdc mark is past the deletion


def test_resuming_among_tombstones_reads_the_rest(sandbox: QuickBooksSandbox,
                                                  qbo: QuickBooksConnector,
                                                  clock: Clock) -> None:
    pages, _ = read_all(qbo, "Invoice")
    cursor = pages[-1].cursor
    gone = []
    for invoice in unpaid_invoices(sandbox)[:5]:
        clock.now += 1
        sandbox.delete("Invoice", invoice["Id"])
        gone.append(invoice["Id"])
    pages, changed = read_all(qbo, "Invoice", cursor, incremental=True, page_size=2)
    assert [r["Id"] for r in changed] == gone
    assert pages[0].cursor is not None and pages[0].cursor["deleted_from"] == 2
    _, rest = read_all(qbo, "Invoice", pages[0].cursor, incremental=True, page_size=2)
    assert [r["Id"] for r in rest] == gone[2:]


def test_a_saturated_cdc_answer_narrows_the_window(tmp_path: Path, clock: Clock) -> None:
    with QuickBooksSandbox(seed=5, count=40, clock=clock, cdc_cap=3, **FAST) as sb, \
            QuickBooksConnector(connection(sb, tmp_path, cdc_cap=3)) as qbo:
        pages, _ = read_all(qbo, "Invoice")
        gone = []
        for invoice in unpaid_invoices(sb)[:7]:
            clock.now += 1
            sb.delete("Invoice", invoice["Id"])
            gone.append(invoice["Id"])
        _, changed = read_all(qbo, "Invoice", pages[-1].cursor, incremental=True)
        assert [r["Id"] for r in changed] == gone
        assert len(sb.api_requests("/cdc")) >= 3


def test_a_cursor_older_than_the_cdc_lookback_is_clamped_and_logged(
        sandbox: QuickBooksSandbox, qbo: QuickBooksConnector, clock: Clock,
        caplog: pytest.LogCaptureFixture) -> None:
    old = int(clock.now) - 40 * 86_400
    refused = direct(sandbox, qbo, "GET", "cdc",
                     params={"entities": "Invoice", "changedSince": qbo_time(old)})
    assert refused.status_code == 400 and "30 days" in refused.text
    with caplog.at_level(logging.WARNING):
        read_all(qbo, "Payment", {"since": 0, "skip": [], "cdc": old}, incremental=True)
    assert "more than 30 days ago" in caplog.text
    sent = parse_qs(sandbox.api_requests("/cdc")[-1][3])["changedSince"][0]
    assert seconds_of(sent) is not None and seconds_of(sent) > old + 9 * 86_400  # type: ignore[operator]


# -- writes ------------------------------------------------------------------------------------


def test_partial_batch_failure_gives_per_record_results(sandbox: QuickBooksSandbox,
                                                        qbo: QuickBooksConnector) -> None:
    taken = sandbox.records("Customer")[0]["DisplayName"]
    ops = [WriteOp("create", "a", {"DisplayName": "Alpha LLC"}),
           WriteOp("create", "b", {"DisplayName": taken}),
           WriteOp("create", "c", {"GivenName": "Gamma", "FamilyName": "Person"})]
    results = qbo.write("Customer", ops)
    assert [r.key for r in results] == ["a", "b", "c"]
    assert [r.ok for r in results] == [True, False, True]
    error = results[1].error
    assert isinstance(error, PermanentError) and getattr(error, "code", None) == "6240"
    assert "record b" in str(error) and "Duplicate Name Exists Error" in str(error)
    assert results[2].record is not None and results[2].record["DisplayName"] == "Gamma Person"
    batches = sandbox.api_requests("/batch")
    assert len(batches) == 1
    request_id = parse_qs(batches[0][3])["requestid"][0]
    assert 0 < len(request_id) <= 50


def test_a_stale_sync_token_is_reread_and_the_update_retried_once(
        sandbox: QuickBooksSandbox, qbo: QuickBooksConnector) -> None:
    _, customers = read_all(qbo, "Customer")
    target = next(c for c in customers if c["Active"])
    sandbox.touch("Customer", target["Id"], CompanyName="edited in QBO")  # our token is stale
    result, = qbo.write("Customer", [WriteOp("update", "u", {"GivenName": "Ours"},
                                             external_id=target["Id"])])
    assert result.ok, result.error
    stored = sandbox.get("Customer", target["Id"])
    assert stored is not None and stored["GivenName"] == "Ours"
    assert stored["CompanyName"] == "edited in QBO"  # sparse: their edit is kept
    assert stored["SyncToken"] == str(int(target["SyncToken"]) + 2)
    calls = [p.rsplit("/", 1)[1] for _m, p, _h, _q in sandbox.api_requests()][-3:]
    assert calls == ["batch", "query", "batch"]
    ids = [parse_qs(q)["requestid"][0] for _m, _p, _h, q in sandbox.api_requests("/batch")]
    assert ids[-1] != ids[-2]  # the retry is a new request, not a replay of the 5010


def test_stale_twice_is_left_for_a_later_retry(sandbox: QuickBooksSandbox,
                                               qbo: QuickBooksConnector) -> None:
    target = next(c for c in sandbox.records("Customer") if c["Active"])

    def busy_user() -> None:
        sandbox.store.touch("Customer", target["Id"], CompanyName="busy user")
    sandbox.before_batch = busy_user
    result, = qbo.write("Customer", [WriteOp("update", "u", {"GivenName": "Ours"},
                                             external_id=target["Id"])])
    assert not result.ok and isinstance(result.error, TransientError)
    assert "Stale Object Error" in str(result.error)


def test_requestid_makes_a_repeated_batch_harmless(sandbox: QuickBooksSandbox,
                                                   qbo: QuickBooksConnector) -> None:
    ops = [WriteOp("create", f"k{i}", {"DisplayName": f"Repeat {i} Inc."}) for i in range(3)]
    first = qbo.write("Customer", ops)
    second = qbo.write("Customer", ops)
    assert all(r.ok for r in first + second)
    assert [r.external_id for r in first] == [r.external_id for r in second]
    names = [c["DisplayName"] for c in sandbox.records("Customer")]
    assert sum(n.startswith("Repeat ") for n in names) == 3
    ids = [parse_qs(q)["requestid"][0] for _m, _p, _h, q in sandbox.api_requests("/batch")]
    assert ids[-1] == ids[-2]


def test_archiving_a_customer_makes_it_inactive(sandbox: QuickBooksSandbox,
                                                qbo: QuickBooksConnector) -> None:
    target = next(c for c in sandbox.records("Customer") if c["Active"])
    archived, deleted = qbo.write("Customer", [
        WriteOp("archive", "a", {}, external_id=target["Id"]),
        WriteOp("delete", "d", {}, external_id=target["Id"])])
    assert archived.ok and deleted.ok, (archived.error, deleted.error)
    stored = sandbox.get("Customer", target["Id"])
    assert stored is not None and stored["Active"] is False  # never deleted in QBO
    _, customers = read_all(qbo, "Customer")
    assert any(c["Id"] == target["Id"] and c["Active"] is False for c in customers)


def test_deleting_invoices_and_payments(sandbox: QuickBooksSandbox,
                                        qbo: QuickBooksConnector) -> None:
    free = unpaid_invoices(sandbox)[0]["Id"]
    paid = next(i for i in sandbox.records("Invoice") if i["LinkedTxn"])
    ok, refused, archive = qbo.write("Invoice", [
        WriteOp("delete", "free", {}, external_id=free),
        WriteOp("delete", "paid", {}, external_id=paid["Id"]),
        WriteOp("archive", "arc", {}, external_id=free)])
    assert ok.ok and sandbox.get("Invoice", free) is None
    assert not refused.ok and "payments applied" in str(refused.error)
    assert not archive.ok and "delete_policy" in str(archive.error)
    payment = paid["LinkedTxn"][0]["TxnId"]
    result, = qbo.write("Payment", [WriteOp("delete", "p", {}, external_id=payment)])
    assert result.ok and sandbox.get("Payment", payment) is None
    invoice = sandbox.get("Invoice", paid["Id"])
    assert invoice is not None and invoice["Balance"] > paid["Balance"]


def test_an_unknown_record_fails_in_its_result(qbo: QuickBooksConnector) -> None:
    result, = qbo.write("Invoice", [WriteOp("update", "x", {"DueDate": "2024-01-01"},
                                            external_id="999999")])
    assert not result.ok and "has no Invoice 999999" in str(result.error)
    assert qbo.fetch("Invoice", "999999") is None


def test_a_fault_with_http_200_is_an_error_and_a_refused_batch_is_split(
        tmp_path: Path) -> None:
    with QuickBooksSandbox(count=3, faults_as_200=True, batch_max=2, **FAST) as sb, \
            QuickBooksConnector(connection(sb, tmp_path)) as qbo:
        refused = direct(sb, qbo, "GET", "query", params={"query": "SELECT Id FROM Customer"})
        assert refused.status_code == 200 and "Fault" in refused.json()
        results = qbo.write("Customer", [WriteOp("create", f"c{i}", {"DisplayName": f"S{i}"})
                                         for i in range(3)])
        assert all(r.ok for r in results), [str(r.error) for r in results]
        assert len(sb.api_requests("/batch")) == 4  # the whole batch, then one by one


def test_invoice_lines_subtotal_dropped_on_read_detail_type_added_on_write(
        sandbox: QuickBooksSandbox, qbo: QuickBooksConnector) -> None:
    invoice = sandbox.records("Invoice")[0]
    assert invoice["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    fetched = qbo.fetch("Invoice", invoice["Id"])
    assert fetched is not None
    assert [line["DetailType"] for line in fetched["Line"]] == \
        ["SalesItemLineDetail"] * (len(invoice["Line"]) - 1)
    customer = invoice["CustomerRef"]["value"]
    result, = qbo.write("Invoice", [WriteOp("create", "n", {
        "CustomerRef": {"value": customer},
        "Line": [{"Description": "x", "SalesItemLineDetail": {"Qty": 3, "UnitPrice": 2.5}}]})])
    assert result.ok and result.record is not None, result.error
    assert result.record["TotalAmt"] == 7.5 and result.record["Line"][0]["Amount"] == 7.5


def test_a_payment_line_without_amount_applies_the_total(sandbox: QuickBooksSandbox,
                                                         qbo: QuickBooksConnector) -> None:
    invoice = unpaid_invoices(sandbox)[0]
    result, = qbo.write("Payment", [WriteOp("create", "p", {
        "CustomerRef": invoice["CustomerRef"], "TotalAmt": 1,
        "Line": [{"LinkedTxn": [{"TxnId": invoice["Id"]}]}]})])
    assert result.ok, result.error
    after = sandbox.get("Invoice", invoice["Id"])
    assert after is not None and after["Balance"] == invoice["Balance"] - 1


# -- OAuth2: rotation, 401, one refresh at a time ---------------------------------------------


def test_refresh_token_rotates_and_is_stored(sandbox: QuickBooksSandbox, tmp_path: Path) -> None:
    configured = sandbox.refresh_token
    with QuickBooksConnector(connection(sandbox, tmp_path)) as qbo:
        assert qbo.check().ok
        stored = orjson.loads(qbo.token_path().read_bytes())
    assert stored["refresh_token"] not in (None, configured)
    assert qbo.token_path() == tmp_path / ".liaison-tokens" / "books.json"
    assert qbo.token_path().stat().st_mode & 0o077 == 0
    reuse = httpx.post(sandbox.token_url, auth=(sandbox.client_id, sandbox.client_secret),
                       data={"grant_type": "refresh_token", "refresh_token": configured})
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    before = sandbox.token_requests
    with QuickBooksConnector(connection(sandbox, tmp_path)) as again:
        assert again.check().ok  # another process: the stored access token is used
    assert sandbox.token_requests == before


def test_a_401_with_lower_case_fault_is_refreshed_once(sandbox: QuickBooksSandbox,
                                                       qbo: QuickBooksConnector) -> None:
    assert qbo.check().ok
    sandbox.expire_access_tokens()
    answer = httpx.get(f"{sandbox.base_url}/v3/company/{sandbox.realm_id}/query",
                       params={"query": "SELECT * FROM Customer"},
                       headers={"Authorization": "Bearer stale"})
    assert answer.status_code == 401 and "fault" in answer.json()
    assert answer.json()["fault"]["error"][0]["code"] == "3200"
    assert answer.headers["www-authenticate"].startswith('Bearer realm="Intuit"')
    assert answer.headers["intuit_tid"]
    assert qbo.check().ok
    assert qbo.api.auth.refreshes == 2


def test_concurrent_refreshes_happen_once(sandbox: QuickBooksSandbox, tmp_path: Path) -> None:
    connectors = [QuickBooksConnector(connection(sandbox, tmp_path)) for _ in range(6)]
    before = sandbox.token_requests
    barrier = threading.Barrier(len(connectors))
    results: list[bool] = []

    def run(c: QuickBooksConnector) -> None:
        barrier.wait()
        results.append(c.check().ok)

    threads = [threading.Thread(target=run, args=(c,)) for c in connectors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for c in connectors:
        c.close()
    assert results == [True] * 6
    assert sandbox.token_requests - before == 1


def test_a_used_refresh_token_says_to_reauthorise(sandbox: QuickBooksSandbox,
                                                  tmp_path: Path) -> None:
    used = sandbox.refresh_token
    with QuickBooksConnector(connection(sandbox, tmp_path / "a")) as qbo:
        assert qbo.check().ok
    with QuickBooksConnector(connection(sandbox, tmp_path / "b", refresh_token=used)) as qbo:
        health = qbo.check()
        with pytest.raises(AuthError, match="invalid_grant"):
            qbo.api.auth.token()
    assert not health.ok and "Re-authorise" in health.message
    # Intuit's words, not Xero's (the two share the token store): who refused, and why.
    assert "Intuit refused the refresh token" in health.message
    assert "idle for 100 days" in health.message and "Xero" not in health.message
    assert used not in health.message



def test_an_unreadable_token_file_is_named_with_what_to_do(sandbox: QuickBooksSandbox,
                                                            tmp_path: Path) -> None:
    tokens = tmp_path / ".liaison-tokens" / "books.json"
    tokens.parent.mkdir(parents=True)
    tokens.write_bytes(b"{not json")
    with QuickBooksConnector(connection(sandbox, tmp_path)) as qbo:
        health = qbo.check()
    assert not health.ok
    assert f"Intuit token file {tokens} cannot be read" in health.message
    assert "delete it and set a fresh refresh_token" in health.message
    assert tokens.read_bytes() == b"{not json"  # left for the person to look at

# -- rate limits ---------------------------------------------------------------------------------


def test_a_429_without_retry_after_waits_rate_limit_wait(tmp_path: Path) -> None:
    with QuickBooksSandbox(count=2, faults=Faults(rate_limit=1.0), **FAST) as sb:
        with QuickBooksConnector(connection(sb, tmp_path / "a", backoff_max=1.0)) as qbo:
            token = qbo.api.auth.token()
            raw = httpx.get(f"{sb.base_url}/v3/company/{sb.realm_id}/query",
                            params={"query": "SELECT * FROM Customer"},
                            headers={"Authorization": f"Bearer {token}"})
            assert raw.status_code == 429 and "retry-after" not in raw.headers
            before = len(sb.api_requests())
            with pytest.raises(RateLimited) as caught:  # 60 s: more than we may sleep here
                list(qbo.read("Customer", None, incremental=False, page_size=10))
            assert caught.value.retry_after == 60
            assert len(sb.api_requests()) - before == 1  # handed to the job layer at once
        with QuickBooksConnector(connection(sb, tmp_path / "a", attempts=3,
                                            rate_limit_wait=0.02)) as qbo:
            qbo.api.auth.token()
            before = len(sb.api_requests())
            with pytest.raises(RateLimited) as caught:
                list(qbo.read("Customer", None, incremental=False, page_size=10))
            assert caught.value.retry_after == 0.02
            assert len(sb.api_requests()) - before == 3  # waited and retried in place


def test_the_rate_gate_keeps_under_both_windows() -> None:
    now = [0.0]
    gate = RateGate(3, 5, sleep=lambda s: now.__setitem__(0, now[0] + s),
                    clock=lambda: now[0])
    for _ in range(7):
        gate.acquire()
    assert gate.waited[0] == pytest.approx(1.05)  # the 4th call waits for the second to pass
    assert now[0] == pytest.approx(60.5)  # the 6th waits for the minute (with a margin)
    assert RateGate(0, 0).waited == []


def test_pacing_on_our_side_avoids_the_429(tmp_path: Path) -> None:
    with QuickBooksSandbox(count=2, per_second=40, per_minute=10_000) as sb, \
            QuickBooksConnector(connection(sb, tmp_path, attempts=1,
                                           requests_per_second=40)) as qbo:
        for _ in range(50):
            assert qbo.fetch("Customer", "1") is not None
        assert qbo.api.gate.waited  # it slowed down instead of being refused
