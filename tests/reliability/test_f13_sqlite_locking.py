"""F13: SQLite under write contention: checkouts never see "database is locked"."""

from __future__ import annotations

import time

from . import harness

SHOPS, CUSTOMERS_PER_SHOP = 2, 25  # 50 concurrent checkouts from two shop processes
FLUSH = {"BATCH_SIZE": 10, "CLAIM_SIZE": 20}  # many small claims and results: many writes
SHOP = {"NUDGE": "async"}  # the shop as deployed: each commit nudges a django-q2 flush


def test_f13_sqlite_checkouts_while_flushing(sqlite_db, sandbox, stopwatch):
    db = sqlite_db
    db.call("seed_catalog")
    go = db.var_dir / "go"
    shops = [
        harness.spawn(
            db,
            f"shop-{n}",
            db.dbside_args("checkouts", threads=CUSTOMERS_PER_SHOP, go_file=str(go), tag=str(n)),
            db.env(SHOP),
        )
        for n in range(SHOPS)
    ]
    flushers = [
        harness.loop_worker(
            db, f"flusher-{n}", FLUSH, deadline=90, expect=SHOPS * CUSTOMERS_PER_SHOP
        )
        for n in range(2)
    ]
    time.sleep(2.0)  # Django set up in every process; the flushers are polling
    go.touch()
    results = [shop.result(timeout=120)["result"] for shop in shops]
    summaries = [f.result(timeout=120) for f in flushers]

    errors = [e for r in results for e in r["errors"]]
    orders = [number for r in results for number in r["orders"]]
    assert errors == []  # 0 errors of any kind reached shop code (none "database is locked")
    assert len(orders) == SHOPS * CUSTOMERS_PER_SHOP
    shop_logs = "".join(shop.err.read_text() for shop in shops)
    assert "database is locked" not in shop_logs  # nor in anything the shop logged

    state = db.call("outbox_state")
    checkout_ids = [f"checkout-{number}" for number in orders]
    assert state["names"]["checkout"] == len(orders)
    assert set(checkout_ids) <= set(state["ids"])
    assert set(state["statuses"]) == {"sent"}, state["statuses"]
    assert all(s["done"] for s in summaries), summaries

    figures = harness.ledger_figures(sandbox.ledger, state["ids"])
    assert figures.lost == [] and figures.unexpected == [] and figures.duplicated == {}
    assert sum(s["sent"] for s in summaries) == len(state["ids"])
    flush_lock_errors = sum(
        "locked" in e for s in summaries for e in s["task_errors"] + s["loop_errors"]
    )
    harness.report(
        figures.line(
            "F13 SQLite checkouts + 2 flushers [sqlite]",
            stopwatch(),
            checkouts=len(orders),
            outbox_rows=len(state["ids"]),
            sent_per_flusher=[s["sent"] for s in summaries],
            flush_lock_errors_retried=flush_lock_errors,
        )
    )
