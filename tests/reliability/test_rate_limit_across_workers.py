"""The per-account request budget holds across worker processes (shared through the DB)."""

from __future__ import annotations

import math
from collections import Counter

from pinterest_capi.sandbox import Fault

from . import harness

PER_MINUTE = 60
WINDOW = 10
BUDGET = PER_MINUTE * WINDOW // 60  # 10 requests per 10-second window of the DB's clock
OVERRIDES = {"RATE_LIMIT_PER_MINUTE": PER_MINUTE, "BATCH_SIZE": 2, "CLAIM_SIZE": 6}
EVENTS = 48  # 24 requests: at least three windows' worth
SLACK = 0.25  # seconds from taking a slot (DB clock) to arriving at the sandbox, at most


def test_rate_limit_across_three_workers(rel_db, sandbox, stopwatch):
    db = rel_db
    ids = db.call("seed_events", ad_account_id=harness.ACCOUNT_ID, count=EVENTS)
    # Each answer takes a moment, so one worker cannot spend a whole window's budget before the
    # others' next round (a fast flush did: [48, 0, 0]); arrival times are taken before it.
    sandbox.faults.add(Fault(latency=0.05))
    arrivals = harness.ArrivalClock(sandbox.ledger)
    workers = [harness.loop_worker(db, f"worker-{n}", OVERRIDES, deadline=90) for n in range(3)]
    summaries = [w.result(timeout=120) for w in workers]
    times = arrivals.stop()

    state = db.call("outbox_state")
    assert state["statuses"] == {"sent": EVENTS}
    figures = harness.ledger_figures(sandbox.ledger, ids)
    assert figures.lost == [] and figures.unexpected == [] and figures.duplicated == {}
    requests = len(sandbox.ledger.requests())
    assert len(times) == requests == EVENTS // 2

    # Every request took a slot in the shared windows, none of which went over the budget.
    windows = dict(state["windows"])
    assert sum(windows.values()) == requests and max(windows.values()) <= BUDGET, windows
    # Seen from the sandbox: no more requests than the budget of the windows the run spanned …
    first, last = math.floor(min(times) / WINDOW), math.floor(max(times) / WINDOW)
    spanned = last - first + 1
    assert requests <= BUDGET * spanned, (requests, spanned)
    # … and no window holds more than its budget (a request arriving within SLACK after a
    # window starts may have taken its slot just before, in the previous window).
    per_window = Counter(
        math.floor(t / WINDOW) for t in times if t - math.floor(t / WINDOW) * WINDOW >= SLACK
    )
    assert max(per_window.values()) <= BUDGET, per_window
    sent = [s["sent"] for s in summaries]
    assert sum(1 for n in sent if n) >= 2, sent  # the workers shared the budget
    harness.report(
        figures.line(
            f"rate limit across 3 workers [{db.backend}]",
            stopwatch(),
            windows_spanned=spanned,
            requests_per_window=[n for _, n in sorted(Counter(t // WINDOW for t in times).items())],
            sent_per_worker=sent,
        )
    )
