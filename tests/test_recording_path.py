"""The recording hot path on the shop's request: what track() and the receivers cost the shop.

track() writes an event for every active account of the tenant with one ``INSERT … SELECT``
(``outbox.record_for_tenant``) and reads nothing back unless nothing new was written; the demo
checkout's ``order_placed`` carries the order's lines so the mapper need not query them.  These
tests pin the behaviour that the fast path must keep (accounts decided live, idempotency, the
caller's transaction kept usable) and the number of statements recording adds to a checkout.
"""

from __future__ import annotations

import json

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.module_loading import import_string

from pinterest_capi import mappers, outbox, track
from pinterest_capi.events import build_event
from pinterest_capi.models import AdAccount, EventStatus, OutboxEvent
from pinterest_capi.receivers import connect_configured_signals
from shop_demo.shop.catalog import seed_catalog
from shop_demo.shop.models import Order

pytestmark = pytest.mark.django_db

EMAIL = "ada@example.com"


def add_account(ad_account_id: str, tenant: str = "demo", active: bool = True) -> AdAccount:
    account = AdAccount(tenant=tenant, ad_account_id=ad_account_id, active=active)
    account.set_token("pina_recording_TOKEN")
    account.save()
    return account


def lead(event_id: str = "lead-1") -> dict:
    return build_event("lead", user_data={"em": EMAIL}, event_id=event_id)


def test_one_statement_writes_the_event_for_every_active_account_of_the_tenant():
    a, b = add_account("111"), add_account("222")
    add_account("333", active=False)
    add_account("444", tenant="elsewhere")
    event = lead()
    with CaptureQueriesContext(connection) as ctx:
        rows = outbox.record_for_tenant(event, tenant="demo", savepoint=False)
    [insert] = ctx.captured_queries  # no account query, no read back
    assert "INSERT" in insert["sql"] and "RETURNING" in insert["sql"]
    assert {r.account_id for r in rows} == {a.pk, b.pk}
    stored = {r.pk: r for r in OutboxEvent.objects.all()}
    assert set(stored) == {r.pk for r in rows}
    for row in rows:  # the returned rows are the stored ones, complete
        assert row._state.adding is False and row._state.db == "default"
        assert json.loads(row.payload) == event == stored[row.pk].payload_dict
        assert row.status == EventStatus.PENDING and row.attempts == 0
        assert row.created_at == stored[row.pk].created_at  # a database default: read on use
        assert row.account == stored[row.pk].account


def test_recording_again_writes_nothing_and_returns_the_rows_already_there():
    add_account("111"), add_account("222")
    first = outbox.record_for_tenant(lead(), tenant="demo")
    again = outbox.record_for_tenant(lead(), tenant="demo")
    assert sorted(r.pk for r in again) == sorted(r.pk for r in first)
    assert OutboxEvent.objects.count() == 2


def test_an_account_deactivated_or_deleted_behind_the_apps_back_gets_nothing_at_once():
    """Accounts are read by the insert itself: no process can hold a stale list of them."""
    a, b, c = add_account("111"), add_account("222"), add_account("333")
    assert len(outbox.record_for_tenant(lead("lead-1"), tenant="demo")) == 3
    AdAccount.objects.filter(pk=a.pk).update(active=False)  # no signal: another process, SQL
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {OutboxEvent._meta.db_table} WHERE account_id = %s", [b.pk])
        cursor.execute(f"DELETE FROM {AdAccount._meta.db_table} WHERE id = %s", [b.pk])
    rows = outbox.record_for_tenant(lead("lead-2"), tenant="demo")
    assert [r.account_id for r in rows] == [c.pk]
    AdAccount.objects.filter(pk=a.pk).update(active=True)
    assert {r.account_id for r in track("lead", user_data={"em": EMAIL}, event_id="lead-3")} == {
        a.pk,
        c.pk,
    }


def test_no_active_account_writes_nothing():
    add_account("111", active=False)
    assert outbox.record_for_tenant(lead(), tenant="demo") == []
    assert not OutboxEvent.objects.exists()


