"""Admin changelist at scale: the outbox event list with 1,000,000 events on PostgreSQL.

Run:  .venv/bin/python bench/admin_changelist.py                 # 1M rows, ~2-4 minutes
      .venv/bin/python bench/admin_changelist.py --reuse         # keep the rows of a last run
      .venv/bin/python bench/admin_changelist.py --rows 200000 --repeat 5

It works in its own database (``--db``, default ``pcapi_bench_admin`` on
``--pg postgres://postgres@127.0.0.1:5432``; created if missing, no other
database is touched), runs ``migrate``, and fills the outbox with one
``INSERT … SELECT generate_series`` (4 ad accounts of 2 tenants; 85% sent, 10%
failed, 5% pending; four event names), then ``VACUUM ANALYZE``.

It then requests the event changelist with Django's test client, logged in as
a superuser, in-process (server time: URL routing, queries, template), for
each view: the default list, ``?status__exact=failed``, ``?status__exact=sent``,
``?event_name=signup``, one account, a search by event id, and page 50.  Each
view is requested ``--repeat`` times with the app's paginator (capped count /
planner estimate) and, alternately in the same run, with Django's default
``Paginator`` forced on the same admin; it prints the median milliseconds,
the number of SQL queries, the count shown, and the ratio.  Finally it times
``outbox.requeue_matching`` over the 100,000 failed rows (the background
resend's work) and sets them back to failed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database, script_defaults  # noqa: E402  (after the path: run as a script too)

FILL_SQL = """
INSERT INTO pinterest_capi_outboxevent (
    account_id, event_id, event_name, event_time, order_id, payload, status, attempts,
    next_attempt_at, lease_owner, lease_expires_at, last_error, warning,
    created_at, sent_at, updated_at
)
SELECT
    (%(accounts)s::bigint[])[1 + i %% 4],
    'ev-' || i,
    (ARRAY['checkout', 'add_to_cart', 'page_visit', 'signup'])[1 + (i / 7) %% 4],
    1700000000 + i,
    'B' || i,
    '{"event_name":"checkout","action_source":"web","event_time":' || (1700000000 + i)
        || ',"event_id":"ev-' || i || '","user_data":{"em":["' || md5(i::text) || md5(i::text)
        || '"]},"custom_data":{"currency":"GBP","value":"19.99","order_id":"B' || i || '"}}',
    CASE WHEN i %% 20 < 2 THEN 'failed' WHEN i %% 20 = 2 THEN 'pending' ELSE 'sent' END,
    CASE WHEN i %% 20 < 2 THEN 8 WHEN i %% 20 = 2 THEN 0 ELSE 1 END,
    t,
    '',
    NULL,
    CASE WHEN i %% 20 < 2 THEN 'HTTP 400: Invalid event_timestamp' ELSE '' END,
    CASE WHEN i %% 50 = 3 THEN 'missing client_user_agent' ELSE '' END,
    t,
    CASE WHEN i %% 20 > 2 THEN t + interval '5 seconds' END,
    t
FROM generate_series(1, %(rows)s) AS i,
     LATERAL (SELECT now() - interval '90 days' + (interval '90 days' * i / %(rows)s)) AS g(t)
