"""A real Radicale CardDAV/CalDAV server on loopback, for the carddav and caldav tests.

`running(folder)` starts `python -m radicale` on a free 127.0.0.1 port with its storage in
`folder`, HTTP Basic login checked against a plain htpasswd file holding one test user, and
stops it afterwards. Import the `radicale` fixture into a test module to get one server per
module (`from tests.connectors.radicale_server import radicale_fixture`);
`Radicale.addressbook()` / `calendar()` make a fresh collection per test.

Without the Radicale package the tests skip locally and fail under CI=true (CI installs it
with the test extras).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.dav import xml
from hub.config.model import ConnectionConfig, RetryPolicy, Secret

USER = "tester"
PASSWORD = "radicale-test-pw"
PASSWORD_ENV = "LIAISON_TEST_DAV_PASSWORD"
START_TIMEOUT = 30.0  # seconds for the server to answer
ADDRESSBOOK = xml.mkcol([xml.clark(xml.CARDDAV, "addressbook")])
CALENDAR = xml.mkcol([xml.clark(xml.CALDAV, "calendar")],
                     {xml.clark(xml.CALDAV, "supported-calendar-component-set"):
                      ["VTODO", "VEVENT"]})


def _unavailable(what: str, how: str) -> None:
    message = f"{what} is not available; install it with: {how}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Radicale:
    """A running server: its URL, storage folder and the test user's credentials."""

    url: str
    storage: Path
    user: str = USER
    password: str = PASSWORD
    # One client for the raw requests: building an httpx.Client costs ~0.3 s (CA bundle).
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A raw request as the test user (to put bad resources in, or look behind our back)."""
        return self.http.request(method, self.url + path, auth=(self.user, self.password),
                                 **kwargs)

    def _collection(self, body: bytes) -> str:
        path = f"/{self.user}/{uuid.uuid4().hex[:12]}/"
        answer = self.request("MKCOL", path, content=body,
                              headers={"Content-Type": "application/xml"})
        assert answer.status_code == 201, f"MKCOL {path}: {answer.status_code} {answer.text}"
        return path

    def addressbook(self) -> str:
        """A new empty address book; its path."""
        return self._collection(ADDRESSBOOK)

    def calendar(self) -> str:
        """A new empty calendar for tasks and events; its path."""
        return self._collection(CALENDAR)

    def folder(self, path: str) -> Path:
        """The storage folder of a collection (to plant what a PUT would refuse)."""
        return self.storage / "collection-root" / path.strip("/")

    def put(self, path: str, text: str, content_type: str) -> httpx.Response:
        """PUT a resource as is, behind the connector's back."""
        return self.request("PUT", path, content=text.encode("utf-8"),
                            headers={"Content-Type": content_type})

    def connection(self, connector: str, path: str, name: str = "dav",
                   **settings: Any) -> ConnectionConfig:
        """A ConnectionConfig for `connector` on a collection (password as ${ENV})."""
        values: dict[str, Any] = {"base_url": self.url + path, "username": self.user,
                                  "password": Secret(PASSWORD_ENV), **settings}
        return ConnectionConfig(name=name, connector=connector, settings=values,
                                base_dir=Path("."),
                                retry=RetryPolicy(attempts=2, backoff_initial=0.01,
                                                  backoff_max=0.1))


def _wait(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"radicale exited with {proc.returncode}:\n"
                               f"{log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"radicale did not answer on port {port} within {START_TIMEOUT} s")


@contextlib.contextmanager
def running(folder: Path) -> Iterator[Radicale]:
    """Run Radicale with storage in `folder` until the block ends."""
    if importlib.util.find_spec("radicale") is None:
        _unavailable("the Radicale server (Python package Radicale)",
                     'python3 -m pip install -e ".[test]"')
    folder.mkdir(parents=True, exist_ok=True)
    users = folder / "users"
    users.write_text(f"{USER}:{PASSWORD}\n", encoding="utf-8")
    config = folder / "config"
    config.write_text("", encoding="utf-8")  # no /etc/radicale/config or ~/.config leaks in
    log = folder / "radicale.log"
    port = _free_port()
    command = [sys.executable, "-m", "radicale", "-C", str(config),
               "--server-hosts", f"127.0.0.1:{port}",
               "--storage-filesystem-folder", str(folder / "storage"),
               "--auth-type", "htpasswd", "--auth-htpasswd-filename", str(users),
               "--auth-htpasswd-encryption", "plain", "--auth-delay", "0",
               "--server-delay-on-error", "0"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    previous = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = PASSWORD
    try:
        _wait(proc, port, log)
        server = Radicale(f"http://127.0.0.1:{port}", folder / "storage")
        try:
            yield server
        finally:
            server.http.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if previous is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = previous


@pytest.fixture(scope="module", name="radicale")
def radicale_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """One Radicale server for the test module (import this into it: `radicale`)."""
    with running(tmp_path_factory.mktemp("radicale")) as server:
        yield server
