"""PostgreSQL: the recording statement writes its rows' queue entries itself, with no PL/pgSQL.

The queue's insert trigger is PL/pgSQL; the first PL/pgSQL call of a database session loads
the language's library (about a millisecond), which a shop that opens a connection per request
(Django's default ``CONN_MAX_AGE = 0``) would pay on every recording request.  So the hot path
(``record_for_tenant``: ``track()`` and the signal receivers) writes the entries in its own
statement while a transaction-local setting holds the trigger off, and sets it back at once:
every other insert of the transaction is queued by the trigger as before.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from pinterest_capi import queue_triggers
from pinterest_capi.models import OutboxEvent, QueuedEvent
from pinterest_capi.tracking import track
from tests.conftest import make_outbox_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("PL/pgSQL and the queue trigger's setting are PostgreSQL's: PostgreSQL leg")


def record(n: int) -> list[OutboxEvent]:
    return track(
        "lead", tenant="demo", user_data={"em": f"lead{n}@example.com"}, event_id=f"lead-{n}"
    )


def pl_pgsql_loaded() -> bool:
    """Whether this database session has initialised PL/pgSQL (its memory contexts exist)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_backend_memory_contexts WHERE name LIKE 'PLpgSQL%'")
        return cursor.fetchone()[0] > 0


def queued_by_insert() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [queue_triggers.QUEUED_BY_INSERT])
        return cursor.fetchone()[0]


def entries_match_rows() -> None:
    """Every pending row has exactly its entry, due when the row is (what the trigger writes)."""
    rows = dict(OutboxEvent.objects.values_list("pk", "next_attempt_at"))
    entries = dict(QueuedEvent.objects.values_list("event_id", "next_attempt_at"))
    assert entries == rows


def test_a_recording_in_a_new_session_queues_its_rows_without_loading_pl_pgsql(account):
    connection.close()  # the next statement opens a new database session, as a new request's
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_backend_memory_contexts LIMIT 1")
    except Exception as exc:  # noqa: BLE001 (a role without pg_read_all_stats)
        pytest.skip(f"pg_backend_memory_contexts is not readable here: {exc}")
    with transaction.atomic():
        rows = record(1)
        assert len(rows) == 1
        assert not pl_pgsql_loaded()
        assert queued_by_insert() == "off"  # set back within the same round trip
        make_outbox_events(account, 1)  # another insert of the transaction: the trigger's
        assert pl_pgsql_loaded()  # the probe sees the trigger when it runs
    entries_match_rows()
    assert QueuedEvent.objects.count() == 2


def test_the_trigger_is_not_called_for_the_recording_but_is_for_the_next_insert(account):
    with transaction.atomic():
        with connection.cursor() as cursor:  # rolled back with the transaction (DDL is)
            cursor.execute(
                "CREATE OR REPLACE FUNCTION pcapi_queue_sync() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'queue trigger called'; END $$"
            )
        [row] = record(2)
        assert QueuedEvent.objects.filter(event_id=row.pk).exists()
        with pytest.raises(Exception, match="queue trigger called"), transaction.atomic():
            make_outbox_events(account, 1)
        transaction.set_rollback(True)
    # The real trigger function is back: the same calls now succeed and match.
    record(2)
    make_outbox_events(account, 1)
    entries_match_rows()


def test_a_recording_that_fails_leaves_the_trigger_on_for_the_rest_of_the_transaction(account):
    holder = psycopg.connect(**connection.get_connection_params(), autocommit=False)
    try:
        # Another session holds the account row FOR UPDATE: the recording's FOR KEY SHARE waits,
        # and times out after the setting that holds the trigger off was made.
        holder.execute(
            "SELECT 1 FROM pinterest_capi_adaccount WHERE id = %s FOR UPDATE", [account.pk]
        )
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '50ms'")
            with pytest.raises(OperationalError):
                record(3)
            assert queued_by_insert() != "on"  # undone with the recording's savepoint
            holder.rollback()
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = 0")
            make_outbox_events(account, 1)  # queued by the trigger
            record(4)
    finally:
        holder.close()
    assert OutboxEvent.objects.count() == 2
    entries_match_rows()


def test_track_outside_a_transaction_is_queued_by_the_trigger_as_before(account):
    assert connection.get_autocommit() and not connection.in_atomic_block
    [row] = record(5)
    entries_match_rows()
    assert queued_by_insert() in (None, "", "off")
    assert QueuedEvent.objects.get().event_id == row.pk


def test_every_active_account_of_the_tenant_gets_its_row_and_its_entry(account):
    from pinterest_capi.models import AdAccount

    for number, active in (("549755885177", True), ("549755885178", False)):
        other = AdAccount(tenant="demo", ad_account_id=number, name=number, active=active)
        other.set_token("pina_sandbox_TOKEN_other")
        other.save()
    with transaction.atomic():
        rows = record(6)
    assert len(rows) == 2 and {row.account.active for row in rows} == {True}
    entries_match_rows()
    assert set(QueuedEvent.objects.values_list("account_id", flat=True)) == {
        row.account_id for row in rows
    }
