"""Rows of the reliability table proven in one process against the sandbox server.

(F1, F2, F8, F9 and F13 need several processes: see tests/reliability/.)
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.utils import timezone

from pinterest_capi import delivery
from pinterest_capi.models import AdAccount, EventStatus, OutboxEvent
from pinterest_capi.sandbox import Fault
from tests.conftest import make_outbox_events


def _third_account(sandbox):
    sandbox.add_account("549755885177", "pina_sandbox_TOKEN_third")
    acct = AdAccount(tenant="third", ad_account_id="549755885177", name="Third")
    acct.set_token("pina_sandbox_TOKEN_third")
    acct.save()
    return acct


@pytest.mark.django_db
def test_f3_429_storm_pauses_only_that_account(account, second_account, sandbox):
    third = _third_account(sandbox)
    make_outbox_events(account, 300)
    make_outbox_events(second_account, 300, start=1000)
    make_outbox_events(third, 300, start=2000)
    sandbox.faults.add(Fault(status=429, retry_after="30", ad_account_id=account.ad_account_id))
    started = time.monotonic()
    summary = delivery.flush(until_empty=True)
    elapsed = time.monotonic() - started
    # B and C delivered in this very flush, A is paused for 30 s with its events waiting.
    for acct in (second_account, third):
        assert OutboxEvent.objects.filter(account=acct, status=EventStatus.SENT).count() == 300
    a_rows = OutboxEvent.objects.filter(account=account)
    assert a_rows.filter(status=EventStatus.PENDING, attempts=0).count() == 300
    account.refresh_from_db()
    assert 25 < (account.paused_until - timezone.now()).total_seconds() <= 30
    assert summary.paused_accounts == [account.ad_account_id]
    # A was asked once during the storm, not hammered.
    a_requests = [
        r for r in sandbox.ledger.requests() if r["ad_account_id"] == account.ad_account_id
    ]
    assert len(a_requests) == 1
    assert elapsed < 10


@pytest.mark.django_db(transaction=True)
def test_f5_slow_drip_is_abandoned_and_no_other_worker_claims_it_meanwhile(
    account, sandbox, settings
):
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "READ_TIMEOUT": 2.0,
        "REQUEST_DEADLINE": 1.5,
        "LEASE_SECONDS": 30,
        "BACKOFF_BASE_SECONDS": 60,
    }
    make_outbox_events(account, 5)
    sandbox.faults.add(Fault(drip=0.3, times=1))
    results = {}

    def worker():
        try:
            results["summary"] = delivery.flush()
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    started = time.monotonic()
    thread.start()
    sandbox.ledger.wait_for_requests(1, timeout=5)
    # While the first worker is stuck on the dripping answer, a second claim finds nothing.
    owner, rows = delivery.claim(100)
    assert rows == []
    thread.join(10)
    elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 1.5 + 2.0 + 1.0, elapsed  # stopped at the deadline, not by timeouts
    assert results["summary"].retrying == 5
    assert OutboxEvent.objects.filter(status=EventStatus.PENDING, attempts=1).count() == 5
