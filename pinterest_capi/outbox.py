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
from typing import Any, NamedTuple

from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Q, QuerySet
from django.db.models.constants import OnConflict
from django.db.models.functions import Now
from django.utils import timezone

from . import queue_triggers
from .models import AdAccount, EventStatus, OutboxEvent
from .savepoints import DeferredSavepoint, can_fold, execute_in_savepoint, fetch_rows

logger = logging.getLogger(__name__)


# One encoder for every payload: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=False).encode


def encode_payload(event: Mapping[str, Any]) -> str:
    """The event as compact JSON text, exactly as it will go on the wire."""
    return _encode(event)


def event_columns(event: Mapping[str, Any], *, payload: str | None = None) -> dict[str, Any]:
    """The outbox columns that come from ``event`` (an API event dict), by attribute name."""
    return {
        "event_id": event["event_id"],
        "event_name": event["event_name"],
        "event_time": event["event_time"],
        "order_id": str((event.get("custom_data") or {}).get("order_id") or ""),
        "payload": payload if payload is not None else encode_payload(event),
    }


def new_row(
    event: Mapping[str, Any], account: AdAccount, *, payload: str | None = None
) -> OutboxEvent:
    """An unsaved outbox row for ``event`` (an API event dict) and one account."""
    return OutboxEvent(account=account, **event_columns(event, payload=payload))


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


def record_for_tenant(
    event: Mapping[str, Any],
    *,
    tenant: str,
    using: str | None = None,
    savepoint: bool | DeferredSavepoint = True,
) -> list[OutboxEvent]:
    """Insert ``event`` once per *active* ad account of ``tenant``: the recording hot path.

    One statement does it, ``INSERT … SELECT … FROM adaccount WHERE tenant = … AND active``
    (ignoring conflicts, ``RETURNING`` the new rows' ids): the accounts are read by the very
    statement that writes, so an account deactivated or deleted a moment ago (in any process)
    gets nothing, with no cache to invalidate, and nothing is read back in the common case.
    :func:`track` spent most of its time in the separate account query, the ORM's
    ``bulk_create`` and the read back of the rows it had just written.

    Returns the rows newly written; when none was (the event was recorded before, or the
    tenant has no active account), the rows already recorded for the tenant's active accounts
    (``[]`` when there are none).  Like :func:`record` it runs in the caller's transaction;
    there, ``savepoint`` (default) keeps a failed insert from aborting the caller's
    transaction on PostgreSQL, in the insert's own round trip
    (:func:`~pinterest_capi.savepoints.execute_in_savepoint`).  A caller that already runs
    this in a savepoint of its own passes False; the signal receivers pass their
    :class:`~pinterest_capi.savepoints.DeferredSavepoint`, which the insert opens (folded into
    the same round trip) unless the mapper ran a statement first.  The flush is nudged on
    commit when a row was written.

    On PostgreSQL, in a transaction, the statement also writes the rows' queue entries, with
    the queue's insert trigger held off meanwhile
    (:func:`~pinterest_capi.queue_triggers.insert_queueing_itself`): the trigger is PL/pgSQL,
    and loading that language cost every new database session about a millisecond, i.e. every
    recording request of a shop that connects per request (``CONN_MAX_AGE = 0``).
    """
    db = using or router.db_for_write(OutboxEvent)
    connection = connections[db]
    insert = _tenant_insert_sql(connection)
    plan = insert.plan
    columns = event_columns(event)
    now = timezone.now()
    values: dict[str, Any] = {}
    params: dict[str, Any] = {_TENANT_PARAM: tenant, _ACTIVE_PARAM: True}
    for field, kind, value, param in plan:  # constants were prepared once, with the statement
        if kind is not _CONSTANT:
            if kind is _FROM_EVENT:
                value = columns[field.attname]
            else:
                value = now if kind is _NOW else field.get_default()
            # A str for a text column is its own database value.
            param = value if type(value) is _AS_IS.get(type(field)) else None
            if param is None:
                param = field.get_db_prep_save(value, connection)
        values[field.attname] = value
        params[field.attname] = param
    returning = connection.features.can_return_rows_from_bulk_insert
    # In a transaction (a DeferredSavepoint opens one outside), PostgreSQL writes the queue
    # entries with the rows, the insert trigger held off (queue_triggers.insert_queueing_itself).
    if insert.queueing and connection.in_atomic_block:
        sql, rows_at = insert.queueing, queue_triggers.INSERTED_ROWS_AT
    else:
        sql, rows_at = insert.sql, 0
    if isinstance(savepoint, DeferredSavepoint):
        new = savepoint.execute(sql, params, fetch=returning, rows_at=rows_at)
    elif savepoint and connection.in_atomic_block:
        new = execute_in_savepoint(connection, sql, params, fetch=returning, rows_at=rows_at)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            new = fetch_rows(cursor, returning, rows_at)
    if not returning:  # no RETURNING on this backend: read what is there
        new_or_old = _recorded_for_tenant(event, tenant, db)
        if new_or_old:
            transaction.on_commit(_nudge, using=db)
        return new_or_old
    if not new:
        return _recorded_for_tenant(event, tenant, db)
    transaction.on_commit(_nudge, using=db)
    names = ["id", "account_id", *values]
    return [
        OutboxEvent.from_db(db, names, [pk, account_id, *values.values()]) for pk, account_id in new
    ]


