"""What the browser tests of the dashboard stand on: `hub serve` as a real process, headless
Chromium from Debian driven by Playwright, and a folder for the screenshots CI keeps.

Chromium is the distribution's (/usr/bin/chromium, `.ci/system-packages`), never a browser
Playwright downloads. Without it (or without Playwright) the tests are skipped on a laptop and
fail under CI=true, like every other test that needs a server binary.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import httpx

from tests.conftest import _unavailable

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium"))
# Quiet, offline Chromium: no sandbox (CI runs as root), no GPU, nothing phoned home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SERVE_WAIT = 60.0  # seconds `hub serve` gets to answer /healthz (imports are slow on a busy CI)
STOP_WAIT = 10.0


def artifacts_dir() -> Path:
    """Where screenshots go: $HUB_TEST_ARTIFACTS, else test-artifacts/dashboard at the repo
    root (git-ignored; CI keeps the folder)."""
    base = os.environ.get("HUB_TEST_ARTIFACTS")
    folder = Path(base) if base else ROOT / "test-artifacts"
    folder = folder / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def require_browser() -> Any:
    """Playwright's sync API, once Chromium and Playwright are known to be here."""
    if not CHROMIUM.exists():
        _unavailable(f"Chromium ({CHROMIUM})",
                     "bash .ci/system-packages (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        _unavailable("Playwright for Python", 'python3 -m pip install -e ".[test]"')
    return sync_api


def launch(playwright: Any) -> Any:
    """Headless Chromium from Debian."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                      headless=True)


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HubServer:
    """`hub -c CONFIG serve --host 127.0.0.1 --port P` as a child process, until `stop`."""

    def __init__(self, config: Path, env: Mapping[str, str], log: Path) -> None:
        self.config = config
        # Metric files next to the config (the test's folder), not in a default
        # <temp>/liaison-metrics-<hash> folder that would outlive the test.
        self.env = {"PROMETHEUS_MULTIPROC_DIR": str(config.parent / "metrics"), **env}
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._log: IO[bytes] | None = None

    @property
    def base(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") \
            if self.log_path.exists() else ""

    def start(self) -> HubServer:
        """Start it and wait (bounded) until /healthz answers ok; a second port is tried if
        the first was taken between picking and binding it."""
        for _ in range(2):
            self.port = free_port()
            self._log = self.log_path.open("ab")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "-c", str(self.config), "serve",
                 "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.config.parent, env=self.env, stdout=self._log,
                stderr=subprocess.STDOUT)
            if self._wait_healthy():
                return self
            taken = "address already in use" in self.log().lower()
            self.stop()
            if not taken:
                break
        raise AssertionError(f"hub serve did not answer /healthz within {SERVE_WAIT:.0f} s; "
                             f"its output:\n{self.log()}")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + SERVE_WAIT
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within STOP_WAIT seconds."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=STOP_WAIT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=STOP_WAIT)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
