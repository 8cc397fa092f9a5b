"""The hub's HTTP side: webhooks in (hub.web.webhooks), /healthz, and what reacts to them."""

from hub.web.app import make_app

__all__ = ["make_app"]