def refuse_outbox_inserts() -> None:
    """A trigger that makes the database refuse every outbox insert (for this test only).

    Input validation catches any value that does not fit a column before the database, so a
    trigger is how a test makes the insert itself fail.  It goes with the test's transaction.
    """
    table = OutboxEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION pcapi_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER pcapi_test_refuse BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION pcapi_test_refuse()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER pcapi_test_refuse BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )


def test_a_failed_insert_inside_the_shops_transaction_leaves_it_usable():
    """The insert is undone alone when track() is called in a transaction.

    Without that PostgreSQL would abort the shop's whole transaction: there the insert runs in
    a savepoint (sent with it, one round trip); SQLite undoes a failed statement by itself.
    """
    account = add_account("111")
    refuse_outbox_inserts()
    with transaction.atomic():
        with pytest.raises(DatabaseError):
            track("lead", user_data={"em": EMAIL}, event_id="lead-refused")
        AdAccount.objects.filter(pk=account.pk).update(name="the shop's own write")
    assert AdAccount.objects.get(pk=account.pk).name == "the shop's own write"


def test_the_checkout_mapper_uses_the_lines_the_signal_carries_without_a_query():
    seed_catalog()
    order = Order.objects.create(
        email=EMAIL, first_name="Ada", last_name="L", city="London", postcode="N1", total=10
    )
    order.number = "1001"
    order.save()
    product = seed_catalog()[0]
    line = order.lines.create(
        product=product, sku="SKU-1", product_name="Mug", unit_price=5, quantity=2
    )
    queried = mappers.checkout_from_order(order=order)
    with CaptureQueriesContext(connection) as ctx:
        carried = mappers.checkout_from_order(order=order, lines=[line])
    assert ctx.captured_queries == []
    assert carried == queried and carried["custom_data"]["contents"][0]["id"] == "SKU-1"


CUSTOMER = {
    "email": EMAIL,
    "phone": "+44 20 7946 0958",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "city": "London",
    "postcode": "N1 9GU",
    "country": "GB",
}


def test_recording_adds_one_round_trip_to_the_demo_checkout(client, settings):
    """The insert, in its savepoint: nothing else on the shop's request.

    On PostgreSQL the receiver's savepoint goes with the insert (``SAVEPOINT …; INSERT …;
    RELEASE …``, one round trip); SQLite needs none for one statement.  (The checkout
    benchmark measures the time; this keeps the statement count from creeping.)
    """
    add_account("111")
    products = [p for p in seed_catalog() if p.active and p.currency == "GBP"]
    paths = list(settings.PINTEREST_CAPI["SIGNALS"])

    def checkout_statements(i: int) -> list[str]:
        client.post(reverse("shop:add_to_cart", args=[products[i].slug]), {"quantity": 1})
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(reverse("shop:checkout"), CUSTOMER)
        assert response.status_code == 302
        return [q["sql"] for q in ctx.captured_queries]

    try:
        on = checkout_statements(0)
        for path in paths:
            import_string(path).disconnect(dispatch_uid=f"pinterest_capi:{path}")
        off = checkout_statements(1)
    finally:
        connect_configured_signals()
    assert OutboxEvent.objects.filter(event_name="checkout").count() == 1
    extra = len(on) - len(off)
    assert extra == 1, "\n".join(on)
    [insert] = [sql for sql in on if "pinterest_capi_outboxevent" in sql]
    if connection.vendor == "postgresql":
        # The savepoint, the insert writing its queue entries (the trigger held off: no
        # PL/pgSQL in the checkout) and the release, in the one round trip.
        assert insert.startswith("SAVEPOINT") and "AS (INSERT INTO" in insert
        assert 'INSERT INTO "pinterest_capi_queuedevent"' in insert
        assert insert.rstrip().split(";")[-1].strip().startswith("RELEASE SAVEPOINT")
    else:
        assert insert.startswith("INSERT")
    assert not any("pinterest_capi_adaccount" in sql and sql.startswith("SELECT") for sql in on)
