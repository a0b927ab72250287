"""F1: a worker killed after its request left and before the results were saved."""

from __future__ import annotations

import threading

from pinterest_capi.sandbox import Fault

from . import harness

OVERRIDES = {"LEASE_SECONDS": 8, "REQUEST_DEADLINE": 2.0, "READ_TIMEOUT": 2.0, "BATCH_SIZE": 10}


def test_f1_worker_killed_mid_send(rel_db, sandbox, stopwatch):
    db = rel_db
    ids = db.call("seed_events", ad_account_id=harness.ACCOUNT_ID, count=25)
    hold = threading.Event()
    sandbox.faults.add(Fault(hold=hold, times=1))  # the first request is held on the wire
    arrivals = harness.ArrivalClock(sandbox.ledger)

    killed = harness.flush_command(db, "killed-worker", OVERRIDES)
    assert sandbox.ledger.wait_for_requests(1, timeout=30), killed.tail()
    killed.kill()  # SIGKILL while the request is held: sent, no results saved
    hold.set()
    held_ids = set(harness.request_ids(sandbox.ledger)[1])
    assert len(held_ids) == 10

    leases = db.call("leases")
    owners = {owner for _, owner, _ in leases["in_flight"]}
    expiries = {round(expires, 3) for *_, expires in leases["in_flight"]}
    assert len(leases["in_flight"]) == 25 and len(owners) == 1 and len(expiries) == 1
    lease_expires = expiries.pop()
    assert 0 < lease_expires - leases["db_now"] <= OVERRIDES["LEASE_SECONDS"]

    restarted = harness.loop_worker(db, "restarted-worker", OVERRIDES, deadline=60)
    summary = restarted.result()
    times = arrivals.stop()

    assert summary["done"] and summary["sent"] == 25, summary
    # Not re-claimed before the lease ran out by the database clock (same host clock here).
    assert len(times) >= 2 and min(times[1:]) >= lease_expires - 0.05, (times, lease_expires)
    state = db.call("outbox_state")
    assert state["statuses"] == {"sent": 25}
    figures = harness.ledger_figures(sandbox.ledger, ids)
    assert figures.lost == [] and figures.unexpected == []
    assert set(figures.duplicated) == held_ids  # only the killed batch was resent …
    assert set(figures.duplicated.values()) == {2}  # … once
    harness.report(figures.line(f"F1 worker killed mid-send [{db.backend}]", stopwatch()))
