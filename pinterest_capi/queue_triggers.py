"""The database triggers that keep the queue table (``QueuedEvent``) equal to the outbox's
pending and in-flight rows, on PostgreSQL and SQLite.

Installed by migration 0011 and again after every ``migrate`` of this app (``apps.py``): SQLite
rebuilds a table for many schema changes, and a rebuilt table loses its triggers; a database
made without migrations (a ``--nomigrations`` test run) has none.  Installing is idempotent
(``CREATE OR REPLACE`` on PostgreSQL; drop and create, in the caller's transaction, on SQLite).

What they do: a recorded row that is pending gets its entry; a row whose status, due time or
lease changes gets its entry moved (or deleted once it is sent or failed); a deleted row loses
its entry.  An entry's time is when a flush may claim the row: its due time while pending, the
end of its lease while in flight.

The flush's own two transitions are left to the flush, which makes them with one statement per
batch (a trigger's statement per row cost more than the rest of a delivery):
pending -> in flight (the claim holds the entry until its lease ends) and in flight -> sent or
failed (the finish deletes it); see :mod:`pinterest_capi.delivery`.

On PostgreSQL the recording hot path (:func:`pinterest_capi.outbox.record_for_tenant`) writes
its rows' entries itself too (:func:`insert_queueing_itself`), and the insert trigger stands
aside while it runs.  The trigger is PL/pgSQL, and the first PL/pgSQL call in a database session
loads the language's library: about a millisecond, paid by every request of a shop that opens a
connection per request (Django's default ``CONN_MAX_AGE = 0``), where the checkout's whole
recording costs about as much.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

QUEUED = "('pending', 'in_flight')"
NAMES = ("pcapi_queue_on_insert", "pcapi_queue_on_update", "pcapi_queue_on_delete")

# PostgreSQL: a transaction-local setting, 'on' only while a statement that writes the queue
# entries of its own inserts runs (the insert trigger's WHEN then holds it off).
QUEUED_BY_INSERT = "pinterest_capi.queued_by_insert"
_NOT_QUEUED_BY_INSERT = f"current_setting('{QUEUED_BY_INSERT}', true) IS DISTINCT FROM 'on'"

# When an update moves the entry: the status, the due time or the lease changed, but for the
# flush's own two transitions.
_UPDATE_CHANGES_QUEUE = (
    "NOT (OLD.status = 'pending' AND NEW.status = 'in_flight')"
    " AND NOT (OLD.status = 'in_flight' AND NEW.status IN ('sent', 'failed'))"
    " AND (OLD.status IS DISTINCT FROM NEW.status"
    " OR OLD.next_attempt_at IS DISTINCT FROM NEW.next_attempt_at"
    " OR OLD.lease_expires_at IS DISTINCT FROM NEW.lease_expires_at)"
)


def _claimable_at(row: str) -> str:
    """When a flush may claim ``row``: when it is due, or, in flight, when its lease ends."""
    return (
        f"CASE WHEN {row}status = 'in_flight' AND {row}lease_expires_at IS NOT NULL "
        f"THEN {row}lease_expires_at ELSE {row}next_attempt_at END"
    )


_CLAIMABLE_AT = _claimable_at("NEW.")


def _postgresql(outbox: str, queue: str) -> list[str]:
    return [
        f"""
        CREATE OR REPLACE FUNCTION pcapi_queue_sync() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                DELETE FROM {queue} WHERE event_id = OLD.id;
            ELSIF NEW.status IN {QUEUED} THEN
                INSERT INTO {queue} (event_id, account_id, next_attempt_at)
                VALUES (NEW.id, NEW.account_id, {_CLAIMABLE_AT})
                ON CONFLICT (event_id) DO UPDATE SET next_attempt_at = EXCLUDED.next_attempt_at;
            ELSE
                DELETE FROM {queue} WHERE event_id = NEW.id;
            END IF;
            RETURN NULL;
        END
        $$""",
        f"""
        CREATE OR REPLACE TRIGGER pcapi_queue_on_insert AFTER INSERT ON {outbox}
        FOR EACH ROW WHEN (NEW.status IN {QUEUED} AND {_NOT_QUEUED_BY_INSERT})
        EXECUTE FUNCTION pcapi_queue_sync()""",
        f"""
        CREATE OR REPLACE TRIGGER pcapi_queue_on_update
        AFTER UPDATE OF status, next_attempt_at, lease_expires_at ON {outbox}
        FOR EACH ROW WHEN ({_UPDATE_CHANGES_QUEUE}) EXECUTE FUNCTION pcapi_queue_sync()""",
        f"""
        CREATE OR REPLACE TRIGGER pcapi_queue_on_delete AFTER DELETE ON {outbox}
        FOR EACH ROW WHEN (OLD.status IN {QUEUED}) EXECUTE FUNCTION pcapi_queue_sync()""",
    ]


def _sqlite(outbox: str, queue: str) -> list[str]:
    put = (
        f"INSERT INTO {queue} (event_id, account_id, next_attempt_at) "
        f"SELECT NEW.id, NEW.account_id, {_CLAIMABLE_AT} WHERE NEW.status IN {QUEUED} "
        "ON CONFLICT (event_id) DO UPDATE SET next_attempt_at = excluded.next_attempt_at;"
    )
    return [
        *(f"DROP TRIGGER IF EXISTS {name}" for name in NAMES),
        f"""
        CREATE TRIGGER pcapi_queue_on_insert AFTER INSERT ON {outbox}
        FOR EACH ROW WHEN NEW.status IN {QUEUED} BEGIN {put} END""",
        f"""
        CREATE TRIGGER pcapi_queue_on_update
        AFTER UPDATE OF status, next_attempt_at, lease_expires_at ON {outbox}
        FOR EACH ROW WHEN {_UPDATE_CHANGES_QUEUE}
        BEGIN
            DELETE FROM {queue} WHERE event_id = NEW.id AND NEW.status NOT IN {QUEUED};
            {put}
        END""",
        f"""
        CREATE TRIGGER pcapi_queue_on_delete AFTER DELETE ON {outbox}
        FOR EACH ROW WHEN OLD.status IN {QUEUED}
        BEGIN DELETE FROM {queue} WHERE event_id = OLD.id; END""",
    ]


INSERTED_ROWS_AT = 1
"""In :func:`insert_queueing_itself`'s statements, the index of the one that returns the rows."""