def _recorded_for_tenant(event: Mapping[str, Any], tenant: str, db: str) -> list[OutboxEvent]:
    return list(
        OutboxEvent.objects.using(db).filter(
            account__tenant=tenant,
            account__active=True,
            event_name=event["event_name"],
            event_id=event["event_id"],
        )
    )


# How each parameter of the tenant insert gets its value: from the event, the clock (auto_now
# fields) or a constant default (status, attempts, empty texts), prepared once, with the
# statement (a column added with a callable default gets a fresh value per row).
_FROM_EVENT, _NOW, _CALL, _CONSTANT = "event", "now", "call", "constant"
_Plan = list[tuple[Any, str, Any, Any]]  # (field, kind, value, prepared value)

# Django's own text fields take a str as is on every backend (integers are not: PostgreSQL
# wraps them in psycopg's types); a subclass may prepare values its own way, so only these
# exact classes skip get_db_prep_save.
_AS_IS: dict[type, type] = {models.CharField: str, models.TextField: str}

# The statement's two parameters that do not name a column.
_TENANT_PARAM, _ACTIVE_PARAM = "pcapi_tenant", "pcapi_active"


class _TenantInsert(NamedTuple):
    """:func:`record_for_tenant`'s statement for one database, and the plan of its parameters."""

    sql: str  # INSERT … SELECT … RETURNING (where the backend can)
    queueing: str | None  # PostgreSQL: the same writing its queue entries itself, or None
    plan: _Plan


# (alias, vendor) -> the INSERT … SELECT statement and the plan of its parameters.
_TENANT_INSERT: dict[tuple[str, str], _TenantInsert] = {}


def _parameter_plan(fields: list[Field[Any, Any]], connection: BaseDatabaseWrapper) -> _Plan:
    from_event = set(event_columns({"event_id": "", "event_name": "", "event_time": 0}, payload=""))
    plan: _Plan = []
    for field in fields:
        if field.attname in from_event:
            plan.append((field, _FROM_EVENT, None, None))
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            plan.append((field, _NOW, None, None))
        elif field.has_default() and callable(field.default):
            plan.append((field, _CALL, None, None))  # a fresh default per row
        else:
            value = field.get_default()
            plan.append((field, _CONSTANT, value, field.get_db_prep_save(value, connection)))
    return plan


def inserted_fields() -> list[Field[Any, Any]]:
    """The outbox columns an INSERT names: not the key, not those the database fills.

    Left out: the primary key, columns with a database default (created_at,
    next_attempt_at: the database clock) and generated columns (``failed``).
    """
    return [
        f
        for f in OutboxEvent._meta.concrete_fields
        if not f.primary_key and not f.has_db_default() and not f.generated
    ]


