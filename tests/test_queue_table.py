"""The queue table (QueuedEvent) stays equal to the outbox's pending and in-flight rows.

Every way a row's state changes is driven through the app's real code (recording, claim,
delivery to the sandbox, retry, release, requeue, delete) on the test database (SQLite or
PostgreSQL), and after each step the queue is compared with the outbox: one entry per pending
or in-flight row, claimable when the row is due (pending) or when its lease ends (in flight).
"""

from __future__ import annotations

import time

import pytest
from django.db import connection

from pinterest_capi import delivery, outbox
from pinterest_capi.delivery.bookkeeping import Bookkeeper
from pinterest_capi.delivery.claim import claim
from pinterest_capi.delivery.summary import FlushSummary
from pinterest_capi.delivery.txn import planner_settings
from pinterest_capi.models import EventStatus, OutboxEvent, QueuedEvent
from pinterest_capi.sandbox import Fault
from tests.conftest import build_test_event, make_outbox_events

pytestmark = pytest.mark.django_db(transaction=True)


def assert_queue_matches_outbox() -> None:
    """One entry per pending/in-flight row, at its due time or at the end of its lease."""
    expected = {}
    for pk, status, due, lease_end in OutboxEvent.objects.filter(
        status__in=(EventStatus.PENDING, EventStatus.IN_FLIGHT)
    ).values_list("pk", "status", "next_attempt_at", "lease_expires_at"):
        expected[pk] = lease_end if status == EventStatus.IN_FLIGHT else due
    entries = dict(QueuedEvent.objects.values_list("event_id", "next_attempt_at"))
    assert entries == expected
    accounts = dict(QueuedEvent.objects.values_list("event_id", "account_id"))
    assert accounts == dict(
        OutboxEvent.objects.filter(pk__in=list(accounts)).values_list("pk", "account_id")
    )


def test_recording_puts_each_event_in_the_queue_due_at_once(account):
    make_outbox_events(account, 3)  # bulk_create
    outbox.record_many([build_test_event(10), build_test_event(11)], accounts=[account])
    assert QueuedEvent.objects.count() == 5
    assert_queue_matches_outbox()
    assert delivery.due_count() == 5


def test_a_claim_holds_the_entries_until_its_lease_ends_and_delivery_removes_them(account):
    make_outbox_events(account, 5)
    owner, rows = claim(3)
    assert len(rows) == 3
    assert_queue_matches_outbox()
    assert delivery.due_count() == 2  # the claimed three are not due while the lease holds
    _, others = claim(10)
    assert {row.pk for row in others}.isdisjoint({row.pk for row in rows})
    delivery.FlushCycle(owner, rows).run()
    assert OutboxEvent.objects.filter(status=EventStatus.SENT).count() == 3
    assert_queue_matches_outbox()
    assert QueuedEvent.objects.count() == 2


def test_a_lapsed_lease_makes_the_entry_claimable_again(account, capi_settings, settings):
    settings.PINTEREST_CAPI = {**capi_settings, "LEASE_SECONDS": 1}
    make_outbox_events(account, 2)
    first_owner, first = claim(10)
    assert claim(10)[1] == []
    time.sleep(1.3)
    second_owner, second = claim(10)
    assert [row.pk for row in second] == [row.pk for row in first]
    assert set(OutboxEvent.objects.values_list("lease_owner", flat=True)) == {second_owner}
    assert_queue_matches_outbox()
    # The first owner's results no longer apply: its finish changes nothing, the entries stay.
    books = Bookkeeper(connection.alias, first_owner, FlushSummary())
    assert books.finish(first, EventStatus.SENT) == 0
    assert QueuedEvent.objects.count() == 2
    assert_queue_matches_outbox()


def test_a_retry_moves_the_entry_to_the_backoff_time(account, sandbox, capi_settings, settings):
    settings.PINTEREST_CAPI = {**capi_settings, "BACKOFF_BASE_SECONDS": 600}
    make_outbox_events(account, 4)
    sandbox.faults.add(Fault(status=503, times=1))
    summary = delivery.flush_once()
    assert summary.retrying == 4
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {EventStatus.PENDING}
    assert_queue_matches_outbox()
    assert delivery.due_count() == 0


def test_released_rows_are_due_again_at_once(account):
    make_outbox_events(account, 3)
    owner, rows = claim(10)
    assert delivery.due_count() == 0
    Bookkeeper(connection.alias, owner, FlushSummary()).release(rows)
    assert_queue_matches_outbox()
    assert delivery.due_count() == 3


def test_failed_rows_leave_the_queue_and_a_requeue_brings_them_back(account, sandbox):
    make_outbox_events(account, 3)
    sandbox.faults.add(Fault(event_status={0: "failed", 2: "failed"}, message="bad", times=1))
    delivery.flush(until_empty=True)
    assert OutboxEvent.objects.filter(status=EventStatus.FAILED).count() == 2
    assert QueuedEvent.objects.count() == 0
    assert_queue_matches_outbox()
    assert outbox.requeue(OutboxEvent.objects.all()) == 2
    assert_queue_matches_outbox()
    assert delivery.due_count() == 2
    delivery.flush(until_empty=True)
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {EventStatus.SENT}
    assert QueuedEvent.objects.count() == 0


