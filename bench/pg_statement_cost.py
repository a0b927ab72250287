"""PostgreSQL's CPU time per event for each statement of the flush's bookkeeping.

Run (PostgreSQL on this machine, an empty database made for it):

    createdb -h 127.0.0.1 -U postgres pcapi_cost
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pcapi_cost \\
        .venv/bin/python bench/pg_statement_cost.py --events 100000

It seeds a backlog (``bench.tasks.seed``), then drains it on one connection the way a flush
lane does, without HTTP: claim a batch (lease + queue hold), record an attempt with every event
processed, finish the rows as sent (+ queue delete).  Around every statement it reads the CPU
time of the connection's PostgreSQL backend process (``/proc/<pid>/stat``, so the server must
run on this machine) and prints the totals per statement kind, per event.  One connection and
no other work: the figures hold still from run to run where the full flush's do not (two lanes,
the sandbox and the flusher share the cores), so a change to one statement shows as such.
The kernel counts CPU time in ticks (10 ms): use a backlog of 100,000 or more.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import script_defaults  # noqa: E402  (after the path)

script_defaults(DJANGO_DEBUG="0")  # no flush nudges: this tool drains the backlog itself


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="rows per claim")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from bench.common import cpu_seconds
    from bench.tasks import bench_account, seed
    from pinterest_capi.delivery.bookkeeping import Bookkeeper
    from pinterest_capi.delivery.claim import claim
    from pinterest_capi.delivery.summary import FlushSummary
    from pinterest_capi.models import AttemptOutcome, EventStatus

    if connection.vendor != "postgresql":
        raise SystemExit("pg_statement_cost: DATABASE_URL must name a PostgreSQL database")
    call_command("migrate", verbosity=0)
    seed(args.events)
    account = bench_account()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()

    by_statement: dict[str, float] = {}
    phase = ["claim"]  # which step sent the statement: the claim and the finish both update rows

    def measure(execute, sql, params, many, context):
        started = cpu_seconds(pid)
        try:
            return execute(sql, params, many, context)
        finally:
            kind = f"{phase[0]}: " + " ".join(sql.split()[:4])[:80]
            by_statement[kind] = by_statement.get(kind, 0.0) + cpu_seconds(pid) - started

    drained = 0
    total_started = cpu_seconds(pid)
    with connection.execute_wrapper(measure):
        while True:
            phase[0] = "claim"
            owner, rows = claim(args.batch)
            phase[0] = "results"
            if not rows:
                break
            drained += len(rows)
            books = Bookkeeper(connection.alias, owner, FlushSummary())
            with books.results(account):
                books.record_attempt(
                    account,
                    rows,
                    None,
                    timezone.now(),
                    AttemptOutcome.SUCCESS,
                    per_event=[(row, "processed", "") for row in rows],
                )
                books.finish(rows, EventStatus.SENT)
    total = cpu_seconds(pid) - total_started
    per_event = {
        kind: round(seconds / max(drained, 1) * 1e6, 1)
        for kind, seconds in sorted(by_statement.items(), key=lambda item: -item[1])
    }
    for kind, micros in per_event.items():
        print(f"{micros:7.1f} µs/event  {kind}")
    print(f"{total / max(drained, 1) * 1e6:7.1f} µs/event  in all (commits included)")
    print(json.dumps({"events": drained, "us_per_event": per_event}))


if __name__ == "__main__":
    main()
