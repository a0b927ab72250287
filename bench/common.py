"""Shared pieces of the benchmarks: ports, the sandbox process, fresh databases, child processes.

The benchmarks drive the app only through its public and command interfaces (``track()``,
``outbox.record_many``, ``manage.py pinterest_capi_flush``, the sandbox's ``/_sandbox/``
control endpoints), so they keep measuring the same thing while the internals change.  The
orchestrating process never sets Django up: every database gets its own child processes,
configured by environment variables that ``shop_demo.settings`` reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ACCOUNT_ID = "549755885199"
TOKEN = "bench-token"  # a sandbox token: fake by design
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"
#: Prefix of every PostgreSQL database a run makes (``BENCH_DB_PREFIX``): several people
#: benchmarking on one server each keep to names of their own.
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "pcapi_bench_")


def script_defaults(**extra: str) -> None:
    """Environment defaults of a bench tool run as a script (``python bench/<tool>.py``).

    The demo's settings, warnings-only logs, and no django-q2 flush nudges from recording: each
    tool times or drains the outbox itself.  ``extra`` adds the tool's own defaults; whatever
    the environment already says wins.
    """
    defaults = {
        "DJANGO_SETTINGS_MODULE": "shop_demo.settings",
        "PCAPI_LOG": "WARNING",
        "PINTEREST_CAPI_OVERRIDES": '{"NUDGE": "off"}',
        **extra,
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of one process, all its threads (``/proc/<pid>/stat``).

    ``children``: also those of its children that exited and were waited for (PostgreSQL's
    postmaster collects the time of every backend that ended, e.g. a flush lane's).
    """
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Return once something accepts connections on ``port``; SystemExit after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout:.0f} s")


# -- the sandbox, in its own process --------------------------------------------------------


