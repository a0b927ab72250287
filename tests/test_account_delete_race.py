"""An ad account deleted while a shop's transaction that recorded an event for it is open.

PostgreSQL checks the outbox's foreign key to the account when the shop's transaction commits
(Django makes it ``DEFERRABLE INITIALLY DEFERRED``).  Had an operator deleted the account in
between, that commit would fail: the shop's order rolled back for a Pinterest setting.  The
recording insert therefore holds the account rows it writes for (``FOR KEY SHARE``: edits of
the account go on, a delete waits for the shop's commit), and deleting an account sweeps up
the events committed while it waited.  SQLite lets one transaction write at a time, so the race
cannot happen there.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from pinterest_capi import track
from pinterest_capi.models import AdAccount, OutboxEvent, QueuedEvent
from tests.reliability.harness import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "ada@example.com"


@pytest.fixture
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("one writer at a time on SQLite: the race is PostgreSQL's (PostgreSQL leg)")


def add_account(ad_account_id: str, tenant: str = "demo") -> AdAccount:
    account = AdAccount(tenant=tenant, ad_account_id=ad_account_id)
    account.set_token("pina_race_TOKEN")
    account.save()
    return account


def _in_thread(work) -> tuple[threading.Thread, dict]:
    """Run ``work`` on its own database connection; its outcome lands in the dict."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except Exception as exc:  # the test asserts on it
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _waiting_on_a_lock() -> bool:
    """Another session of this database waits for a row lock (the delete, on the shop's)."""
    with connections["default"].cursor() as cursor:
        # pg_locks, not pg_stat_activity: that one is read once per transaction.
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0


def test_an_account_deleted_during_the_shops_transaction_does_not_fail_its_commit(
    postgresql_only,
):
    doomed, kept = add_account("111"), add_account("222")
    deleter = None
    with transaction.atomic():
        rows = track("lead", user_data={"em": EMAIL}, event_id="lead-race")
        assert {r.account_id for r in rows} == {doomed.pk, kept.pk}
        # The operator deletes the account (as the admin does: Django's collector) meanwhile.
        deleter, outcome = _in_thread(lambda: AdAccount.objects.filter(pk=doomed.pk).delete())
        assert wait_until(lambda: _waiting_on_a_lock() or not deleter.is_alive(), timeout=10)
        assert deleter.is_alive(), "the delete did not wait for the shop's transaction"
        # ... the shop's own writes go on; then the shop commits.
        AdAccount.objects.filter(pk=kept.pk).update(name="the shop's own write")
    # The commit went through: the shop's write and the event for the account that stays.
    assert AdAccount.objects.get(pk=kept.pk).name == "the shop's own write"
    deleter.join(timeout=30)
    assert not deleter.is_alive()
    assert "error" not in outcome, outcome.get("error")
    # The delete went through too, with the event committed while it waited.
    assert not AdAccount.objects.filter(pk=doomed.pk).exists()
    assert list(OutboxEvent.objects.values_list("account_id", flat=True)) == [kept.pk]
    assert list(QueuedEvent.objects.values_list("account_id", flat=True)) == [kept.pk]


def test_a_recording_that_starts_while_the_account_is_being_deleted_skips_it(postgresql_only):
    doomed, kept = add_account("111"), add_account("222")
    deleting = threading.Event()
    release = threading.Event()

    def delete_slowly() -> None:
        with transaction.atomic():
            AdAccount.objects.filter(pk=doomed.pk).delete()
            deleting.set()
            release.wait(timeout=30)

    deleter, outcome = _in_thread(delete_slowly)
    assert deleting.wait(timeout=10)
    recorder, recorded = _in_thread(
        lambda: [r.account_id for r in track("lead", user_data={"em": EMAIL}, event_id="lead-2")]
    )
    # The recording waits for the delete to end (its account row is locked by the delete) ...
    assert wait_until(lambda: _waiting_on_a_lock() or not recorder.is_alive(), timeout=10)
    release.set()
    deleter.join(timeout=30)
    recorder.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    # ... and then writes for the account that is left only.
    assert "error" not in recorded, recorded.get("error")
    assert recorded["result"] == [kept.pk]
    assert list(OutboxEvent.objects.values_list("account_id", flat=True)) == [kept.pk]
