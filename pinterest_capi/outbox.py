"""Write side of the outbox: record events, requeue (resend) them, purge old ones.

Recording runs inside the caller's transaction: if the shop's transaction
rolls back, nothing was recorded and nothing will be sent.  The flush is only
nudged once the transaction commits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.db.models.constants import OnConflict
from django.db.models.functions import Now

from .models import AdAccount, EventStatus, OutboxEvent

logger = logging.getLogger(__name__)


def encode_payload(event: Mapping[str, Any]) -> str:
    """The event as compact JSON text, exactly as it will go on the wire."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def new_row(
    event: Mapping[str, Any], account: AdAccount, *, payload: str | None = None
) -> OutboxEvent:
    """An unsaved outbox row for ``event`` (an API event dict) and one account."""
    return OutboxEvent(
        account=account,
        event_id=event["event_id"],
        event_name=event["event_name"],
        event_time=event["event_time"],
        order_id=str((event.get("custom_data") or {}).get("order_id") or ""),
        payload=payload if payload is not None else encode_payload(event),
    )


def record(
    event: Mapping[str, Any], *, accounts: Iterable[AdAccount], using: str | None = None
) -> list[OutboxEvent]:
    """Insert ``event`` once per account; an event already recorded is not written again.

    Returns the rows (new or existing) for those accounts.  Must be called in
    the shop's transaction (it is atomic on its own otherwise).
    """
    accounts = list(accounts)
    if not accounts:
        return []
    payload = encode_payload(event)
    rows = [new_row(event, account, payload=payload) for account in accounts]
    db = using or OutboxEvent.objects.db
    with transaction.atomic(using=db):
        OutboxEvent.objects.using(db).bulk_create(rows, ignore_conflicts=True)
        transaction.on_commit(_nudge, using=db)
    return list(
        OutboxEvent.objects.using(db).filter(
            account__in=accounts, event_name=event["event_name"], event_id=event["event_id"]
        )
    )


def _nudge() -> None:
    from . import tasks

    tasks.nudge_flush()


def requeue(events: QuerySet[OutboxEvent]) -> int:
    """Put failed events back in the queue, due now, with a fresh attempt budget.

    The event_id does not change, so Pinterest deduplicates a resend of an
    event it had in fact recorded.  Only ``failed`` rows are touched; the count
    of requeued rows is returned.
    """
    count = events.filter(status=EventStatus.FAILED).update(
        status=EventStatus.PENDING,
        attempts=0,
        next_attempt_at=Now(),
        lease_owner="",
        lease_expires_at=None,
    )
    if count:
        transaction.on_commit(_nudge)
    return count


def _pk_batches(rows: QuerySet[OutboxEvent], batch_size: int) -> Iterator[list[int]]:
    """Primary keys of ``rows`` in ascending batches of at most ``batch_size``.

    Each batch is read after the previous one was handled, from above the last
    key seen: one long UPDATE/DELETE would hold its locks (and the flusher's
    claim) for the whole statement; short ones let the worker go on.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    ordered = rows.order_by("pk")
    cursor = 0  # primary keys are positive
    while ids := list(ordered.filter(pk__gt=cursor).values_list("pk", flat=True)[:batch_size]):
        yield ids
        cursor = ids[-1]


def requeue_matching(
    events: QuerySet[OutboxEvent],
    *,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """:func:`requeue` every failed event of ``events``, however many, in short batches.

    Each batch re-applies the full filter, so a row that changed meanwhile is
    left alone; batches move upwards by primary key, so rows requeued and failed
    again while this runs are not requeued twice.  ``progress`` is called with
    the running total after each batch.  Returns the number of rows requeued.
    """
    failed = events.filter(status=EventStatus.FAILED)
    total = 0
    for ids in _pk_batches(failed, batch_size):
        total += requeue(failed.filter(pk__in=ids))
        if progress is not None:
            progress(total)
    return total


def purge_sent(
    older_than_days: int,
    *,
    batch_size: int = 5000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete ``sent`` rows older than the window in batches; other states are kept.

    ``on_batch`` (optional) gets the number of rows each batch deleted, for a progress bar.
    """
    cutoff = Now() - timedelta(days=older_than_days)
    old_sent = OutboxEvent.objects.filter(Q(status=EventStatus.SENT), Q(sent_at__lt=cutoff))
    total = 0
    for ids in _pk_batches(old_sent, batch_size):
        old_sent.filter(pk__in=ids).delete()
        total += len(ids)
        if on_batch is not None:
            on_batch(len(ids))
    return total


def make_due_matching(
    events: QuerySet[OutboxEvent],
    *,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Make every ``pending`` event of ``events`` due now, in primary-key batches.

    For an operator who knows the cause of a retry backoff is gone (an outage ended): the
    rows keep their attempt count (unlike :func:`requeue`, which gives failed rows a fresh
    budget), only the wait is skipped.  ``progress`` gets the running total.
    """
    waiting = events.filter(status=EventStatus.PENDING)
    total = 0
    for ids in _pk_batches(waiting, batch_size):
        total += waiting.filter(pk__in=ids).update(next_attempt_at=Now())
        if progress is not None:
            progress(total)
    if total:
        transaction.on_commit(_nudge)
    return total


def record_many(
    events: Sequence[Mapping[str, Any]],
    *,
    accounts: Iterable[AdAccount],
    using: str | None = None,
) -> int:
    """Bulk :func:`record` for imports: every event once per account, in one transaction.

    Idempotent like ``record``: an event already in the outbox (same account, event_name and
    event_id) is skipped by the unique constraint, so re-running an import writes nothing
    twice.  Returns the number of rows newly written (counted before and after: an insert
    that ignores conflicts cannot say portably which rows it skipped).

    The rows are built by :func:`new_row` and inserted with one ``executemany`` of the
    backend's own "insert, ignore conflicts" statement: ``bulk_create`` spends most of its
    time compiling SQL per row (and, on SQLite, per 58 rows), which made a 100,000-row
    backfill several times slower than the database work itself.
    """
    accounts = list(accounts)
    if not accounts or not events:
        return 0
    db = using or OutboxEvent.objects.db
    connection = connections[db]
    meta = OutboxEvent._meta
    # Columns with a database default (created_at, next_attempt_at: the DB clock) are left out.
    fields = [f for f in meta.concrete_fields if not f.primary_key and not f.has_db_default()]
    params = [
        [field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields]
        for row in (new_row(event, account) for event in events for account in accounts)
    ]
    qn = connection.ops.quote_name
    sql = "{insert} {table} ({columns}) VALUES ({values}) {suffix}".format(
        insert=connection.ops.insert_statement(on_conflict=OnConflict.IGNORE),
        table=qn(meta.db_table),
        columns=", ".join(qn(f.column) for f in fields),
        values=", ".join(["%s"] * len(fields)),
        suffix=connection.ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None) or "",
    )
    same_keys = OutboxEvent.objects.using(db).filter(
        account__in=accounts, event_id__in={event["event_id"] for event in events}
    )
    with transaction.atomic(using=db):
        before = same_keys.count()
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
        written = same_keys.count() - before
        if written:
            transaction.on_commit(_nudge, using=db)
    return written
