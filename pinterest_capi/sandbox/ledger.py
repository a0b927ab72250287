"""The sandbox's record of what "Pinterest" received, which tests assert on.

Reliability tests prove "nothing lost, nothing sent twice" by counting event_ids here, so the
ledger keeps every event of every request the sandbox processed (answered 200/422, or processed
and then dropped/dripped/held), in the order received, with repeats.  It never stores tokens.

Recording is on the sandbox's hot path and reading is not: a request's events are kept as the
request body that carried them (an :class:`EventBatch`: one bytes object, where a million parsed
events would be millions of objects for the garbage collector to walk again and again) and become
one entry dict each only when the ledger is first read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EventBatch:
    """The events of one processed request: its body, how to read it, and each event's result.

    ``loads(body)["data"]`` are the events, exactly as the sandbox validated them.  ``outcomes``
    holds ``(status, error_message)`` per event, or is ``None`` when every event was processed
    without error (the common case, which then costs nothing per event to record).
    """

    ad_account_id: str
    test: bool
    request_seq: int
    body: bytes
    loads: Callable[[bytes], Any]
    outcomes: list[tuple[str, str]] | None = None

    def entries(self) -> list[dict[str, Any]]:
        """One ledger entry per event, as :meth:`Ledger.events` returns them."""
        events = self.loads(self.body)["data"]
        account, test, seq = self.ad_account_id, self.test, self.request_seq
        outcomes = self.outcomes or [("processed", "")] * len(events)
        return [
            {
                "ad_account_id": account,
                "test": test,
                "request_seq": seq,
                "index": i,
                "status": status,
                "error_message": error,
                "event": event,
            }
            for i, (event, (status, error)) in enumerate(zip(events, outcomes, strict=True))
        ]


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
        self._batches: list[EventBatch | list[dict[str, Any]]] = []  # recorded, not yet read

    def next_seq(self) -> int:
        """A new request sequence number (in arrival order)."""
        with self._cond:
            self._seq += 1
            return self._seq

    def record(
        self,
        request: dict[str, Any],
        events: EventBatch | list[dict[str, Any]] | None = None,
    ) -> None:
        """Store one request entry and the events it carried (a batch, or entries), then wake
        waiters."""
        with self._cond:
            self._requests.append(request)
            if events:
                self._batches.append(events)
            self._cond.notify_all()

    def _expand(self) -> None:
        """Turn the batches recorded since the last read into entries (once; lock held)."""
        for batch in self._batches:
            self._events.extend(batch.entries() if type(batch) is EventBatch else batch)
        self._batches = []

    def events(self, ad_account_id: str | None = None, test: bool | None = None) -> list[dict]:
        """Every received event entry, optionally for one account and/or test mode only."""
        with self._cond:
            self._expand()
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
            self._batches = []
