"""Fixtures of the browser tests: the real demo in a subprocess, Chromium, screenshots.

- ``demo``: ``manage.py shop_demo_serve`` on free ports with a temporary SQLite database and a
  fast worker; stopped with SIGINT at the end of the session (and checked to have stopped).
- ``browser``: Playwright's Chromium from ``/usr/bin/chromium`` (Debian's package; Playwright's
  own download is not used). Without that binary every browser test is skipped with a notice,
  except in CI (``CI=true``), where it is an error.
- ``shots``: numbered PNG screenshots under ``test-artifacts/browser/<timestamp>/``.
- ``note``: a line for the end-of-run summary (e.g. an optional step that did not run).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.demo_process import running_demo

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0

_NOTES = pytest.StashKey[list[str]]()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _require(missing: str) -> None:
    """Skip (locally) or fail (CI) because something the browser tests need is absent."""
    if _in_ci():
        pytest.fail(f"{missing}: browser tests cannot run, and CI (CI=true) requires them.")
    pytest.skip(f"{missing}: browser tests skipped")


# -- notes in the terminal summary ---------------------------------------------------------------


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    notes = config.stash.get(_NOTES, [])
    if notes:
        terminalreporter.section("browser test notes")
        for line in notes:
            terminalreporter.write_line(line)


@pytest.fixture
def note(request: pytest.FixtureRequest):
    """``note("…")``: print a line now and repeat it in the summary at the end of the run."""

    def add(text: str) -> None:
        print(f"NOTE: {text}", flush=True)
        request.config.stash.setdefault(_NOTES, []).append(f"{request.node.name}: {text}")

    return add


# -- Chromium --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The Chromium binary, or a skip (a failure in CI) when it or Playwright is absent."""
    if not os.access(CHROMIUM, os.X_OK):
        _require(f"Chromium not found at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _require("The playwright Python package is not installed")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_executable: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


# -- screenshots -----------------------------------------------------------------------------


@dataclass
class Screenshots:
    """Numbered full-page PNGs in one folder: ``01-admin-login.png``, ``02-…``."""

    folder: Path
    count: int = 0
    taken: list[Path] = field(default_factory=list)

    def __call__(self, page: Any, name: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = self.folder / f"{self.count:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@pytest.fixture(scope="session")
def artifacts_dir(chromium_executable: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = PROJECT_DIR / "test-artifacts" / "browser" / stamp
    suffix = 1
    while folder.exists():  # two runs within the same second
        suffix += 1
        folder = folder.with_name(f"{stamp}-{suffix}")
    folder.mkdir(parents=True)
    print(f"\nBrowser test artifacts (screenshots, demo log): {folder}", flush=True)
    return folder


@pytest.fixture(scope="session")
def shots(artifacts_dir: Path) -> Screenshots:
    return Screenshots(artifacts_dir)


# -- the running demo ------------------------------------------------------------------------


@dataclass
class Demo:
    """The URLs of a running ``shop_demo_serve`` and small clients of the sandbox's controls."""

    base_url: str
    sandbox_url: str  # http://127.0.0.1:<port>, without /v5
    log_path: Path
    database_path: Path | None = None  # the demo's SQLite file (read-only use in tests)

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}/admin/"

    def sandbox(self, method: str, path: str, payload: Any = None, token: str | None = None):
        """One JSON request to the sandbox (``/_sandbox/…`` controls or the ``/v5`` API)."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.sandbox_url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(
                f"sandbox {method} {path} -> {exc.code}: {exc.read().decode(errors='replace')}"
            ) from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def demo(chromium_executable: str, artifacts_dir: Path) -> Iterator[Demo]:
    """``manage.py shop_demo_serve`` on free ports, a temporary SQLite database, one worker."""
    with running_demo(
        artifacts_dir / "shop_demo_serve.log",
        start_timeout=START_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
    ) as process:
        yield Demo(process.base_url, process.sandbox_url, process.log_path, process.database_path)
