"""Run the real demo (``manage.py shop_demo_serve``) as a child process, for tests.

Used by the demo runner's own test and by the browser tests: start it on free
ports with a throw-away SQLite database, wait until the storefront and the
sandbox answer, and on the way out stop it with SIGINT and check that it and
its three children (sandbox, worker, web server) are gone.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


@dataclass(frozen=True)
class DemoProcess:
    base_url: str  # the storefront, http://127.0.0.1:<port>
    sandbox_url: str  # http://127.0.0.1:<port>, without /v5
    log_path: Path
    database_path: Path | None = None  # the demo's throw-away SQLite file, for tests to read

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@contextmanager
def running_demo(
    log_path: Path, *, start_timeout: float = 120.0, stop_timeout: float = 60.0
) -> Iterator[DemoProcess]:
    """The demo, running until the block ends; then stopped with SIGINT and checked."""
    web_port, sandbox_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "shop_demo.settings",
            "DATABASE_URL": f"sqlite:///{tmp}/demo.sqlite3",
            "SHOP_DEMO_VAR_DIR": tmp,
            "Q_WORKERS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        demo = DemoProcess(
            f"http://{HOST}:{web_port}",
            f"http://{HOST}:{sandbox_port}",
            log_path,
            Path(tmp) / "demo.sqlite3",
        )
        command = [
            sys.executable, "manage.py", "shop_demo_serve",
            "--port", str(web_port), "--sandbox-port", str(sandbox_port),
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            parent = subprocess.Popen(
                command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                _wait_until_ready(parent, demo, start_timeout)
                pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", demo.log())]
                assert len(pids) == 3, demo.log()
                yield demo
                parent.send_signal(signal.SIGINT)
                try:
                    code = parent.wait(timeout=stop_timeout)
                except subprocess.TimeoutExpired:
                    pytest.fail(f"shop_demo_serve did not stop on SIGINT:\n{demo.log()}")
                assert code == 0, f"shop_demo_serve exited with {code}:\n{demo.log()}"
            finally:
                if parent.poll() is None:
                    parent.kill()
                    parent.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in pids if alive(pid)], f"children left running:\n{demo.log()}"
        assert "Stopped." in demo.log(), demo.log()


def _wait_until_ready(parent: subprocess.Popen, demo: DemoProcess, timeout: float) -> None:
    """Both ports answer: the storefront (200) and the sandbox (``/_sandbox/health``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if parent.poll() is not None:
            pytest.fail(f"shop_demo_serve exited early ({parent.returncode}):\n{demo.log()}")
        if (
            "Storefront:" in demo.log()
            and answers(demo.base_url + "/")
            and answers(demo.sandbox_url + "/_sandbox/health")
        ):
            return
        time.sleep(0.2)
    pytest.fail(f"the demo did not answer within {timeout:.0f} s:\n{demo.log()}")
