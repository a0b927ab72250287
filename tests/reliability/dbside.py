"""Seeding and inspection run inside a Django subprocess against the test's own database.

``python -m tests.reliability.dbside FUNCTION '{"kwarg": ...}'`` sets Django up with the
environment the harness gives it (``DATABASE_URL`` …), calls ``FUNCTION(**kwargs)`` and prints
its JSON result on the last line of stdout.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Any


def _db_now(cursor: Any, vendor: str) -> float:
    if vendor == "postgresql":
        cursor.execute("SELECT EXTRACT(EPOCH FROM STATEMENT_TIMESTAMP())")
    else:
        cursor.execute("SELECT (julianday('now') - 2440587.5) * 86400.0")
    return float(cursor.fetchone()[0])


def db_now() -> float:
    """The database clock (Unix seconds): what leases and backoff are computed from."""
    from django.db import connection

    with connection.cursor() as cursor:
        return _db_now(cursor, connection.vendor)


def create_account(ad_account_id: str, token: str, tenant: str = "demo") -> int:
    from pinterest_capi.models import AdAccount

    account = AdAccount(tenant=tenant, ad_account_id=ad_account_id, name=f"Rel {ad_account_id}")
    account.set_token(token)
    account.save()
    return account.pk


def seed_events(
    ad_account_id: str,
    count: int,
    *,
    start: int = 0,
    prefix: str = "rel",
    retry: int = 0,
    retry_attempts: int = 2,
) -> list[str]:
    """``count`` pending rows built by the app's own event builder; the first ``retry`` of
    them in retry state (``attempts`` > 0, ``next_attempt_at`` a minute in the past by the
    database clock).  Returns the event_ids."""
    from django.db.models import F

    from pinterest_capi import events
    from pinterest_capi.models import AdAccount, OutboxEvent
    from pinterest_capi.outbox import encode_payload

    account = AdAccount.objects.get(ad_account_id=ad_account_id)
    rows = []
    for n in range(start, start + count):
        event = events.build_event(
            "checkout",
            user_data={"em": f"buyer{n}@example.com", "client_ip_address": "203.0.113.7"},
            custom_data={"currency": "GBP", "value": "10.00", "order_id": f"{prefix}{n}"},
            event_id=f"{prefix}-{n}",
        )
        rows.append(
            OutboxEvent(
                account=account,
                event_id=event["event_id"],
                event_name=event["event_name"],
                event_time=event["event_time"],
                order_id=f"{prefix}{n}",
                payload=encode_payload(event),
            )
        )
    OutboxEvent.objects.bulk_create(rows, batch_size=1000)
    ids = [row.event_id for row in rows]
    if retry:
        from pinterest_capi.delivery import db_now_plus

        OutboxEvent.objects.filter(account=account, event_id__in=ids[:retry]).update(
            attempts=F("attempts") + retry_attempts,
            last_error="HTTP 503 (seeded retry state)",
            next_attempt_at=db_now_plus(-60),
        )
    return ids


def seed_catalog() -> list[int]:
    from shop_demo.shop.catalog import seed_catalog as seed
    from shop_demo.shop.models import Product

    seed()
    return list(Product.objects.filter(active=True).values_list("pk", flat=True))


def outbox_state() -> dict[str, Any]:
    """Statuses, ids and per-event attempt results, plus the DB clock when read."""
    from django.db import connection

    from pinterest_capi.models import AttemptEvent, OutboxEvent, RequestWindow

    rows = list(
        OutboxEvent.objects.order_by("pk").values_list(
            "event_id", "event_name", "status", "attempts", "lease_owner"
        )
    )
    processed = Counter(
        AttemptEvent.objects.filter(result="processed").values_list("event__event_id", flat=True)
    )
    with connection.cursor() as cursor:
        now = _db_now(cursor, connection.vendor)
    return {
        "db_now": now,
        "statuses": dict(Counter(status for _, _, status, _, _ in rows)),
        "ids": [event_id for event_id, *_ in rows],
        "names": dict(Counter(name for _, name, *_ in rows)),
        "sent_ids": [event_id for event_id, _, status, *_ in rows if status == "sent"],
        "not_sent": [[e, s] for e, _, s, *_ in rows if s != "sent"][:50],
        "attempts": dict(Counter(attempts for *_, attempts, _ in rows)),
        "processed_twice": sorted(e for e, n in processed.items() if n > 1),
        "processed_results": sum(processed.values()),
        "windows": list(RequestWindow.objects.order_by("window").values_list("window", "count")),
    }


def leases() -> dict[str, Any]:
    """In-flight rows' owners and lease expiry (Unix seconds, DB clock) and the DB's now."""
    from django.db import connection

    from pinterest_capi.models import EventStatus, OutboxEvent

    rows = OutboxEvent.objects.filter(status=EventStatus.IN_FLIGHT).values_list(
        "event_id", "lease_owner", "lease_expires_at"
    )
    with connection.cursor() as cursor:
        now = _db_now(cursor, connection.vendor)
    return {
        "db_now": now,
        "in_flight": [[e, owner, expires.timestamp()] for e, owner, expires in rows],
    }


def retry_times() -> dict[str, Any]:
    """``next_attempt_at`` of pending rows that have been attempted, and the DB's now."""
    from django.db import connection

    from pinterest_capi.models import EventStatus, OutboxEvent

    rows = OutboxEvent.objects.filter(status=EventStatus.PENDING, attempts__gt=0).values_list(
        "event_id", "attempts", "next_attempt_at"
    )
    with connection.cursor() as cursor:
        now = _db_now(cursor, connection.vendor)
    return {"db_now": now, "pending": [[e, a, when.timestamp()] for e, a, when in rows]}


def make_due() -> int:
    """Let time pass for backed-off rows: due now (DB clock)."""
    from django.db.models.functions import Now

    from pinterest_capi.models import EventStatus, OutboxEvent

    return OutboxEvent.objects.filter(status=EventStatus.PENDING).update(next_attempt_at=Now())


def checkouts(threads: int, go_file: str, tag: str) -> dict[str, Any]:
    """``threads`` customers check out at once through the shop's own services (cart, add to
    cart, place order: signals inside ``transaction.atomic``), starting when ``go_file``
    exists.  Every exception that reaches the shop's code is returned."""
    import os
    import threading

    from django.db import connection

    from shop_demo.shop import services
    from shop_demo.shop.models import Cart, Product

    products = list(Product.objects.filter(active=True, currency="GBP").order_by("pk"))
    barrier = threading.Barrier(threads)
    orders: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def customer(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            cart = Cart.objects.create()
            for product in (products[n % len(products)], products[(n + 5) % len(products)]):
                services.add_to_cart(None, product, 1 + n % 3, cart=cart)
            order = services.place_order(
                None,
                cart,
                {
                    "email": f"Customer.{tag}.{n}@Example.com",
                    "phone": f"020 7946 0{n:03d}",
                    "first_name": "Ada",
                    "last_name": f"Lovelace{n}",
                    "city": "London",
                    "postcode": "SW1A 1AA",
                    "country": "GB",
                },
            )
            with lock:
                orders.append(order.number)
        except Exception as exc:  # noqa: BLE001 - the test counts what reaches the shop
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    while not os.path.exists(go_file):
        time.sleep(0.005)
    workers = [threading.Thread(target=customer, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return {"orders": orders, "errors": errors}


def main() -> None:
    import django

    django.setup()
    name, kwargs = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    started = time.monotonic()
    result = globals()[name](**kwargs)
    sys.stdout.write("\n" + json.dumps({"result": result, "seconds": time.monotonic() - started}))


if __name__ == "__main__":
    main()
