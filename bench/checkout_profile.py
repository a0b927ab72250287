"""Checkout profile: what of the recording's cost on the demo checkout is the app's Python.

Run (a fresh database each time; SQLite by default, a file under a temporary directory):

    .venv/bin/python bench/checkout_profile.py [--iterations 600] [--connection-per-request]
    createdb -h 127.0.0.1 -U postgres pcapi_checkout
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pcapi_checkout \\
        .venv/bin/python bench/checkout_profile.py

The suite's figure comes from ``make bench`` (section 2); this is the optimiser's tool.  The
same visitor as there (``bench.tasks.DemoCheckouts``) checks out in three modes, interleaved
two orders at a time:

- ``disabled``: the app's receivers disconnected;
- ``recording``: the app as shipped (mapper, consent, event built and hashed, the insert,
  the Tag hand-over);
- ``insert only``: the receivers do nothing but the recording statement, for an event built
  once beforehand (a new event_id each time), in the receivers' savepoint: the least any
  recording inside the shop's transaction can cost.

It prints each mode's median checkout, its ratio to ``disabled`` and the median of its
commits, and, measured inside the checkouts, the median time of the receivers and of the
``recording`` receiver's insert statement alone.
When ``insert only`` is as slow as the target allows, it is the database's write (on
PostgreSQL the statement's round trip), not the Python around it, that limits the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import script_defaults  # noqa: E402  (after the path)

script_defaults(DJANGO_DEBUG="0")
os.environ.setdefault("SHOP_DEMO_VAR_DIR", tempfile.mkdtemp(prefix="pcapi_checkout_"))
os.environ.setdefault(
    "DATABASE_URL", f"sqlite:///{Path(os.environ['SHOP_DEMO_VAR_DIR']) / 'checkout.sqlite3'}"
)

MODES = ("disabled", "recording", "insert only")


def timed(owner: Any, name: str, into: list[float]) -> Callable[[], None]:
    """Wrap ``owner.name`` to append each call's seconds to ``into``; returns the undo."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - started)

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


def insert_only_receiver() -> Callable[..., Any]:
    """``record_from_signal`` reduced to the statement: a prebuilt event, a new id each call."""
    import itertools

    from django.conf import settings
    from django.db import router

    from pinterest_capi import events, outbox
    from pinterest_capi.models import OutboxEvent
    from pinterest_capi.savepoints import DeferredSavepoint

    prebuilt = {
        name: events.build_event(
            name,
            user_data={
                "em": "buyer@example.com",
                "ph": "+44 20 7946 0958",
                "client_ip_address": "203.0.113.9",
                "client_user_agent": "Mozilla/5.0 bench",
            },
            event_id="prebuilt",
            event_source_url="http://testserver/checkout/",
            custom_data={
                "currency": "GBP",
                "value": "25.00",
                "contents": [{"id": "MUG-1", "item_price": "12.50", "quantity": 2}],
            },
        )
        for name in ("checkout", "add_to_cart")
    }
    tenant = settings.PINTEREST_CAPI["DEFAULT_TENANT"]
    ids = itertools.count()

    def record(mapper: Any, **kwargs: Any) -> list[Any]:
        name = "checkout" if "order" in kwargs else "add_to_cart"
        event = {**prebuilt[name], "event_id": f"{name}-{next(ids)}"}
        with DeferredSavepoint(router.db_for_write(OutboxEvent)) as savepoint:
            return outbox.record_for_tenant(event, tenant=tenant, savepoint=savepoint)

    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=600, help="checkouts per mode")
    parser.add_argument("--warmup", type=int, default=20, help="per mode, not counted")
    parser.add_argument(
        "--connection-per-request",
        action="store_true",
        help="open and close the database connection around each request, as a server does "
        "with the demo's CONN_MAX_AGE = 0 (default: kept, as Django's test client keeps it)",
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from bench.tasks import DemoCheckouts
    from pinterest_capi import receivers, savepoints

    shop = DemoCheckouts(connection_per_request=args.connection_per_request)
    shipped = receivers.record_from_signal
    reduced = insert_only_receiver()

    def use(mode: str) -> None:
        shop.recording(mode != "disabled")
        receivers.record_from_signal = reduced if mode == "insert only" else shipped

    from django.db.backends.base.base import BaseDatabaseWrapper

    timings: dict[str, list[float]] = {mode: [] for mode in MODES}
    commits: dict[str, list[float]] = {mode: [] for mode in MODES}
    inside: dict[str, list[float]] = {
        "recording: receiver": [],
        "recording: its insert statement": [],
        "insert only: receiver": [],
    }
    for mode in MODES:
        use(mode)
        for _ in range(args.warmup):
            shop.one()
    for round_ in range(args.iterations // 2):
        order = MODES if round_ % 2 == 0 else MODES[::-1]
        for mode in order:
            use(mode)
            undo = [timed(BaseDatabaseWrapper, "commit", commits[mode])]
            if mode == "insert only":
                undo.append(timed(receivers, "record_from_signal", inside["insert only: receiver"]))
            if mode == "recording":
                undo += [
                    timed(receivers, "record_from_signal", inside["recording: receiver"]),
                    timed(
                        savepoints,
                        "execute_in_savepoint",
                        inside["recording: its insert statement"],
                    ),
                ]
            for _ in range(2):
                timings[mode].append(shop.one())
            for step in undo:
                step()
    use("recording")
    from pinterest_capi.models import OutboxEvent

    per_mode = args.iterations // 2 * 2
    recorded_orders = 2 * (args.warmup + per_mode)  # by the two modes that record
    if OutboxEvent.objects.count() != 2 * recorded_orders:  # add_to_cart + checkout each
        raise SystemExit(
            f"checkout profile: {OutboxEvent.objects.count()} events recorded, "
            f"expected {2 * recorded_orders}"
        )

    median = {mode: statistics.median(values) * 1000 for mode, values in timings.items()}
    print(
        f"checkout profile: {connection.vendor}, {per_mode} checkouts per mode"
        + (", a connection per request" if args.connection_per_request else "")
    )
    for mode in MODES:
        ratio = median[mode] / median["disabled"]
        commit = statistics.median(commits[mode]) * 1000
        print(
            f"  {mode:<12} median {median[mode]:7.2f} ms  {ratio:.3f}x of disabled"
            f"  (its commits: median {commit:.3f} ms)"
        )
    print("  inside those checkouts (the add to cart's recording and the checkout's):")
    for part, values in inside.items():
        print(f"    {part:<32} median {statistics.median(values) * 1000:6.3f} ms")


if __name__ == "__main__":
    main()
