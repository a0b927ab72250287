"""A worker process that runs the app's sweep task in a loop, the way a django-q2 worker does.

``python -m tests.reliability.worker --deadline 60 [--expect N] [--idle-exit S]``

Each round closes unusable/old connections first (django-q2's worker does the same before
every task), then calls :func:`pinterest_capi.tasks.sweep_task`, which flushes until nothing
is due and turns a database error into a summary ("try next cycle").  The loop ends when no
row is pending or in flight (and at least ``--expect`` rows are sent or failed), or at the
deadline.  The last line of stdout is a JSON summary of everything this process did.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from tests.reliability import clockskew

SKEW = clockskew.install_from_env()  # before Django is imported


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--expect", type=int, default=0, help="rows sent/failed before done")
    parser.add_argument("--pause", type=float, default=0.1, help="sleep after an idle round")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import DatabaseError, close_old_connections, connection
    from django.db.utils import InterfaceError

    from pinterest_capi import tasks
    from pinterest_capi.models import EventStatus, OutboxEvent

    totals: dict[str, object] = {
        "rounds": 0,
        "claimed": 0,
        "sent": 0,
        "failed": 0,
        "retrying": 0,
        "released": 0,
        "requests": 0,
        "task_errors": [],
        "loop_errors": [],
        "skew": SKEW,
    }
    from django.utils import timezone

    from tests.reliability.dbside import db_now

    now = db_now()  # the skew this process really runs with, against the database clock
    totals["clock_offset"] = {
        "time": round(time.time() - now, 2),
        "django": round(timezone.now().timestamp() - now, 2),
    }
    started = time.monotonic()
    done = False
    while time.monotonic() - started < args.deadline:
        close_old_connections()
        result = tasks.sweep_task()
        totals["rounds"] += 1
        for key in ("claimed", "sent", "failed", "retrying", "released", "requests"):
            totals[key] += int(result.get(key) or 0)
        if result.get("error"):
            totals["task_errors"].append(result["error"][:200])
        for error in result.get("errors") or []:
            totals["task_errors"].append(str(error)[:200])
        try:
            open_rows = OutboxEvent.objects.filter(
                status__in=[EventStatus.PENDING, EventStatus.IN_FLIGHT]
            ).count()
            finished = OutboxEvent.objects.filter(
                status__in=[EventStatus.SENT, EventStatus.FAILED]
            ).count()
        except (DatabaseError, InterfaceError) as exc:
            totals["loop_errors"].append(str(exc)[:200])
            connection.close()
            time.sleep(args.pause)
            continue
        if open_rows == 0 and finished >= args.expect:
            done = True
            break
        if not result.get("claimed"):
            time.sleep(args.pause)
    totals["done"] = done
    totals["seconds"] = round(time.monotonic() - started, 3)
    sys.stdout.write("\n" + json.dumps(totals) + "\n")


if __name__ == "__main__":
    main()
