"""The QuickBooks connector passes the shipped conformance suite against its sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.quickbooks.connector import QuickBooksConnector
from connectors.quickbooks.sandbox import QuickBooksSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import NativeRecord
from hub.testing import conformance_suite
from hub.testing.conformance import contains

CUSTOMER = "1"  # the first record of an empty sandbox
TARGET_INVOICE = "2"


def connect(sandbox: QuickBooksSandbox, base_dir: Path, **settings: Any) -> QuickBooksConnector:
    """A connector pointed at the sandbox, its token file under base_dir."""
    return QuickBooksConnector(ConnectionConfig(
        name="books", connector="quickbooks", base_dir=base_dir,
        settings={"base_url": sandbox.base_url, "token_url": sandbox.token_url,
                  "realm_id": sandbox.realm_id, "client_id": sandbox.client_id,
                  "client_secret": sandbox.client_secret,
                  "refresh_token": sandbox.refresh_token, "requests_per_second": 0,
                  **settings},
        retry=RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=1.0)))


@pytest.fixture
def qbo(tmp_path: Path) -> Iterator[QuickBooksConnector]:
    """A connector against a fresh sandbox holding one customer and one invoice to pay."""
    with QuickBooksSandbox(count=0, per_second=10_000, per_minute=100_000,
                           batch_per_minute=10_000) as sandbox:
        customer = sandbox.create("Customer", {"DisplayName": "Conformance Customer Inc."})
        assert customer["Id"] == CUSTOMER
        invoice = sandbox.create("Invoice", {
            "CustomerRef": {"value": CUSTOMER}, "DocNumber": "PAY-TARGET",
            "Line": [{"Amount": 1_000_000, "DetailType": "SalesItemLineDetail",
                      "Description": "Big job", "SalesItemLineDetail": {}}]})
        assert invoice["Id"] == TARGET_INVOICE
        yield connect(sandbox, tmp_path)


def new_company(i: int) -> NativeRecord:
    return {"DisplayName": f"Firm {i} LLC", "PrimaryEmailAddr": {"Address": f"ap@firm{i}.example"}}


def new_invoice(i: int) -> NativeRecord:
    return {"DocNumber": f"CONF-{i:04d}", "CustomerRef": {"value": CUSTOMER},
            "TxnDate": "2024-05-01",
            "Line": [{"Description": f"Work {i}", "Amount": 2 * (50 + i),
                      "SalesItemLineDetail": {"Qty": 2, "UnitPrice": 50 + i}}]}


def new_payment(i: int) -> NativeRecord:
    return {"CustomerRef": {"value": CUSTOMER}, "TxnDate": "2024-05-02", "TotalAmt": 10 + i,
            "Line": [{"Amount": 10 + i, "LinkedTxn": [{"TxnId": TARGET_INVOICE,
                                                       "TxnType": "Invoice"}]}]}


def same_fields(written: NativeRecord, read: NativeRecord) -> bool:
    """Like `contains`, with lists compared element by element (QBO adds Ids and details)."""
    for key, value in written.items():
        got = read.get(key)
        if isinstance(value, list):
            if not isinstance(got, list) or len(got) != len(value) or not all(
                    same_fields(w, r) if isinstance(w, dict) else contains(w, r)
                    for w, r in zip(value, got, strict=True)):
                return False
        elif isinstance(value, dict):
            if not isinstance(got, dict) or not same_fields(value, got):
                return False
        elif not contains(value, got):
            return False
    return True


TestQuickBooksCompanies = conformance_suite(
    "qbo", entity="company", new_record=new_company,
    change=lambda r: {"DisplayName": r["DisplayName"], "CompanyName": "Changed Inc."},
    id_of=lambda r: r["Id"], seed_count=7, page_size=3, same=same_fields,
    upserts_by_match=True, archived=lambda r: r["Active"] is False)

TestQuickBooksInvoices = conformance_suite(
    "qbo", entity="invoice", new_record=new_invoice,
    change=lambda r: {"DocNumber": r["DocNumber"], "DueDate": "2024-07-01"},
    id_of=lambda r: r["Id"], seed_count=7, page_size=3, same=same_fields,
    upserts_by_match=True, match_of=lambda r: {"number": r["DocNumber"]},
    deletes_on_write=True)

TestQuickBooksPayments = conformance_suite(
    "qbo", entity="payment", new_record=new_payment,
    change=lambda r: {"TxnDate": "2024-06-30"},
    id_of=lambda r: r["Id"], seed_count=7, page_size=3, same=same_fields,
    upserts_by_match=True, deletes_on_write=True)
