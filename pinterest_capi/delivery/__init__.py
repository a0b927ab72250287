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

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import connections, router

from .. import client
from ..conf import app_settings
from ..models import OutboxEvent
from .claim import Claimed, claim, db_now_plus, sendable_due_rows
from .cycle import FlushCycle
from .policy import backoff_seconds
from .summary import FlushSummary
from .txn import configure_session

logger = logging.getLogger("pinterest_capi.delivery")

# What a claim gives a flush cycle: (time.monotonic() when it began, lease owner, rows).
ClaimedRows = tuple[float, str, list[Claimed]]

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
    claimed_at = time.monotonic()
    owner, rows = claim(int(limit or app_settings.CLAIM_SIZE))
    if not rows:
        return FlushSummary()
    return FlushCycle(owner, rows, claimed_at=claimed_at).run()


def flush(*, until_empty: bool = False, time_budget: float | None = None) -> FlushSummary:
    """Run flush cycles: one, or until nothing is due (or the time budget is spent).

    With ``until_empty`` on PostgreSQL (outside any transaction of the caller), a backlog is
    drained in ``FLUSH_LANES`` lanes at once (:func:`_lanes`), each claiming its next rows on
    a second connection while its current cycle sends (:class:`_ClaimAhead`); what fits in
    one claim is sent from the calling thread (:func:`_until_a_backlog`).
    """
    lanes = int(app_settings.FLUSH_LANES) if until_empty and _ClaimAhead.possible() else 1
    if lanes <= 1:
        return _flush_lane(until_empty=until_empty, time_budget=time_budget)
    return _until_a_backlog(lanes, time_budget)


def _until_a_backlog(lanes: int, time_budget: float | None) -> FlushSummary:
    """Claim and send on the calling thread until a claim comes back full; then start lanes.

    Most flushes are a worker's nudged ones: the few rows of the last commits.  Lanes would
    cost them two threads and four new database sessions; on the caller's connection a
    flush of three events took 15 ms and 20 ms of CPU (flusher and PostgreSQL) instead of
    36 and 50.  A full claim means a backlog: lane 0 starts with the rows claimed here and
    the other lanes claim their own, so no row waits for the lanes to start.
    """
    total = FlushSummary()
    started = time.monotonic()
    size = int(app_settings.CLAIM_SIZE)
    while True:
        claimed_at = time.monotonic()
        owner, rows = claim(size)
        if not rows:
            return total
        if len(rows) >= size:
            left = None if time_budget is None else time_budget - (time.monotonic() - started)
            total.add(_lanes(lanes, left, first=(claimed_at, owner, rows)))
            return total
        summary = FlushCycle(owner, rows, claimed_at=claimed_at).run()
        total.add(summary)
        if _stop_after(summary, started, time_budget):
            return total


def _lanes(lanes: int, time_budget: float | None, first: ClaimedRows) -> FlushSummary:
    """``lanes`` flush loops side by side in this process, each on its own thread and connections.

    A lane is what a second worker process would be — its own claims and leases, so no row
    is held by two lanes — without a second process's start-up and memory.  While one lane
    waits for Pinterest, another saves its results or claims: the request, the database and
    this process take turns instead of waiting for each other.  Each lane keeps the rule of
    one cycle: a batch's results are saved before that lane's next request, so a crash leaves
    at most one unsaved batch per lane, resent with the same event_ids.  The calling thread
    only waits: its connection is the caller's (a shop's, a worker's), and the lanes give
    theirs session-wide settings (:func:`.txn.configure_session`) that must not outlive them.
    Lane 0 starts with ``first`` (``(claimed_at, owner, rows)``), the rows the caller claimed.
    """
    total = FlushSummary()
    with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="pcapi-lane") as pool:
        running = [
            pool.submit(_flush_lane_thread, number, time_budget, first if number == 0 else None)
            for number in range(lanes)
        ]
        for lane in running:
            total.add(lane.result())
    return total


def _flush_lane_thread(
    number: int, time_budget: float | None, first: ClaimedRows | None
) -> FlushSummary:
    """One lane on its own thread: its own database connections, closed as the thread ends,
    and lane ``number``'s HTTP client, kept for the next flush (:func:`.client.lane`)."""
    try:
        with client.lane(number):
            return _flush_lane(
                until_empty=True, time_budget=time_budget, own_thread=True, first=first
            )
    finally:
        connections.close_all()  # this thread's only: the thread ends with this flush


