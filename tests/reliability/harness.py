"""The test-process side of the reliability tests: databases, worker processes, the ledger.

* Each test gets its own database: a SQLite file under ``tmp_path`` or a fresh PostgreSQL
  database ``pcapi_rel_<random>``, both copied from a template migrated once per session
  with a real ``manage.py migrate`` subprocess.
* Seeding and inspection run in Django subprocesses (:mod:`.dbside`), workers are real
  processes (``manage.py pinterest_capi_flush`` or :mod:`.worker`), and the sandbox runs in
  this process so the tests read its ledger directly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MANAGE = str(ROOT / "manage.py")
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get(
    "PCAPI_RELIABILITY_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ACCOUNT_ID = "549755885175"
TOKEN = "pina_sandbox_TOKEN_rel1"

# Short, consistent timings for workers: lease > deadline + margin (see delivery.cycle).
BASE_OVERRIDES: dict[str, Any] = {
    "NUDGE": "off",
    "CONNECT_TIMEOUT": 2.0,
    "READ_TIMEOUT": 5.0,
    "REQUEST_DEADLINE": 5.0,
    "LEASE_SECONDS": 30,
    "BACKOFF_BASE_SECONDS": 0,
}


# ------------------------------------------------------------------------------ databases


def pg_unreachable_reason() -> str | None:
    """None when the PostgreSQL server of the reliability tests answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


def pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@dataclass
class Database:
    """One test's database and the environment its subprocesses run with."""

    backend: str  # "sqlite" or "postgresql"
    url: str
    var_dir: Path
    api_base_url: str = "http://127.0.0.1:9/v5"

    def env(self, overrides: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PCAPI_TEST_")}
        capi = {**BASE_OVERRIDES, **(overrides or {})}
        lease, deadline = float(capi["LEASE_SECONDS"]), float(capi["REQUEST_DEADLINE"])
        env.update(
            DJANGO_SETTINGS_MODULE="shop_demo.settings",
            # django-q2's task timeout sits between the request deadline and the lease.
            Q_TIMEOUT=str(int((lease + deadline) / 2)),
            DATABASE_URL=self.url,
            SHOP_DEMO_VAR_DIR=str(self.var_dir),
            PINTEREST_CAPI_API_BASE_URL=self.api_base_url,
            PINTEREST_CAPI_OVERRIDES=json.dumps(capi),
            PYTHONPATH=str(ROOT),
            PCAPI_LOG="WARNING",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def call(self, function: str, **kwargs: Any) -> Any:
        """Run :mod:`.dbside` ``function(**kwargs)`` in a Django subprocess; its JSON result."""
        proc = subprocess.run(
            [PYTHON, *self.dbside_args(function, **kwargs)],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise AssertionError(f"dbside {function} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])["result"]

    def dbside_args(self, function: str, **kwargs: Any) -> list[str]:
        return ["-m", "tests.reliability.dbside", function, json.dumps(kwargs)]


def migrate(url: str, var_dir: Path) -> None:
    db = Database("?", url, var_dir)
    proc = subprocess.run(
        [PYTHON, MANAGE, "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=db.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise AssertionError(f"migrate failed:\n{proc.stderr[-3000:]}")


class SqliteTemplate:
    """A SQLite file migrated once; each test gets a copy."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.sqlite3"
        migrate(f"sqlite:///{self.path}", directory)
        with sqlite3.connect(self.path) as conn:  # fold the WAL into the file before copies
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def new(self, tmp_path: Path) -> Database:
        target = tmp_path / "shop.sqlite3"
        shutil.copyfile(self.path, target)
        return Database("sqlite", f"sqlite:///{target}", tmp_path)


class PostgresTemplate:
    """A PostgreSQL database migrated once; each test gets ``CREATE DATABASE … TEMPLATE``."""

    def __init__(self, directory: Path) -> None:
        self.name = f"pcapi_rel_tpl_{uuid.uuid4().hex[:10]}"
        pg_admin(f'CREATE DATABASE "{self.name}"')
        migrate(pg_url(self.name), directory)
        self.created: list[str] = []

    def new(self, tmp_path: Path) -> Database:
        name = f"pcapi_rel_{uuid.uuid4().hex[:12]}"
        pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"')
        self.created.append(name)
        return Database("postgresql", pg_url(name), tmp_path)

    def drop(self, db: Database) -> None:
        name = db.url.rsplit("/", 1)[1]
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# ------------------------------------------------------------------------------ processes


@dataclass
class Proc:
    """A worker (or shop) subprocess with its output in files (no pipe can fill up)."""

    name: str
    popen: subprocess.Popen
    out: Path
    err: Path
    started: float = field(default_factory=time.monotonic)

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not finish in {timeout} s:\n{self.tail()}"
            ) from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def tail(self, chars: int = 3000) -> str:
        return self.err.read_text(errors="replace")[-chars:]

    def result(self, timeout: float = 120) -> dict[str, Any]:
        """Wait for a clean exit and return the JSON summary on its last stdout line."""
        code = self.wait(timeout)
        lines = self.out.read_text().strip().splitlines()
        if code != 0 or not lines:
            raise AssertionError(f"{self.name} exited with {code}:\n{self.tail()}")
        return json.loads(lines[-1])


def spawn(db: Database, name: str, args: list[str], env: dict[str, str]) -> Proc:
    out, err = db.var_dir / f"{name}.out", db.var_dir / f"{name}.err"
    popen = subprocess.Popen(
        [PYTHON, *args],
        cwd=ROOT,
        env=env,
        stdout=out.open("w"),
        stderr=err.open("w"),
        stdin=subprocess.DEVNULL,
    )
    return Proc(name, popen, out, err)


def flush_command(db: Database, name: str, overrides: dict | None = None, skew: float = 0) -> Proc:
    """``manage.py pinterest_capi_flush --until-empty --json`` (optionally on a skewed clock)."""
    args = [MANAGE, "pinterest_capi_flush", "--until-empty", "--json"]
    if skew:
        args = ["-m", "tests.reliability.clockskew", str(skew), *args]
    return spawn(db, name, args, db.env(overrides))


def loop_worker(
    db: Database,
    name: str,
    overrides: dict | None = None,
    *,
    deadline: float = 60,
    expect: int = 0,
    skew: float = 0,
) -> Proc:
    """:mod:`.worker`: the sweep task in a loop until nothing is pending or in flight."""
    extra = {"PCAPI_TEST_CLOCK_SKEW": str(skew)} if skew else {}
    args = ["-m", "tests.reliability.worker", "--deadline", str(deadline)]
    if expect:
        args += ["--expect", str(expect)]
    return spawn(db, name, args, db.env(overrides, **extra))


# ------------------------------------------------------------------------------ the ledger


class ArrivalClock:
    """Wall-clock arrival time of every sandbox request (the ledger keeps order, not time)."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.ledger.wait_for_requests(len(self.times) + 1, timeout=0.2):
                now = time.time()
                count = len(self.ledger.requests())
                self.times.extend([now] * (count - len(self.times)))

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.times


@dataclass
class Figures:
    """What the sandbox received compared with what the shop recorded."""

    recorded: int
    delivered: int
    duplicated: dict[str, int]
    lost: list[str]
    unexpected: list[str]
    requests: int

    def line(self, name: str, seconds: float, **more: Any) -> str:
        extra = " ".join(f"{k}={v}" for k, v in more.items())
        return (
            f"[reliability] {name}: recorded={self.recorded} delivered={self.delivered} "
            f"duplicated_by_resend={len(self.duplicated)} lost={len(self.lost)} "
            f"requests={self.requests} runtime={seconds:.1f}s {extra}"
        )


def ledger_figures(ledger: Any, recorded_ids: list[str]) -> Figures:
    counts = Counter(ledger.event_ids())  # processed events only
    recorded = set(recorded_ids)
    return Figures(
        recorded=len(recorded),
        delivered=len(recorded & set(counts)),
        duplicated={i: n for i, n in counts.items() if n > 1},
        lost=sorted(recorded - set(counts)),
        unexpected=sorted(set(counts) - recorded),
        requests=len(ledger.requests()),
    )


def request_ids(ledger: Any) -> dict[int, list[str]]:
    """event_ids per sandbox request (by sequence number), processed or not."""
    by_seq: dict[int, list[str]] = {}
    for item in ledger.events():
        by_seq.setdefault(item["request_seq"], []).append(item["event"].get("event_id"))
    return by_seq


def report(line: str) -> None:
    """Print a figures line (shown with ``pytest -s`` or in the captured output)."""
    print(line, flush=True)


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
