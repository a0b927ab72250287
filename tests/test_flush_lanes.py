"""FLUSH_LANES: one worker drains a backlog in several flush loops at once (PostgreSQL).

Proven with a request the sandbox holds on the wire: while that lane waits, the other lane
claims, sends and saves its own rows; afterwards every event was received exactly once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection
from django.db.backends.signals import connection_created

from pinterest_capi import client, delivery
from pinterest_capi.models import EventStatus, OutboxEvent, QueuedEvent
from pinterest_capi.sandbox import Fault
from tests.conftest import make_outbox_events
from tests.reliability.harness import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("flush lanes run on PostgreSQL only (SQLite has one writer): PostgreSQL leg")


def _flush_in_thread() -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run() -> None:
        try:
            result["summary"] = delivery.flush(until_empty=True)
        finally:
            connection.close()
            client.close_thread_client()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _lanes(settings, lanes: int) -> None:
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "CLAIM_SIZE": 10,
        "BATCH_SIZE": 10,
        "FLUSH_LANES": lanes,
        # The held request must outlast a slow machine, never time out.
        "READ_TIMEOUT": 60.0,
        "REQUEST_DEADLINE": 90.0,
        "LEASE_SECONDS": 120,
    }


def test_while_one_lane_waits_for_pinterest_the_other_delivers(
    postgresql_only, account, sandbox, settings
):
    _lanes(settings, 2)
    make_outbox_events(account, 40)
    clients_before = set(client._clients)
    hold = threading.Event()
    sandbox.faults.add(Fault(hold=hold, times=1))  # the first request stays on the wire
    thread, result = _flush_in_thread()
    try:
        # One lane is stuck in its first request; the other sends and saves two batches.
        assert wait_until(lambda: len(sandbox.ledger.requests()) >= 3, 30)
        assert wait_until(
            lambda: OutboxEvent.objects.filter(status=EventStatus.SENT).count() == 20, 30
        )
    finally:
        hold.set()
        thread.join(60)
    assert result["summary"].sent == 40, result
    ids = sandbox.ledger.event_ids()
    assert len(ids) == 40 and len(set(ids)) == 40
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {EventStatus.SENT}
    # The lanes' HTTP clients are kept by lane number, for the next flush; nothing else.
    pid = os.getpid()
    assert set(client._clients) - clients_before == {
        (pid, "lane-0", "http"),  # the sandbox's URL: plain HTTP
        (pid, "lane-1", "http"),
    }


def test_the_next_flush_sends_over_the_connections_the_lanes_kept(
    postgresql_only, account, sandbox, settings
):
    """A lane's thread ends with its flush, its HTTP client does not: the next flush's lanes
    send over the connections the previous one opened (in a worker, no new TCP connection and
    TLS handshake to Pinterest per lane for every flush)."""
    _lanes(settings, 2)
    make_outbox_events(account, 40)
    first = delivery.flush(until_empty=True)
    make_outbox_events(account, 40, start=100)
    second = delivery.flush(until_empty=True)
    assert first.sent == 40 and second.sent == 40, (first, second)
    requests = sandbox.ledger.requests()
    assert len(requests) == 8 and len(set(sandbox.ledger.event_ids())) == 80
    # Two lanes, one kept-alive connection each, for both flushes (four with a client per flush).
    ports = {r["client_port"] for r in requests}
    assert len(ports) <= 2, [r["client_port"] for r in requests]


def test_one_lane_waits_for_its_request(postgresql_only, account, sandbox, settings):
    """The control: with FLUSH_LANES = 1 nothing else is sent while the request is held."""
    _lanes(settings, 1)
    make_outbox_events(account, 40)
    hold = threading.Event()
    sandbox.faults.add(Fault(hold=hold, times=1))
    thread, result = _flush_in_thread()
    try:
        assert wait_until(lambda: len(sandbox.ledger.requests()) >= 1, 30)
        assert not wait_until(lambda: len(sandbox.ledger.requests()) > 1, 1.0)
    finally:
        hold.set()
        thread.join(60)
    assert result["summary"].sent == 40, result
    assert len(set(sandbox.ledger.event_ids())) == 40


def test_each_lane_opens_its_http_client_before_its_first_rows_arrive_best_effort(
    postgresql_only, account, sandbox, settings, monkeypatch
):
    """A lane opens its client while its first claim is on the database (not with its first
    request); if that fails, the flush goes on and the request opens the client itself."""
    _lanes(settings, 2)
    make_outbox_events(account, 40)
    real_get_client = client.get_client
    opened_by: list[str] = []

    def get_client_failing_first_time_per_thread(url=None):
        name = threading.current_thread().name
        if name not in opened_by:
            opened_by.append(name)
            raise OSError("CA bundle not readable (first try)")
        return real_get_client(url)

    monkeypatch.setattr(client, "get_client", get_client_failing_first_time_per_thread)
    summary = delivery.flush(until_empty=True)
    assert summary.sent == 40 and summary.errors == [], summary
    assert len(opened_by) == 2  # each lane's first attempt was the warm-up, not a request
    assert len(set(sandbox.ledger.event_ids())) == 40


@contextmanager
def new_database_sessions() -> Iterator[list[str]]:
    """The names of the threads that open a database connection inside the block."""
    opened: list[str] = []

    def note(sender, connection, **kwargs) -> None:
        opened.append(threading.current_thread().name)

    connection_created.connect(note)
    try:
        yield opened
    finally:
        connection_created.disconnect(note)


def test_what_fits_in_one_claim_is_sent_from_the_calling_thread_without_lanes(
    postgresql_only, account, sandbox, settings
):
    """A worker's nudged flush is the few rows of the last commits: no lane threads, no new
    database sessions (each is a new PostgreSQL backend), one request from the caller."""
    _lanes(settings, 2)
    make_outbox_events(account, 7)  # CLAIM_SIZE is 10
    connection.ensure_connection()  # the caller's own, as a worker's would be
    clients_before = set(client._clients)
    with new_database_sessions() as opened:
        summary = delivery.flush(until_empty=True)
    assert summary.sent == 7 and summary.claimed == 7, summary
    assert opened == []
    assert set(client._clients) - clients_before == {
        (os.getpid(), threading.get_ident(), "http")  # this thread's client, no lane's
    }
    assert len(sandbox.ledger.requests()) == 1
    assert sorted(sandbox.ledger.event_ids()) == sorted(
        OutboxEvent.objects.values_list("event_id", flat=True)
    )
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {EventStatus.SENT}


def test_a_full_claim_hands_its_rows_to_the_first_lane_and_starts_the_lanes(
    postgresql_only, account, sandbox, settings
):
    """A claim that comes back full means a backlog: the lanes take over, lane 0 with the
    rows the caller claimed. Every event is sent once; no row is left leased or queued."""
    _lanes(settings, 2)
    make_outbox_events(account, 45)
    connection.ensure_connection()
    with new_database_sessions() as opened:
        summary = delivery.flush(until_empty=True)
    assert summary.sent == 45 and summary.claimed == 45 and summary.released == 0, summary
    # Each lane: its own connection and its claim helper's.
    assert sorted(name.rsplit("_", 1)[0] for name in opened) == [
        "pcapi-claim",
        "pcapi-claim",
        "pcapi-lane",
        "pcapi-lane",
    ]
    ids = sandbox.ledger.event_ids()
    assert len(ids) == 45 and len(set(ids)) == 45
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {EventStatus.SENT}
    assert OutboxEvent.objects.filter(attempts=1).count() == 45
    assert not QueuedEvent.objects.exists()
    assert {(os.getpid(), "lane-0", "http"), (os.getpid(), "lane-1", "http")} <= set(
        client._clients
    )
