"""Shared fixtures: real PostgreSQL and Redis when the tests need them.

In CI (CI=true) a missing service FAILS the tests that need it; on a laptop without the
service they are skipped with a message saying how to start it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# Properties assert behaviour, never speed (benchmarks under bench/ do that): hypothesis's
# default 200 ms deadline per example fails them when a shared machine stalls.
settings.register_profile("liaison", deadline=None)
settings.load_profile("liaison")

PG_URL = os.environ.get("HUB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_START = ("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")


def _unavailable(what: str, how: str) -> None:
    message = f"{what} is not answering; start it with: {how}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def _reset_pg(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A clean PostgreSQL database (the `test` database, emptied)."""
    try:
        import psycopg

        psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=3).close()
    except Exception:  # noqa: BLE001 - any failure means the server is not usable here
        _unavailable("PostgreSQL on 127.0.0.1:5432", PG_START)
    _reset_pg(PG_URL)
    yield PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The same test on the embedded SQLite default and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield request.getfixturevalue("pg_url")
