"""Shared by the metrics tests: a hub on a HubSpot sandbox and a CSV folder, the ASGI app
served by uvicorn on a free loopback port, and a parser for /metrics answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from tests.integration.helpers import contact, write_csv

TOKEN_VAR = "T_METRICS_HS_TOKEN"
STARTUP = 10.0  # seconds uvicorn gets to start listening


def hub_config(tmp: Path, sandbox_url: str, *, store: str | None = None,
               broker: str = "inprocess://", extra_flows: str = "") -> str:
    """A config: HubSpot sandbox `crm`, CSV folders `sheet` and `suppliers`, silo `mailbox`.

    Flow `crm-to-sheet` copies contacts from the sandbox to `sheet`; `suppliers-to-sheet`
    copies the suppliers' contacts (seeded with one bad e-mail: a dead letter) to `sheet`.
    """
    (tmp / "sheet").mkdir(exist_ok=True)
    rows = [contact(i) for i in range(100, 104)] + [contact(199, email="not-an-email")]
    write_csv(tmp / "suppliers" / "contacts.csv", rows)
    return f"""
version: 1
store: {store or f"sqlite:///{tmp / 'liaison.db'}"}
broker: {broker}
systems:
  crm:
    category: crm
    owner: Anna
    connection:
      connector: hubspot
      base_url: {sandbox_url}
      token: ${{{TOKEN_VAR}}}
      retry: {{attempts: 6, backoff_initial: 0.01, backoff_max: 0.05}}
  sheet:
    category: files
    owner: Ben
    connection: {{connector: spreadsheet, path: "{tmp / 'sheet'}"}}
  suppliers:
    category: files
    owner: Ben
    connection: {{connector: spreadsheet, path: "{tmp / 'suppliers'}"}}
  mailbox:
    category: email
flows:
  crm-to-sheet:
    entity: contact
    from: crm
    to: sheet
    page_size: 20
  suppliers-to-sheet:
    entity: contact
    from: suppliers
    to: sheet
{extra_flows}"""


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition: (name, labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 if none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def names(samples: Samples) -> set[str]:
    """The sample names present."""
    return {n for n, _ in samples}


def labelled(samples: Samples, name: str) -> list[Mapping[str, str]]:
    """The label sets of a sample name."""
    return [dict(ls) for n, ls in samples if n == name]


class Served:
    """An ASGI app served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, app: Starlette) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + STARTUP
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within the startup wait")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def base(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"
