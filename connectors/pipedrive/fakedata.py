"""Seeded, realistic fake Pipedrive records: the same seed and count give the same data.

Field names follow the v2 shapes in vendor-apis.md section 4 (persons: name, first_name,
last_name, emails/phones as [{value, primary, label}]; organizations: name, address{...};
deals: title, value, currency, status, stage_id...). Times lie in a fixed window that ends
before `EPOCH_END`, never "now", so a record touched during a test is always newer.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

EPOCH_START = 1_672_531_200  # 2023-01-01T00:00:00Z, epoch seconds
EPOCH_END = 1_719_792_000  # 2024-07-01T00:00:00Z


def custom_key(object_type: str, name: str) -> str:
    """A stable 40-character hash key for a sandbox custom field, as Pipedrive makes them."""
    return hashlib.sha1(f"liaison-sandbox:{object_type}:{name}".encode()).hexdigest()


# The custom fields the sandbox account has (key -> kind), per object.
CUSTOM_FIELDS: dict[str, dict[str, str]] = {
    "persons": {custom_key("persons", "lead_source"): "varchar"},
    "organizations": {custom_key("organizations", "domain"): "varchar",
                      custom_key("organizations", "employees"): "double"},
    "deals": {custom_key("deals", "channel"): "varchar"},
}

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ben", "Bruno", "Carla", "Chen", "Dara", "David", "Elena", "Emeka",
    "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jonas", "Kai", "Lara", "Leo",
    "Luca", "Maya", "Mei", "Nadia", "Noah", "Olga", "Omar", "Priya", "Rosa", "Sami", "Sofia",
    "Tariq", "Uma", "Vera", "Wei", "Yara", "Yusuf", "Zoe",
)
LAST_NAMES = (
    "Adeyemi", "Andersen", "Baker", "Bianchi", "Costa", "Dubois", "Eriksen", "Fischer",
    "Garcia", "Haddad", "Jensen", "Kim", "Kowalski", "Lopez", "Martin", "Meyer", "Nakamura",
    "Novak", "Okafor", "Patel", "Petrov", "Rossi", "Santos", "Schmidt", "Silva", "Singh",
    "Tanaka", "Wagner", "Yilmaz", "Zhang",
)
COMPANY_WORDS = (
    "Acme", "Apex", "Beacon", "Birch", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor",
    "Helix", "Juniper", "Lumen", "Maple", "Meridian", "Nimbus", "Northwind", "Pioneer",
    "Quartz", "Redwood", "Summit", "Vertex", "Willow", "Zephyr",
)
COMPANY_SUFFIXES = ("Labs", "Logistics", "Foods", "Software", "Consulting", "Design",
                    "Health", "Energy", "Media", "Builders")
TLDS = ("com", "io", "de", "net", "fr", "nl")
# city, state, postal code, country (as Pipedrive's geocoder names it), dial prefix, street,
# digit groups of a local number valid for that prefix
PLACES = (
    ("Boston", "MA", "02110", "United States", "+1 617", "Atlantic Ave", (3, 4)),
    ("Austin", "TX", "73301", "United States", "+1 512", "Congress Ave", (3, 4)),
    ("Berlin", "Berlin", "10115", "Germany", "+49 30", "Invalidenstrasse", (4, 4)),
    ("London", "England", "EC1A 1BB", "United Kingdom", "+44 20", "Old Street", (4, 4)),
    ("Lyon", "Auvergne-Rhone-Alpes", "69002", "France", "+33 4", "Rue de la Republique",
     (2, 2, 2, 2)),
    ("Utrecht", "Utrecht", "3511", "Netherlands", "+31 30", "Oudegracht", (3, 4)),
)
EMAIL_LABELS = ("work", "work", "work", "home", "other")
PHONE_LABELS = ("work", "work", "mobile", "home", "other")
SOURCES = ("Website", "Referral", "Event", "Cold call", "Partner")
CURRENCIES = ("EUR", "USD", "GBP")
STATUSES = ("open", "open", "open", "won", "lost")
LOST_REASONS = ("Price", "Timing", "Went with a competitor", "No budget")
OWNER_IDS = (1001, 1002, 1003)


@dataclass
class FakeData:
    """Generated records without ids: each person/deal names its organization by index."""

    organizations: list[dict[str, Any]] = field(default_factory=list)
    persons: list[dict[str, Any]] = field(default_factory=list)
    person_org: list[int | None] = field(default_factory=list)
    deals: list[dict[str, Any]] = field(default_factory=list)
    deal_links: list[tuple[int | None, int | None]] = field(default_factory=list)  # person, org
    times: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # (add, update) s


def _phone(rng: random.Random, place: tuple[Any, ...]) -> str:
    groups = " ".join(str(rng.randrange(10 ** (n - 1) * 2, 10 ** n)) for n in place[6])
    return f"{place[4]} {groups}"


def _times(rng: random.Random) -> tuple[int, int]:
    added = rng.randrange(EPOCH_START, EPOCH_END - 10)
    return added, rng.randrange(added, EPOCH_END)


def _day(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).date().isoformat()


def generate(seed: int = 1, persons: int = 0, organizations: int | None = None,
             deals: int | None = None) -> FakeData:
    """`persons` persons, one organization per ten and one deal per five (by default)."""
    rng = random.Random(seed)
    n_orgs = max(1, persons // 10) if organizations is None else organizations
    n_deals = persons // 5 if deals is None else deals
    data = FakeData(times={"organizations": [], "persons": [], "deals": []})
    domains: list[str] = []
    for i in range(n_orgs):
        word, suffix = rng.choice(COMPANY_WORDS), rng.choice(COMPANY_SUFFIXES)
        domain = f"{word}{suffix}{i if i >= len(COMPANY_WORDS) else ''}".lower() + \
            f".{rng.choice(TLDS)}"
        domains.append(domain)
        place = rng.choice(PLACES)
        street = f"{rng.randrange(1, 300)} {place[5]}"
        data.organizations.append({
            "name": f"{word} {suffix}" + (f" {i}" if i >= len(COMPANY_WORDS) else ""),
            "owner_id": rng.choice(OWNER_IDS),
            "visible_to": 3,
            "label_ids": [],
            "address": {"value": street, "locality": place[0], "admin_area_level_1": place[1],
                        "postal_code": place[2], "country": place[3]},
            "custom_fields": {custom_key("organizations", "domain"): domain,
                              custom_key("organizations", "employees"):
                                  rng.choice((3, 8, 12, 25, 40, 120, 600))},
        })
        data.times["organizations"].append(_times(rng))
    used: set[str] = set()
    for i in range(persons):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        org = rng.randrange(n_orgs) if n_orgs and rng.random() < 0.85 else None
        domain = domains[org] if org is not None else rng.choice(("gmail.com", "proton.me"))
        email = f"{first}.{last}".lower() + f"@{domain}"
        if email in used:
            email = f"{first}.{last}{i}".lower() + f"@{domain}"
        used.add(email)
        place = rng.choice(PLACES)
        emails = [{"value": email, "primary": True, "label": rng.choice(EMAIL_LABELS)}]
        if rng.random() < 0.2:
            emails.append({"value": f"{first}{i}@proton.me".lower(), "primary": False,
                           "label": "home"})
        phones = [{"value": _phone(rng, place), "primary": True,
                   "label": rng.choice(PHONE_LABELS)}] if rng.random() < 0.9 else []
        data.persons.append({
            "name": f"{first} {last}",
            "first_name": first,
            "last_name": last,
            "owner_id": rng.choice(OWNER_IDS),
            "emails": emails,
            "phones": phones,
            "visible_to": 3,
            "label_ids": [],
            "custom_fields": {custom_key("persons", "lead_source"): rng.choice(SOURCES)},
        })
        data.person_org.append(org)
        data.times["persons"].append(_times(rng))
    for i in range(n_deals):
        person = rng.randrange(persons) if persons else None
        org = data.person_org[person] if person is not None else None
        added, updated = _times(rng)
        status = rng.choice(STATUSES)
        closed = updated if status != "open" else None
        close_day = date.fromisoformat(_day(added)) + timedelta(days=rng.randrange(14, 120))
        data.deals.append({
            "title": f"{rng.choice(COMPANY_WORDS)} {rng.choice(('renewal', 'pilot', 'rollout', 'expansion'))}",
            "owner_id": rng.choice(OWNER_IDS),
            "pipeline_id": 1,
            "stage_id": rng.randrange(1, 6),
            "value": rng.choice((500, 1200, 4800, 12500, 30000)) + rng.choice((0, 0, 0.5)),
            "currency": rng.choice(CURRENCIES),
            "status": status,
            "probability": rng.choice((None, 10, 25, 50, 75, 90)),
            "lost_reason": rng.choice(LOST_REASONS) if status == "lost" else None,
            "expected_close_date": close_day.isoformat(),
            "close_time": closed,
            "won_time": closed if status == "won" else None,
            "lost_time": closed if status == "lost" else None,
            "is_archived": False,
            "visible_to": 3,
            "label_ids": [],
            "custom_fields": {custom_key("deals", "channel"): rng.choice(SOURCES)},
        })
        data.deal_links.append((person, org))
        data.times["deals"].append((added, updated))
    return data
