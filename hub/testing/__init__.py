"""Test helpers shipped for connector authors: the conformance suite (needs pytest)."""

from __future__ import annotations

from typing import Any

__all__ = ["conformance_suite"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing other hub.testing modules does not require pytest.
    if name == "conformance_suite":
        from hub.testing.conformance import conformance_suite

        return conformance_suite
    raise AttributeError(f"module 'hub.testing' has no attribute {name!r}")
