"""The benchmark steps that need Django, each run in a child process on one fresh database.

``python -m bench.tasks <task> '<json params>'`` sets Django up from the environment (see
:meth:`bench.common.BenchDB.env`), runs ``<task>(**params)`` and prints its result as one JSON
line.  The orchestrator (:mod:`bench.run`) never imports Django itself, so every database gets
processes of its own.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import ACCOUNT_ID, TOKEN, blast

BENCH_TENANT = "bench"

TASKS: dict[str, Callable[..., dict[str, Any]]] = {}


def task(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    TASKS[fn.__name__] = fn
    return fn


# -- events ---------------------------------------------------------------------------------


def template_event() -> dict[str, Any]:
    """One checkout event built by the app's own builder (hashed user data, as stored)."""
    from pinterest_capi import events

    return events.build_event(
        "checkout",
        user_data={
            "em": "buyer@example.com",
            "ph": "+44 20 7946 0958",
            "client_ip_address": "203.0.113.9",
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
        },
        custom_data={
            "currency": "GBP",
            "value": "59.97",
            "order_id": "B0",
            "contents": [
                {"id": "SKU-1", "item_price": "19.99", "quantity": 2},
                {"id": "SKU-2", "item_price": "19.99", "quantity": 1},
            ],
            "num_items": 3,
        },
        event_id="bench-0",
        event_source_url="https://shop.example.com/checkout/",
    )


def make_events(n: int, prefix: str, start: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct events: the template with its own event_id and order_id each.

    Building every event with ``build_event`` would spend most of a million-row seed in
    hashing the same e-mail again; the rows the flusher reads are the same either way.
    """
    base = template_event()
    custom = base["custom_data"]
    return [
        base | {"event_id": f"{prefix}-{i}", "custom_data": custom | {"order_id": f"{prefix}{i}"}}
        for i in range(start, start + n)
    ]


def bench_account() -> Any:
    """The bench tenant's ad account, with the token the sandbox accepts."""
    from pinterest_capi.models import AdAccount

    account, _ = AdAccount.objects.get_or_create(
        tenant=BENCH_TENANT, ad_account_id=ACCOUNT_ID, defaults={"name": "bench"}
    )
    account.set_token(TOKEN)
    account.save()
    return account


# -- tasks ----------------------------------------------------------------------------------


@task
def seed(events: int, prefix: str = "ev", chunk: int = 100_000) -> dict[str, Any]:
    """A pending backlog of ``events`` rows for the bench account, quickly.

    The first event goes in through ``outbox.record_many`` (so ``new_row`` decides every column
    and the payload is the app's own encoding); the others are copies of that row made by the
    database, ``chunk`` at a time (``INSERT … SELECT`` over a counter), with their own event_id,
    order_id and the payload's two ids replaced.  A million rows take seconds this way instead
    of the minutes that building a million model instances in Python would.
    """
    from django.db import connection, transaction

    from pinterest_capi import outbox
    from pinterest_capi.models import OutboxEvent

    account = bench_account()
    started = time.monotonic()
    first = make_events(1, prefix)[0]
    outbox.record_many([first], accounts=[account])
    template = OutboxEvent.objects.get(account=account, event_id=first["event_id"])
    meta = OutboxEvent._meta
    qn = connection.ops.quote_name
    columns = [f.column for f in meta.concrete_fields if not f.primary_key and not f.generated]
    id_old = f'"event_id":"{first["event_id"]}"'
    order_old = f'"order_id":"{first["custom_data"]["order_id"]}"'
    num = "CAST(s.i AS TEXT)"
    text = "CAST(%s AS TEXT)"
    swap = "replace({}, " + text + ", " + text + " || " + num + " || '\"')"
    select = []
    for column in columns:
        if column in ("event_id", "order_id"):
            select.append(f"{text} || {num}")
        elif column == "payload":
            select.append(swap.format(swap.format(qn("payload"))))
        else:
            select.append(qn(column))
    sql = (
        "INSERT INTO {table} ({cols}) "
        "WITH RECURSIVE s(i) AS "
        "(SELECT CAST(%s AS INTEGER) UNION ALL SELECT i + 1 FROM s WHERE i < %s) "
        "SELECT {select} FROM {table}, s WHERE {table}.{pk} = %s"
    ).format(
        table=qn(meta.db_table),
        cols=", ".join(qn(c) for c in columns),
        select=", ".join(select),
        pk=qn(meta.pk.column),
    )
    params_for = []
    for column in columns:
        if column == "event_id":
            params_for.append(f"{prefix}-")
        elif column == "order_id":
            params_for.append(prefix)
        elif column == "payload":
            params_for += [id_old, f'"event_id":"{prefix}-', order_old, f'"order_id":"{prefix}']
    for start in range(1, events, chunk):
        end = min(events, start + chunk) - 1
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [start, end, *params_for, template.pk])
    seconds = time.monotonic() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # fresh statistics, as autovacuum would give soon
            cursor.execute("ANALYZE pinterest_capi_outboxevent")
    written = OutboxEvent.objects.filter(account=account, status="pending").count()
    probe = OutboxEvent.objects.filter(account=account).order_by("-pk").first()
    decoded = json.loads(probe.payload)
    if written != events or decoded["event_id"] != probe.event_id:
        raise SystemExit(f"seed: {written} rows for {events}; last row {probe.event_id!r}")
    return {"written": written, "seconds": seconds}


