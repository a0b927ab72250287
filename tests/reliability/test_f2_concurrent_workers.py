"""F2: several workers at once (PostgreSQL, FOR UPDATE SKIP LOCKED): each row sent by one."""

from __future__ import annotations

from collections import Counter

from pinterest_capi.sandbox import Fault

from . import harness

OVERRIDES = {"BATCH_SIZE": 100, "CLAIM_SIZE": 300, "BACKOFF_BASE_SECONDS": 0}
EVENTS, IN_RETRY = 5200, 400


def test_f2_four_workers_at_once(pg_db, sandbox, stopwatch):
    db = pg_db
    ids = db.call("seed_events", ad_account_id=harness.ACCOUNT_ID, count=EVENTS, retry=IN_RETRY)
    # 10 % of requests answered 503 (reproducibly): their rows back off (0 s) and are
    # re-claimed by whichever worker is quickest, while the other workers keep claiming.
    unavailable = sandbox.faults.add(Fault(status=503, rate=0.1, seed=20240611))
    sandbox.faults.add(Fault(latency=0.03))  # every other request takes a moment

    workers = [harness.loop_worker(db, f"worker-{n}", OVERRIDES, deadline=150) for n in range(4)]
    summaries = [w.result(timeout=180) for w in workers]

    state = db.call("outbox_state")
    assert state["statuses"] == {"sent": EVENTS}, state["not_sent"]
    assert all(s["done"] for s in summaries), summaries
    assert not any(s["task_errors"] or s["loop_errors"] for s in summaries), summaries

    figures = harness.ledger_figures(sandbox.ledger, ids)
    assert figures.lost == [] and figures.unexpected == []
    assert figures.duplicated == {}  # each processed id received exactly once
    assert figures.delivered == EVENTS
    # The 503'd requests carried events that were not processed: none is in the ledger's
    # processed events; every one of those rows was sent later in another request.
    requests = sandbox.ledger.requests()
    statuses = Counter(r["status_code"] for r in requests)
    assert unavailable.fired > 0 and statuses[503] == unavailable.fired
    # Each 503'd request's rows went back to retry: as many as it carried (a full batch of
    # 100, or fewer when a worker's last claim of the backlog was smaller).
    unanswered = sum(r["num_events"] for r in requests if r["status_code"] == 503)
    assert unanswered >= unavailable.fired and unanswered <= 100 * unavailable.fired
    assert sum(s["retrying"] for s in summaries) == unanswered
    # No row was applied as sent by two workers: one "processed" result per event.
    assert state["processed_twice"] == [] and state["processed_results"] == EVENTS
    assert sum(s["sent"] for s in summaries) == EVENTS
    busy = [s["sent"] for s in summaries]
    assert sum(1 for n in busy if n) >= 2, busy  # the work really was shared
    harness.report(
        figures.line(
            "F2 four workers [postgresql]",
            stopwatch(),
            retry_seeded=IN_RETRY,
            http_503=statuses[503],
            sent_per_worker=busy,
        )
    )