def _tenant_insert_sql(connection: BaseDatabaseWrapper) -> _TenantInsert:
    """The statement of :func:`record_for_tenant` for this database, built once per process.

    Its columns are :func:`inserted_fields` (the database fills the others).  PostgreSQL
    types a bare parameter in a SELECT list as text, so non-text parameters are cast to their
    column type (text ones are not: an explicit cast to ``varchar(n)`` would truncate silently
    where the assignment raises).  Parameters are named (``%(event_id)s``): SQLite's backend
    then maps them with one ``%`` instead of a regular expression over the statement on
    every call.

    On PostgreSQL the SELECT takes ``FOR KEY SHARE`` on the account rows it writes for, until
    the caller's transaction ends.  The outbox's foreign key is checked at commit (Django makes
    it ``DEFERRABLE INITIALLY DEFERRED``): without the lock, an account an operator deleted
    while the shop's transaction was open would make the shop's commit fail, and the order
    with it.  With it the delete waits for the commit (and sweeps up the new rows, see
    :func:`delete_late_events`); edits of the account (deactivating it, a new token) take no
    lock that conflicts, and a recording that starts while a delete is under way waits for it
    and writes nothing for that account.  The foreign key check takes the same lock at commit
    anyway; here it is taken sooner.  SQLite runs one writing transaction at a time: no race.

    On PostgreSQL with client-side binding (several statements in one round trip) the result
    also carries the variant that writes the queue entries itself (``queueing``).
    """
    key = (connection.alias, connection.vendor)
    if key in _TENANT_INSERT:
        return _TENANT_INSERT[key]
    qn = connection.ops.quote_name
    meta, accounts = OutboxEvent._meta, AdAccount._meta
    columns = inserted_fields()
    fields = [f for f in columns if f.name != "account"]
    account_table = qn(accounts.db_table)
    text_types = {"CharField", "TextField"}

    def placeholder(field: Field[Any, Any]) -> str:
        if connection.vendor == "postgresql" and field.get_internal_type() not in text_types:
            return f"CAST(%({field.attname})s AS {field.db_type(connection)})"
        return f"%({field.attname})s"

    select = [
        f"{account_table}.{qn(accounts.pk.column)}" if f.name == "account" else placeholder(f)
        for f in columns
    ]
    sql = (
        (
            "{insert} {table} ({columns}) SELECT {select} FROM {accounts} "
            "WHERE {accounts}.{tenant} = %({tenant_param})s "
            "AND {accounts}.{active} = %({active_param})s{lock} {suffix}"
        )
        .format(
            insert=connection.ops.insert_statement(on_conflict=OnConflict.IGNORE),
            table=qn(meta.db_table),
            columns=", ".join(qn(f.column) for f in columns),
            select=", ".join(select),
            accounts=account_table,
            tenant=qn(accounts.get_field("tenant").column),
            active=qn(accounts.get_field("active").column),
            tenant_param=_TENANT_PARAM,
            active_param=_ACTIVE_PARAM,
            lock=f" FOR KEY SHARE OF {account_table}" if connection.vendor == "postgresql" else "",
            suffix=connection.ops.on_conflict_suffix_sql(columns, OnConflict.IGNORE, None, None)
            or "",
        )
        .rstrip()
    )
    returning = [meta.pk.column, meta.get_field("account").column]
    queueing = None
    if connection.vendor == "postgresql" and can_fold(connection):
        queueing = queue_triggers.insert_queueing_itself(connection, sql, returning)
    if connection.features.can_return_rows_from_bulk_insert:
        sql += " RETURNING " + ", ".join(qn(column) for column in returning)
    _TENANT_INSERT[key] = _TenantInsert(sql, queueing, _parameter_plan(fields, connection))
    return _TENANT_INSERT[key]


def delete_late_events(sender: type[AdAccount], instance: AdAccount, using: str, **_: Any) -> None:
    """``post_delete`` of an ad account: delete its events committed while the delete waited.

    Django's collector reads an account's events before it deletes the account's row; on
    PostgreSQL that row's delete then waits for any shop transaction that recorded an event for
    the account meanwhile (:func:`record_for_tenant` holds the row).  Once those commit, their
    events would outlive the account and fail the delete's own commit on the foreign key; this
    statement, read after the wait, sees them.  Nothing on SQLite (one writer at a time).
    """
    late = OutboxEvent.objects.using(using).filter(account_id=instance.pk)
    if late.exists():
        late.delete()


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
    fields = inserted_fields()
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
