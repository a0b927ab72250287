"""Flush profile: where one in-process flush of a backlog spends its time, against the sandbox.

Run:  .venv/bin/python bench/flush_profile.py --events 10000 [--profile 25] [--sql]
      DATABASE_URL=postgres://postgres@127.0.0.1/test .venv/bin/python bench/flush_profile.py

The suite's figures come from ``make bench`` (bench/run.py); this is the optimiser's tool.

It records N events (the app's own event builder, one ad account), starts the sandbox as a
separate process, and times ``delivery.flush(until_empty=True)``: claimed, sent and results
applied. In the same run it measures the sandbox's own capacity — the same batches posted
straight from httpx — and prints the ratio, so a slow sandbox cannot pass for a slow flusher.
Uses tenant "bench" only (its rows are deleted first); on SQLite the default database is
var/bench.sqlite3, never the demo's.

Where the time goes:  --profile N  prints cProfile's top N functions of the flush (by own
time and by cumulative time); --sql  prints the flush's SQL statements grouped by their first
words with count and total seconds (measured in this process: the statement's round trip).
--perf FILE  records every process on the machine with Linux perf during the flush (where
PostgreSQL's own CPU goes).  These add overhead, so their run's events/s is not the figure to
quote.  Every run also prints the CPU time per event the flusher, the sandbox and PostgreSQL
(all its processes, so run it on a quiet machine) spent during the flush, and how many cores
they kept busy together.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import (  # noqa: E402  (after the path)
    cpu_seconds,
    free_port,
    script_defaults,
    wait_for_port,
)

# No flush nudges from recording: the benchmark times its own flush.
script_defaults(DATABASE_URL=f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}")

ACCOUNT_ID = "549755885199"
TOKEN = "bench-token"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--profile", type=int, metavar="N", help="print cProfile's top N")
    parser.add_argument("--sql", action="store_true", help="print SQL time by statement kind")
    parser.add_argument(
        "--perf",
        metavar="FILE",
        help="record the whole machine with Linux perf (perf record -a -g) during the flush",
    )
    args = parser.parse_args()

    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v5"
    os.environ["PINTEREST_CAPI_API_BASE_URL"] = base_url
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "pinterest_capi_sandbox",
            "--port",
            str(port),
            "--account",
            f"{ACCOUNT_ID}:{TOKEN}",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        figures = run(
            args.events,
            base_url,
            profile=args.profile,
            sql=args.sql,
            sandbox_pid=sandbox.pid,
            perf=args.perf,
        )
    finally:
        sandbox.terminate()
        sandbox.wait(10)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


class SqlTimes:
    """``execute_wrapper`` that sums each statement kind's round-trip time."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = " ".join(sql.split()[:6])[:90]
            entry = self.times.setdefault(key, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    def report(self) -> None:
        total = sum(t for _, t in self.times.values())
        print(f"SQL total {total:.3f} s")
        for key, (count, seconds) in sorted(self.times.items(), key=lambda kv: -kv[1][1])[:15]:
            print(f"  {seconds:8.3f} s {count:6d}x  {key}")


def _postgres_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() in ("postgres", "postmaster"):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def _start_perf(path: str) -> subprocess.Popen[bytes]:
    """``perf record -a -g`` of every process (the flusher, the sandbox, PostgreSQL's backends).

    Read it with ``perf report -i FILE --sort comm,dso,sym --no-children``.
    """
    recorder = subprocess.Popen(
        ["perf", "record", "-a", "-g", "-o", path, "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # let it attach before the flush starts
    return recorder


def cpu_snapshot(sandbox_pid: int) -> dict[str, float]:
    """CPU seconds so far of this process, the sandbox, and every PostgreSQL process.

    Taken before and after the flush, the differences say where the machine's cores went:
    on a small machine the three share them, so the flush is bound by their sum.
    """
    return {
        "flusher": cpu_seconds(os.getpid()),
        "sandbox": cpu_seconds(sandbox_pid),
        "postgresql": sum(cpu_seconds(pid, children=True) for pid in _postgres_pids()),
    }


def run(
    n: int,
    base_url: str,
    *,
    profile: int | None = None,
    sql: bool = False,
    sandbox_pid: int | None = None,
    perf: str | None = None,
) -> dict:
    import django

    django.setup()
    import httpx
    from django.core.management import call_command
    from django.db import connection

    from pinterest_capi import client, delivery, events
    from pinterest_capi.models import AdAccount, EventStatus, OutboxEvent
    from pinterest_capi.outbox import encode_payload, record_many

    call_command("migrate", verbosity=0)
    AdAccount.objects.filter(tenant="bench").delete()
    account = AdAccount(tenant="bench", ad_account_id=ACCOUNT_ID, name="bench")
    account.set_token(TOKEN)
    account.save()

    started = time.monotonic()
    payloads = []
    built = []
    run_id = int(time.time())
    for i in range(n):
        event = events.build_event(
            "checkout",
            user_data={
                "em": f"buyer{i}@example.com",
                "client_ip_address": "203.0.113.9",
                "client_user_agent": "Mozilla/5.0 bench",
            },
            custom_data={
                "currency": "GBP",
                "value": "19.99",
                "order_id": f"B{run_id}-{i}",
                "contents": [{"id": "SKU-1", "item_price": "19.99", "quantity": 1}],
                "num_items": 1,
            },
            event_id=f"checkout-B{run_id}-{i}",
        )
        payloads.append(encode_payload(event))
        built.append(event)
    for i in range(0, n, 10_000):
        record_many(built[i : i + 10_000], accounts=[account])
    record_s = time.monotonic() - started

    # The sandbox's own capacity: the same batches posted straight from one httpx client.
    url = f"{base_url}/ad_accounts/{ACCOUNT_ID}/events"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(timeout=30) as http:
        started = time.monotonic()
        for i in range(0, n, 1000):
            body = b'{"data":[' + ",".join(payloads[i : i + 1000]).encode() + b"]}"
            http.post(url + "?test=true", content=body, headers=headers).raise_for_status()
        sandbox_s = time.monotonic() - started

    client.close_clients()
    profiler = sql_times = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    if sql:
        sql_times = SqlTimes()
        connection.execute_wrappers.append(sql_times)
    recorder = _start_perf(perf) if perf else None
    cpu_before = cpu_snapshot(sandbox_pid) if sandbox_pid else {}
    started = time.monotonic()
    if profiler is not None:
        profiler.enable()
    summary = delivery.flush(until_empty=True)
    if profiler is not None:
        profiler.disable()
    flush_s = time.monotonic() - started
    if recorder is not None:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)
    cpu = {
        f"cpu_{name}_us_per_event": round((spent - cpu_before[name]) / max(n, 1) * 1e6)
        for name, spent in (cpu_snapshot(sandbox_pid) if sandbox_pid else {}).items()
    }
    if cpu:
        cpu["cpu_cores_busy_during_flush"] = round(sum(cpu.values()) * max(n, 1) / 1e6 / flush_s, 2)
    if sql_times is not None:
        connection.execute_wrappers.remove(sql_times)
        sql_times.report()
    if profiler is not None:
        import pstats

        for order in ("tottime", "cumulative"):
            pstats.Stats(profiler).sort_stats(order).print_stats(profile)
    sent = OutboxEvent.objects.filter(account=account, status=EventStatus.SENT).count()
    return {
        "database": connection.vendor,
        "events": n,
        "sent": sent,
        "requests": summary.requests,
        "flush_seconds": round(flush_s, 3),
        "flush_events_per_s": round(sent / flush_s),
        "sandbox_only_events_per_s": round(n / sandbox_s),
        "flush_share_of_sandbox_capacity": round((sent / flush_s) / (n / sandbox_s), 3),
        "record_events_per_s (build_event + outbox.record_many)": round(n / record_s),
        **cpu,
        "cores": os.cpu_count(),
    }


if __name__ == "__main__":
    main()
