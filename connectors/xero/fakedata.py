"""Seeded, realistic fake Xero records: the same seed and count give the same data.

Shapes follow vendor-apis.md section 2 (Contact, Invoice, Payment). Dates are MS-JSON
("/Date(1539993600000+0000)/"), as Xero answers. Times lie in a fixed window before
`EPOCH_END_MS`, never "now", so a record touched during a test is always newer.
Phone numbers are written whole ("+64 9 555 0123") in PhoneNumber with empty area and
country codes, which Xero allows; every contact carries all four phone types and both
address types, as Xero returns them (empty where unknown).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

EPOCH_START_MS = 1_672_531_200_000  # 2023-01-01T00:00:00Z
EPOCH_END_MS = 1_719_792_000_000  # 2024-07-01T00:00:00Z
DAY_MS = 86_400_000
BANK_ACCOUNTS = ({"AccountID": "5f2d8b6e-0a8a-4a53-9a43-0c0f8a3e0901", "Code": "090",
                  "Name": "Business Bank Account"},
                 {"AccountID": "5f2d8b6e-0a8a-4a53-9a43-0c0f8a3e0910", "Code": "091",
                  "Name": "Business Savings Account"})
TAX_RATES = {"OUTPUT": Decimal("0.15"), "INPUT": Decimal("0.15"), "NONE": Decimal(0),
             "EXEMPTOUTPUT": Decimal(0), "EXEMPTINPUT": Decimal(0)}
BASE_CURRENCY = "NZD"

WORDS = ("Acme", "Apex", "Beacon", "Birch", "Cobalt", "Crescent", "Delta", "Ember", "Fjord",
         "Granite", "Harbor", "Helix", "Juniper", "Keystone", "Lumen", "Maple", "Meridian",
         "Nimbus", "Northwind", "Orchid", "Pioneer", "Quartz", "Redwood", "Summit", "Tandem",
         "Umber", "Vertex", "Willow", "Zephyr", "Kauri", "Rimu", "Totara")
KINDS = ("Plumbing", "Electrical", "Catering", "Print", "Logistics", "Design", "Consulting",
         "Joinery", "Software", "Landscaping", "Accounting", "Couriers", "Bakery")
SUFFIXES = ("Ltd", "Limited", "Pty Ltd", "& Co", "Group", "LLC")
FIRST = ("Aroha", "Ben", "Chloe", "David", "Emma", "Hemi", "Isla", "Jack", "Kiri", "Liam",
         "Mia", "Noah", "Olivia", "Priya", "Ruby", "Sam", "Tane", "Wei")
LAST = ("Brown", "Chen", "Davies", "Ngata", "Patel", "Smith", "Taylor", "Walker", "Wilson",
        "Young", "Parata", "Singh")
# city, region, postal code, country (as Xero users type it), dialling prefix, currency
PLACES = (
    ("Auckland", "", "1010", "New Zealand", "+64 9", "NZD"),
    ("Wellington", "", "6011", "New Zealand", "+64 4", "NZD"),
    ("Christchurch", "", "8011", "New Zealand", "+64 3", "NZD"),
    ("Sydney", "NSW", "2000", "Australia", "+61 2", "AUD"),
    ("Melbourne", "VIC", "3000", "Australia", "+61 3", "AUD"),
    ("London", "", "EC1A 1BB", "United Kingdom", "+44 20", "GBP"),
    ("Boston", "MA", "02110", "United States", "+1 617", "USD"),
)
STREETS = ("Queen Street", "Lambton Quay", "Colombo Street", "George Street", "Collins Street",
           "Old Street", "Atlantic Ave", "Ponsonby Road", "Cuba Street")
SERVICES = ("Consulting hours", "Monthly retainer", "Website hosting", "Site visit",
            "Materials", "Design work", "Support plan", "Delivery", "Training session")
INVOICE_STATUSES = (("DRAFT", 10), ("SUBMITTED", 5), ("AUTHORISED", 35), ("PAID", 40),
                    ("VOIDED", 5), ("DELETED", 5))


def ms_date(ms: int) -> str:
    """Epoch milliseconds as Xero's MS-JSON date."""
    return f"/Date({ms}+0000)/"