@task
def status_counts() -> dict[str, Any]:
    """Outbox rows per status."""
    from django.db.models import Count

    from pinterest_capi.models import OutboxEvent

    rows = OutboxEvent.objects.values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


@task
def track_cost(events: int) -> dict[str, Any]:
    """``pinterest_capi.track()`` per event, each in its own transaction like a shop's order."""
    from django.db import transaction

    import pinterest_capi
    from pinterest_capi.models import OutboxEvent

    bench_account()
    custom = template_event()["custom_data"]

    def one(i: int) -> None:
        with transaction.atomic():
            pinterest_capi.track(
                "checkout",
                tenant=BENCH_TENANT,
                event_id=f"track-{i}",
                user_data={
                    "em": f"buyer{i}@example.com",
                    "ph": "+44 20 7946 0958",
                    "fn": "Ada",
                    "client_ip_address": "203.0.113.9",
                    "client_user_agent": "Mozilla/5.0 bench",
                },
                custom_data=custom | {"order_id": f"T{i}"},
            )

    for i in range(min(50, events)):  # warm-up: imports, connections, caches
        one(-1 - i)
    timings = []
    for i in range(events):
        started = time.perf_counter()
        one(i)
        timings.append(time.perf_counter() - started)
    recorded = OutboxEvent.objects.filter(event_id__startswith="track-").exclude(
        event_id__startswith="track--"
    )
    if recorded.count() != events:
        raise SystemExit(f"track() recorded {recorded.count()} rows for {events} events")
    total = sum(timings)
    return {
        "events": events,
        "events_per_s": events / total,
        "us_per_event_median": statistics.median(timings) * 1e6,
        "us_per_event_mean": total / events * 1e6,
    }


class DemoCheckouts:
    """One visitor of the demo shop (Django's test client, in-process) who buys, again and again.

    Sets the shop up (its catalog, one ad account of the default tenant).  Each
    :meth:`one` adds a product to the cart (untimed) and posts the checkout form (timed: the
    view with its middleware, form, ``place_order`` and redirect); ``recording`` connects
    or disconnects the app's receivers from the shop's signals (as ``SIGNALS = {}`` would).

    Django's test client keeps the database connection from request to request (it holds
    ``close_old_connections`` back).  With ``connection_per_request`` each request starts and
    ends with it, as under a real server, so with the demo's ``CONN_MAX_AGE = 0`` (Django's
    default) every request opens its own connection and database session: the checkout then
    includes the connect and whatever a new session loads on first use.
    """

    FORM = {
        "email": "buyer@example.com",
        "phone": "+44 20 7946 0958",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "city": "London",
        "postcode": "N1 9GU",
        "country": "GB",
    }

    def __init__(self, *, connection_per_request: bool = False) -> None:
        from django.conf import settings
        from django.test import Client

        from pinterest_capi.models import AdAccount
        from shop_demo.shop.catalog import seed_catalog

        self.products = [p for p in seed_catalog() if p.active and p.currency == "GBP"][:3]
        account = AdAccount(
            tenant=settings.PINTEREST_CAPI["DEFAULT_TENANT"], ad_account_id=ACCOUNT_ID, name="demo"
        )
        account.set_token(TOKEN)
        account.save()
        self.signal_paths = list(settings.PINTEREST_CAPI["SIGNALS"])
        self.client = Client(HTTP_USER_AGENT="Mozilla/5.0 bench", REMOTE_ADDR="203.0.113.9")
        self.connection_per_request = connection_per_request
        self.count = 0

    def recording(self, on: bool) -> None:
        from django.utils.module_loading import import_string

        from pinterest_capi.receivers import connect_configured_signals

        if on:
            connect_configured_signals()
        else:
            for path in self.signal_paths:
                import_string(path).disconnect(dispatch_uid=f"pinterest_capi:{path}")

    def post(self, path: str, data: dict[str, Any]) -> Any:
        """A POST through the test client; with ``connection_per_request``, as a server does it."""
        from django.db import close_old_connections

        if not self.connection_per_request:
            return self.client.post(path, data)
        close_old_connections()  # request_started
        try:
            return self.client.post(path, data)
        finally:
            close_old_connections()  # request_finished

    def one(self) -> float:
        """One order: seconds its checkout POST took."""
        product = self.products[self.count % len(self.products)]
        response = self.post(f"/p/{product.slug}/add/", {"quantity": 1 + self.count % 2})
        if response.status_code != 302:
            raise SystemExit(f"add to cart: HTTP {response.status_code}")
        started = time.perf_counter()
        response = self.post("/checkout/", self.FORM)
        elapsed = time.perf_counter() - started
        if response.status_code != 302:
            raise SystemExit(f"checkout: HTTP {response.status_code}")
        self.count += 1
        return elapsed


