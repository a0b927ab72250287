"""Run every benchmark side by side in one run and write the report (``make bench``).

    .venv/bin/python -m bench.run            # full run (under 15 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick    # smoke run: tiny sizes, same report structure

Sections (see the README, "Benchmarks"): checkout overhead, flush throughput against a naive
sender and Pinterest's SDK, scaling with the backlog, several workers, recording cost and the
sandbox's own capacity.  PostgreSQL comes from ``BENCH_POSTGRES_URL`` (default
``postgres://postgres@127.0.0.1:5432/test``; only the server part is used: each measurement
gets its own ``pcapi_bench_<name>_<pid>`` database); without it the PostgreSQL rows are skipped with
a notice.  The report goes to ``bench/results/<UTC timestamp>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.common import Databases, Sandbox, flush, postgres_available, run_task
from bench.report import Report, verdict


@dataclass(frozen=True)
class Sizes:
    checkout_iterations: int  # timed checkouts per mode
    checkout_block: int
    checkout_warmup: int
    track_events: int
    naive_events: int
    sdk_events: int
    capacity_events: int
    flush_events: int  # backlog of the throughput and workers sections
    scaling: tuple[int, ...]
    workers: tuple[int, ...]
    flush_limit: float  # seconds one flush may take before it is stopped and reported as cut
    ledger_limit: int  # read the sandbox's ledger (duplicates) up to this many events
    # One worker's flush of a backlog up to this size is measured this many times (each on a
    # fresh database) and the median run reported: a flush of 10,000 events lasts a third of a
    # second, and one such figure moved by a quarter from run to run on the shared machine.
    flush_repeats: int
    flush_repeat_up_to: int


FULL = Sizes(
    checkout_iterations=200,
    checkout_block=2,  # fine-grained: a burst of load on the shared machine hits both modes
    checkout_warmup=20,
    track_events=2000,
    naive_events=2000,
    sdk_events=10_000,
    capacity_events=100_000,
    flush_events=100_000,
    scaling=(10_000, 100_000, 1_000_000),
    workers=(1, 2, 4),
    flush_limit=90.0,
    ledger_limit=200_000,
    flush_repeats=3,
    flush_repeat_up_to=100_000,
)
QUICK = Sizes(
    checkout_iterations=10,
    checkout_block=2,
    checkout_warmup=3,
    track_events=100,
    naive_events=50,
    sdk_events=1000,
    capacity_events=4000,
    flush_events=2000,
    scaling=(500, 1000, 2000),
    workers=(1, 2),
    flush_limit=60.0,
    ledger_limit=200_000,
    flush_repeats=1,
    flush_repeat_up_to=0,
)

PG, SQLITE = "postgresql", "sqlite"
LABEL = {PG: "PostgreSQL", SQLITE: "SQLite"}


class Bench:
    """One run: the sandbox, the databases, the report, and each section as a method."""

    def __init__(self, sizes: Sizes, vendors: list[str], report: Report, sandbox: Sandbox):
        self.sizes = sizes
        self.vendors = vendors
        self.report = report
        self.sandbox = sandbox
        self.dbs = Databases(sandbox.base_url)
        self.quick = report.quick
        self.flushes: dict[tuple[str, int, int], dict[str, Any]] = {}
        self.senders: dict[str, Any] = {}

    # -- helpers ----------------------------------------------------------------------------

    def measure_flush(self, vendor: str, events: int, workers: int = 1) -> dict[str, Any]:
        """Seed ``events`` on a fresh database, flush with ``workers`` processes; memoised.

        One worker on a backlog of up to ``flush_repeat_up_to`` events: ``flush_repeats`` such
        measurements, and the one with the median time per event is reported (all of them
        under ``runs``; the peak RSS is the largest of them all).
        """
        key = (vendor, events, workers)
        if key in self.flushes:
            return self.flushes[key]
        s = self.sizes
        repeats = s.flush_repeats if workers == 1 and events <= s.flush_repeat_up_to else 1
        runs = [self._one_flush(vendor, events, workers) for _ in range(repeats)]
        result = sorted(runs, key=lambda r: r["us_per_event"])[len(runs) // 2]
        if repeats > 1:
            result = {
                **result,
                "max_rss_mb": max(r["max_rss_mb"] for r in runs),
                "runs": [
                    {k: r[k] for k in ("wall_seconds", "command_seconds", "us_per_event")}
                    for r in runs
                ],
            }
        self.flushes[key] = result
        return result

    def _one_flush(self, vendor: str, events: int, workers: int) -> dict[str, Any]:
        s = self.sizes
        with self.dbs.fresh(vendor, f"flush_{events}_{workers}") as db:
            seeded = run_task(db, "seed", events=events)
            self.sandbox.reset()
            runs = flush(db, workers=workers, limit=s.flush_limit)
            counts = run_task(db, "status_counts")
        wall = max(r.seconds for r in runs)
        sent = counts.get("sent", 0)
        own = [r.summary.get("seconds") for r in runs if r.summary]
        result: dict[str, Any] = {
            "events": events,
            "workers": workers,
            "seed_seconds": round(seeded["seconds"], 2),
            "wall_seconds": round(wall, 3),
            "command_seconds": round(max(own), 3) if len(own) == len(runs) else None,
            "sent": sent,
            "statuses": counts,
            "cut": any(r.cut for r in runs),
            "max_rss_mb": round(max(r.max_rss_kb for r in runs) / 1024, 1),
            "requests": sum(r.summary.get("requests", 0) for r in runs),
        }
        result["events_per_s"] = sent / wall if wall else 0.0
        work = result["command_seconds"] if not result["cut"] else None
        result["us_per_event"] = (work or wall) / max(sent, 1) * 1e6
        if events <= s.ledger_limit:
            result["ledger"] = self.sandbox.ledger_counts()
        self.sandbox.reset()
        if result["cut"]:
            self.report.notice(
                f"{LABEL[vendor]} flush of {events:,} events with {workers} worker(s) stopped at "
                f"the {s.flush_limit:.0f}-s limit after {sent:,} sent: its rate is that of the "
                "part sent"
            )
        elif sent != events:
            self.report.notice(f"{LABEL[vendor]} flush of {events:,}: only {sent:,} sent")
        return result

    def _median_note(self, f: dict[str, Any]) -> str:
        """ ", median of 3 flushes" when the figure is one of several runs."""
        return f", median of {len(f['runs'])} flushes" if "runs" in f else ""

    # -- sections ---------------------------------------------------------------------------

    def section_senders(self) -> None:
        """The naive sender, the SDK and the sandbox's capacity (no database work: once)."""
        s = self.sizes
        with self.dbs.fresh(SQLITE, "senders") as db:
            self.sandbox.reset()
            self.senders = run_task(
                db,
                "senders",
                events_url=self.sandbox.events_url,
                naive=s.naive_events,
                sdk=s.sdk_events,
                capacity=s.capacity_events,
            )
            self.sandbox.reset()

    def section_checkout(self) -> None:
        s = self.sizes
        for vendor in self.vendors:
            for per_request, connections in CHECKOUT_CONNECTIONS:
                with self.dbs.fresh(vendor, f"checkout_{vendor}") as db:
                    r = run_task(
                        db,
                        "checkout",
                        # the demo's own setting: recording nudges a django-q2 flush on commit
                        overrides={"NUDGE": "async"},
                        iterations=s.checkout_iterations,
                        block=s.checkout_block,
                        warmup=s.checkout_warmup,
                        connection_per_request=per_request,
                    )
                self.add_checkout(vendor, connections, r)

    def add_checkout(self, vendor: str, connections: str, r: dict[str, Any]) -> None:
        self.report.add(
            "2 checkout overhead",
            f"median checkout (POST /checkout/), {r['checkouts_per_mode']} per mode "
            f"interleaved, {connections}: recording vs disabled",
            LABEL[vendor],
            f"{r['median_ms_recording']:.2f} ms vs {r['median_ms_disabled']:.2f} ms",
            f"{r['ratio']:.3f}×",
            "≤ 1.10×",
            verdict(r["ratio"] <= 1.10, self.quick),
            data=r,
        )

    def section_flush(self) -> None:
        s, snd = self.sizes, self.senders
        naive, sdk = snd["naive_events_per_s"], snd["sdk_events_per_s"]
        self.report.add(
            "3 flush throughput",
            f"naive sender: one POST per event, new connection each ({snd['naive_events']:,} "
            "events, extrapolated)",
            "-",
            f"{naive:,.0f} ev/s",
            data={"events": snd["naive_events"], "events_per_s": naive},
        )
        self.report.add(
            "3 flush throughput",
            f"Pinterest's SDK (pinterest-api-sdk): its models, batches of 1,000 "
            f"({snd['sdk_events']:,} events)",
            "-",
            f"{sdk:,.0f} ev/s",
            data={"events": snd["sdk_events"], "events_per_s": sdk},
        )
        for vendor in self.vendors:
            f = self.measure_flush(vendor, s.flush_events)
            rate = f["events_per_s"]
            own = f["command_seconds"]
            own_rate = f" (command's own time: {f['sent'] / own:,.0f} ev/s)" if own else ""
            on_pg = vendor == PG
            self.report.add(
                "3 flush throughput",
                f"pinterest_capi_flush --until-empty, {s.flush_events:,}-event backlog, "
                f"1 worker, end to end (process wall time{self._median_note(f)})",
                LABEL[vendor],
                f"{rate:,.0f} ev/s{own_rate}",
                "",
                "≥ 20,000 ev/s" if on_pg else "",
                verdict(rate >= 20_000, self.quick) if on_pg else "",
                data=f,
            )
            self.report.add(
                "3 flush throughput",
                "flush vs naive sender",
                LABEL[vendor],
                "",
                f"{rate / naive:,.1f}×",
                "≥ 50×" if on_pg else "",
                verdict(rate / naive >= 50, self.quick) if on_pg else "",
            )
            self.report.add(
                "3 flush throughput",
                "flush vs Pinterest's SDK",
                LABEL[vendor],
                "",
                f"{rate / sdk:,.2f}×",
                "≥ 5×" if on_pg else "",
                verdict(rate / sdk >= 5, self.quick) if on_pg else "",
            )

    def _pg_or_quick_sqlite(self, what: str) -> str | None:
        if PG in self.vendors:
            return PG
        if self.quick:
            self.report.notice(f"{what}: no PostgreSQL in this run; the quick run uses SQLite")
            return SQLITE
        self.report.notice(f"{what}: SKIPPED (PostgreSQL only, and none in this run)")
        return None

    def section_scaling(self) -> None:
        vendor = self._pg_or_quick_sqlite("4 scaling")
        if vendor is None:
            return
        results = [self.measure_flush(vendor, n) for n in self.sizes.scaling]
        for f in results:
            self.report.add(
                "4 scaling",
                f"backlog of {f['events']:,}: time per event (command's own time"
                f"{self._median_note(f)}), peak RSS of the flush process",
                LABEL[vendor],
                f"{f['us_per_event']:.1f} µs/event, {f['max_rss_mb']:.0f} MB"
                + (" (cut)" if f["cut"] else ""),
                data=f,
            )
        per_event = [f["us_per_event"] for f in results]
        rss = [f["max_rss_mb"] for f in results]
        spread_t = max(per_event) / min(per_event)
        spread_m = max(rss) / min(rss)
        self.report.add(
            "4 scaling",
            "time per event, largest / smallest of the three backlogs",
            LABEL[vendor],
            "",
            f"{spread_t:.2f}×",
            "≤ 1.25×",
            verdict(spread_t <= 1.25, self.quick),
        )
        self.report.add(
            "4 scaling",
            "peak RSS, largest / smallest of the three backlogs",
            LABEL[vendor],
            "",
            f"{spread_m:.2f}×",
            "≤ 1.2×",
            verdict(spread_m <= 1.2, self.quick),
        )

    def section_workers(self) -> None:
        vendor = self._pg_or_quick_sqlite("5 workers")
        if vendor is None:
            return
        n = self.sizes.flush_events
        base = None
        for workers in self.sizes.workers:
            f = self.measure_flush(vendor, n, workers)
            ledger = f.get("ledger") or {}
            dups = ledger.get("duplicated_ids")
            base = base or f["events_per_s"]
            self.report.add(
                "5 workers",
                f"{workers} flush process(es) on one {n:,}-event backlog: throughput"
                f"{self._median_note(f)}; event_ids the sandbox received twice or more",
                LABEL[vendor],
                f"{f['events_per_s']:,.0f} ev/s; duplicates: {dups}",
                f"{f['events_per_s'] / base:.2f}× of 1 worker",
                "0 duplicates",
                verdict(dups == 0, False) if dups is not None else "unchecked",
                data=f,
            )

    def section_recording(self) -> None:
        s = self.sizes
        for vendor in self.vendors:
            with self.dbs.fresh(vendor, f"track_{vendor}") as db:
                r = run_task(db, "track_cost", overrides={"NUDGE": "async"}, events=s.track_events)
            self.report.add(
                "6 recording cost",
                f"track() per event, each in its own transaction ({r['events']:,} events)",
                LABEL[vendor],
                f"{r['events_per_s']:,.0f} ev/s, {r['us_per_event_median']:.0f} µs/event (median)",
                data=r,
            )
        cap = self.senders["capacity_events_per_s"]
        self.report.add(
            "6 sandbox capacity",
            f"pre-encoded 1,000-event batches over {self.senders['capacity_connections']} "
            f"connections ({self.senders['capacity_events']:,} events)",
            "-",
            f"{cap:,.0f} ev/s",
            data={k: v for k, v in self.senders.items() if k.startswith("capacity")},
        )
        for vendor in self.vendors:
            f = self.measure_flush(vendor, s.flush_events)
            ratio = f["events_per_s"] / cap
            self.report.add(
                "6 sandbox capacity",
                "flusher / sandbox capacity (near 1: the sandbox limits the measurement)",
                LABEL[vendor],
                "",
                f"{ratio:.2f}",
                "≤ 0.33 (sandbox ≥ 3× the flusher)",
                verdict(ratio <= 0.33, self.quick),
            )

    def close(self) -> None:
        self.dbs.close()