def _flush_lane(
    *,
    until_empty: bool,
    time_budget: float | None,
    own_thread: bool = False,
    first: ClaimedRows | None = None,
) -> FlushSummary:
    """Flush cycles on this thread; with ``until_empty`` on PostgreSQL each next claim runs
    ahead, during the current cycle.  ``first``: rows claimed already, sent first."""
    total = FlushSummary()
    started = time.monotonic()
    ahead = _ClaimAhead.start() if until_empty and _ClaimAhead.possible() else None
    try:
        if ahead is not None:
            _open_lane(own_thread)  # while the first claim runs on the helper thread
        while True:
            if first is not None:  # the claim the helper started with runs meanwhile
                (claimed_at, owner, rows), first = first, None
                cycle = FlushCycle(owner, rows, claimed_at=claimed_at, recheck_accounts=True)
                summary = cycle.run()
            elif ahead is None:
                summary = flush_once()
            else:
                claimed_at, owner, rows = ahead.take()
                if not rows:
                    break
                ahead.submit()  # the next claim runs while these rows are sent
                cycle = FlushCycle(owner, rows, claimed_at=claimed_at, recheck_accounts=True)
                summary = cycle.run()
            total.add(summary)
            if not until_empty or summary.claimed == 0:
                break
            if _stop_after(summary, started, time_budget):
                break
    finally:
        if ahead is not None:
            total.released += ahead.stop()
    return total


def _stop_after(summary: FlushSummary, started: float, time_budget: float | None) -> bool:
    """After a cycle with rows: stop when it only released or paused them (nothing more to do
    now) or when the time budget, counted from ``started``, is spent."""
    if summary.sent + summary.failed + summary.retrying == 0:
        return True
    return time_budget is not None and time.monotonic() - started > time_budget


def _open_lane(own_thread: bool) -> None:
    """Open what a lane's first cycle uses: its HTTP client (for HTTPS with the process's TLS
    context, whose CA bundle takes tens of milliseconds to load) and its database connection,
    with the flush's settings for the whole session when the connection is the lane's own.

    Done while the lane's first claim is on the database, they are ready when its rows are,
    instead of delaying the first request and the first results: a fixed cost of every flush
    (about 0.06 s of a 10,000-event backlog's 0.7). Best effort: what fails here fails again,
    and is handled, where it is used.
    """
    try:
        client.get_client()
        db = router.db_for_write(OutboxEvent)
        if own_thread:
            configure_session(db)
        else:
            connections[db].ensure_connection()
    except Exception:  # noqa: BLE001 - see above
        logger.debug("Opening a flush lane ahead of its first claim failed", exc_info=True)


class _ClaimAhead:
    """The next claim, taken on a helper thread (its own connection) during a cycle.

    A claim is one of the two writes every row costs; running it while the previous
    cycle's batches are on the wire and their results are saved keeps the database busy
    on both.  Only the claim runs ahead: results are still saved before the lane's next
    request of an account goes out, so a database failure leaves at most one batch unsaved
    per lane (F8).
    Rows claimed ahead but not used (budget spent, loop ended) are released at once;
    each cycle re-reads which accounts may send (a pause written meanwhile holds).
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pcapi-claim")
        self._future: Future[ClaimedRows] | None = None

    @staticmethod
    def possible() -> bool:
        connection = connections[router.db_for_write(OutboxEvent)]
        return connection.vendor == "postgresql" and not connection.in_atomic_block

    @classmethod
    def start(cls) -> _ClaimAhead:
        ahead = cls()
        ahead.submit()
        return ahead

    @staticmethod
    def _claim() -> ClaimedRows:
        claimed_at = time.monotonic()  # before the claim: the lease margin is conservative
        configure_session(router.db_for_write(OutboxEvent), claim=True)  # this helper's own
        owner, rows = claim(int(app_settings.CLAIM_SIZE))
        return claimed_at, owner, rows

    def submit(self) -> None:
        self._future = self._pool.submit(self._claim)

    def take(self) -> ClaimedRows:
        future, self._future = self._future, None
        assert future is not None
        return future.result()

    def stop(self) -> int:
        """Release rows claimed ahead and unused; close the helper's connection."""
        released = 0
        try:
            if self._future is not None:
                try:
                    _, owner, rows = self.take()
                except Exception:  # noqa: BLE001 - a failed claim holds nothing
                    rows = []
                if rows:
                    cycle = FlushCycle(owner, rows)
                    released = cycle.books.release(rows)
        finally:
            self._pool.submit(connections.close_all).result()
            self._pool.shutdown()
        return released


def due_count() -> int:
    """How many rows a flush could claim right now."""
    return sendable_due_rows().count()
