"""Seeded, realistic fake Trello data: the same seed and count give the same boards and cards.

Ids are ObjectIds whose first 8 hex characters are the creation time, like Trello's; every
generated time lies in a fixed window before `EPOCH_END`, never "now", so anything a test
creates or touches is newer than every generated record.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

EPOCH_START = 1_672_531_200  # 2023-01-01T00:00:00Z (seconds)
EPOCH_END = 1_719_792_000  # 2024-07-01T00:00:00Z

BOARD_NAMES = ("Website relaunch", "Customer onboarding", "Office move", "Q3 marketing",
               "Hiring pipeline", "Product roadmap", "Support backlog", "Event planning",
               "Finance close", "Partner program")
LIST_NAMES = ("To Do", "Doing", "Done")
VERBS = ("Draft", "Review", "Update", "Call", "Fix", "Plan", "Order", "Prepare", "Send",
         "Check", "Book", "Write", "Migrate", "Test", "Publish")
OBJECTS = ("landing page copy", "pricing table", "supplier contract", "welcome email",
           "invoice template", "team offsite", "press release", "onboarding checklist",
           "DNS records", "newsletter", "job advert", "budget sheet", "demo script",
           "sales deck", "FAQ page", "backup plan", "shipping labels", "photo shoot")
DETAILS = ("Agreed in Monday's meeting.", "See the shared drive for the last version.",
           "Needs sign-off from finance.", "Customer asked twice about this.",
           "Blocked until the supplier answers.", "")
LABELS = (("Urgent", "red"), ("Marketing", "green"), ("Finance", "yellow"),
          ("Customer", "blue"), ("Ops", "purple"))
MEMBERS = (("Ana Costa", "anacosta"), ("Ben Okafor", "benokafor"), ("Chen Wang", "chenwang"),
           ("Dara Quinn", "daraquinn"), ("Eva Meyer", "evameyer"))
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def iso(ms: int) -> str:
    """Epoch milliseconds as Trello's ISO-8601 UTC with milliseconds: 2024-05-01T10:00:00.000Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


class ObjectIds:
    """ObjectId maker: 4 bytes of creation time, 5 random bytes, a 3-byte rising counter."""

    def __init__(self, rng: random.Random) -> None:
        self._middle = f"{rng.getrandbits(40):010x}"
        self._counter = rng.getrandbits(16)

    def make(self, seconds: int) -> str:
        """A new id created at `seconds` (unix time)."""
        self._counter = (self._counter + 1) % (1 << 24)
        return f"{seconds:08x}{self._middle}{self._counter:06x}"


def short_link(rng: random.Random) -> str:
    """An 8-character short link like Trello's."""
    return "".join(rng.choice(ALNUM) for _ in range(8))


def slug(name: str) -> str:
    """The URL slug Trello puts after a card or board short link."""
    out = "".join(ch if ch.isalnum() else "-" for ch in name.lower())
    return "-".join(part for part in out.split("-") if part)


@dataclass
class FakeData:
    """What `generate` returns; shapes are Trello's (see sandbox.py)."""

    members: list[dict[str, Any]] = field(default_factory=list)
    boards: list[dict[str, Any]] = field(default_factory=list)
    lists: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)


def generate(seed: int, count: int, boards: int, ids: ObjectIds,
             rng: random.Random) -> FakeData:
    """`boards` boards with To Do/Doing/Done lists and five labels, and `count` cards."""
    data = FakeData()
    for full_name, username in MEMBERS:
        data.members.append({"id": ids.make(EPOCH_START), "fullName": full_name,
                             "username": username})
    board_lists: list[list[dict[str, Any]]] = []
    board_labels: list[list[dict[str, Any]]] = []
    for b in range(boards):
        created = EPOCH_START + b * 86_400
        name = BOARD_NAMES[b % len(BOARD_NAMES)] + (f" {b // len(BOARD_NAMES) + 1}"
                                                    if b >= len(BOARD_NAMES) else "")
        link = short_link(rng)
        board = {"id": ids.make(created), "name": name,
                 "desc": f"Board for {name.lower()}.", "closed": False,
                 "idOrganization": None, "url": f"https://trello.com/b/{link}/{slug(name)}",
                 "shortUrl": f"https://trello.com/b/{link}", "shortLink": link,
                 "dateLastActivity": iso(created * 1000), "prefs": {"permissionLevel": "private"}}
        data.boards.append(board)
        lists = []
        for pos, list_name in enumerate(LIST_NAMES, start=1):
            lst = {"id": ids.make(created), "name": list_name, "closed": False,
                   "idBoard": board["id"], "pos": 16384 * pos, "subscribed": False}
            lists.append(lst)
        data.lists.extend(lists)
        board_lists.append(lists)
        labels = [{"id": ids.make(created), "idBoard": board["id"], "name": n, "color": c}
                  for n, c in LABELS]
        data.labels.extend(labels)
        board_labels.append(labels)
    if not boards:
        return data
    span = EPOCH_END - EPOCH_START - boards * 86_400
    times = sorted(EPOCH_START + boards * 86_400 + rng.randrange(max(1, span))
                   for _ in range(count))
    shorts = [0] * boards
    for created in times:
        b = rng.randrange(boards)
        shorts[b] += 1
        lst = rng.choice(board_lists[b])
        name = f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        link = short_link(rng)
        labels = rng.sample(board_labels[b], rng.choice((0, 0, 1, 1, 2)))
        active_ms = min(EPOCH_END * 1000 - 1,
                        created * 1000 + rng.randrange(30 * 86_400_000))
        due = None
        if rng.random() < 0.5:
            due = iso((created + rng.randrange(5, 60) * 86_400) // 3600 * 3600 * 1000)
        card = {
            "id": ids.make(created), "name": name, "desc": rng.choice(DETAILS),
            "closed": rng.random() < 0.08, "idBoard": data.boards[b]["id"], "idList": lst["id"],
            "idMembers": [m["id"] for m in rng.sample(data.members, rng.choice((0, 1, 1, 2)))],
            "idLabels": [label["id"] for label in labels],
            "labels": [{"id": label["id"], "name": label["name"], "color": label["color"]}
                       for label in labels],
            "pos": 65535 * shorts[b], "due": due,
            "dueComplete": bool(due) and lst["name"] == "Done",
            "start": None, "dateLastActivity": iso(active_ms), "idShort": shorts[b],
            "shortLink": link, "shortUrl": f"https://trello.com/c/{link}",
            "url": f"https://trello.com/c/{link}/{shorts[b]}-{slug(name)}",
            "badges": {},
        }
        data.cards.append(card)
    return data
