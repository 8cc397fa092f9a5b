"""XeroConnector against the Xero sandbox over real HTTP on 127.0.0.1: the fiddly parts."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from connectors.xero.client import if_modified_since, ms_of
from connectors.xero.connector import XeroConnector
from connectors.xero.sandbox import Faults, XeroSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import Page, WriteOp
from hub.errors import AuthError, RateLimited

MS_DATE = re.compile(r"^/Date\(\d+\+0000\)/$")


def connection(sandbox: XeroSandbox, base_dir: Path, *, attempts: int = 3,
               **settings: Any) -> ConnectionConfig:
    return ConnectionConfig(
        name="books", connector="xero", base_dir=base_dir,
        settings={"base_url": sandbox.base_url, "token_url": sandbox.token_url,
                  "tenant_id": sandbox.tenant_id, "client_id": sandbox.client_id,
                  "client_secret": sandbox.client_secret,
                  "refresh_token": sandbox.refresh_token, **settings},
        retry=RetryPolicy(attempts=attempts, backoff_initial=0.01, backoff_max=2.0))


@pytest.fixture
def sandbox() -> Iterator[XeroSandbox]:
    with XeroSandbox(seed=5, count=60, minute_limit=100_000) as sb:
        yield sb


@pytest.fixture
def xero(sandbox: XeroSandbox, tmp_path: Path) -> Iterator[XeroConnector]:
    with XeroConnector(connection(sandbox, tmp_path)) as connector:
        yield connector


def read_all(connector: XeroConnector, object: str, cursor: dict[str, Any] | None = None, *,
             incremental: bool = False, page_size: int = 100) -> tuple[list[Page], list[Any]]:
    pages = list(connector.read(object, cursor, incremental=incremental, page_size=page_size))
    return pages, [r for p in pages for r in p.records]


def api_requests(sandbox: XeroSandbox, method: str | None = None) -> list[tuple[str, str, dict[str, str]]]:
    return [r for r in sandbox.requests if r[1].startswith("/api.xro")
            and (method is None or r[0] == method)]


# -- dates --------------------------------------------------------------------------------


def test_records_carry_ms_json_dates(xero: XeroConnector) -> None:
    _, invoices = read_all(xero, "Invoices")
    assert invoices and all(MS_DATE.match(r["UpdatedDateUTC"]) and MS_DATE.match(r["Date"])
                            for r in invoices)
    assert ms_of("/Date(1539993600000+0000)/") == 1_539_993_600_000
    assert ms_of("2018-10-20T00:00:00") == 1_539_993_600_000


def test_if_modified_since_has_no_milliseconds() -> None:
    assert if_modified_since(1_714_557_600_999) == "2024-05-01T10:00:00"
    assert if_modified_since(1_714_557_600_001, rounding="up") == "2024-05-01T10:00:01"
    assert if_modified_since(1_714_557_600_000, rounding="up") == "2024-05-01T10:00:00"


def test_sandbox_refuses_milliseconds_and_a_missing_tenant(sandbox: XeroSandbox,
                                                           xero: XeroConnector) -> None:
    token = xero.api.auth.token()
    base = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    with httpx.Client(base_url=sandbox.base_url) as http:
        ms = http.get("/Contacts", headers={**base, "xero-tenant-id": sandbox.tenant_id,
                                            "If-Modified-Since": "2024-05-01T10:00:00.500"})
        assert ms.status_code == 400 and "milliseconds" in ms.text
        missing = http.get("/Contacts", headers=base)
        assert missing.status_code == 403
        assert missing.json()["Detail"] == "AuthenticationUnsuccessful"


# -- paging and incremental reads -----------------------------------------------------------


def test_full_read_pages_oldest_first_and_ends_with_a_cursor(xero: XeroConnector,
                                                             sandbox: XeroSandbox) -> None:
    pages, records = read_all(xero, "Contacts", page_size=25)
    ids = [r["ContactID"] for r in records]
    assert len(ids) == len(set(ids)) == 60  # archived contacts included (includeArchived)
    assert any(r["ContactStatus"] == "ARCHIVED" for r in records)
    times = [ms_of(r["UpdatedDateUTC"]) or 0 for r in records]
    assert times == sorted(times)
    assert pages[-1].cursor == {"since": max(times), "skip": [ids[-1]]}
    sent = api_requests(sandbox, "GET")
    assert all("If-Modified-Since".lower() not in h for _, _, h in sent[:1])
    assert all(int(h.get("x-minlimit-remaining", "1")) for _, _, h in sent)


def test_paging_ends_on_a_short_page_or_the_page_count(tmp_path: Path) -> None:
    with XeroSandbox(seed=2, count=20, minute_limit=1000) as sb, \
            XeroConnector(connection(sb, tmp_path)) as xero:
        before = len(api_requests(sb))
        pages, records = read_all(xero, "Contacts", page_size=10)
        # Each page restarts at the newest second read, whose record comes back once more
        # (and is dropped): 10, then 9 new of 10, then the last one.
        assert [len(p.records) for p in pages] == [10, 9, 1]
        assert len({r["ContactID"] for r in records}) == 20
        assert len(api_requests(sb)) - before == 3
        restarts = [h.get("if-modified-since") for _, _, h in api_requests(sb, "GET")[-3:]]
        assert restarts[0] is None and all(restarts[1:])
    with XeroSandbox(seed=2, count=0) as empty, \
            XeroConnector(connection(empty, tmp_path / "e")) as xero:
        pages, records = read_all(xero, "Contacts", page_size=10)
        assert records == [] and len(pages) == 1 and pages[0].cursor == {"since": 0, "skip": []}


def test_a_record_changed_mid_read_cannot_hide_another(xero: XeroConnector,
                                                       sandbox: XeroSandbox) -> None:
    """Page numbers alone would skip one record when an earlier one moves to the end."""
    everything = {r["ContactID"] for r in sandbox.records("Contacts")}
    reader = xero.read("Contacts", None, incremental=False, page_size=10)
    first = next(reader)
    sandbox.touch("Contacts", first.records[0]["ContactID"], TaxNumber="moved-to-the-end")
    rest = [r for p in reader for r in p.records]
    seen = {r["ContactID"] for r in first.records} | {r["ContactID"] for r in rest}
    assert seen == everything
    assert rest[-1]["TaxNumber"] == "moved-to-the-end"


def test_incremental_read_sends_if_modified_since_and_returns_only_changes(
        xero: XeroConnector, sandbox: XeroSandbox) -> None:
    pages, _ = read_all(xero, "Invoices", page_size=50)
    cursor = pages[-1].cursor
    assert cursor is not None
    ids = [r["InvoiceID"] for r in sandbox.records("Invoices")[:2]]
    base = 1_800_000_000_000
    sandbox.touch("Invoices", ids[0], at_ms=base + 100, Reference="first")
    _, changed = read_all(xero, "Invoices", cursor, incremental=True)
    assert [r["InvoiceID"] for r in changed] == [ids[0]]
    header = api_requests(sandbox, "GET")[-1][2]["if-modified-since"]
    assert header == if_modified_since(cursor["since"])
    # Another change later in the same second: whole-second headers re-send the first one,
    # which the cursor drops; the second one is not lost.
    again_cursor = xero_cursor(xero, cursor)
    sandbox.touch("Invoices", ids[1], at_ms=base + 700, Reference="second")
    _, changed = read_all(xero, "Invoices", again_cursor, incremental=True)
    assert [r["InvoiceID"] for r in changed] == [ids[1]]
    assert api_requests(sandbox, "GET")[-1][2]["if-modified-since"] == "2027-01-15T08:00:00"


def xero_cursor(xero: XeroConnector, cursor: dict[str, Any]) -> dict[str, Any]:
    pages = list(xero.read("Invoices", cursor, incremental=True, page_size=50))
    final = pages[-1].cursor
    assert final is not None
    return final


def test_incremental_read_sees_archiving(xero: XeroConnector, sandbox: XeroSandbox) -> None:
    pages, records = read_all(xero, "Contacts")
    active = next(r for r in records if r["ContactStatus"] == "ACTIVE")
    result, = xero.write("Contacts", [WriteOp("archive", "arc", {},
                                              external_id=active["ContactID"])])
    assert result.ok, result.error
    _, changed = read_all(xero, "Contacts", pages[-1].cursor, incremental=True)
    assert [(r["ContactID"], r["ContactStatus"]) for r in changed] == \
        [(active["ContactID"], "ARCHIVED")]


def test_unpaged_invoice_lists_omit_line_items_but_the_connector_pages(
        xero: XeroConnector, sandbox: XeroSandbox) -> None:
    token = xero.api.auth.token()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
               "xero-tenant-id": sandbox.tenant_id}
    body = httpx.get(sandbox.base_url + "/Invoices", headers=headers).json()
    assert body["Status"] == "OK" and "pagination" not in body
    assert all("LineItems" not in i for i in body["Invoices"])
    _, invoices = read_all(xero, "Invoices")
    assert all(i["LineItems"] for i in invoices)


def test_fetch_one_record(xero: XeroConnector, sandbox: XeroSandbox) -> None:
    invoice = sandbox.records("Invoices")[3]
    fetched = xero.fetch("Invoices", invoice["InvoiceID"])
    assert fetched is not None and fetched["InvoiceNumber"] == invoice["InvoiceNumber"]
    assert xero.fetch("Invoices", "00000000-0000-0000-0000-000000000000") is None


# -- writes -----------------------------------------------------------------------------------


def test_partial_batch_failure_gives_per_record_results(xero: XeroConnector,
                                                        sandbox: XeroSandbox) -> None:
    ops = [WriteOp("create", "a", {"Name": "Alpha Ltd", "EmailAddress": "a@alpha.example"}),
           WriteOp("create", "b", {"Name": "Beta Ltd", "EmailAddress": "not-an-email"}),
           WriteOp("create", "c", {"Name": "Gamma Ltd"})]
    results = xero.write("Contacts", ops)
    assert [r.key for r in results] == ["a", "b", "c"]
    assert [r.ok for r in results] == [True, False, True]
    assert "Email address must be valid" in str(results[1].error)
    assert "record b" in str(results[1].error)
    _method, path, headers = api_requests(sandbox, "PUT")[-1]
    assert path.endswith("/Contacts")  # a create is a PUT: it can never update by accident
    assert 0 < len(headers["idempotency-key"]) <= 128
    names = {c["Name"] for c in sandbox.records("Contacts")}
    assert {"Alpha Ltd", "Gamma Ltd"} <= names and "Beta Ltd" not in names


def test_without_summarize_errors_xero_refuses_the_whole_batch(sandbox: XeroSandbox,
                                                               xero: XeroConnector) -> None:
    headers = {"Authorization": f"Bearer {xero.api.auth.token()}",
               "Accept": "application/json", "xero-tenant-id": sandbox.tenant_id}
    body = {"Contacts": [{"Name": "Fine Ltd"}, {"Name": "Bad Ltd", "EmailAddress": "x"}]}
    answer = httpx.put(sandbox.base_url + "/Contacts", headers=headers, json=body)
    assert answer.status_code == 400
    assert answer.json()["Type"] == "ValidationException"
    assert answer.json()["Elements"][1]["ValidationErrors"][0]["Message"] == \
        "Email address must be valid."
    assert "Fine Ltd" not in {c["Name"] for c in sandbox.records("Contacts")}


def test_put_creates_only_post_updates(sandbox: XeroSandbox, xero: XeroConnector) -> None:
    contact = sandbox.records("Contacts")[0]
    headers = {"Authorization": f"Bearer {xero.api.auth.token()}",
               "Accept": "application/json", "xero-tenant-id": sandbox.tenant_id}
    element = {"ContactID": contact["ContactID"], "TaxNumber": "999"}
    put = httpx.put(sandbox.base_url + "/Contacts?summarizeErrors=false", headers=headers,
                    json={"Contacts": [element]})
    assert put.json()["Contacts"][0]["HasValidationErrors"] is True
    result, = xero.write("Contacts", [WriteOp("update", "u", {"TaxNumber": "999"},
                                              external_id=contact["ContactID"])])
    assert result.ok and result.external_id == contact["ContactID"]
    assert sandbox.get("Contacts", contact["ContactID"])["TaxNumber"] == "999"
    assert api_requests(sandbox, "POST")[-1][1].endswith("/Contacts")


def test_idempotency_key_makes_a_repeated_batch_harmless(xero: XeroConnector,
                                                         sandbox: XeroSandbox) -> None:
    ops = [WriteOp("create", f"k{i}", {"Name": f"Repeat {i} Ltd"}) for i in range(3)]
    first = xero.write("Contacts", ops)
    second = xero.write("Contacts", ops)
    assert [r.external_id for r in first] == [r.external_id for r in second]
    names = [c["Name"] for c in sandbox.records("Contacts")]
    assert sum(n.startswith("Repeat ") for n in names) == 3
    keys = [h["idempotency-key"] for _, _, h in api_requests(sandbox, "PUT")[-2:]]
    assert keys[0] == keys[1]


def test_invoice_with_a_number_is_upserted_by_post(xero: XeroConnector,
                                                   sandbox: XeroSandbox) -> None:
    contact = sandbox.records("Contacts")[1]
    record = {"Type": "ACCREC", "InvoiceNumber": "UP-1", "Contact": {"ContactID":
              contact["ContactID"]}, "LineItems": [{"Description": "x", "Quantity": 1,
                                                    "UnitAmount": 10}]}
    first, = xero.write("Invoices", [WriteOp("create", "one", record)])
    second, = xero.write("Invoices", [WriteOp("create", "two", {**record, "Reference": "R"})])
    assert first.ok and second.ok and first.external_id == second.external_id
    assert sandbox.get("Invoices", str(first.external_id))["Reference"] == "R"
    assert first.record is not None and first.record["Total"] == 11.5  # 15% tax computed


def test_deleting_invoices_follows_their_status(xero: XeroConnector,
                                                sandbox: XeroSandbox) -> None:
    by_status: dict[str, str] = {}
    for invoice in sandbox.records("Invoices"):
        if invoice["Status"] == "AUTHORISED" and invoice["Payments"]:
            continue
        by_status.setdefault(invoice["Status"], invoice["InvoiceID"])
    ops = [WriteOp("delete", s, {}, external_id=by_status[s])
           for s in ("DRAFT", "AUTHORISED", "PAID")]
    results = xero.write("Invoices", ops)
    assert [r.ok for r in results] == [True, True, False]
    assert sandbox.get("Invoices", by_status["DRAFT"])["Status"] == "DELETED"
    assert sandbox.get("Invoices", by_status["AUTHORISED"])["Status"] == "VOIDED"
    assert "PAID" in str(results[2].error)


def test_deleting_a_payment_reopens_its_invoice(xero: XeroConnector,
                                                sandbox: XeroSandbox) -> None:
    paid = next(i for i in sandbox.records("Invoices") if i["Status"] == "PAID")
    payment_id = paid["Payments"][0]["PaymentID"]
    result, = xero.write("Payments", [WriteOp("delete", "d", {}, external_id=payment_id)])
    assert result.ok, result.error
    assert sandbox.get("Payments", payment_id)["Status"] == "DELETED"
    invoice = sandbox.get("Invoices", paid["InvoiceID"])
    assert invoice["Status"] == "AUTHORISED" and invoice["AmountDue"] == paid["Total"]
    changed, = xero.write("Payments", [WriteOp("update", "u", {"Amount": 1},
                                               external_id=payment_id)])
    assert not changed.ok and "only deleted" in str(changed.error)


def test_overpaying_an_invoice_fails_in_its_result(xero: XeroConnector,
                                                   sandbox: XeroSandbox) -> None:
    open_invoice = next(i for i in sandbox.records("Invoices") if i["Status"] == "AUTHORISED")
    op = WriteOp("create", "over", {"Invoice": {"InvoiceID": open_invoice["InvoiceID"]},
                                    "Account": {"Code": "090"}, "Date": "2024-06-01",
                                    "Amount": open_invoice["AmountDue"] + 1})
    result, = xero.write("Payments", [op])
    assert not result.ok and "exceeds the amount outstanding" in str(result.error)


# -- OAuth2: refresh ahead of expiry, rotation, one refresh at a time ------------------------


def test_refresh_token_rotates_and_is_stored(sandbox: XeroSandbox, tmp_path: Path) -> None:
    configured = sandbox.refresh_token
    with XeroConnector(connection(sandbox, tmp_path)) as xero:
        assert xero.check().ok
        stored = orjson.loads(xero.token_path().read_bytes())
    assert stored["refresh_token"] not in (None, configured)
    assert xero.token_path() == tmp_path / ".liaison-tokens" / "books.json"
    assert xero.token_path().stat().st_mode & 0o077 == 0
    # The configured token was used once: Xero now refuses it (rotation).
    reuse = httpx.post(sandbox.token_url, auth=(sandbox.client_id, sandbox.client_secret),
                       data={"grant_type": "refresh_token", "refresh_token": configured})
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # A new connector (another process) uses the stored tokens: no new refresh.
    before = sandbox.token_requests
    with XeroConnector(connection(sandbox, tmp_path)) as again:
        assert again.check().ok
    assert sandbox.token_requests == before


def test_refresh_ahead_of_expiry_uses_each_rotated_token(sandbox: XeroSandbox,
                                                         tmp_path: Path) -> None:
    # Ahead >= lifetime: every call refreshes, so each must use the token the last one got.
    with XeroConnector(connection(sandbox, tmp_path, refresh_ahead_seconds=1800)) as xero:
        for _ in range(4):
            assert xero.check().ok
        assert xero.api.auth.refreshes == 4


def test_a_refused_access_token_is_refreshed_once(xero: XeroConnector,
                                                  sandbox: XeroSandbox) -> None:
    assert xero.check().ok
    sandbox.expire_access_tokens()
    assert xero.check().ok  # 401, refresh, repeated
    assert xero.api.auth.refreshes == 2


def test_concurrent_refreshes_happen_once(sandbox: XeroSandbox, tmp_path: Path) -> None:
    connectors = [XeroConnector(connection(sandbox, tmp_path)) for _ in range(8)]
    before = sandbox.token_requests
    barrier = threading.Barrier(len(connectors))
    results: list[bool] = []

    def run(c: XeroConnector) -> None:
        barrier.wait()
        results.append(c.check().ok)

    threads = [threading.Thread(target=run, args=(c,)) for c in connectors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for c in connectors:
        c.close()
    assert results == [True] * 8
    assert sandbox.token_requests - before == 1  # one refresh, the others read the file


def test_a_new_configured_refresh_token_wins_over_the_file(sandbox: XeroSandbox,
                                                           tmp_path: Path) -> None:
    with XeroConnector(connection(sandbox, tmp_path)) as xero:
        assert xero.check().ok
    sandbox.expire_access_tokens()
    fresh = sandbox.issue_refresh_token()  # the ops person re-authorised the app
    with XeroConnector(connection(sandbox, tmp_path, refresh_token=fresh)) as xero:
        assert xero.check().ok
    stored = orjson.loads((tmp_path / ".liaison-tokens" / "books.json").read_bytes())
    assert stored["refresh_token"] != fresh  # it was used and rotated


def test_a_used_refresh_token_says_to_reauthorise(sandbox: XeroSandbox,
                                                  tmp_path: Path) -> None:
    used = sandbox.refresh_token
    with XeroConnector(connection(sandbox, tmp_path / "a")) as xero:
        assert xero.check().ok
    with XeroConnector(connection(sandbox, tmp_path / "b", refresh_token=used)) as xero:
        health = xero.check()
        with pytest.raises(AuthError, match="invalid_grant"):
            xero.api.auth.token()
    assert not health.ok and "Re-authorise" in health.message
    assert "Xero refused the refresh token" in health.message
    assert "older than 60 days" in health.message and "Intuit" not in health.message
    assert used not in health.message


def test_client_credentials_when_no_refresh_token(sandbox: XeroSandbox,
                                                  tmp_path: Path) -> None:
    conn = connection(sandbox, tmp_path)
    settings = {k: v for k, v in conn.settings.items() if k != "refresh_token"}
    with XeroConnector(ConnectionConfig(name="custom", connector="xero", base_dir=tmp_path,
                                        settings=settings)) as xero:
        assert xero.check().ok


def test_wrong_tenant_is_named(sandbox: XeroSandbox, tmp_path: Path) -> None:
    with XeroConnector(connection(sandbox, tmp_path, tenant_id="not-my-org")) as xero:
        health = xero.check()
    assert not health.ok and "tenant_id" in health.message and "403" in health.message


# -- rate limits --------------------------------------------------------------------------------


def test_pacer_slows_down_before_the_minute_limit(tmp_path: Path) -> None:
    with XeroSandbox(seed=1, count=30, minute_limit=8) as sb, \
            XeroConnector(connection(sb, tmp_path)) as xero:
        pauses: list[float] = []
        xero.pacer.sleep = pauses.append
        read_all(xero, "Contacts", page_size=5)
        assert pauses, "no pause although X-MinLimit-Remaining ran low"
        assert pauses == sorted(pauses)  # fewer calls left: longer waits


def test_429_carries_retry_after_and_the_problem(tmp_path: Path) -> None:
    with XeroSandbox(seed=1, count=5, minute_limit=2) as sb, \
            XeroConnector(connection(sb, tmp_path, attempts=1)) as xero:
        xero.pacer.sleep = lambda s: None
        xero.check()
        xero.check()
        with pytest.raises(RateLimited) as info:
            xero.api.probe()
        assert info.value.retry_after is not None and 1 <= info.value.retry_after <= 60
        token = xero.api.auth.token()
        answer = httpx.get(sb.base_url + "/Contacts", headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json",
            "xero-tenant-id": sb.tenant_id})
        assert answer.status_code == 429
        assert answer.headers["X-Rate-Limit-Problem"] == "minute"
        assert answer.headers["X-MinLimit-Remaining"] == "0"


def test_injected_429s_are_retried_in_place(tmp_path: Path) -> None:
    faults = Faults(rate_limit=0.4, retry_after=0.0, seed=3)
    with XeroSandbox(seed=1, count=30, faults=faults, minute_limit=100_000) as sb, \
            XeroConnector(connection(sb, tmp_path, attempts=8)) as xero:
        _, records = read_all(xero, "Contacts", page_size=7)
    assert len({r["ContactID"] for r in records}) == 30
