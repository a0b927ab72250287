"""Soak: 50,000 events, a fifth of the requests failing in assorted ways, nothing lost.

Runs in CI on both databases with modest timings (batches of 100, so about
600 requests). Counts are reconciled three ways: the outbox, the attempt rows
and the sandbox's ledger.
"""

from __future__ import annotations

import collections
import time

import pytest
from django.db.models import Sum

from pinterest_capi import delivery
from pinterest_capi.models import (
    AdAccount,
    AttemptOutcome,
    DeliveryAttempt,
    EventStatus,
    OutboxEvent,
)
from pinterest_capi.sandbox import Fault
from tests.conftest import make_outbox_events

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

EVENTS = 50_000


def test_soak_50000_events_with_a_fifth_of_requests_failing(
    account, second_account, sandbox, settings
):
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "BATCH_SIZE": 100,
        "MAX_ATTEMPTS": 50,
        "BACKOFF_BASE_SECONDS": 0,
        "READ_TIMEOUT": 0.4,
        "REQUEST_DEADLINE": 2.0,
    }
    half = EVENTS // 2
    make_outbox_events(account, half)
    make_outbox_events(second_account, EVENTS - half, start=half)
    for fault in (
        Fault(status=500, rate=0.06, seed=1),
        Fault(status=503, rate=0.05, seed=2),
        Fault(status=502, rate=0.03, seed=3),
        Fault(status=429, retry_after="0", rate=0.03, seed=4),
        Fault(drop=True, rate=0.02, seed=5),
        Fault(latency=0.6, rate=0.01, seed=6),  # read timeout: maybe sent
    ):
        sandbox.faults.add(fault)

    started = time.monotonic()
    rounds = 0
    while OutboxEvent.objects.exclude(status=EventStatus.SENT).exists():
        rounds += 1
        assert rounds < 400, "the backlog does not drain"
        summary = delivery.flush(until_empty=True)
        assert summary.errors == []
        if summary.claimed == 0:
            time.sleep(0.05)  # a 429 pause of 0 s is still in the past only a moment later
    elapsed = time.monotonic() - started

    # The outbox: everything sent.
    assert OutboxEvent.objects.filter(status=EventStatus.SENT).count() == EVENTS
    assert not AdAccount.objects.exclude(auth_error="").exists()

    # The ledger: every event processed at least once; repeats only from lost answers.
    ids = sandbox.ledger.event_ids()
    counts = collections.Counter(ids)
    assert set(counts) == set(OutboxEvent.objects.values_list("event_id", flat=True))
    repeats = sum(n - 1 for n in counts.values())
    lost_answers = (
        DeliveryAttempt.objects.filter(
            outcome__in=[AttemptOutcome.CONNECTION_ERROR, AttemptOutcome.TIMEOUT]
        ).aggregate(n=Sum("num_events"))["n"]
        or 0
    )
    assert repeats <= lost_answers  # each repeat is a resend after a dropped/timed-out answer

    # The attempts: successful requests cover each event exactly once.
    ok = DeliveryAttempt.objects.filter(outcome=AttemptOutcome.SUCCESS)
    assert ok.aggregate(n=Sum("num_events"))["n"] == EVENTS
    requests = len(sandbox.ledger.requests())
    failed_requests = DeliveryAttempt.objects.exclude(outcome=AttemptOutcome.SUCCESS).count()
    assert requests == DeliveryAttempt.objects.count()
    share = failed_requests / requests
    assert 0.1 < share < 0.35, share
    print(
        f"\nsoak: {EVENTS} events, {requests} requests ({share:.0%} failed), "
        f"{repeats} resent after lost answers, 0 lost, {elapsed:.1f} s, {rounds} rounds"
    )
