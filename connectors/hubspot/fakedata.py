"""Seeded, realistic fake HubSpot records: the same seed and count give the same data.

The sandbox loads these at start; tests and benchmarks rely on them being deterministic.
Timestamps lie in a fixed window before `EPOCH_END_MS`, never "now", so a record touched
during a test is always newer than every generated one.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

EPOCH_START_MS = 1_672_531_200_000  # 2023-01-01T00:00:00Z
EPOCH_END_MS = 1_719_792_000_000  # 2024-07-01T00:00:00Z

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Ben", "Bruno", "Carla", "Chen", "Chloe", "Dara", "David",
    "Elena", "Emeka", "Eva", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jana",
    "Jonas", "Kai", "Lara", "Leo", "Lina", "Luca", "Maya", "Mateo", "Mei", "Nadia", "Noah",
    "Olga", "Omar", "Priya", "Rafael", "Rosa", "Sami", "Sara", "Sofia", "Tariq", "Tom", "Uma",
    "Vera", "Wei", "Yara", "Yusuf", "Zoe", "Zoltan",
)
LAST_NAMES = (
    "Adeyemi", "Andersen", "Baker", "Bianchi", "Costa", "Dubois", "Eriksen", "Fischer",
    "Garcia", "Haddad", "Ivanova", "Jensen", "Kim", "Kowalski", "Lopez", "Martin", "Meyer",
    "Nakamura", "Novak", "Okafor", "Olsen", "Patel", "Petrov", "Quinn", "Rossi", "Santos",
    "Schmidt", "Silva", "Singh", "Tanaka", "Torres", "Usman", "Varga", "Wagner", "Wang",
    "Weber", "Xu", "Yilmaz", "Zhang", "Zimmermann",
)
COMPANY_WORDS = (
    "Acme", "Apex", "Beacon", "Birch", "Cobalt", "Crescent", "Delta", "Ember", "Fjord",
    "Granite", "Harbor", "Helix", "Juniper", "Keystone", "Lumen", "Maple", "Meridian",
    "Nimbus", "Northwind", "Orchid", "Pioneer", "Quartz", "Redwood", "Summit", "Tandem",
    "Umber", "Vertex", "Willow", "Zephyr",
)
COMPANY_SUFFIXES = (
    ("Labs", "LABS"), ("Logistics", "LOGISTICS_AND_SUPPLY_CHAIN"), ("Foods", "FOOD_PRODUCTION"),
    ("Software", "COMPUTER_SOFTWARE"), ("Consulting", "MANAGEMENT_CONSULTING"),
    ("Design", "DESIGN"), ("Health", "HOSPITAL_HEALTH_CARE"), ("Energy", "RENEWABLES"),
    ("Media", "ONLINE_MEDIA"), ("Builders", "CONSTRUCTION"), ("Retail", "RETAIL"),
)
TLDS = ("com", "io", "co.uk", "de", "net", "fr", "nl")
JOB_TITLES = (
    "CEO", "CFO", "Head of Sales", "Account Executive", "Office Manager", "Operations Lead",
    "Marketing Manager", "Bookkeeper", "Founder", "Project Manager", "Engineer",
    "Customer Success Manager", "Procurement Officer",
)
PLACES = (  # city, state, zip, country, dialling prefix, street, local digit groups
    ("Boston", "MA", "02110", "United States", "+1 617", "Atlantic Ave", (3, 4)),
    ("Austin", "TX", "73301", "United States", "+1 512", "Congress Ave", (3, 4)),
    ("Berlin", "", "10115", "Germany", "+49 30", "Invalidenstrasse", (4, 4)),
    ("London", "", "EC1A 1BB", "United Kingdom", "+44 20", "Old Street", (4, 4)),
    ("Dublin", "", "D02 XY45", "Ireland", "+353 1", "Baggot Street", (3, 4)),
    ("Lyon", "", "69002", "France", "+33 4", "Rue de la Republique", (2, 2, 2, 2)),
    ("Utrecht", "", "3511", "Netherlands", "+31 30", "Oudegracht", (3, 4)),
    ("Toronto", "ON", "M5H 2N2", "Canada", "+1 416", "King Street W", (3, 4)),
)
LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
             "opportunity", "customer")
# HubSpot's default sales pipeline ("default") and its stage ids.
DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
               "decisionmakerboughtin", "contractsent", "closedwon", "closedlost")
DEAL_KINDS = ("Annual licence", "Pilot", "Renewal", "Expansion", "Support plan", "Onboarding")
DEAL_CURRENCIES = ("USD", "EUR", "GBP")


@dataclass
class FakeData:
    """Generated records: property dicts plus times, and each contact's company index."""

    companies: list[dict[str, str]] = field(default_factory=list)
    company_times: list[tuple[int, int]] = field(default_factory=list)  # (created, modified) ms
    contacts: list[dict[str, str]] = field(default_factory=list)
    contact_times: list[tuple[int, int]] = field(default_factory=list)
    contact_company: list[int | None] = field(default_factory=list)  # index into companies
    deals: list[dict[str, str]] = field(default_factory=list)
    deal_times: list[tuple[int, int]] = field(default_factory=list)
    deal_company: list[int | None] = field(default_factory=list)  # index into companies
    deal_contacts: list[list[int]] = field(default_factory=list)  # indexes into contacts


