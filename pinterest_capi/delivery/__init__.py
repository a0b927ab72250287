"""Send side of the outbox: claim due events, send them in batches, apply the results.

The shape follows three rules (see the design notes):

* **Claim short** (:mod:`.claim`): a short transaction marks due rows
  ``in_flight`` with a lease owner and an expiry computed by the *database*
  clock, using ``SELECT … FOR UPDATE SKIP LOCKED`` where the backend has it and
  a conditional UPDATE everywhere, so two workers never hold the same row.
* **Send outside** (:mod:`.cycle`): no transaction is open while a request is
  on the wire; requests per account stay under Pinterest's rate limit
  (:mod:`.ratelimit`).
* **Finalize fenced** (:mod:`.bookkeeping`): results are applied only to rows
  whose lease is still ours; if we lost it, another worker resends the same
  event_ids and Pinterest deduplicates them.

The retry policy (:mod:`.policy`) lives in the outbox's own columns, not in
django-q2's redelivery.  Nothing here raises for an API failure: a flush
returns a :class:`FlushSummary`.
"""

from __future__ import annotations

import time

from ..conf import app_settings
from .claim import Claimed, claim, db_now_plus, sendable_due_rows
from .cycle import FlushCycle
from .policy import backoff_seconds
from .summary import FlushSummary

__all__ = [
    "Claimed",
    "FlushCycle",
    "FlushSummary",
    "backoff_seconds",
    "claim",
    "db_now_plus",
    "due_count",
    "flush",
    "flush_once",
]


def flush_once(*, limit: int | None = None) -> FlushSummary:
    """Claim one round of due rows and send them; never raises for API trouble."""
    owner, rows = claim(int(limit or app_settings.CLAIM_SIZE))
    if not rows:
        return FlushSummary()
    return FlushCycle(owner, rows).run()


def flush(*, until_empty: bool = False, time_budget: float | None = None) -> FlushSummary:
    """Run flush cycles: one, or until nothing is due (or the time budget is spent)."""
    total = FlushSummary()
    started = time.monotonic()
    while True:
        summary = flush_once()
        total.add(summary)
        if not until_empty or summary.claimed == 0:
            break
        if summary.sent + summary.failed + summary.retrying == 0:
            break  # only released or paused rows: nothing more to do now
        if time_budget is not None and time.monotonic() - started > time_budget:
            break
    return total


def due_count() -> int:
    """How many rows a flush could claim right now."""
    return sendable_due_rows().count()
