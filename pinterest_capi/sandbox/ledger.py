"""The sandbox's record of what "Pinterest" received, which tests assert on.

Reliability tests prove "nothing lost, nothing sent twice" by counting event_ids here, so the
ledger keeps every event of every request the sandbox processed (answered 200/422, or processed
and then dropped/dripped/held), in the order received, with repeats.  It never stores tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Ledger:
    """Thread-safe log of requests and received events.

    Entries are created once and never changed, so readers get lists of the same dicts
    (request entries are copied, being small); treat them as read-only.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._seq = 0
        self._requests: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []

    def next_seq(self) -> int:
        """A new request sequence number (in arrival order)."""
        with self._cond:
            self._seq += 1
            return self._seq

    def record(self, request: dict[str, Any], events: list[dict[str, Any]] | None = None) -> None:
        """Store one request entry and the event entries it carried, then wake waiters."""
        with self._cond:
            self._requests.append(request)
            if events:
                self._events.extend(events)
            self._cond.notify_all()

    def events(self, ad_account_id: str | None = None, test: bool | None = None) -> list[dict]:
        """Every received event entry, optionally for one account and/or test mode only."""
        with self._cond:
            items = list(self._events)
        if ad_account_id is not None:
            items = [e for e in items if e["ad_account_id"] == ad_account_id]
        if test is not None:
            items = [e for e in items if e["test"] is test]
        return items

    def requests(self, ad_account_id: str | None = None) -> list[dict]:
        """Every API request that reached the handler (control endpoints excluded)."""
        with self._cond:
            items = [dict(r) for r in self._requests]
        if ad_account_id is not None:
            items = [r for r in items if r["ad_account_id"] == ad_account_id]
        return items

    def event_ids(
        self,
        ad_account_id: str | None = None,
        processed_only: bool = True,
        test: bool | None = None,
    ) -> list[str]:
        """The event_ids received, in order and with repeats, so tests can count duplicates."""
        return [
            e["event"].get("event_id")
            for e in self.events(ad_account_id, test)
            if not processed_only or e["status"] == "processed"
        ]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate()`` is true after some record (or already is); False on timeout.

        Lets a test wait for "the request has arrived" (e.g. while a ``hold`` fault keeps it)
        without sleeping in a loop.
        """
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` API requests are recorded; False on timeout."""
        return self.wait_for(lambda: len(self._requests) >= count, timeout)

    def clear(self) -> None:
        """Forget everything (sequence numbers keep increasing)."""
        with self._cond:
            self._requests = []
            self._events = []