def _phone(rng: random.Random, place: tuple[Any, ...]) -> str:
    """A number that is valid for the place's country (right length, real area code)."""
    groups = " ".join(str(rng.randrange(10 ** (n - 1) * 2, 10 ** n)) for n in place[6])
    return f"{place[4]} {groups}"


def _times(rng: random.Random) -> tuple[int, int]:
    created = rng.randrange(EPOCH_START_MS, EPOCH_END_MS - 1000)
    modified = rng.randrange(created, EPOCH_END_MS)
    return created, modified


def generate(seed: int = 1, contacts: int = 0, companies: int | None = None,
             deals: int = 0) -> FakeData:
    """Make `contacts` contacts, (by default) one company per ten contacts and `deals` deals.

    Deals draw from their own generator, so asking for deals leaves the companies and
    contacts of a seed exactly as they were without them.
    """
    rng = random.Random(seed)
    n_companies = max(1, contacts // 10) if companies is None else companies
    data = FakeData()
    used_domains: set[str] = set()
    for i in range(n_companies):
        word = rng.choice(COMPANY_WORDS)
        suffix, industry = rng.choice(COMPANY_SUFFIXES)
        tld = rng.choice(TLDS)
        base = f"{word}{suffix}".lower()
        domain = f"{base}.{tld}"
        if domain in used_domains:
            domain = f"{base}{i}.{tld}"
        used_domains.add(domain)
        place = rng.choice(PLACES)
        city, state, zip_, country, _, street, _ = place
        data.companies.append({
            "name": f"{word} {suffix}",
            "domain": domain,
            "website": f"https://www.{domain}",
            "industry": industry,
            "description": f"{word} {suffix} serves customers across {country}.",
            "numberofemployees": str(rng.choice((3, 8, 12, 25, 40, 75, 120, 250, 600))),
            "phone": _phone(rng, place),
            "address": f"{rng.randrange(1, 300)} {street}",
            "city": city,
            "state": state,
            "zip": zip_,
            "country": country,
        })
        data.company_times.append(_times(rng))
    used_emails: set[str] = set()
    for i in range(contacts):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company_index = rng.randrange(n_companies) if n_companies and rng.random() < 0.9 else None
        if company_index is not None:
            company = data.companies[company_index]
            domain = company["domain"]
            city, state, zip_, country = (company["city"], company["state"], company["zip"],
                                          company["country"])
        else:
            domain = rng.choice(("gmail.com", "outlook.com", "proton.me"))
            city, state, zip_, country = rng.choice(PLACES)[:4]
        local = f"{first}.{last}".lower()
        email = f"{local}@{domain}"
        if email in used_emails:
            email = f"{local}{i}@{domain}"
        used_emails.add(email)
        place = next(p for p in PLACES if p[0] == city)
        data.contacts.append({
            "email": email,
            "firstname": first,
            "lastname": last,
            "jobtitle": rng.choice(JOB_TITLES),
            "phone": _phone(rng, place),
            "company": data.companies[company_index]["name"] if company_index is not None
            else "",
            "address": f"{rng.randrange(1, 300)} Main Street",
            "city": city,
            "state": state,
            "zip": zip_,
            "country": country,
            "lifecyclestage": rng.choice(LIFECYCLE),
        })
        data.contact_times.append(_times(rng))
        data.contact_company.append(company_index)
    _deals(random.Random(seed * 7919 + 17), data, deals)
    return data


def _deals(rng: random.Random, data: FakeData, count: int) -> None:
    """Deals of the generated companies, each with up to three of that company's contacts."""
    staff: dict[int | None, list[int]] = {}
    for i, ci in enumerate(data.contact_company):
        staff.setdefault(ci, []).append(i)
    for _ in range(count):
        ci = rng.randrange(len(data.companies)) if data.companies and rng.random() < 0.9 \
            else None
        company = data.companies[ci]["name"] if ci is not None else "Walk-in"
        created, modified = _times(rng)
        close = created + rng.randrange(7, 120) * 86_400_000
        stage = rng.choice(DEAL_STAGES)
        amount = rng.choice(("500", "1200", "4999.99", "12000", "25000.50", "80000"))
        data.deals.append({
            "dealname": f"{company} - {rng.choice(DEAL_KINDS)}",
            "amount": amount if rng.random() < 0.95 else "",
            "deal_currency_code": rng.choice(DEAL_CURRENCIES),
            "dealstage": stage,
            "pipeline": "default",
            # HubSpot keeps closedate as a datetime at midnight UTC of the chosen day.
            "closedate": _iso_day(close),
            "description": f"{rng.choice(DEAL_KINDS)} for {company}.",
        })
        data.deal_times.append((created, modified))
        data.deal_company.append(ci)
        people = staff.get(ci, []) if ci is not None else []
        data.deal_contacts.append(rng.sample(people, min(len(people), rng.randrange(0, 4))))


def _iso_day(ms: int) -> str:
    return time.strftime("%Y-%m-%dT00:00:00.000Z", time.gmtime(ms // 1000))
