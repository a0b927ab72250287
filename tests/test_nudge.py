"""The on-commit nudge: what it costs the shop's request, and that no event waits for the sweep.

One nudged flush is pending or running at a time (the cache key ``tasks.NUDGE_KEY``, held
until that flush finds nothing left); the shop's commits meanwhile enqueue nothing, and a
process that saw the key set does not read the cache again for ``NUDGE_MEMO_SECONDS``.  The
flush's last look, after it clears the key, catches what was committed in between.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from pinterest_capi import delivery, tasks, track
from pinterest_capi.models import EventStatus, OutboxEvent

DB_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "pcapi_test_cache",
    }
}


@pytest.fixture
def queued(monkeypatch, settings):
    """NUDGE async with django-q2's ORM broker really queueing (not running) the tasks."""
    from django_q.conf import Conf
    from django_q.models import OrmQ

    monkeypatch.setattr(Conf, "SYNC", False)
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "NUDGE": "async"}
    return OrmQ.objects


@pytest.mark.django_db
def test_commits_while_a_flush_is_pending_cost_no_statement(queued, settings):
    """With the database cache every cache call is a query: the memo spares the shop them."""
    settings.CACHES = DB_CACHE
    call_command("createcachetable", verbosity=0)
    tasks.nudge_flush()  # enqueues the flush and sets the key
    tasks.nudge_flush()  # finds the key set: remembered
    with CaptureQueriesContext(connection) as ctx:
        for _ in range(20):
            tasks.nudge_flush()
    assert ctx.captured_queries == []
    assert queued.count() == 1


@pytest.mark.django_db
def test_the_key_is_read_again_once_the_memo_lapses(queued, monkeypatch):
    tasks.nudge_flush()
    tasks.nudge_flush()
    assert queued.count() == 1
    cache.delete(tasks.NUDGE_KEY)  # the flush ended meanwhile
    tasks.nudge_flush()
    assert queued.count() == 1  # trusted the memo: the flush's last look covers this commit
    monkeypatch.setattr(tasks, "_pending_seen_until", 0.0)  # NUDGE_MEMO_SECONDS later
    tasks.nudge_flush()
    assert queued.count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_event_committed_after_the_flushs_last_claim_is_sent_without_the_sweep(
    account, sandbox, settings, monkeypatch
):
    """The flush holds the key to its end; the event committed then is found by its last look.

    django-q2 runs tasks inline here (sync), so the nudges below run the real flush task.  An
    event is committed right after the flush's last claim found nothing, while the key is
    still held: its own nudge enqueues nothing, yet it must leave before the sweep.
    """
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "NUDGE": "async"}
    real_flush = delivery.flush
    held = []

    def flush_then_a_late_commit(**kwargs):
        summary = real_flush(**kwargs)
        held.append(cache.get(tasks.NUDGE_KEY))
        if len(held) == 1:
            with transaction.atomic():
                track("signup", user_data={"em": "late@example.com"}, event_id="signup-late")
        return summary

    monkeypatch.setattr(delivery, "flush", flush_then_a_late_commit)
    with transaction.atomic():
        track("signup", user_data={"em": "first@example.com"}, event_id="signup-first")
    assert held[0] == 1  # the late commit found the key held (so enqueued nothing itself)
    assert sorted(sandbox.ledger.event_ids()) == ["signup-first", "signup-late"]
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {EventStatus.SENT}
    assert cache.get(tasks.NUDGE_KEY) is None  # released: the next commit nudges again