def insert_queueing_itself(
    connection: BaseDatabaseWrapper, insert: str, returning: Sequence[str]
) -> str:
    """PostgreSQL: ``insert`` (into the outbox, no RETURNING) writing its rows' entries itself.

    Three statements, for one round trip (client-side binding): the setting that holds the
    insert trigger off, ``WITH new AS (insert RETURNING …), queued AS (INSERT INTO queue …)
    SELECT returning FROM new`` (the entries exactly as the trigger would write them), and the
    setting back off, so every later insert of the transaction is queued by the trigger again.
    The rows are the second statement's (:data:`INSERTED_ROWS_AT`).  A failure aborts the
    statements after it; rolling back to a savepoint taken before (the caller's) undoes the
    setting with the rest.  Meant for a transaction: ``SET LOCAL`` outside one does nothing.
    Under triggers installed before migration 0013 (no WHEN on the setting) the trigger runs
    too, at the end of the statement, and its upsert finds the entry there: one entry still,
    only the saving is lost.
    """
    from .models import OutboxEvent, QueuedEvent

    qn = connection.ops.quote_name
    meta = OutboxEvent._meta
    read = [meta.pk.column, "account_id", "status", "next_attempt_at", "lease_expires_at"]
    read += [column for column in returning if column not in read]
    return (
        f"SET LOCAL {QUEUED_BY_INSERT} TO 'on'; "
        f"WITH pcapi_new AS ({insert} RETURNING {', '.join(qn(c) for c in read)}), "
        f"pcapi_queued AS (INSERT INTO {qn(QueuedEvent._meta.db_table)} "
        f"(event_id, account_id, next_attempt_at) "
        f"SELECT {qn(meta.pk.column)}, account_id, {_claimable_at('pcapi_new.')} FROM pcapi_new "
        f"WHERE status IN {QUEUED}) "
        f"SELECT {', '.join(qn(c) for c in returning)} FROM pcapi_new; "
        f"SET LOCAL {QUEUED_BY_INSERT} TO 'off'"
    )


def install(connection: BaseDatabaseWrapper, outbox_table: str, queue_table: str) -> None:
    """Create (or replace) the triggers on ``outbox_table`` that keep ``queue_table``."""
    qn = connection.ops.quote_name
    outbox, queue = qn(outbox_table), qn(queue_table)
    if connection.vendor == "postgresql":
        statements = _postgresql(outbox, queue)
    elif connection.vendor == "sqlite":
        statements = _sqlite(outbox, queue)
    else:
        raise NotImplementedError(
            f"django-pinterest-capi supports PostgreSQL and SQLite, not {connection.vendor}: "
            "the outbox's queue is kept by database triggers."
        )
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def reinstall(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """A migration's ``RunPython``: install the triggers again on the migrated tables."""
    outbox = apps.get_model("pinterest_capi", "OutboxEvent")._meta.db_table
    queue = apps.get_model("pinterest_capi", "QueuedEvent")._meta.db_table
    install(schema_editor.connection, outbox, queue)


def fill(connection: BaseDatabaseWrapper, outbox_table: str, queue_table: str) -> None:
    """An entry for every outbox row still to deliver (the triggers keep them from then on)."""
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(queue_table)} (event_id, account_id, next_attempt_at) "
            f"SELECT id, account_id, {_claimable_at('')} FROM {qn(outbox_table)} "
            f"WHERE status IN {QUEUED}"
        )


def uninstall(connection: BaseDatabaseWrapper, outbox_table: str) -> None:
    """Drop the triggers (and PostgreSQL's trigger function): migration 0011 reversed."""
    postgresql = connection.vendor == "postgresql"
    on = f" ON {connection.ops.quote_name(outbox_table)}" if postgresql else ""
    with connection.cursor() as cursor:
        for name in NAMES:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}{on}")
        if postgresql:
            cursor.execute("DROP FUNCTION IF EXISTS pcapi_queue_sync()")


def ensure(connection: BaseDatabaseWrapper) -> bool:
    """After ``migrate``: install the triggers where both tables exist; True if it did."""
    from .models import OutboxEvent, QueuedEvent

    outbox, queue = OutboxEvent._meta.db_table, QueuedEvent._meta.db_table
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
    if outbox not in tables or queue not in tables:
        return False  # migrated back to before the queue existed
    with transaction.atomic(using=connection.alias):  # no moment without them (SQLite)
        install(connection, outbox, queue)
    return True
