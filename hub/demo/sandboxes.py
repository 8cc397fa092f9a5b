"""The vendors of the demo: four sandboxes on loopback, with credentials made up per session.

HubSpot (crm) is seeded with contacts and companies, Xero (accounting) starts with empty
books, Trello (project) has the "Customer onboarding" board the checklist goes to, and Jira
(project) has a few issues but refuses the token the config hands it: that flow fails on
purpose, the way an expired API token fails in real life.

Every secret is random for the session and reaches the config only through environment
variables (`${LIAISON_DEMO_...}` references); nothing here prints one.
"""

from __future__ import annotations

import os
import secrets
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Self

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.jira.sandbox import JiraSandbox
from connectors.trello.sandbox import TrelloSandbox
from connectors.xero.sandbox import XeroSandbox

ENV_PREFIX = "LIAISON_DEMO_"
ONBOARDING_BOARD = "Customer onboarding"
SEED = 7


def _secret() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Endpoints:
    """What the config needs besides secrets: URLs and ids of the running sandboxes."""

    hubspot_url: str
    xero_url: str
    xero_token_url: str
    xero_tenant: str
    trello_url: str
    trello_board: str
    jira_url: str
    jira_email: str

    def as_dict(self) -> dict[str, str]:
        """The endpoints as keyword arguments for str.format."""
        return dict(self.__dict__)


class DemoSandboxes:
    """Start every sandbox of the demo; stop them all on exit (also when start-up fails)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.hubspot = HubSpotSandbox(seed=SEED, count=count, token=_secret())
        # Xero's own limit (60 calls a minute) is kept: the dashboard's "run now" meets it
        # like a real tenant would, and the demo's two rounds stay far below it.
        self.xero = XeroSandbox(seed=SEED, count=0)
        self.xero.client_id, self.xero.client_secret = _secret(), _secret()
        self.trello = TrelloSandbox(seed=SEED, count=0, boards=2, api_key=_secret(),
                                    token=_secret())
        self.jira = JiraSandbox(seed=SEED, count=6, projects=1, api_token=_secret())
        self._stack = ExitStack()

    def __enter__(self) -> Self:
        with ExitStack() as starting:
            for sandbox in (self.hubspot, self.xero, self.trello, self.jira):
                starting.enter_context(sandbox)
            self._stack = starting.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def board(self) -> dict[str, Any]:
        """The Trello board the onboarding checklist goes to."""
        return next(b for b in self.trello.boards.values() if b["name"] == ONBOARDING_BOARD)

    def endpoints(self) -> Endpoints:
        """URLs and ids for the config (call once started)."""
        return Endpoints(
            hubspot_url=self.hubspot.base_url, xero_url=self.xero.base_url,
            xero_token_url=self.xero.token_url, xero_tenant=self.xero.tenant_id,
            trello_url=self.trello.base_url, trello_board=str(self.board["id"]),
            jira_url=self.jira.base_url, jira_email=self.jira.email)

    def environment(self) -> dict[str, str]:
        """The variables the config's ${...} references read, all secrets."""
        return {
            f"{ENV_PREFIX}HUBSPOT_TOKEN": self.hubspot.token,
            f"{ENV_PREFIX}XERO_CLIENT_ID": self.xero.client_id,
            f"{ENV_PREFIX}XERO_CLIENT_SECRET": self.xero.client_secret,
            f"{ENV_PREFIX}XERO_REFRESH_TOKEN": self.xero.refresh_token,
            f"{ENV_PREFIX}TRELLO_KEY": self.trello.api_key,
            f"{ENV_PREFIX}TRELLO_TOKEN": self.trello.token,
            # Not the token Jira knows: it stands for one that was revoked or expired.
            f"{ENV_PREFIX}JIRA_TOKEN": _secret(),
        }

    def export(self) -> dict[str, str]:
        """Put the credentials in this process's environment (where connectors read them);
        returns them so callers can check that none is ever printed."""
        env = self.environment()
        os.environ.update(env)
        return env

    def urls(self) -> dict[str, str]:
        """Each sandbox's base URL, by vendor (no secrets)."""
        return {"HubSpot": self.hubspot.base_url, "Xero": self.xero.origin,
                "Trello": self.trello.origin, "Jira": self.jira.base_url}
