"""F8: PostgreSQL restarts while a worker is flushing a backlog."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter

import pytest

from pinterest_capi.conf import DEFAULTS
from pinterest_capi.sandbox import Fault

from . import harness

OVERRIDES = {
    "BATCH_SIZE": 100,
    "CLAIM_SIZE": 500,
    "LEASE_SECONDS": 10,
    "REQUEST_DEADLINE": 2.0,
    "READ_TIMEOUT": 2.0,
}
EVENTS = 2000


def _cluster() -> list[str] | None:
    """``pg_ctlcluster`` arguments of the local cluster, or None when it cannot be restarted."""
    if shutil.which("pg_ctlcluster") is None or not os.path.isdir("/etc/postgresql"):
        return None
    versions = sorted(os.listdir("/etc/postgresql"))
    if not versions or not os.path.isdir(f"/etc/postgresql/{versions[-1]}/main"):
        return None
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def _pg_ready(timeout: float) -> bool:
    return harness.wait_until(lambda: harness.pg_unreachable_reason() is None, timeout, 0.2)


def test_f8_postgres_restart_mid_flush(pg_db, sandbox, stopwatch):
    cluster = _cluster()
    if cluster is None:
        pytest.skip("no local PostgreSQL cluster that pg_ctlcluster can restart (F8 needs one)")
    db = pg_db
    ids = db.call("seed_events", ad_account_id=harness.ACCOUNT_ID, count=EVENTS)
    sandbox.faults.add(Fault(latency=0.15))  # 20 requests of 100: the flush takes seconds

    worker = harness.loop_worker(db, "worker", OVERRIDES, deadline=90)
    try:
        assert sandbox.ledger.wait_for_requests(4, timeout=30), worker.tail()
        restart = subprocess.run([*cluster, "restart"], capture_output=True, text=True, timeout=90)
        assert restart.returncode == 0, restart.stderr
        restarted_at_request = len(sandbox.ledger.requests())
    finally:
        if not _pg_ready(30):  # never leave the server down
            subprocess.run([*cluster, "start"], capture_output=True, timeout=90)
        assert _pg_ready(60), "PostgreSQL did not come back"
    summary = worker.result(timeout=120)

    assert summary["done"], summary
    errors = summary["task_errors"] + summary["loop_errors"]
    assert errors, summary  # the worker did see the database go away …
    state = db.call("outbox_state")
    assert state["statuses"] == {"sent": EVENTS}, state["not_sent"]  # … and recovered

    figures = harness.ledger_figures(sandbox.ledger, ids)
    assert figures.lost == [] and figures.unexpected == []
    assert set(figures.duplicated.values()) <= {2}
    # Resent: only the batches whose results could not be saved — at most one per flush lane
    # (each lane saves a batch's results before its next request) — each whole (same ids).
    by_request = harness.request_ids(sandbox.ledger)
    first_seen = {}
    for seq in sorted(by_request):
        for event_id in by_request[seq]:
            first_seen.setdefault(event_id, seq)
    resent_batches = Counter(first_seen[event_id] for event_id in figures.duplicated)
    assert len(resent_batches) <= DEFAULTS["FLUSH_LANES"], resent_batches
    resent_ids = set().union(*(by_request[seq] for seq in resent_batches))
    assert resent_ids == set(figures.duplicated)
    harness.report(
        figures.line(
            "F8 PostgreSQL restart mid-flush [postgresql]",
            stopwatch(),
            restart_during_request=restarted_at_request,
            resent_batches=len(resent_batches),
            worker_errors=len(errors),
            first_error=repr(errors[0][:80]),
        )
    )