@task
def checkout(
    iterations: int, block: int = 10, warmup: int = 10, connection_per_request: bool = False
) -> dict[str, Any]:
    """The demo shop's checkout through its view, app recording vs disabled, interleaved.

    :class:`DemoCheckouts` (``connection_per_request`` as there), ``iterations`` times per
    mode.  Modes alternate in blocks of
    ``block`` checkouts (AB, BA, AB…) so drift in the machine's load or the tables' size hits
    both alike; every block checks that the outbox grew exactly when recording was on.
    """
    from pinterest_capi.models import OutboxEvent
    from shop_demo.shop.models import Order

    shop = DemoCheckouts(connection_per_request=connection_per_request)
    timings: dict[str, list[float]] = {"on": [], "off": []}
    for on in (True, False):  # warm-up, discarded
        shop.recording(on)
        for _ in range(warmup):
            shop.one()
    rounds = max(1, iterations // block)
    for r in range(rounds):
        order = ("on", "off") if r % 2 == 0 else ("off", "on")
        for mode in order:
            shop.recording(mode == "on")
            before = OutboxEvent.objects.count()
            for _ in range(block):
                timings[mode].append(shop.one())
            grew = OutboxEvent.objects.count() - before
            expected = 2 * block if mode == "on" else 0  # add_to_cart + checkout per order
            if grew != expected:
                raise SystemExit(f"recording {mode}: outbox grew by {grew}, expected {expected}")
    on_ms = statistics.median(timings["on"]) * 1000
    off_ms = statistics.median(timings["off"]) * 1000
    return {
        "checkouts_per_mode": len(timings["on"]),
        "connection_per_request": connection_per_request,
        "orders": Order.objects.count(),
        "median_ms_recording": on_ms,
        "median_ms_disabled": off_ms,
        "ratio": on_ms / off_ms,
    }


@task
def senders(
    events_url: str, naive: int, sdk: int, capacity: int, connections: int = 4
) -> dict[str, Any]:
    """The comparison senders and the sandbox's own capacity, on the same kind of events.

    - naive: one POST per event as it happens, a new connection each (``httpx.post``);
    - sdk: Pinterest's official SDK (``pinterest-api-sdk``): its model classes build each event,
      its conversion-events call sends batches of 1,000 over its keep-alive pool;
    - capacity: pre-encoded 1,000-event bodies posted over ``connections`` keep-alive
      connections at once, the most the sandbox accepts.
    """
    import httpx

    from pinterest_capi.outbox import encode_payload

    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    result: dict[str, Any] = {}

    sample = make_events(naive, "naive")
    started = time.monotonic()
    for event in sample:
        body = json.dumps({"data": [event]})
        # verify=False: plain HTTP on loopback; it spares each post the CA bundle an HTTPS
        # sender would load (and a TLS handshake): the naive figure is a generous one.
        response = httpx.post(events_url, content=body, headers=headers, timeout=30, verify=False)
        response.raise_for_status()
    result["naive_events"] = naive
    result["naive_events_per_s"] = naive / (time.monotonic() - started)

    result.update(_sdk(events_url.split("/ad_accounts/")[0], make_events(sdk, "sdk")))

    payloads = [encode_payload(e) for e in make_events(1000, "cap")]
    body = ('{"data":[' + ",".join(payloads) + "]}").encode()
    batches = max(connections, capacity // 1000)
    seconds = blast(events_url + "?test=true", body, batches, connections, headers)
    result["capacity_events"] = batches * 1000
    result["capacity_connections"] = connections
    result["capacity_events_per_s"] = batches * 1000 / seconds
    return result


def _sdk(api_base: str, sample: list[dict[str, Any]]) -> dict[str, Any]:
    """Send ``sample`` with Pinterest's SDK, pointed at the sandbox (host) with our token."""
    from openapi_generated.pinterest_client.configuration import Configuration
    from openapi_generated.pinterest_client.model.conversion_events_custom_data_contents import (
        ConversionEventsCustomDataContents as Contents,
    )
    from pinterest.ads.conversion_events import Conversion
    from pinterest.client import PinterestSDKClient

    def sdk_event(event: dict[str, Any]) -> Any:
        custom = event["custom_data"]
        custom = custom | {"contents": [Contents(**item) for item in custom.get("contents", [])]}
        return Conversion.create_conversion_event(**(event | {"custom_data": custom}))

    client = PinterestSDKClient(configuration=Configuration(access_token=TOKEN, host=api_base))
    started = time.monotonic()
    processed = 0
    for i in range(0, len(sample), 1000):
        batch = [sdk_event(event) for event in sample[i : i + 1000]]
        response = Conversion.send_conversion_events(ACCOUNT_ID, batch, client=client)
        processed += response.num_events_processed
    seconds = time.monotonic() - started
    if processed != len(sample):
        raise SystemExit(f"SDK: the sandbox processed {processed} of {len(sample)} events")
    return {"sdk_events": len(sample), "sdk_events_per_s": len(sample) / seconds}


def main() -> None:
    import django

    django.setup()
    name, params = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    print(json.dumps(TASKS[name](**params)))


if __name__ == "__main__":
    main()
