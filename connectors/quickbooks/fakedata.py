"""Seeded, realistic fake QuickBooks Online records: the same seed and count give the same data.

Shapes follow vendor-apis.md section 5 (Customer, Invoice, Payment). Times are whole epoch
seconds in a fixed window before `EPOCH_END`, never "now", so a record touched during a test
is always newer than every generated one. About one customer in ten is inactive (QBO's
"deleted" customers); invoices are open, partly paid or paid by one or two payments.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

EPOCH_START = 1_672_531_200  # 2023-01-01T00:00:00Z
EPOCH_END = 1_719_792_000  # 2024-07-01T00:00:00Z
DAY = 86_400
CURRENCY = "USD"

WORDS = ("Acme", "Amy's", "Bayside", "Birch", "Cobalt", "Cool Cars", "Diego's", "Dukes",
         "Ember", "Freeman", "Geeta's", "Granite", "Harbor", "Jeff's", "Kookies", "Mark's",
         "Northwind", "Pye's", "Rago", "Red Rock", "Rondonuwu", "Shara", "Sonnenschein",
         "Summit", "Sushi", "Travis", "Video Games", "Weiskopf", "Willow", "Zephyr")
KINDS = ("Bird Sanctuary", "Landscaping", "Plumbing", "Consulting", "Catering", "Bakery",
         "Fruit", "Wine Bar", "Auto Repair", "Design", "Photography", "Builders", "Cakes")
SUFFIXES = ("", "Inc.", "LLC", "Co.", "& Sons", "Corp.")
FIRST = ("Amy", "Bill", "Dylan", "Geeta", "Jeff", "John", "Kate", "Mark", "Nicola", "Rondo",
         "Sasha", "Shara", "Stephanie", "Travis", "Wei")
LAST = ("Lauterbach", "Chin", "Sonnenschein", "Kalakonda", "Chin", "Melton", "Whelan", "Cho",
        "Pye", "Rondonuwu", "Tillman", "Barnett", "Martini", "Waldron", "Zhang")
# city, state (CountrySubDivisionCode), postal code, country as QBO users type it, area code
PLACES = (("Bayshore", "CA", "94326", "USA", "650"), ("Palo Alto", "CA", "94303", "USA", "650"),
          ("Half Moon Bay", "CA", "94213", "USA", "650"), ("Sunnyvale", "CA", "94086", "US",
                                                            "408"),
          ("Middlefield", "CA", "94482", "", "415"), ("Seattle", "WA", "98101", "USA", "206"),
          ("Austin", "TX", "78701", "United States", "512"),
          ("Toronto", "ON", "M5H 2N2", "Canada", "416"))
STREETS = ("Main St.", "Ocean Ave.", "Market St.", "El Camino Real", "Bayshore Rd.",
           "Oak Ave.", "Pine St.", "Elm Dr.")
ITEMS = (("1", "Services", Decimal(100)), ("5", "Gardening", Decimal(25)),
         ("8", "Installation", Decimal(50)), ("10", "Pest Control", Decimal(35)),
         ("11", "Pump", Decimal(15)), ("15", "Rock Fountain", Decimal(275)),
         ("17", "Sod", Decimal("3.5")), ("19", "Design", Decimal(75)))


def money(value: Decimal) -> Decimal:
    """Rounded to cents, half up."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def day_of(seconds: int) -> str:
    """The UTC calendar day of an epoch second, as QBO's TxnDate ("2024-05-01")."""
    return datetime.fromtimestamp(seconds, UTC).date().isoformat()


@dataclass
class FakeData:
    """Generated records in request shape (no Id/SyncToken/MetaData), each with its time."""

    customers: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    invoices: list[tuple[dict[str, Any], int]] = field(default_factory=list)  # CustomerRef index
    payments: list[tuple[dict[str, Any], int]] = field(default_factory=list)  # invoice index


def _customer(rng: random.Random, taken: set[str]) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    name = f"{rng.choice(WORDS)} {rng.choice(KINDS)}"
    suffix = rng.choice(SUFFIXES)
    company = f"{name} {suffix}".strip() if suffix else name
    city, state, postal, country, area = rng.choice(PLACES)
    display = company
    if display.lower() in taken:  # QBO display names are unique
        display = f"{company} ({city})"
        n = 2
        while display.lower() in taken:
            display, n = f"{company} ({city} {n})", n + 1
    taken.add(display.lower())
    host = "".join(c for c in company.lower() if c.isalnum())[:18] or "customer"
    record: dict[str, Any] = {
        "DisplayName": display, "CompanyName": company, "GivenName": first,
        "FamilyName": last,
        "PrimaryEmailAddr": {"Address": f"{first.lower()}@{host}.example.com"},
        "PrimaryPhone": {"FreeFormNumber": f"({area}) 555-{rng.randint(1000, 9999)}"},
        "BillAddr": {"Line1": f"{rng.randint(1, 999)} {rng.choice(STREETS)}", "City": city,
                     "CountrySubDivisionCode": state, "PostalCode": postal,
                     "Country": country},
        "Active": rng.random() > 0.1,
    }
    if rng.random() < 0.15:
        del record["PrimaryPhone"]
    return record


def _invoice(rng: random.Random, customer: int, number: int, at: int) -> dict[str, Any]:
    lines = []
    for _ in range(rng.randint(1, 3)):
        item_id, item_name, price = rng.choice(ITEMS)
        qty = rng.randint(1, 12)
        lines.append({"Amount": money(price * qty), "DetailType": "SalesItemLineDetail",
                      "Description": f"{item_name} ({rng.choice(('May', 'June', 'site'))})",
                      "SalesItemLineDetail": {"ItemRef": {"value": item_id, "name": item_name},
                                              "Qty": qty, "UnitPrice": price,
                                              "TaxCodeRef": {"value": "NON"}}})
    return {"DocNumber": str(number), "TxnDate": day_of(at),
            "DueDate": (datetime.fromtimestamp(at, UTC).date()
                        + timedelta(days=rng.choice((15, 30, 30, 60)))).isoformat(),
            "CustomerRef": {"value": customer}, "CurrencyRef": {"value": CURRENCY},
            "Line": lines}


def generate(seed: int, count: int) -> FakeData:
    """`count` customers, about two invoices each, and payments for most of those."""
    rng = random.Random(seed)
    data = FakeData()
    span = EPOCH_END - EPOCH_START
    number = 1001
    taken: set[str] = set()
    for i in range(count):
        created = EPOCH_START + rng.randrange(span // 2)
        data.customers.append((_customer(rng, taken), created))
        if not data.customers[-1][0]["Active"]:
            continue
        for _ in range(rng.choice((0, 1, 2, 2, 3))):
            at = created + rng.randrange(DAY, span // 2)
            data.invoices.append((_invoice(rng, i, number, at), at))
            number += 1
            invoice_index = len(data.invoices) - 1
            roll = rng.random()
            if roll < 0.45:  # paid in full
                data.payments.append(({"invoice": invoice_index, "part": Decimal(1)},
                                      at + rng.randrange(DAY, 40 * DAY)))
            elif roll < 0.65:  # partly paid
                data.payments.append(({"invoice": invoice_index, "part": Decimal("0.4")},
                                      at + rng.randrange(DAY, 40 * DAY)))
    return data
