"""F9: a worker whose wall clock is 5 minutes off while the database's clock is right."""

from __future__ import annotations

import threading

import pytest

from pinterest_capi.sandbox import Fault

from . import harness

OWNER = {"LEASE_SECONDS": 60, "REQUEST_DEADLINE": 20.0, "READ_TIMEOUT": 20.0}
BACKOFF = {"BACKOFF_BASE_SECONDS": 100, "BACKOFF_MAX_SECONDS": 3600}


@pytest.mark.parametrize("skew", [300, -300], ids=["ahead-5min", "behind-5min"])
def test_f9_clock_skew(rel_db, sandbox, stopwatch, skew):
    db = rel_db
    ids = db.call("seed_events", ad_account_id=harness.ACCOUNT_ID, count=20)

    # A worker with a true clock claims everything and is held on the wire (lease 60 s).
    hold = threading.Event()
    sandbox.faults.add(Fault(hold=hold, times=1))
    owner = harness.flush_command(db, "owner", OWNER)
    assert sandbox.ledger.wait_for_requests(1, timeout=30), owner.tail()
    leases = db.call("leases")
    assert len(leases["in_flight"]) == 20
    assert all(55 <= expires - leases["db_now"] <= 60 for *_, expires in leases["in_flight"])

    # The skewed worker keeps trying for 3 s: a lease judged by its own clock would look
    # expired (ahead); judged by the database clock it is not.
    skewed = harness.loop_worker(db, "skewed", {}, deadline=3, skew=skew).result()
    assert abs(skewed["clock_offset"]["time"] - skew) < 5, skewed  # the skew is real …
    assert abs(skewed["clock_offset"]["django"] - skew) < 5, skewed  # … for timezone.now too
    assert skewed["claimed"] == 0 and not skewed["done"], skewed
    assert len(sandbox.ledger.requests()) == 1

    hold.set()
    assert owner.result()["sent"] == 20
    assert db.call("outbox_state")["statuses"] == {"sent": 20}

    # Backoff after a 503 is computed from the database clock, not the worker's.
    retry_ids = db.call(
        "seed_events", ad_account_id=harness.ACCOUNT_ID, count=10, start=100, prefix="backoff"
    )
    unavailable = sandbox.faults.add(Fault(status=503, times=1))
    harness.loop_worker(db, "skewed-503", BACKOFF, deadline=2, skew=skew).result()
    assert unavailable.fired == 1
    pending = db.call("retry_times")
    assert len(pending["pending"]) == 10
    for event_id, attempts, when in pending["pending"]:
        delay = when - pending["db_now"]
        # backoff(1) = 100 s × [0.5, 1.0], minus the few seconds since: never ±300 s off.
        assert attempts == 1 and 40 <= delay <= 100.5, (event_id, delay)

    db.call("make_due")  # let the backoff pass
    finish = harness.loop_worker(db, "skewed-finish", BACKOFF, deadline=30, skew=skew).result()
    assert finish["done"] and finish["sent"] == 10, finish

    state = db.call("outbox_state")
    assert state["statuses"] == {"sent": 30}
    figures = harness.ledger_figures(sandbox.ledger, ids + retry_ids)
    assert figures.lost == [] and figures.unexpected == [] and figures.duplicated == {}
    harness.report(
        figures.line(
            f"F9 clock skew {skew:+d}s [{db.backend}]", stopwatch(), backoff_s=round(delay, 1)
        )
    )
