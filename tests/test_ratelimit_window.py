"""Lanes and workers that open a new rate-limit window together all get a slot.

Several threads (each its own database connection, as flush lanes are) take a slot at the same
moment in a window whose row does not exist yet; none may be told to wait while the window has
room.  A lane that found the row made by another after its first UPDATE began used to give up
and pause the account for the rest of the window (seen as a flush of 10,000 stopping at 2,000).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from pinterest_capi.delivery import ratelimit
from pinterest_capi.models import RequestWindow

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 6
ROUNDS = 15


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite has one writer: takers never overlap"
)
def test_takers_opening_a_window_together_all_get_a_slot(account):
    waits: list[float] = []
    barrier = threading.Barrier(THREADS)

    def take() -> None:
        try:
            barrier.wait()
            wait = ratelimit.acquire(account, db="default")
            if wait is not None:
                waits.append(wait)
        finally:
            connections.close_all()

    for _ in range(ROUNDS):
        RequestWindow.objects.all().delete()  # every round opens its window
        threads = [threading.Thread(target=take) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert waits == [], f"told to wait with the window nearly empty: {waits}"
        counts = list(RequestWindow.objects.values_list("count", flat=True))
        # Usually one window; two when the round straddled a window boundary.
        assert sum(counts) == THREADS, counts


def _take(account, times: int) -> list[float | None] | None:
    """``times`` slots in one window (None if the takes straddled a window boundary)."""
    RequestWindow.objects.all().delete()
    waits = [ratelimit.acquire(account, db="default") for _ in range(times)]
    return waits if RequestWindow.objects.count() == 1 else None


def test_a_full_window_says_how_long_until_it_ends(account, settings):
    # 12 a minute = 2 per 10-second window.
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "RATE_LIMIT_PER_MINUTE": 12}
    for _ in range(3):  # a boundary can fall between the takes: take again
        waits = _take(account, 3)
        if waits is not None:
            break
    assert waits is not None, "three rounds straddled a window boundary"
    assert waits[:2] == [None, None]
    assert 0.5 <= waits[2] <= ratelimit.WINDOW_SECONDS
    assert list(RequestWindow.objects.values_list("count", flat=True)) == [2]


def test_opening_a_window_forgets_the_long_past_ones(account):
    RequestWindow.objects.all().delete()
    ratelimit.acquire(account, db="default")
    current = RequestWindow.objects.get().window
    RequestWindow.objects.filter(window=current).delete()
    RequestWindow.objects.create(account=account, window=current - 3600, count=5)
    RequestWindow.objects.create(account=account, window=current - 60, count=5)
    assert ratelimit.acquire(account, db="default") is None
    windows = set(RequestWindow.objects.values_list("window", flat=True))
    # The hour-old window is gone; the recent one stays (and the new one, maybe the next).
    assert current - 3600 not in windows and current - 60 in windows, windows
