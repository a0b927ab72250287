"""Claiming due rows under a lease computed by the database clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connections, router
from django.db.models import DateTimeField, ExpressionWrapper, QuerySet, Subquery
from django.db.models.functions import Now
from django.db.models.sql import UpdateQuery

from ..conf import app_settings
from ..models import AdAccount, EventStatus, OutboxEvent, QueuedEvent, claimable, lease_free
from .keys import pk_in
from .txn import bookkeeping


def db_now_plus(seconds: float) -> ExpressionWrapper:
    """``NOW() + seconds`` evaluated by the database, so host clocks never matter."""
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


@dataclass
class Claimed:
    """A row this worker holds a lease on, with what is needed to send it."""

    pk: int
    account_id: int
    payload: str
    attempts: int


def sendable_due_rows() -> QuerySet[OutboxEvent]:
    """Due rows of accounts that may send now (active, no auth problem, not paused)."""
    return OutboxEvent.objects.due().filter(account__in=AdAccount.objects.sendable())


def claim(limit: int, *, owner: str | None = None) -> tuple[str, list[Claimed]]:
    """Lease up to ``limit`` due rows to a new owner token; return (owner, rows) by pk.

    Rows are read from the queue (:class:`~pinterest_capi.models.QueuedEvent`) in its
    ``(next_attempt_at, event)`` order: pending rows that are due, and in-flight rows whose lease
    lapsed (a worker died), whose entries became due when the lease ended.  Where the backend
    has ``UPDATE … RETURNING`` (PostgreSQL, SQLite ≥ 3.35) one statement, ``UPDATE … WHERE pk =
    ANY(ARRAY(SELECT … ORDER BY … LIMIT n FOR UPDATE SKIP LOCKED)) RETURNING …`` (``pk IN
    (SELECT …)`` on SQLite), selects, leases and reads the outbox rows; a second moves their
    queue entries to the end of the lease, so no claim reads them again while it holds.  The
    sendable accounts are read first (a tiny table) so the statement reads the queue's index in
    order and stops after ``n`` rows.  The outbox update writes only columns no index reads (a
    HOT update on PostgreSQL).  The lease expiry is ``NOW() + LEASE_SECONDS`` on the DB clock.
    """
    owner = owner or uuid.uuid4().hex
    db = router.db_for_write(OutboxEvent)
    connection = connections[db]
    lease_values = {
        "status": EventStatus.IN_FLIGHT,
        "lease_owner": owner,
        "lease_expires_at": db_now_plus(float(app_settings.LEASE_SECONDS)),
    }
    with bookkeeping(db, claim=True):
        accounts = list(AdAccount.objects.using(db).sendable().values_list("pk", flat=True))
        if not accounts:
            return owner, []
        if connection.features.can_return_columns_from_insert:
            rows = _claim_returning(db, accounts, limit, lease_values)
        else:
            rows = _claim_two_steps(db, owner, limit, lease_values)
        _hold_in_queue(db, [row.pk for row in rows])
    rows.sort(key=lambda row: row.pk)
    return owner, rows


def _hold_in_queue(db: str, pks: list[int]) -> None:
    """Move the claimed rows' queue entries to the end of their lease.

    No claim reads them again until then; when the lease lapses they are due once more.
    The claim leased its rows with one statement, so one ``NOW()``: every row has the same
    lease end, read once from the first row (a lookup of each entry's own row cost PostgreSQL
    about 4 µs an entry; returning the lease end with every claimed row instead made the
    flusher parse 1,000 timestamps a claim).
    """
    if not pks:
        return
    connection = connections[db]
    qn = connection.ops.quote_name
    queue, rows = QueuedEvent._meta, OutboxEvent._meta
    due = qn(queue.get_field("next_attempt_at").column)
    lease_end = (
        f"(SELECT {qn(rows.get_field('lease_expires_at').column)} FROM {qn(rows.db_table)} "
        f"WHERE {qn(rows.pk.column)} = %s)"
    )
    in_sql, in_params = pk_in(connection, qn(queue.pk.column), pks)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(queue.db_table)} SET {due} = {lease_end} WHERE {in_sql}",
            [pks[0], *in_params],
        )


def _candidates(db: str, accounts: list[int]) -> QuerySet[OutboxEvent]:
    rows = (
        OutboxEvent.objects.using(db)
        .filter(claimable(), queue_entry__account__in=accounts)
        .order_by("queue_entry__next_attempt_at", "pk")
    )
    if connections[db].features.has_select_for_update_skip_locked:
        # OF self: lock the outbox rows only (the queue rows are never written by a claim).
        rows = rows.select_for_update(skip_locked=True, of=("self",))
    return rows


_RETURNED = ("id", "account_id", "payload", "attempts")


def _claim_returning(
    db: str, accounts: list[int], limit: int, values: dict[str, Any]
) -> list[Claimed]:
    """One ``UPDATE … RETURNING``: the ORM compiles the UPDATE, RETURNING is appended.

    The outer re-check of :func:`lease_free` is belt and braces: on PostgreSQL the locking
    subquery already re-evaluates its conditions on the newest version of a row it locks.
    """
    candidates = _candidates(db, accounts).values("pk")[:limit]
    qn = connections[db].ops.quote_name
    meta = OutboxEvent._meta
    postgresql = connections[db].vendor == "postgresql"
    rows = OutboxEvent.objects.using(db).filter(lease_free())
    if not postgresql:
        rows = rows.filter(pk__in=Subquery(candidates))
    query = rows.query.chain(UpdateQuery)
    query.add_update_values(values)
    sql, params = query.get_compiler(db).as_sql()
    if postgresql:
        # ``pk = ANY(ARRAY(subquery))``: the locking subquery runs once, as an InitPlan.  With
        # ``pk IN (subquery)`` the planner may pick a nested-loop semi-join that re-runs it for
        # every outer row, and each re-run skips the rows this statement already leased and
        # takes the next ones: a claim of 10 leased 40 (tests/test_flush_lanes.py).
        picked_sql, picked_params = candidates.query.get_compiler(db).as_sql()
        sql = f"{sql} AND {qn(meta.pk.column)} = ANY(ARRAY({picked_sql}))"
        params = (*params, *picked_params)
    # The plan reads the queue's index in order, joins each entry to its outbox row, locks,
    # and stops after ``limit``: bookkeeping(claim=True) turns sorting off for this.
    returning = ", ".join(qn(meta.get_field(name).column) for name in _RETURNED)
    with connections[db].cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {returning}", params)
        return [Claimed(*row) for row in cursor.fetchall()]


def _claim_two_steps(db: str, owner: str, limit: int, values: dict[str, Any]) -> list[Claimed]:
    """Backends without RETURNING: pick ids, lease them conditionally, read them back."""
    candidates = sendable_due_rows().using(db).order_by("queue_entry__next_attempt_at", "pk")
    if connections[db].features.has_select_for_update_skip_locked:
        # OF self: lock outbox rows only, never the joined account or queue rows.
        candidates = candidates.select_for_update(skip_locked=True, of=("self",))
    ids = list(candidates.values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    # Conditional UPDATE: re-checks "due" so a row another worker took meanwhile is skipped.
    OutboxEvent.objects.using(db).filter(lease_free(), pk__in=ids).update(**values)
    return [
        Claimed(*row)
        for row in OutboxEvent.objects.using(db)
        .filter(lease_owner=owner, status=EventStatus.IN_FLIGHT)
        .order_by("pk")
        .values_list("pk", "account_id", "payload", "attempts")
    ]
