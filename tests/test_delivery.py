"""Delivery against the real sandbox server over loopback: batches, results, every error class."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from pinterest_capi import delivery, outbox
from pinterest_capi.models import (
    AdAccount,
    AttemptEvent,
    AttemptOutcome,
    DeliveryAttempt,
    EventStatus,
    OutboxEvent,
)
from pinterest_capi.sandbox import Fault
from tests.conftest import make_outbox_events
from tests.pinterest_schema import validate_request_body

pytestmark = pytest.mark.django_db


def statuses(account=None):
    qs = (
        OutboxEvent.objects.all()
        if account is None
        else OutboxEvent.objects.filter(account=account)
    )
    return {
        s: qs.filter(status=s).count() for s in EventStatus.values if qs.filter(status=s).exists()
    }


def test_backlog_goes_in_batches_of_1000_and_every_event_is_sent_once(account, sandbox, one_lane):
    make_outbox_events(account, 2500)
    summary = delivery.flush(until_empty=True)
    assert summary.sent == 2500 and summary.failed == 0
    ids = sandbox.ledger.event_ids()
    assert len(ids) == 2500 and len(set(ids)) == 2500
    sizes = [r["num_events"] for r in sandbox.ledger.requests()]
    assert sorted(sizes) == [500, 1000, 1000]
    assert statuses(account) == {EventStatus.SENT: 2500}
    assert not OutboxEvent.objects.exclude(attempts=1).exists()
    assert not OutboxEvent.objects.filter(sent_at__isnull=True).exists()
    attempts = DeliveryAttempt.objects.filter(account=account)
    assert attempts.count() == 3
    assert set(attempts.values_list("outcome", flat=True)) == {AttemptOutcome.SUCCESS}
    assert AttemptEvent.objects.filter(result="processed").count() == 2500
    account.refresh_from_db()
    assert account.last_success_at is not None


def test_every_request_validates_against_pinterests_published_schema(account, sandbox):
    make_outbox_events(account, 30)
    delivery.flush(until_empty=True)
    by_request: dict[int, list] = {}
    for item in sandbox.ledger.events():
        by_request.setdefault(item["request_seq"], []).append(item["event"])
    assert by_request
    for events in by_request.values():
        validate_request_body({"data": events})


def test_batch_size_setting_is_honoured(account, sandbox, settings, one_lane):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "BATCH_SIZE": 7}
    make_outbox_events(account, 20)
    delivery.flush(until_empty=True)
    assert [r["num_events"] for r in sandbox.ledger.requests()] == [7, 7, 6]


@pytest.mark.parametrize("as_422", [False, True])
def test_partial_batch_applies_each_status_by_index(account, sandbox, as_422):
    rows = make_outbox_events(account, 4)
    sandbox.faults.add(
        Fault(event_status={1: "failed"}, message="Invalid currency code", as_422=as_422, times=1)
    )
    summary = delivery.flush(until_empty=True)
    assert (summary.sent, summary.failed) == (3, 1)
    failed = OutboxEvent.objects.get(status=EventStatus.FAILED)
    assert failed.pk == rows[1].pk
    assert "Invalid currency code" in failed.last_error
    attempt = DeliveryAttempt.objects.get()
    assert attempt.outcome == AttemptOutcome.PARTIAL and attempt.num_failed == 1
    # A failed event is not re-sent by itself.
    delivery.flush(until_empty=True)
    assert len(sandbox.ledger.requests()) == 1


def test_poison_event_is_isolated_by_splitting_the_batch(account, sandbox):
    def poison(n, event):
        if n == 617:
            event = {**event, "unknown_field": "x"}
        return event

    make_outbox_events(account, 1000, payload_override=poison)
    summary = delivery.flush(until_empty=True)
    assert summary.sent == 999 and summary.failed == 1
    bad = OutboxEvent.objects.get(status=EventStatus.FAILED)
    assert bad.event_id == "checkout-T617"
    assert "unknown_field" in bad.last_error or "Additional properties" in bad.last_error
    requests = len(sandbox.ledger.requests())
    assert requests <= 2 * 10 + 1, requests  # binary split: about 2·log2(1000) requests
    ids = sandbox.ledger.event_ids()
    assert len(ids) == len(set(ids)) == 999


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_pause_the_account_and_keep_events_pending(
    account, second_account, sandbox, status, admin_client
):
    make_outbox_events(account, 5)
    make_outbox_events(second_account, 3, start=100)
    sandbox.faults.add(Fault(status=status, ad_account_id=account.ad_account_id))
    delivery.flush(until_empty=True)
    account.refresh_from_db()
    assert str(status) in account.auth_error
    assert statuses(account) == {EventStatus.PENDING: 5}
    assert not OutboxEvent.objects.filter(account=account).exclude(attempts=0).exists()
    assert statuses(second_account) == {EventStatus.SENT: 3}
    # Visible in the admin, with the reason.
    from django.urls import reverse

    page = admin_client.get(reverse("admin:pinterest_capi_adaccount_changelist")).content.decode()
    assert "token refused" in page and str(status) in page
    # Paused: a later flush sends nothing for it.
    before = len(sandbox.ledger.requests())
    delivery.flush(until_empty=True)
    assert len(sandbox.ledger.requests()) == before
    # A new token resumes it, and each event is sent once.
    sandbox.faults.clear()
    account.set_token("pina_sandbox_TOKEN_9f3c")
    account.save()
    delivery.flush(until_empty=True)
    assert statuses(account) == {EventStatus.SENT: 5}
    ids = sandbox.ledger.event_ids(ad_account_id=account.ad_account_id)
    assert len(ids) == len(set(ids)) == 5


def test_wrong_token_is_reported_by_pinterest_as_401(account, sandbox):
    account.set_token("pina_wrong")
    account.save()
    make_outbox_events(account, 2)
    delivery.flush()
    account.refresh_from_db()
    assert "401" in account.auth_error
    assert DeliveryAttempt.objects.get().outcome == AttemptOutcome.AUTH_ERROR


@pytest.mark.parametrize("retry_after", ["120", "http-date"])
def test_429_pauses_only_that_account_until_retry_after(
    account, second_account, sandbox, retry_after
):
    if retry_after == "http-date":
        from email.utils import format_datetime

        retry_after = format_datetime(timezone.now() + timedelta(seconds=120), usegmt=True)
    make_outbox_events(account, 4)
    make_outbox_events(second_account, 4, start=50)
    sandbox.faults.add(
        Fault(status=429, retry_after=retry_after, ad_account_id=account.ad_account_id)
    )
    delivery.flush(until_empty=True)
    account.refresh_from_db()
    assert account.paused_until is not None
    wait = (account.paused_until - timezone.now()).total_seconds()
    assert 100 < wait <= 121, wait
    assert "429" in account.pause_reason
    # 429 does not use up the attempt budget; the events wait, the other account delivered.
    assert statuses(account) == {EventStatus.PENDING: 4}
    assert not OutboxEvent.objects.filter(account=account).exclude(attempts=0).exists()
    assert statuses(second_account) == {EventStatus.SENT: 4}
    # Once the pause is over the events go out.
    sandbox.faults.clear()
    AdAccount.objects.filter(pk=account.pk).update(
        paused_until=timezone.now() - timedelta(seconds=1)
    )
    delivery.flush(until_empty=True)
    assert statuses(account) == {EventStatus.SENT: 4}


def test_server_errors_back_off_and_resend_the_same_event_ids(account, sandbox):
    make_outbox_events(account, 1)
    for status in (500, 502, 503):
        sandbox.faults.add(Fault(status=status, times=1))
    summary = delivery.flush(until_empty=True)
    assert summary.sent == 1
    event = OutboxEvent.objects.get()
    assert event.status == EventStatus.SENT and event.attempts == 4
    outcomes = list(DeliveryAttempt.objects.order_by("pk").values_list("http_status", "outcome"))
    assert outcomes == [
        (500, AttemptOutcome.SERVER_ERROR),
        (502, AttemptOutcome.SERVER_ERROR),
        (503, AttemptOutcome.SERVER_ERROR),
        (200, AttemptOutcome.SUCCESS),
    ]
    assert [r["status_code"] for r in sandbox.ledger.requests()] == [500, 502, 503, 200]
    assert sandbox.ledger.event_ids() == [event.event_id]


def test_backoff_delays_the_next_attempt_by_the_database_clock(account, sandbox, settings):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "BACKOFF_BASE_SECONDS": 60}
    make_outbox_events(account, 1)
    sandbox.faults.add(Fault(status=503))
    delivery.flush(until_empty=True)
    event = OutboxEvent.objects.get()
    delay = (event.next_attempt_at - timezone.now()).total_seconds()
    assert event.status == EventStatus.PENDING and event.attempts == 1
    assert 25 <= delay <= 61, delay  # base 60 s, jittered between half and full
    assert delivery.flush().claimed == 0  # not due yet


def test_after_the_attempt_budget_the_event_fails_and_can_be_resent(account, sandbox, settings):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "MAX_ATTEMPTS": 3}
    make_outbox_events(account, 2)
    sandbox.faults.add(Fault(status=503))
    delivery.flush(until_empty=True)
    assert statuses(account) == {EventStatus.FAILED: 2}
    event = OutboxEvent.objects.first()
    assert event.attempts == 3 and "Gave up after 3 attempts" in event.last_error
    sandbox.faults.clear()
    assert outbox.requeue(OutboxEvent.objects.all()) == 2
    delivery.flush(until_empty=True)
    assert statuses(account) == {EventStatus.SENT: 2}
    assert sorted(set(sandbox.ledger.event_ids())) == sorted(
        OutboxEvent.objects.values_list("event_id", flat=True)
    )


def test_read_timeout_is_retried_with_the_same_ids(account, sandbox, settings):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "READ_TIMEOUT": 0.5}
    make_outbox_events(account, 3)
    sandbox.faults.add(Fault(latency=1.5, times=1))
    delivery.flush(until_empty=True)
    first = DeliveryAttempt.objects.order_by("pk").first()
    assert first.outcome == AttemptOutcome.TIMEOUT
    assert statuses(account) == {EventStatus.SENT: 3}
    ids = sandbox.ledger.event_ids()
    # The slow request reached the sandbox (maybe sent); the resend has the same ids.
    assert sorted(set(ids)) == sorted(OutboxEvent.objects.values_list("event_id", flat=True))


def test_slow_drip_is_abandoned_at_the_overall_deadline(account, sandbox, settings):
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "READ_TIMEOUT": 2.0,
        "REQUEST_DEADLINE": 1.5,
    }
    make_outbox_events(account, 1)
    sandbox.faults.add(Fault(drip=0.2, times=1))
    started = time.monotonic()
    summary = delivery.flush()
    elapsed = time.monotonic() - started
    attempt = DeliveryAttempt.objects.get()
    assert attempt.outcome == AttemptOutcome.TIMEOUT
    assert "deadline" in attempt.error
    # Each byte arrived well inside the read timeout: only the overall deadline stopped it.
    assert elapsed < 2.0 + 1.5, elapsed
    assert summary.retrying == 1


def test_dropped_connection_is_retried(account, sandbox):
    make_outbox_events(account, 2)
    sandbox.faults.add(Fault(drop=True, times=1))
    delivery.flush(until_empty=True)
    outcomes = list(DeliveryAttempt.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == [AttemptOutcome.CONNECTION_ERROR, AttemptOutcome.SUCCESS]
    assert statuses(account) == {EventStatus.SENT: 2}


def test_connection_refused_is_not_sent_and_retried_later(account, settings, sandbox):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "API_BASE_URL": "http://127.0.0.1:9/v5"}
    make_outbox_events(account, 2)
    delivery.flush()
    attempt = DeliveryAttempt.objects.get()
    assert attempt.outcome == AttemptOutcome.CONNECTION_ERROR and attempt.http_status is None
    assert statuses(account) == {EventStatus.PENDING: 2}
    assert sandbox.ledger.requests() == []


def test_test_mode_accounts_send_with_test_true(account, sandbox):
    account.test_mode = True
    account.save()
    make_outbox_events(account, 2)
    delivery.flush()
    assert {e["test"] for e in sandbox.ledger.events()} == {True}
    assert DeliveryAttempt.objects.get().test_mode is True


def test_undecryptable_token_flags_the_account_and_sends_nothing(
    account, second_account, sandbox, settings
):
    from cryptography.fernet import Fernet

    other_key = Fernet.generate_key().decode()
    foreign = Fernet(other_key).encrypt(b"pina_some_token").decode()
    AdAccount.objects.filter(pk=account.pk).update(token_ciphertext=foreign)
    make_outbox_events(account, 2)
    make_outbox_events(second_account, 2, start=10)
    delivery.flush(until_empty=True)
    account.refresh_from_db()
    assert "cannot be decrypted" in account.auth_error
    assert statuses(account) == {EventStatus.PENDING: 2}
    assert statuses(second_account) == {EventStatus.SENT: 2}
    assert {r["ad_account_id"] for r in sandbox.ledger.requests()} == {"549755885176"}
    assert DeliveryAttempt.objects.get(account=account).outcome == AttemptOutcome.CONFIG_ERROR


def test_a_claimed_row_is_not_claimed_again_until_its_lease_lapses(account):
    make_outbox_events(account, 3)
    owner_a, rows_a = delivery.claim(10)
    assert len(rows_a) == 3
    owner_b, rows_b = delivery.claim(10)
    assert rows_b == []
    OutboxEvent.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    owner_c, rows_c = delivery.claim(10)
    assert {r.pk for r in rows_c} == {r.pk for r in rows_a}
    assert set(OutboxEvent.objects.values_list("lease_owner", flat=True)) == {owner_c}


def test_results_are_applied_only_by_the_lease_owner(account, sandbox):
    make_outbox_events(account, 2)
    owner, rows = delivery.claim(10)
    # Another worker took the rows over (our lease lapsed): our late results must not land.
    OutboxEvent.objects.update(lease_owner="someone-else")
    delivery.FlushCycle(owner, rows).run()
    assert statuses(account) == {EventStatus.IN_FLIGHT: 2}


def test_inactive_and_paused_accounts_are_not_claimed(account):
    make_outbox_events(account, 2)
    AdAccount.objects.filter(pk=account.pk).update(active=False)
    assert delivery.claim(10)[1] == []
    AdAccount.objects.filter(pk=account.pk).update(
        active=True, paused_until=timezone.now() + timedelta(minutes=5)
    )
    assert delivery.claim(10)[1] == []


def test_attempt_rows_never_hold_the_token(account, sandbox):
    make_outbox_events(account, 2)
    sandbox.faults.add(Fault(status=401, times=1))
    delivery.flush()
    dump = json.dumps(list(DeliveryAttempt.objects.values()), default=str)
    dump += json.dumps(list(AttemptEvent.objects.values()), default=str)
    assert "pina_sandbox_TOKEN_9f3c" not in dump


def test_request_budget_per_account_pauses_the_account_not_the_others(
    account, second_account, sandbox, settings
):
    # 12 a minute = 2 per 10-second window, counted in the database for every worker.
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "RATE_LIMIT_PER_MINUTE": 12,
        "BATCH_SIZE": 1,
    }
    make_outbox_events(account, 5)
    make_outbox_events(second_account, 1, start=100)
    summary = delivery.flush(until_empty=True)
    by_account = [r["ad_account_id"] for r in sandbox.ledger.requests()]
    assert by_account.count(account.ad_account_id) <= 2
    assert by_account.count(second_account.ad_account_id) == 1
    account.refresh_from_db()
    assert account.paused_until is not None and "requests a minute" in account.pause_reason
    waiting = OutboxEvent.objects.filter(account=account, status=EventStatus.PENDING)
    assert waiting.count() == 5 - by_account.count(account.ad_account_id)
    assert not waiting.exclude(attempts=0).exists()  # waiting for the budget costs no attempt
    assert summary.sent == by_account.count(account.ad_account_id) + 1


def test_a_rate_limit_pause_never_shortens_a_longer_manual_pause(account, sandbox):
    far = timezone.now() + timedelta(days=365)
    make_outbox_events(account, 2)
    owner, rows = delivery.claim(10)  # claimed before the operator paused the account
    AdAccount.objects.filter(pk=account.pk).update(paused_until=far, pause_reason="Paused by ops")
    sandbox.faults.add(Fault(status=429, retry_after="5"))
    delivery.FlushCycle(owner, rows).run()
    account.refresh_from_db()
    assert account.paused_until == far and account.pause_reason == "Paused by ops"
    assert "429" in account.last_error
