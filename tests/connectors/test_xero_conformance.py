"""The Xero connector passes the shipped conformance suite against its sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.xero.connector import XeroConnector
from connectors.xero.sandbox import XeroSandbox
from hub.config.model import ConnectionConfig, RetryPolicy
from hub.connector import NativeRecord
from hub.testing import conformance_suite

CUSTOMER = "Conformance Customer Ltd"
TARGET_INVOICE = "PAY-TARGET"


def ticking_clock() -> Callable[[], int]:
    """Wall-clock ms that never repeats, so "changed since" is never a tie here."""
    last = [0]

    def now() -> int:
        while (ms := int(time.time() * 1000)) <= last[0]:
            time.sleep(0.0002)
        last[0] = ms
        return ms
    return now


def connect(sandbox: XeroSandbox, base_dir: Path, **settings: Any) -> XeroConnector:
    """A connector pointed at the sandbox, its token file under base_dir."""
    return XeroConnector(ConnectionConfig(
        name="books", connector="xero", base_dir=base_dir,
        settings={"base_url": sandbox.base_url, "token_url": sandbox.token_url,
                  "tenant_id": sandbox.tenant_id, "client_id": sandbox.client_id,
                  "client_secret": sandbox.client_secret,
                  "refresh_token": sandbox.refresh_token, **settings},
        retry=RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=1.0)))


@pytest.fixture
def xero(tmp_path: Path) -> Iterator[XeroConnector]:
    """A connector against a fresh sandbox holding one customer and one invoice to pay."""
    with XeroSandbox(count=0, clock=ticking_clock(), minute_limit=100_000) as sandbox:
        contact = sandbox.create("Contacts", {"Name": CUSTOMER})
        sandbox.create("Invoices", {
            "Type": "ACCREC", "InvoiceNumber": TARGET_INVOICE, "Status": "AUTHORISED",
            "Contact": {"ContactID": contact["ContactID"]},
            "LineItems": [{"Description": "Big job", "Quantity": 1, "UnitAmount": 1_000_000,
                           "AccountCode": "200", "TaxType": "NONE"}]})
        yield connect(sandbox, tmp_path)


def new_company(i: int) -> NativeRecord:
    return {"Name": f"Firm {i} Ltd", "EmailAddress": f"accounts@firm{i}.example"}


def new_invoice(i: int) -> NativeRecord:
    return {"Type": "ACCREC", "InvoiceNumber": f"CONF-{i:04d}", "Reference": f"Order {i}",
            "Contact": {"Name": CUSTOMER},
            "LineItems": [{"Description": f"Work {i}", "Quantity": 2, "UnitAmount": 50 + i,
                           "AccountCode": "200"}]}


def new_payment(i: int) -> NativeRecord:
    return {"Invoice": {"InvoiceNumber": TARGET_INVOICE}, "Account": {"Code": "090"},
            "Date": "2024-05-01", "Amount": 10 + i, "Reference": f"P{i}"}


def same_fields(written: NativeRecord, read: NativeRecord) -> bool:
    """Scalars equal; Contact by name; line items by description, quantity and price."""
    for key, value in written.items():
        if key == "Contact":
            if read["Contact"]["Name"] != value["Name"]:
                return False
        elif key == "LineItems":
            got = [(x["Description"], x["Quantity"], x["UnitAmount"]) for x in read[key]]
            if got != [(x["Description"], x["Quantity"], x["UnitAmount"]) for x in value]:
                return False
        elif key in ("Invoice", "Account", "Date"):
            continue  # echoed in Xero's own shapes (ids added, MS-JSON dates)
        elif read.get(key) != value:
            return False
    return True


TestXeroCompanies = conformance_suite(
    "xero", entity="company", new_record=new_company,
    change=lambda r: {"Name": r["Name"], "TaxNumber": "123-456-789"},
    id_of=lambda r: r["ContactID"], seed_count=7, page_size=3, same=same_fields,
    upserts_by_match=True, archived=lambda r: r["ContactStatus"] == "ARCHIVED")

TestXeroInvoices = conformance_suite(
    "xero", entity="invoice", new_record=new_invoice,
    change=lambda r: {"Reference": "Changed"},
    id_of=lambda r: r["InvoiceID"], seed_count=7, page_size=3, same=same_fields,
    upserts_by_match=True, match_of=lambda r: {"number": r["InvoiceNumber"]},
    archived=lambda r: r["Status"] in ("DELETED", "VOIDED"))

TestXeroPayments = conformance_suite(
    "xero", entity="payment", new_record=new_payment,
    # Xero changes a payment only by deleting it: that is the update this suite sends.
    change=lambda r: {"Status": "DELETED"},
    id_of=lambda r: r["PaymentID"], seed_count=7, page_size=3, same=same_fields,
    upserts_by_match=True, archived=lambda r: r["Status"] == "DELETED")
