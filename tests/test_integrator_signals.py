"""event_delivered / event_failed against the real sandbox: once per batch, after commit.

Transactional tests (``transaction=True``): the flush commits for real, as in a worker, so
"after commit" is what is tested, not a captured callback list.
"""

from __future__ import annotations

import logging

import pytest
from django.db import transaction

from pinterest_capi import delivery
from pinterest_capi.models import EventStatus, OutboxEvent
from pinterest_capi.sandbox import Fault
from pinterest_capi.signals import event_delivered, event_failed
from tests.conftest import make_outbox_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard():
    """Connects a receiver to both signals; records each call with what the DB said then."""
    calls: list[dict] = []

    def receiver(signal, sender, events, account, reason=None, **kwargs):
        calls.append(
            {
                "signal": "delivered" if signal is event_delivered else "failed",
                "sender": sender,
                "events": sorted(events),
                "account": account.ad_account_id,
                "reason": reason,
                "in_transaction": transaction.get_connection().in_atomic_block,
                # Read back by the receiver itself: the rows must already be committed.
                "statuses": set(
                    OutboxEvent.objects.filter(pk__in=events).values_list("status", flat=True)
                ),
            }
        )

    event_delivered.connect(receiver, dispatch_uid="test-heard-delivered")
    event_failed.connect(receiver, dispatch_uid="test-heard-failed")
    yield calls
    event_delivered.disconnect(dispatch_uid="test-heard-delivered")
    event_failed.disconnect(dispatch_uid="test-heard-failed")


def test_a_partial_batch_sends_one_delivered_and_one_failed_signal_after_commit(
    account, sandbox, heard
):
    rows = make_outbox_events(account, 5)
    sandbox.faults.add(Fault(event_status={2: "failed"}, message="Invalid currency code", times=1))
    summary = delivery.flush(until_empty=True)
    assert (summary.sent, summary.failed) == (4, 1)
    assert len(sandbox.ledger.requests()) == 1
    by_signal = {call["signal"]: call for call in heard}
    assert len(heard) == 2 and set(by_signal) == {"delivered", "failed"}  # once per batch
    delivered, failed = by_signal["delivered"], by_signal["failed"]
    assert delivered["events"] == sorted(r.pk for i, r in enumerate(rows) if i != 2)
    assert failed["events"] == [rows[2].pk]
    assert "Invalid currency code" in failed["reason"] and delivered["reason"] is None
    assert delivered["sender"] is OutboxEvent and delivered["account"] == account.ad_account_id
    assert delivered["statuses"] == {EventStatus.SENT}
    assert failed["statuses"] == {EventStatus.FAILED}
    assert not delivered["in_transaction"] and not failed["in_transaction"]


def test_one_signal_per_batch_and_per_failure_reason(account, sandbox, heard, settings, one_lane):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "BATCH_SIZE": 10}
    make_outbox_events(account, 25)
    sandbox.faults.add(Fault(status=400, message="Additional properties are not allowed"))
    delivery.flush(until_empty=True)  # whole batches rejected: split down to single events
    failed = [call for call in heard if call["signal"] == "failed"]
    assert sum(len(call["events"]) for call in failed) == 25
    assert {call["reason"] for call in failed} == {"Additional properties are not allowed"}
    assert len(failed) == 25  # a 400 is split until each event fails alone: one batch each
    sandbox.faults.clear()
    heard.clear()
    make_outbox_events(account, 25, start=100)
    delivery.flush(until_empty=True)
    assert [len(call["events"]) for call in heard] == [10, 10, 5]


def test_no_signal_when_the_results_roll_back(account, sandbox, heard):
    make_outbox_events(account, 3)
    with pytest.raises(RuntimeError), transaction.atomic():
        delivery.flush(until_empty=True)  # results written inside the outer transaction...
        assert heard == []  # ...and nothing is announced before it commits
        raise RuntimeError("the outer transaction rolls back")
    assert heard == []
    assert not OutboxEvent.objects.filter(status=EventStatus.SENT).exists()


def test_a_raising_receiver_is_logged_and_never_breaks_the_flush(
    account, sandbox, heard, caplog, one_lane
):
    def broken(**kwargs):
        raise ValueError("integrator bug")

    event_delivered.connect(broken, dispatch_uid="test-broken")
    try:
        make_outbox_events(account, 1500)
        with caplog.at_level(logging.ERROR, logger="pinterest_capi.signals"):
            summary = delivery.flush(until_empty=True)
    finally:
        event_delivered.disconnect(dispatch_uid="test-broken")
    assert summary.sent == 1500 and summary.errors == []
    assert not OutboxEvent.objects.exclude(status=EventStatus.SENT).exists()
    assert len(sandbox.ledger.event_ids()) == 1500  # both batches went out
    assert [len(call["events"]) for call in heard] == [1000, 500]  # others still hear
    errors = [r for r in caplog.records if "event_delivered" in r.getMessage()]
    assert len(errors) == 2 and errors[0].exc_info[0] is ValueError