def money(value: Decimal) -> Decimal:
    """Rounded to cents, half up (as Xero rounds line and tax amounts)."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class FakeData:
    """Generated records (native shapes) with their (created, updated) ms times."""

    contacts: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    invoices: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    payments: list[tuple[dict[str, Any], int]] = field(default_factory=list)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _time(rng: random.Random) -> int:
    return rng.randrange(EPOCH_START_MS, EPOCH_END_MS - 30 * DAY_MS)


def _contact(rng: random.Random, n: int) -> dict[str, Any]:
    word = WORDS[n % len(WORDS)]
    kind = KINDS[(n // len(WORDS)) % len(KINDS)]
    suffix = SUFFIXES[rng.randrange(len(SUFFIXES))]
    serial = n // (len(WORDS) * len(KINDS))
    name = f"{word} {kind}{f' {serial + 1}' if serial else ''} {suffix}"
    slug = f"{word}{kind}{serial or ''}".lower()
    domain = f"{slug}.{rng.choice(('co.nz', 'com', 'com.au', 'co.uk', 'nz'))}"
    city, region, postcode, country, prefix, currency = rng.choice(PLACES)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    is_supplier = rng.random() < 0.35
    street = f"{rng.randrange(1, 400)} {rng.choice(STREETS)}"

    def phone() -> str:
        return f"{prefix} {rng.randrange(200, 999)} {rng.randrange(1000, 9999)}"

    return {
        "ContactID": _uuid(rng),
        "ContactNumber": "",
        "AccountNumber": f"C{n + 1:05d}" if rng.random() < 0.5 else "",
        "ContactStatus": "ARCHIVED" if rng.random() < 0.05 else "ACTIVE",
        "Name": name,
        "FirstName": first,
        "LastName": last,
        "EmailAddress": f"{rng.choice(('accounts', 'billing', first.lower()))}@{domain}",
        "TaxNumber": f"{rng.randrange(10, 999):03d}-{rng.randrange(100, 999)}-"
                     f"{rng.randrange(100, 999)}" if rng.random() < 0.8 else "",
        "IsCustomer": not is_supplier or rng.random() < 0.2,
        "IsSupplier": is_supplier,
        "DefaultCurrency": currency,
        "Website": f"https://www.{domain}" if rng.random() < 0.7 else "",
        "Addresses": [
            {"AddressType": "POBOX", "AddressLine1": f"PO Box {rng.randrange(100, 9999)}",
             "AddressLine2": "", "City": city, "Region": region, "PostalCode": postcode,
             "Country": country, "AttentionTo": ""},
            {"AddressType": "STREET", "AddressLine1": street, "AddressLine2": "",
             "City": city, "Region": region, "PostalCode": postcode, "Country": country,
             "AttentionTo": ""},
        ],
        "Phones": [
            {"PhoneType": "DEFAULT", "PhoneNumber": phone(), "PhoneAreaCode": "",
             "PhoneCountryCode": ""},
            {"PhoneType": "DDI", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""},
            {"PhoneType": "MOBILE", "PhoneNumber": phone() if rng.random() < 0.4 else "",
             "PhoneAreaCode": "", "PhoneCountryCode": ""},
            {"PhoneType": "FAX", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""},
        ],
    }


def _lines(rng: random.Random, kind: str) -> list[dict[str, Any]]:
    lines = []
    for _ in range(rng.randrange(1, 5)):
        quantity = Decimal(rng.choice((1, 1, 2, 3, 5, 10))) if rng.random() < 0.8 \
            else Decimal(rng.randrange(5, 80)) / 4
        unit = Decimal(rng.randrange(1500, 250000)) / 100
        tax_type = ("OUTPUT" if kind == "ACCREC" else "INPUT") if rng.random() < 0.85 \
            else "NONE"
        lines.append({"Description": rng.choice(SERVICES), "Quantity": quantity,
                      "UnitAmount": unit, "AccountCode": "200" if kind == "ACCREC" else "400",
                      "TaxType": tax_type, "ItemCode": ""})
    return lines


def generate(seed: int, count: int) -> FakeData:
    """`count` contacts, about two invoices each, and payments for the paid ones."""
    rng = random.Random(seed)
    data = FakeData()
    contacts = []
    for n in range(count):
        contact = _contact(rng, n)
        contacts.append(contact)
        data.contacts.append((contact, _time(rng)))
    if not contacts:
        return data
    statuses = [s for s, _ in INVOICE_STATUSES]
    weights = [w for _, w in INVOICE_STATUSES]
    for n in range(count * 2):
        contact = rng.choice(contacts)
        kind = "ACCPAY" if contact["IsSupplier"] and rng.random() < 0.7 else "ACCREC"
        created = _time(rng)
        status = rng.choices(statuses, weights)[0]
        invoice = {
            "InvoiceID": _uuid(rng), "Type": kind,
            "InvoiceNumber": f"INV-{n + 1:04d}" if kind == "ACCREC"
            else f"{contact['Name'].split()[0][:3].upper()}-{rng.randrange(1000, 99999)}",
            "Reference": rng.choice(("", f"PO {rng.randrange(1000, 9999)}", "Monthly")),
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "Date": created - created % DAY_MS,
            "DueDate": created - created % DAY_MS + rng.choice((7, 14, 20, 30)) * DAY_MS,
            "Status": status, "LineAmountTypes": "Exclusive",
            "LineItems": _lines(rng, kind),
            "CurrencyCode": contact["DefaultCurrency"] if rng.random() < 0.3 else BASE_CURRENCY,
        }
        updated = created + rng.randrange(0, 20 * DAY_MS)
        data.invoices.append((invoice, updated))
        if status == "PAID" or (status == "AUTHORISED" and rng.random() < 0.3):
            paid_at = min(updated, created + rng.randrange(1, 25) * DAY_MS)
            data.payments.append(({
                "PaymentID": _uuid(rng), "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                "Account": dict(rng.choice(BANK_ACCOUNTS)),
                "Date": paid_at - paid_at % DAY_MS,
                "Amount": None if status == "PAID" else "partial",
                "Reference": rng.choice(("", "Direct credit", f"TRF {rng.randrange(10**5, 10**6)}")),
            }, updated))
    return data