class Sandbox:
    """``manage.py pinterest_capi_sandbox`` as a child process, with its ledger over HTTP.

    A separate process so the flusher and the stand-in for Pinterest do not share one GIL.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v5"
        self.events_url = f"{self.base_url}/ad_accounts/{ACCOUNT_ID}/events"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Sandbox:
        argv = [PYTHON, "manage.py", "pinterest_capi_sandbox", "--port", str(self.port)]
        argv += ["--account", f"{ACCOUNT_ID}:{TOKEN}", "--verbosity", "0"]
        env = os.environ | {"DJANGO_SETTINGS_MODULE": "shop_demo.settings"}
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _control(self, method: str, route: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/_sandbox/{route}"
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        """Forget the ledger (and any fault), so each measurement reads only its own events."""
        self._control("POST", "reset")

    def ledger_counts(self) -> dict[str, int]:
        """Events the ledger holds: total processed, distinct event_ids, ids received twice+."""
        ledger = self._control("GET", f"ledger?ad_account_id={ACCOUNT_ID}")
        ids = [e["event"].get("event_id") for e in ledger["events"] if e["status"] == "processed"]
        seen: dict[str, int] = {}
        for event_id in ids:
            seen[event_id] = seen.get(event_id, 0) + 1
        return {
            "received": len(ids),
            "distinct": len(seen),
            "duplicated_ids": sum(1 for n in seen.values() if n > 1),
            "requests": len(ledger["requests"]),
        }


# -- fresh databases ------------------------------------------------------------------------


def pg_server_url() -> str:
    """``BENCH_POSTGRES_URL`` (a database URL; only its server part is used)."""
    return os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG)


def _pg_admin_conninfo(url: str) -> str:
    server = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return server.replace("postgres://", "postgresql://", 1) + "/postgres"


def postgres_available() -> str | None:
    """None when PostgreSQL answers at ``BENCH_POSTGRES_URL``, else why not (for the notice)."""
    try:
        import psycopg

        psycopg.connect(_pg_admin_conninfo(pg_server_url()), connect_timeout=3).close()
    except Exception as exc:  # any failure means: skip the PostgreSQL rows
        return f"PostgreSQL not reachable at {pg_server_url()}: {exc}"
    return None


def ensure_database(pg: str, name: str) -> None:
    """Create database ``name`` on server ``pg`` (``postgres://user@host:port``) if missing."""
    import psycopg

    with psycopg.connect(_pg_admin_conninfo(pg), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(pg: str, name: str) -> None:
    """Drop database ``name`` (closing any connection left to it)."""
    import psycopg

    with psycopg.connect(_pg_admin_conninfo(pg), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class BenchDB:
    """One fresh, migrated database and the environment that points the app's processes at it."""

    vendor: str  # "sqlite" | "postgresql"
    url: str
    var_dir: Path
    base_url: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def env(self, **overrides: Any) -> dict[str, str]:
        """Environment for a child process: demo settings, this database, the sandbox."""
        merged = {"NUDGE": "off"} | self.overrides | overrides
        return os.environ | {
            "DJANGO_SETTINGS_MODULE": "shop_demo.settings",
            "DATABASE_URL": self.url,
            "SHOP_DEMO_VAR_DIR": str(self.var_dir),
            "PINTEREST_CAPI_API_BASE_URL": self.base_url,
            "PINTEREST_CAPI_OVERRIDES": json.dumps(merged),
            "DJANGO_DEBUG": "0",  # DEBUG keeps every query in memory: no benchmark runs with it
            "PCAPI_LOG": "WARNING",
            "PYTHONPATH": str(ROOT),
        }


class Databases:
    """Fresh databases for the measurements, each a copy of one migrated template per vendor.

    ``manage.py migrate`` runs once per vendor and run (into ``pcapi_bench_template`` or a
    template SQLite file); each measurement then gets its own copy (``CREATE DATABASE …
    TEMPLATE``, or a file copy), so no measurement sees another's rows and none pays for the
    migrations.  Every database made here is dropped on :meth:`close`.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.root = Path(tempfile.mkdtemp(prefix="pcapi_bench_"))
        self.pg = pg_server_url().rsplit("/", 1)[0]
        self.templates: dict[str, str] = {}
        self.made: list[str] = []
        # Run-unique names: two runs (a bench and the test suite's smoke run) never share one.
        self.suffix = f"_{os.getpid()}"

    def _template(self, vendor: str) -> str:
        if vendor not in self.templates:
            if vendor == "postgresql":
                name = f"{DB_PREFIX}template{self.suffix}"
                drop_database(self.pg, name)
                ensure_database(self.pg, name)
                self.made.append(name)
                url = f"{self.pg}/{name}"
            else:
                url = f"sqlite:///{self.root / 'template.sqlite3'}"
            db = BenchDB(vendor, url, self.root / "template-var", self.base_url)
            run_checked([PYTHON, "manage.py", "migrate", "--verbosity", "0"], db.env())
            self.templates[vendor] = url
        return self.templates[vendor]

    @contextlib.contextmanager
    def fresh(self, vendor: str, name: str) -> Iterator[BenchDB]:
        """A new migrated database ``pcapi_bench_<name>_<pid>`` (or SQLite file), then dropped."""
        template = self._template(vendor)
        var_dir = self.root / name
        var_dir.mkdir()
        dbname = f"{DB_PREFIX}{name}{self.suffix}"
        if vendor == "postgresql":
            drop_database(self.pg, dbname)
            import psycopg

            with psycopg.connect(_pg_admin_conninfo(self.pg), autocommit=True) as conn:
                conn.execute(
                    f'CREATE DATABASE "{dbname}" TEMPLATE "{DB_PREFIX}template{self.suffix}"'
                )
            url = f"{self.pg}/{dbname}"
        else:
            path = var_dir / "bench.sqlite3"
            shutil.copyfile(template.removeprefix("sqlite:///"), path)
            url = f"sqlite:///{path}"
        try:
            yield BenchDB(vendor, url, var_dir, self.base_url)
        finally:
            if vendor == "postgresql":
                drop_database(self.pg, dbname)
            shutil.rmtree(var_dir, ignore_errors=True)

    def close(self) -> None:
        for name in self.made:
            drop_database(self.pg, name)
        shutil.rmtree(self.root, ignore_errors=True)


# -- child processes ------------------------------------------------------------------------


def run_checked(argv: list[str], env: dict[str, str], timeout: float | None = None) -> str:
    """Run a child to completion; its stdout, or SystemExit with its stderr when it fails."""
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def run_task(db: BenchDB, task: str, overrides: dict[str, Any] | None = None, **params: Any) -> Any:
    """Run ``bench.tasks.<task>(**params)`` in a Django child on ``db``; its JSON result.

    ``overrides`` are ``PINTEREST_CAPI`` settings for that child (``PINTEREST_CAPI_OVERRIDES``).
    """
    argv = [PYTHON, "-m", "bench.tasks", task, json.dumps(params)]
    out = run_checked(argv, db.env(**(overrides or {})))
    return json.loads(out.strip().splitlines()[-1])


@dataclass
class FlushRun:
    """One ``pinterest_capi_flush --until-empty`` process as measured from outside."""

    seconds: float
    max_rss_kb: int
    summary: dict[str, Any]
    cut: bool  # stopped at the time limit before the backlog was empty


def start_flush(db: BenchDB) -> subprocess.Popen[str]:
    """Start ``manage.py pinterest_capi_flush --until-empty --json`` on ``db``.

    Its output goes to files, not pipes: a flusher that logs a lot must not block on a full pipe.
    """
    argv = [PYTHON, "manage.py", "pinterest_capi_flush", "--until-empty", "--json"]
    out = tempfile.TemporaryFile("w+")
    err = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(argv, cwd=ROOT, env=db.env(), stdout=out, stderr=err, text=True)
    proc.bench_files = (out, err)  # type: ignore[attr-defined]
    return proc


def vm_hwm_kb(pid: int) -> int:
    """The peak RSS (``VmHWM``) of a running process, 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_flushes(
    procs: list[subprocess.Popen[str]], started: float, limit: float | None
) -> list[FlushRun]:
    """Reap flush children, following each one's peak RSS; SIGTERM them at ``limit`` seconds.

    The peak is each child's own ``VmHWM`` (sampled every 20 ms until it exits): ``os.wait4``'s
    ``ru_maxrss`` would do on paper, but Linux carries the parent's peak over a fork and exec
    into it, so it reports the orchestrator's size (used only where /proc is absent).
    """
    cut = False
    peaks = [0] * len(procs)
    done: dict[int, tuple[float, int, Any]] = {}
    while len(done) < len(procs):
        for i, proc in enumerate(procs):
            if i in done:
                continue
            peaks[i] = max(peaks[i], vm_hwm_kb(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                done[i] = (time.monotonic() - started, status, usage)
        if limit is not None and time.monotonic() - started > limit and not cut:
            for i, proc in enumerate(procs):
                if i not in done:
                    proc.terminate()
            cut = True
        time.sleep(0.02)
    runs = []
    for i, proc in enumerate(procs):
        seconds, _status, usage = done[i]
        out, err = (_read_all(f) for f in proc.bench_files)  # type: ignore[attr-defined]
        if proc.returncode != 0 and not cut:
            raise SystemExit(f"pinterest_capi_flush failed ({proc.returncode}):\n{err[-3000:]}")
        lines = out.strip().splitlines()
        summary = json.loads(lines[-1]) if lines and proc.returncode == 0 else {}
        # ru_maxrss is in kilobytes on Linux.
        runs.append(FlushRun(seconds, peaks[i] or usage.ru_maxrss, summary, cut))
    return runs


def _read_all(file: Any) -> str:
    file.seek(0)
    text = file.read()
    file.close()
    return text


def flush(db: BenchDB, workers: int = 1, limit: float | None = None) -> list[FlushRun]:
    """``workers`` flush processes started together on ``db``, each reaped on its own."""
    started = time.monotonic()
    procs = [start_flush(db) for _ in range(workers)]
    try:
        return wait_flushes(procs, started, limit)
    except BaseException:  # interrupted: leave no flusher behind
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
        raise


def self_rss_kb() -> int:
    """Peak RSS of this process (for the report's context only)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def blast(
    events_url: str,
    body: bytes,
    batches: int,
    connections: int,
    headers: dict[str, str],
    *,
    accept: tuple[int, ...] = (200,),
) -> float:
    """Post ``body`` ``batches`` times over ``connections`` keep-alive connections at once.

    Returns the seconds it took; raises SystemExit naming the first answer outside ``accept``.
    The sandbox capacity row (bench/tasks.py) and bench/sandbox_capacity.py both measure this.
    """
    import httpx

    shares = [batches // connections + (i < batches % connections) for i in range(connections)]
    errors: list[str] = []

    def run(count: int) -> None:
        with httpx.Client(timeout=60, headers=headers) as http:
            for _ in range(count):
                response = http.post(events_url, content=body)
                if response.status_code not in accept:
                    errors.append(f"HTTP {response.status_code}")

    threads = [threading.Thread(target=run, args=(n,)) for n in shares]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{events_url}: {len(errors)} failed requests ({errors[0]})")
    return seconds
