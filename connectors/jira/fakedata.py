"""Seeded, realistic fake Jira data: the same seed and count give the same projects and issues.

Timestamps lie in a fixed window before EPOCH_END_MS, never "now", so an issue touched
during a test is always newer than every generated one. Descriptions are real ADF documents
with the node kinds people write (paragraphs with marks and hard breaks, bullet and ordered
lists, mentions, code blocks), so the ADF -> text conversion meets them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

EPOCH_START_MS = 1_672_531_200_000  # 2023-01-01T00:00:00Z
EPOCH_END_MS = 1_719_792_000_000  # 2024-07-01T00:00:00Z

PEOPLE = (
    ("Ana Costa", "ana.costa"), ("Ben Okafor", "ben.okafor"), ("Chen Wei", "chen.wei"),
    ("Dara Novak", "dara.novak"), ("Elena Rossi", "elena.rossi"), ("Felix Meyer", "felix.meyer"),
    ("Grace Kim", "grace.kim"), ("Hugo Silva", "hugo.silva"),
)
PROJECTS = (
    ("OPS", "Operations", "Day-to-day operations: suppliers, facilities and logistics."),
    ("WEB", "Website Relaunch", "The 2024 relaunch of the public website and shop."),
    ("FIN", "Finance Close", "Month-end close, invoicing and payment runs."),
    ("HR", "People Team", "Hiring, onboarding and team events."),
    ("CRM", "CRM Migration", "Moving customer records from spreadsheets into the CRM."),
)
VERBS = ("Update", "Fix", "Review", "Prepare", "Migrate", "Draft", "Check", "Order", "Plan",
         "Clean up", "Automate", "Document")
OBJECTS = ("supplier contracts", "the checkout page", "VAT report", "onboarding checklist",
           "customer import", "shipping rates", "invoice template", "team offsite",
           "price list", "product photos", "backup job", "newsletter signup",
           "payment reminders", "warehouse labels", "access rights")
DETAILS = ("The current version is out of date.", "Customers reported this twice last week.",
           "Needed before the end of the quarter.", "Ask finance for the latest numbers.",
           "Keep the old version until the new one is live.",
           "See the shared folder for the draft.")
STATUSES = ("To Do", "In Progress", "Done")
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
LABELS = ("backend", "customer", "urgent-fix", "q3", "compliance", "website", "finance",
          "nice-to-have")
ISSUE_TYPES = ("Task", "Task", "Task", "Bug", "Story")


@dataclass
class FakeData:
    """What the sandbox loads at start."""

    users: list[dict[str, str]] = field(default_factory=list)
    projects: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)


def generate(seed: int, count: int, projects: int = 3) -> FakeData:
    """`count` issues spread over `projects` projects (at most 5), from `seed`."""
    rng = random.Random(seed)
    data = FakeData()
    for i, (name, handle) in enumerate(PEOPLE):
        data.users.append({"accountId": f"5b10a2844c20165700ede{i:03d}",
                           "displayName": name, "emailAddress": f"{handle}@example.com"})
    for key, name, description in PROJECTS[:max(0, min(projects, len(PROJECTS)))]:
        data.projects.append({"key": key, "name": name, "description": description,
                              "lead": rng.choice(data.users)["accountId"],
                              "url": f"https://intranet.example.com/projects/{key.lower()}"
                              if rng.random() < 0.5 else None})
    if not data.projects:
        return data
    for _ in range(count):
        data.issues.append(_issue(rng, data))
    return data


def _issue(rng: random.Random, data: FakeData) -> dict[str, Any]:
    created = rng.randrange(EPOCH_START_MS, EPOCH_END_MS - 86_400_000)
    updated = rng.randrange(created, EPOCH_END_MS)
    status = rng.choices(STATUSES, weights=(5, 3, 4))[0]
    due = None
    if rng.random() < 0.6:
        day = (created // 86_400_000) + rng.randrange(3, 60)
        due = day * 86_400_000
    return {
        "project": rng.choice(data.projects)["key"],
        "summary": f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}",
        "description": _description(rng, data) if rng.random() < 0.8 else None,
        "status": status,
        "priority": rng.choices(PRIORITIES, weights=(1, 3, 6, 3, 1))[0],
        "assignee": rng.choice(data.users)["accountId"] if rng.random() < 0.75 else None,
        "due_ms": due,
        "labels": sorted(set(rng.sample(LABELS, rng.choice((0, 0, 1, 2))))),
        "issuetype": rng.choice(ISSUE_TYPES),
        "created_ms": created,
        "updated_ms": updated,
        "resolved_ms": rng.randrange(created, updated + 1) if status == "Done" else None,
    }


def _text(text: str, *marks: str) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = [{"type": m} for m in marks]
    return node


def _description(rng: random.Random, data: FakeData) -> dict[str, Any]:
    person = rng.choice(data.users)
    blocks: list[dict[str, Any]] = [{"type": "paragraph", "content": [
        _text(rng.choice(DETAILS) + " "), _text("Owner: ", "strong"),
        {"type": "mention", "attrs": {"id": person["accountId"],
                                      "text": "@" + person["displayName"]}}]}]
    shape = rng.randrange(4)
    if shape == 0:
        blocks.append({"type": "bulletList", "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [
                _text(rng.choice(OBJECTS).capitalize())]}]} for _ in range(rng.randrange(2, 4))]})
    elif shape == 1:
        blocks.append({"type": "paragraph", "content": [
            _text(rng.choice(DETAILS)), {"type": "hardBreak"}, _text(rng.choice(DETAILS), "em")]})
    elif shape == 2:
        blocks.append({"type": "orderedList", "attrs": {"order": 1}, "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [
                _text(f"Step {n}: {rng.choice(VERBS).lower()} {rng.choice(OBJECTS)}")]}]}
            for n in range(1, rng.randrange(3, 5))]})
    else:
        blocks.append({"type": "codeBlock", "attrs": {"language": "text"},
                       "content": [_text(f"ref={rng.randrange(10_000, 99_999)}")]})
    return {"type": "doc", "version": 1, "content": blocks}
