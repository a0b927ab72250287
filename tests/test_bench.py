"""The benchmark suite's smoke run (``bench.run --quick``) writes a complete report.

It checks the report's structure and the figures' sanity (every section present, events all
sent, no event_id received twice), never timings: those are the benchmark's business.  On
SQLite by default; in the PostgreSQL leg of the suite (``DATABASE_URL=postgres://…``) on that
server, in databases of its own (``pcapi_bench_*``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SECTIONS = {
    "2 checkout overhead",
    "3 flush throughput",
    "4 scaling",
    "5 workers",
    "6 recording cost",
    "6 sandbox capacity",
}


def run_ok(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """``python <args>`` run from the project root; fails with its output unless it exits 0."""
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_run_writes_a_complete_report(tmp_path: Path) -> None:
    database_url = os.environ.get("DATABASE_URL", "")
    on_pg = database_url.startswith(("postgres://", "postgresql://"))
    vendor = "postgresql" if on_pg else "sqlite"
    env = os.environ.copy()
    env.pop("DJANGO_SETTINGS_MODULE", None)  # each child sets its own
    if on_pg:
        env["BENCH_POSTGRES_URL"] = database_url
    done = run_ok(
        ["-m", "bench.run", "--quick", "--databases", vendor, "--out", str(tmp_path)], env, 230
    )

    [md] = tmp_path.glob("*-quick.md")
    [js] = tmp_path.glob("*-quick.json")
    assert str(md) in done.stdout  # the path is printed
    report = json.loads(js.read_text())
    assert report["quick"] is True
    assert report["wall_seconds"] > 0
    rows = report["rows"]
    assert {r["section"] for r in rows} == SECTIONS
    assert {r["database"] for r in rows} <= {"-", "SQLite", "PostgreSQL"}
    label = "PostgreSQL" if on_pg else "SQLite"
    assert any(r["database"] == label for r in rows)

    def rows_of(section: str) -> list[dict]:
        return [r for r in rows if r["section"] == section]

    checkout = rows_of("2 checkout overhead")
    assert [r["database"] for r in checkout] == [label, label]
    # the connection kept from request to request, then one per request (as the demo serves)
    assert [r["data"]["connection_per_request"] for r in checkout] == [False, True]
    for row in checkout:
        assert row["data"]["median_ms_recording"] > 0
        assert row["data"]["median_ms_disabled"] > 0
        assert row["target"] == "≤ 1.10×"

    flush = rows_of("3 flush throughput")
    names = " / ".join(r["measurement"] for r in flush)
    assert "naive sender" in names and "SDK" in names and "flush vs naive" in names
    backlog = next(r for r in flush if r["database"] == label and r["data"].get("events"))
    assert backlog["data"]["sent"] == backlog["data"]["events"]
    assert backlog["data"]["ledger"]["duplicated_ids"] == 0
    assert backlog["data"]["ledger"]["distinct"] == backlog["data"]["events"]

    scaling = [r for r in rows_of("4 scaling") if r["data"]]
    assert [r["data"]["events"] for r in scaling] == [500, 1000, 2000]
    assert all(r["data"]["max_rss_mb"] > 0 and not r["data"]["cut"] for r in scaling)
    assert {r["target"] for r in rows_of("4 scaling") if r["target"]} == {"≤ 1.25×", "≤ 1.2×"}

    workers = rows_of("5 workers")
    assert [r["data"]["workers"] for r in workers] == [1, 2]
    for r in workers:  # correctness, not speed: several flushers never send an event twice
        assert r["data"]["ledger"]["duplicated_ids"] == 0
        assert r["data"]["sent"] == r["data"]["events"]
        assert r["verdict"] == "PASS"

    assert rows_of("6 recording cost")[0]["data"]["events"] == 100
    assert any(r["data"].get("capacity_events_per_s") for r in rows_of("6 sandbox capacity"))
    # Targets are stated but not judged on the smoke run's tiny sizes.
    judged = [r for r in rows if r["target"] and r["section"] != "5 workers"]
    assert judged and all(r["verdict"] == "n/a (quick)" for r in judged)

    text = md.read_text()
    assert "| section | measurement | database | value | ratio | target | result |" in text
    assert text.count("\n| ") == len(rows) + 1


@pytest.mark.timeout(120)
def test_checkout_profile_runs_its_three_modes_and_checks_what_they_recorded(
    tmp_path: Path,
) -> None:
    """``bench/checkout_profile.py`` (the optimiser's tool), a few checkouts, on SQLite."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'profile.sqlite3'}"
    env["SHOP_DEMO_VAR_DIR"] = str(tmp_path)
    done = run_ok(["bench/checkout_profile.py", "--iterations", "4", "--warmup", "1"], env, 110)
    lines = done.stdout.splitlines()
    assert lines[0] == "checkout profile: sqlite, 4 checkouts per mode"
    for mode in ("disabled", "recording", "insert only"):
        [row] = [line for line in lines if line.strip().startswith(f"{mode} ")]
        assert "x of disabled" in row
    assert "recording: its insert statement" in done.stdout
