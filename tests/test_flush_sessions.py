"""A flush lane's own connection carries the flush's settings for its session (PostgreSQL).

Lanes run on their own threads with their own connections; those get ``synchronous_commit``
off and the planner settings once, so their transactions need no ``SET LOCAL`` each and a
write of one statement needs no transaction. The connection of the thread that called the
flush (a shop's, a worker's) must never get them: they would outlive the flush there.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from pinterest_capi import client, delivery
from pinterest_capi.delivery.txn import (
    bookkeeping,
    configure_session,
    configured,
    one_statement,
)
from pinterest_capi.models import EventStatus, OutboxEvent
from tests.conftest import make_outbox_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("session settings are PostgreSQL's (SQLite has none): PostgreSQL leg")


def show(name: str, conn=connection) -> str:
    with conn.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def in_own_thread(fn):
    """Run ``fn`` on a thread of its own (its own connection, closed after), return its result."""
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_a_configured_connection_keeps_the_settings_for_its_session():
    def lane() -> dict:
        configure_session("default")
        with CaptureQueriesContext(connection) as bookkept:
            with bookkeeping("default"):
                OutboxEvent.objects.filter(pk=-1).update(attempts=0)
        with CaptureQueriesContext(connection) as single:
            with one_statement("default"):
                in_transaction = connection.in_atomic_block
                OutboxEvent.objects.filter(pk=-1).update(attempts=0)
        return {
            "configured": configured("default"),
            "synchronous_commit": show("synchronous_commit"),
            "enable_seqscan": show("enable_seqscan"),
            "bookkept": [q["sql"] for q in bookkept.captured_queries],
            "single": [q["sql"] for q in single.captured_queries],
            "in_transaction": in_transaction,
        }

    seen = in_own_thread(lane)
    assert seen["configured"]
    assert (seen["synchronous_commit"], seen["enable_seqscan"]) == ("off", "off")
    # No SET LOCAL per transaction: the session has them.
    assert not any("set_config" in sql for sql in seen["bookkept"]), seen["bookkept"]
    # One statement, no transaction around it (its commit is the statement's own).
    assert len(seen["single"]) == 1 and not seen["in_transaction"], seen


def test_an_unconfigured_connection_sets_them_per_transaction_and_keeps_its_own():
    assert not configured("default")
    with CaptureQueriesContext(connection) as queries:
        with bookkeeping("default"):
            local = show("synchronous_commit")
        with one_statement("default"):
            in_transaction = connection.in_atomic_block
    assert local == "off" and in_transaction  # SET LOCAL inside the transaction...
    assert sum("set_config" in q["sql"] for q in queries.captured_queries) == 2
    assert show("synchronous_commit") == "on"  # ...and gone with it


def test_a_flush_in_lanes_leaves_the_callers_connection_as_it_was(account, sandbox, settings):
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "CLAIM_SIZE": 10,
        "BATCH_SIZE": 10,
        "FLUSH_LANES": 2,
    }
    make_outbox_events(account, 45)
    connection.ensure_connection()
    callers = connection.connection
    summary = delivery.flush(until_empty=True)
    client.close_clients()
    assert summary.sent == 45, summary
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {EventStatus.SENT}
    assert len(set(sandbox.ledger.event_ids())) == 45
    # The lanes ran on connections of their own: the caller's is the same, and bare.
    assert connection.connection is callers and not configured("default")
    assert (show("synchronous_commit"), show("enable_seqscan")) == ("on", "on")