"""


def fill(rows: int, reuse: bool) -> tuple[float, list[int]]:
    """Accounts and ``rows`` events (unless --reuse finds them there); returns (seconds, pks)."""
    from django.db import connection

    from pinterest_capi.models import AdAccount, OutboxEvent

    accounts = []
    for n, (tenant, account_id) in enumerate(
        [("bench-a", "900001"), ("bench-a", "900002"), ("bench-b", "900003"), ("bench-b", "900004")]
    ):
        account = AdAccount.objects.filter(tenant=tenant, ad_account_id=account_id).first()
        if account is None:
            account = AdAccount(tenant=tenant, ad_account_id=account_id, name=f"Bench {n}")
            account.set_token(f"bench-token-{n}")
            account.save()
        accounts.append(account.pk)
    if reuse and OutboxEvent.objects.count() == rows:
        return 0.0, accounts
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE pinterest_capi_outboxevent, pinterest_capi_attemptevent RESTART IDENTITY"
        )
        cursor.execute(FILL_SQL, {"accounts": accounts, "rows": rows})
    with connection.cursor() as cursor:  # autocommit: VACUUM cannot run in a transaction
        cursor.execute("VACUUM ANALYZE pinterest_capi_outboxevent")
    return time.monotonic() - started, accounts


def measure(client, path: str, repeat: int) -> tuple[float, int, float, str]:
    """(median ms over ``repeat`` requests, SQL queries of one request and their total ms,
    the count shown)."""
    from django.db import connection

    durations: list[float] = []

    def timed(execute, sql, params, many, context):  # a precise clock per query
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            durations.append((time.perf_counter() - started) * 1000)

    with connection.execute_wrapper(timed):
        response = client.get(path)
    queries, db_ms = len(durations), sum(durations)
    if response.status_code != 200:
        raise SystemExit(f"{path}: HTTP {response.status_code}")
    cl = response.context_data["cl"]
    shown = getattr(cl.paginator, "count_display", None) or f"{cl.result_count:,}"
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), queries, db_ms, shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7, help="timed requests per view and mode")
    parser.add_argument("--db", default="pcapi_bench_admin")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--reuse", action="store_true", help="keep the rows if the count matches")
    args = parser.parse_args()

    ensure_database(args.pg, args.db)
    os.environ["DATABASE_URL"] = f"{args.pg}/{args.db}"
    script_defaults(DJANGO_DEBUG="0")  # no flush nudges from the requeue timing: no worker here

    import django

    django.setup()
    from django.contrib.admin.sites import site
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.core.paginator import Paginator
    from django.test import Client
    from django.urls import reverse

    from pinterest_capi import outbox
    from pinterest_capi.models import EventStatus, OutboxEvent

    call_command("migrate", verbosity=0)
    fill_s, accounts = fill(args.rows, args.reuse)
    print(f"rows: {args.rows:,}  fill: {fill_s:.1f} s{' (reused)' if not fill_s else ''}")

    user = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", password="bench-admin"
    )
    client = Client()
    client.force_login(user)
    base = reverse("admin:pinterest_capi_outboxevent_changelist")
    probe = max(1, args.rows // 2)
    views = [
        ("default", ""),
        ("status=failed", "?status__exact=failed"),
        ("status=sent", "?status__exact=sent"),
        ("event_name=signup", "?event_name=signup"),
        ("one account", f"?account__id__exact={accounts[1]}"),
        ("search event_id", f"?q=ev-{probe}"),
        ("page 50", "?p=50"),
    ]
    model_admin = site._registry[OutboxEvent]
    ours = model_admin.paginator
    header = (
        f"{'view':<18} | {'ours ms':>7} {'db ms':>6} {'q':>2} {'shown':<17}"
        f"| {'django ms':>9} {'db ms':>6} {'q':>2} {'shown':<10}| {'ratio':>5}"
    )
    print(header)
    print("-" * len(header))
    for label, query in views:
        results = {}
        # Both paginators on the same view one after the other, on the same warm cache.
        for name, paginator in (("ours", ours), ("django", Paginator)):
            model_admin.paginator = paginator
            results[name] = measure(client, base + query, args.repeat)
        model_admin.paginator = ours
        ours_ms, ours_q, ours_db, ours_shown = results["ours"]
        dj_ms, dj_q, dj_db, dj_shown = results["django"]
        print(
            f"{label:<18} | {ours_ms:>7.1f} {ours_db:>6.1f} {ours_q:>2} {ours_shown:<17}"
            f"| {dj_ms:>9.1f} {dj_db:>6.1f} {dj_q:>2} {dj_shown:<10}| {dj_ms / ours_ms:>4.1f}x"
        )
    print(
        "ms: median server time of the request (test client, in-process); db ms: the SQL time of "
        "one request; q: its SQL queries"
    )

    failed = OutboxEvent.objects.filter(status=EventStatus.FAILED)
    batches = []
    started = time.monotonic()
    requeued = outbox.requeue_matching(OutboxEvent.objects.all(), progress=batches.append)
    requeue_s = time.monotonic() - started
    print(
        f"requeue_matching (all failed, 5,000 a batch): {requeued:,} rows in {requeue_s:.1f} s "
        f"({len(batches)} batches)"
    )
    restored = OutboxEvent.objects.filter(pk__in=_failed_ids_sql()).update(
        status=EventStatus.FAILED, attempts=8
    )
    assert failed.count() == restored


def _failed_ids_sql():
    """The ids the fill made failed (id = i after RESTART IDENTITY), to undo the requeue."""
    from django.db.models import F, IntegerField
    from django.db.models.functions import Mod

    from pinterest_capi.models import OutboxEvent

    return (
        OutboxEvent.objects.annotate(r=Mod(F("id"), 20, output_field=IntegerField()))
        .filter(r__lt=2)
        .values("pk")
    )


if __name__ == "__main__":
    main()
