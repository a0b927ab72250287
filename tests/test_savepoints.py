"""The receivers' deferred savepoint and the one-round-trip insert (pinterest_capi.savepoints).

A receiver runs its mapper and the recording inside the shop's transaction.  Every statement
they run is in a savepoint, opened just before the first one (usually the outbox insert, on
PostgreSQL in the same round trip): a failure undoes the receiver's work alone and the shop's
transaction goes on.  These tests run on SQLite and on PostgreSQL (DATABASE_URL).
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from pinterest_capi.models import AdAccount, OutboxEvent
from pinterest_capi.receivers import record_from_signal
from tests.test_recording_path import add_account, refuse_outbox_inserts

EMAIL = "ada@example.com"


def lead(**_):
    return {"event_name": "lead", "event_id": "lead-1", "user_data": {"em": EMAIL}}


def statements(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split(" ", 1)[0] for q in ctx.captured_queries]


@pytest.fixture
def account(db):
    return add_account("111")


@pytest.mark.django_db
def test_a_refused_insert_leaves_the_shops_transaction_usable(account):
    refuse_outbox_inserts()
    with transaction.atomic():
        with pytest.raises(DatabaseError):  # RAISE_RECORD_ERRORS in the tests' settings
            record_from_signal(lead)
        AdAccount.objects.filter(pk=account.pk).update(name="the shop's own write")
    assert AdAccount.objects.get(pk=account.pk).name == "the shop's own write"
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_a_refused_insert_is_logged_and_the_checkout_goes_on(account, settings, caplog):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "RAISE_RECORD_ERRORS": False}
    refuse_outbox_inserts()
    with transaction.atomic():
        assert record_from_signal(lead) == []
        AdAccount.objects.filter(pk=account.pk).update(name="the shop's own write")
    assert AdAccount.objects.get(pk=account.pk).name == "the shop's own write"
    assert "Pinterest event not recorded" in caplog.text


@pytest.mark.django_db
def test_a_mapper_that_writes_then_fails_has_its_write_undone(account):
    """The mapper's first statement opens the savepoint; the failure rolls back to it."""

    def writes_then_fails(**_):
        AdAccount.objects.filter(pk=account.pk).update(name="written by the mapper")
        raise RuntimeError("mapper bug")

    with transaction.atomic():
        with CaptureQueriesContext(connection) as ctx, pytest.raises(RuntimeError):
            record_from_signal(writes_then_fails)
        AdAccount.objects.filter(pk=account.pk).update(active=False)  # the shop goes on
    assert statements(ctx)[:2] == ["SAVEPOINT", "UPDATE"]
    undo = " ".join(q["sql"] for q in ctx.captured_queries[2:])  # one round trip on PostgreSQL
    assert "ROLLBACK TO SAVEPOINT" in undo and "RELEASE SAVEPOINT" in undo
    account.refresh_from_db()
    assert account.name != "written by the mapper" and account.active is False


@pytest.mark.django_db
def test_a_mapper_that_queries_shares_the_savepoint_with_the_insert(account):
    def queries_then_maps(**kwargs):
        assert AdAccount.objects.filter(tenant="demo").exists()
        return lead(**kwargs)

    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        [row] = record_from_signal(queries_then_maps)
    assert statements(ctx)[:2] == ["SAVEPOINT", "SELECT"] and statements(ctx)[3] == "RELEASE"
    # On PostgreSQL the insert is framed by the setting that holds the queue trigger off.
    assert 'INTO "pinterest_capi_outboxevent"' in ctx.captured_queries[2]["sql"]
    assert len(ctx.captured_queries) == 4
    assert OutboxEvent.objects.get().pk == row.pk


@pytest.mark.django_db
def test_a_mapper_that_fails_before_any_statement_costs_none(
    account, django_capture_on_commit_callbacks
):
    """Nothing reached the database, so nothing is rolled back; its on-commit work is dropped."""

    def fails(**_):
        transaction.on_commit(lambda: None)
        raise RuntimeError("mapper bug")

    with django_capture_on_commit_callbacks() as callbacks:
        with CaptureQueriesContext(connection) as ctx, pytest.raises(RuntimeError):
            record_from_signal(fails)
    assert ctx.captured_queries == [] and callbacks == []
    AdAccount.objects.filter(pk=account.pk).update(name="usable")


@pytest.mark.django_db
def test_the_receivers_insert_is_its_only_round_trip(account):
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        record_from_signal(lead)
    [insert] = ctx.captured_queries
    if connection.vendor == "postgresql":
        assert insert["sql"].startswith("SAVEPOINT") and "RELEASE SAVEPOINT" in insert["sql"]
    else:
        assert insert["sql"].startswith("INSERT")


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_receiver_records_in_one_of_its_own(account):
    assert connection.get_autocommit()
    [row] = record_from_signal(lead)
    assert OutboxEvent.objects.get().pk == row.pk


@pytest.mark.django_db
def test_a_receiver_inside_a_receiver_opens_its_savepoint_inside_the_outer_one(account):
    """A mapper that sends a signal of its own: the inner receiver's savepoint nests in the
    outer one's (opened first), and an outer failure undoes the inner receiver's work too."""

    def inner(**_):
        AdAccount.objects.filter(pk=account.pk).update(name="written by the inner mapper")
        return lead()

    def outer_fails(**_):
        record_from_signal(inner)
        raise RuntimeError("outer mapper bug")

    with transaction.atomic():
        with CaptureQueriesContext(connection) as ctx, pytest.raises(RuntimeError):
            record_from_signal(outer_fails)
        AdAccount.objects.filter(pk=account.pk).update(active=False)  # the shop goes on
    sqls = [q["sql"] for q in ctx.captured_queries]
    outer, inner_sp = sqls[0].split('"')[1], sqls[1].split('"')[1]
    assert sqls[0].startswith("SAVEPOINT") and sqls[1].startswith("SAVEPOINT")
    assert outer != inner_sp and sqls[-1].endswith(f'RELEASE SAVEPOINT "{outer}"')
    account.refresh_from_db()
    assert account.name != "written by the inner mapper" and account.active is False
    assert not OutboxEvent.objects.exists()  # the inner event went with the outer savepoint


@pytest.mark.django_db
def test_an_inner_receivers_insert_comes_after_the_outer_savepoint(account):
    def inner(**kwargs):
        return {**lead(), "event_id": "lead-inner"}

    def outer(**kwargs):
        record_from_signal(inner)
        return lead()

    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        record_from_signal(outer)
    sqls = [q["sql"] for q in ctx.captured_queries]
    assert sqls[0].startswith("SAVEPOINT")  # the outer block's, before the inner insert
    assert "lead-inner" in sqls[1] and "INSERT" in sqls[1]
    assert sqls[-1].startswith("RELEASE SAVEPOINT")
    assert set(OutboxEvent.objects.values_list("event_id", flat=True)) == {"lead-1", "lead-inner"}