# The checkout's database connection: (one per request?, how the report names it).
CHECKOUT_CONNECTIONS = (
    (False, "connection kept (CONN_MAX_AGE > 0, or a pooler)"),
    (True, "a connection per request (the demo's CONN_MAX_AGE = 0, Django's default)"),
)

SECTIONS = ("checkout", "flush", "scaling", "workers", "recording")


def compile_bytecode() -> None:
    """Byte-compile the project's own modules before anything is timed.

    Each flush runs as a new process, and its wall time includes starting Python and Django.
    An installed package has its bytecode written at install time (pip compiles it), so a
    shop's worker never compiles the app's modules when it starts; a checkout run with
    ``PYTHONDONTWRITEBYTECODE`` set (as on some CI machines) never keeps the ``.pyc`` files
    and would compile all of them again in every flush process: 0.3-0.4 s of each start on
    the 2-core machine, more than 5% of a 100,000-event flush.  ``compileall`` writes them
    whatever that variable says.
    """
    import compileall

    root = Path(__file__).resolve().parent.parent
    for package in ("pinterest_capi", "shop_demo", "bench"):
        compileall.compile_dir(root / package, quiet=1)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default both)",
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}"
    )
    parser.add_argument("--out", type=Path, help="directory of the report (bench/results/)")
    parser.add_argument(
        "--flush-events", type=int, help="backlog of the flush and workers sections"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.flush_events:
        sizes = replace(sizes, flush_events=args.flush_events)

    compile_bytecode()
    # SIGTERM unwinds like Ctrl-C: the sandbox, the flushers and the databases are cleaned up.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    report = Report(quick=args.quick)
    started = time.monotonic()
    vendors = [v.strip() for v in args.databases.split(",") if v.strip()]
    if PG in vendors and (why := postgres_available()):
        vendors.remove(PG)
        report.notice(f"PostgreSQL rows SKIPPED: {why} (set BENCH_POSTGRES_URL)")
    only = {s.strip() for s in args.only.split(",")}
    with Sandbox() as sandbox:
        bench = Bench(sizes, vendors, report, sandbox)
        try:
            if only & {"flush", "recording"}:
                bench.section_senders()
            for name in SECTIONS:
                if name in only:
                    print(f"== {name}", flush=True)
                    getattr(bench, f"section_{name}")()
        finally:
            bench.close()
    report.wall_seconds = time.monotonic() - started
    md, js = report.write(args.out)
    print()
    print(report.markdown())
    print(f"report: {md}\n        {js}")
    return md


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