def test_deleting_rows_deletes_their_entries_through_the_orm_and_plain_sql(account):
    events = make_outbox_events(account, 4)
    OutboxEvent.objects.filter(pk=events[0].pk).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {OutboxEvent._meta.db_table} WHERE id = %s", [events[1].pk])
    assert set(QueuedEvent.objects.values_list("event_id", flat=True)) == {
        events[2].pk,
        events[3].pk,
    }
    account.delete()
    assert QueuedEvent.objects.count() == 0


def test_the_queue_triggers_exist():
    """A migration that rebuilds the outbox table (SQLite does for many changes) drops them."""
    table = OutboxEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [table],
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table]
            )
        names = {name for (name,) in cursor.fetchall()}
    assert names == {"pcapi_queue_on_insert", "pcapi_queue_on_update", "pcapi_queue_on_delete"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_claim_reads_the_queue_index_in_order_even_with_stale_statistics(account):
    """No sort of the whole backlog: the queue's index, in order, stopped by the LIMIT.

    The statistics say the outbox holds only sent rows (ANALYZE before the backlog arrives),
    the case in which the planner once chose to sort every due row on each claim.
    """
    make_outbox_events(account, 50)
    OutboxEvent.objects.update(status=EventStatus.SENT)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {OutboxEvent._meta.db_table}")
        cursor.execute(f"ANALYZE {QueuedEvent._meta.db_table}")
    OutboxEvent.objects.update(status=EventStatus.PENDING)
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        _, rows = claim(10)
    assert len(rows) == 10
    statement = next(q["sql"] for q in queries if q["sql"].startswith("UPDATE"))
    plan = explain(statement, planner_settings(claim=True))
    assert "Index Scan using pcapi_queue_due_idx" in plan
    assert "Sort" not in plan


def explain(statement: str, settings: dict[str, str]) -> str:
    """PostgreSQL's plan for ``statement`` under the flush's planner ``settings``."""
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        for name, value in settings.items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        cursor.execute(f"EXPLAIN {statement}")
        plan = "\n".join(line for (line,) in cursor.fetchall())
        cursor.execute("ROLLBACK")
    return plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_flush_finds_queue_entries_by_key_never_by_reading_the_whole_queue(account):
    """The claim's hold and the finish's delete look their 1,000-2,000 entries up by key.

    Left to its estimates, PostgreSQL read the whole queue for them (a 20,000-entry queue
    here; on a 100,000-event backlog that was 2.5 s of a 5-s flush): the flush's
    transactions make a sequential scan the planner's last resort.
    """
    make_outbox_events(account, 20_000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {OutboxEvent._meta.db_table}")
        cursor.execute(f"ANALYZE {QueuedEvent._meta.db_table}")
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        owner, rows = claim(2000)
        books = Bookkeeper("default", owner, FlushSummary())
        with books.results(account):
            assert books.finish(rows[:1000], EventStatus.SENT) == 1000
    queue = f'"{QueuedEvent._meta.db_table}"'
    statements = [
        q["sql"]
        for q in queries
        if q["sql"].startswith((f"UPDATE {queue}", f"DELETE FROM {queue}"))
    ]
    assert len(statements) == 2  # the claim's hold, the finish's delete
    for statement in statements:
        plan = explain(statement, planner_settings())
        assert "Seq Scan" not in plan, plan
    assert_queue_matches_outbox()


def test_after_migrate_the_triggers_are_back_when_something_dropped_them(account):
    """What ``apps.py`` runs after every migrate (a SQLite table rebuild drops triggers)."""
    from pinterest_capi import queue_triggers

    queue_triggers.uninstall(connection, OutboxEvent._meta.db_table)
    make_outbox_events(account, 1)
    assert QueuedEvent.objects.count() == 0  # recorded while the triggers were missing
    assert queue_triggers.ensure(connection)
    make_outbox_events(account, 2, start=1)
    assert QueuedEvent.objects.count() == 2


def test_migration_0011_gives_every_row_still_to_deliver_its_entry(account):
    """The backfill of an existing outbox: pending rows when due, rows in flight at lease end."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module(
        "pinterest_capi.migrations.0011_outbox_queue_table_delivery_hot"
    )
    make_outbox_events(account, 4)
    claim(1)
    OutboxEvent.objects.filter(pk=OutboxEvent.objects.order_by("pk").last().pk).update(
        status=EventStatus.FAILED
    )
    QueuedEvent.objects.all().delete()
    with connection.schema_editor() as editor:
        migration.create_queue_triggers(apps, editor)
    assert QueuedEvent.objects.count() == 3
    assert_queue_matches_outbox()
