"""Request bodies for the sandbox's events endpoint that use every rule of the contract.

Deterministic (a seeded generator, times relative to a given ``now``), so the sandbox's answers
to them can be pinned byte for byte (``tests/test_sandbox_answers.py``) and the same batch can
be benchmarked (``bench/sandbox_capacity.py --body varied``).
"""

from __future__ import annotations

import copy
import hashlib
import random
import re
from typing import Any

STANDARD_NAMES = [
    "add_to_cart",
    "checkout",
    "custom",
    "lead",
    "page_visit",
    "search",
    "signup",
    "view_category",
    "watch_video",
    "add_payment_info",
    "add_to_wishlist",
    "initiate_checkout",
    "subscribe",
    "view_content",
    "app_install",
    "app_open",
    "contact",
    "customize_product",
    "find_location",
    "schedule",
    "start_trial",
    "submit_application",
]
HASHED = ["em", "ph", "ge", "db", "fn", "ln", "ct", "st", "zp", "country", "external_id"]
DAY = 24 * 3600


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _user_data(rnd: random.Random, i: int) -> dict[str, Any]:
    user: dict[str, Any] = {}
    for name in rnd.sample(HASHED, rnd.randint(0, len(HASHED))):
        user[name] = [sha(f"{name}-{i}-{k}") for k in range(rnd.randint(1, 3))]
    kind = rnd.random()
    if kind < 0.5:
        user["em"] = [sha(f"buyer{i}@example.com")]
    elif kind < 0.7:
        user["hashed_maids"] = [sha(f"maid-{i}")]
    if kind >= 0.7 or rnd.random() < 0.6:  # no em nor hashed_maids: then both of these
        user["client_ip_address"] = rnd.choice(["203.0.113.9", "2001:db8::1"])
        user["client_user_agent"] = rnd.choice(["Mozilla/5.0 (X11; Linux x86_64)", "Ünïcode/1.0"])
    if rnd.random() < 0.3:
        user["click_id"] = rnd.choice([None, f"dj0yJnU9{i}"])
    if rnd.random() < 0.2:
        user["partner_id"] = rnd.choice([None, f"partner-{i}"])
    keys = list(user)
    rnd.shuffle(keys)  # any key order: the first violation is named in document order
    return {k: user[k] for k in keys}


def _custom_data(rnd: random.Random, i: int) -> dict[str, Any]:
    items = [
        {
            "id": f"SKU-{i}-{k}",
            "item_price": f"{rnd.randint(1, 9999) / 100:.2f}",
            "quantity": rnd.randint(1, 5),
            "item_name": rnd.choice(["Mug", "Crème brûlée — 東京", 'Tee "quoted" \\ slash']),
            "item_category": "Kitchen",
            "item_brand": "Acme",
        }
        for k in range(rnd.randint(0, 3))
    ]
    for item in items:  # a random subset of each item's optional fields
        for name in ("item_name", "item_category", "item_brand"):
            if rnd.random() < 0.5:
                del item[name]
    full: dict[str, Any] = {
        "currency": rnd.choice(["USD", "GBP", "EUR", None]),
        "value": f"{rnd.randint(1, 99999) / 100:.2f}",
        "content_ids": [item["id"] for item in items],
        "content_name": rnd.choice(["Mugs", None, "Ünïcode ☕"]),
        "content_category": "Kitchen",
        "content_brand": "Acme",
        "contents": items,
        "num_items": sum(item["quantity"] for item in items),
        "order_id": f"order-{i}",
        "search_string": rnd.choice(["mugs", None]),
        "opt_out_type": rnd.choice(["LDP", None]),
        "predicted_ltv": "120.00",
        "np": "ss-partner",
        "external_measurement_id": None,
        "external_measurement_vendor_id": rnd.choice([None, 7]),
    }
    names = rnd.sample(list(full), rnd.randint(1, len(full)))
    return {name: full[name] for name in names}


def _app_fields(rnd: random.Random, event: dict[str, Any]) -> None:
    if rnd.random() < 0.5:
        event.update(
            app_id="1234",
            app_name="Shop",
            app_version="2.1",
            device_brand="Acme",
            device_carrier=None,
            device_model="A1",
            device_type="phone",
            os_version="14",
            wifi=rnd.random() < 0.5,
        )
    else:
        event["app_info"] = {
            "app_id": "1234",
            "app_name": "Shop",
            "app_package_name": "com.example.shop",
            "app_store": "play",
            "app_version": "2.1",
            "install_time": 1700000000,
            "user_agent": "Shop/2.1",
            "window_height": 800,
            "window_width": 400,
        }
        event["device_info"] = {
            "battery_level": 80,
            "brand": "Acme",
            "cpu_cores": 8,
            "languages": ["en", "fr"],
            "locale": "en_GB",
            "model": "A1",
            "os_name": "Android",
            "screen_height": 2400,
            "screen_width": 1080,
            "timezone": "Europe/London",
        }


def varied_batch(n: int, now: int, seed: int = 5, failures: bool = True) -> list[dict[str, Any]]:
    """``n`` schema-valid events using every field; with ``failures`` some fail or warn per event.

    Per-event failures and warnings (about one event in five): a non-standard event_name, an
    empty event_id, an unknown action_source (non-ASCII too), event_time too old or ahead, an
    uppercase or short hash, no usable identifier.
    """
    rnd = random.Random(seed)
    events = []
    for i in range(n):
        event: dict[str, Any] = {
            "event_name": rnd.choice(STANDARD_NAMES),
            "action_source": rnd.choice(["web", "app_android", "app_ios", "offline"]),
            "event_time": now - rnd.randint(0, 6 * DAY),
            "event_id": f"ev-{seed}-{i}",
            "user_data": _user_data(rnd, i),
        }
        if rnd.random() < 0.8:
            event["custom_data"] = _custom_data(rnd, i)
        if event["action_source"] == "web":
            event["event_source_url"] = rnd.choice([f"https://shop.example/p/{i}", None])
            if rnd.random() < 0.5:
                event["language"] = rnd.choice(["en", "fr", None])
        else:
            _app_fields(rnd, event)
        if rnd.random() < 0.2:
            event["opt_out"] = rnd.random() < 0.5
        if rnd.random() < 0.1:
            event["partner_name"] = "ss-example"
        if failures and rnd.random() < 0.2:
            _spoil(rnd, event, i)
        keys = list(event)
        rnd.shuffle(keys)
        events.append({k: event[k] for k in keys})
    return events


SPOILS = 9  # kinds of per-event failure or warning that _spoil makes


def _spoil(rnd: random.Random, event: dict[str, Any], i: int, kind: int | None = None) -> None:
    """One per-event failure or warning (never a schema violation); ``kind`` < SPOILS."""
    if kind is None:
        kind = rnd.randrange(SPOILS)
    user = event["user_data"]
    if kind == 0:
        event["event_name"] = rnd.choice(["my_custom_event", "Ünïcode event", ""])
    elif kind == 1:
        event["event_id"] = ""
    elif kind == 2:
        event["action_source"] = rnd.choice(["website", "wéb", ""])
    elif kind == 3:
        event["event_time"] -= 8 * DAY
    elif kind == 4:
        event["event_time"] += rnd.choice([601, 3600, 400 * DAY])
    elif kind == 5:
        user["ph"] = [sha(f"ph-{i}").upper()]
    elif kind == 6:
        user["fn"] = [sha(f"fn-{i}"), "not-a-hash"]
    elif kind == 7:
        for name in ("em", "hashed_maids", "client_ip_address"):
            user.pop(name, None)
    else:
        event["event_time"] = rnd.choice([0, -1])


def _schema_mutations() -> list[tuple[str, Any]]:
    """(name, mutate(event) -> event) pairs, each making the event a schema violation."""

    def setter(path: tuple[Any, ...], value: Any) -> Any:
        def mutate(event: dict[str, Any]) -> dict[str, Any]:
            target = event
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            return event

        return mutate

    def deleter(key: str) -> Any:
        def mutate(event: dict[str, Any]) -> dict[str, Any]:
            del event[key]
            return event

        return mutate

    return [
        ("unknown key", setter(("currency",), "USD")),
        ("unknown user_data key", setter(("user_data", "email"), "a@b.c")),
        ("unknown custom_data key", setter(("custom_data", "price"), "1.00")),
        ("event_time as text", setter(("event_time",), "1700000000")),
        ("event_time as bool", setter(("event_time",), True)),
        ("event_time as float", setter(("event_time",), 1700000000.5)),
        ("event_time beyond float", setter(("event_time",), float("inf"))),
        ("event_id null", setter(("event_id",), None)),
        ("em as text", setter(("user_data", "em"), "a" * 64)),
        ("em item as number", setter(("user_data", "em"), [12])),
        ("click_id as number", setter(("user_data", "click_id"), 12)),
        ("user_data as list", setter(("user_data",), [])),
        ("custom_data null", setter(("custom_data",), None)),
        ("value as number", setter(("custom_data", "value"), 72.39)),
        ("num_items as text", setter(("custom_data", "num_items"), "2")),
        ("content_ids item as number", setter(("custom_data", "content_ids"), ["a", 1])),
        ("contents as object", setter(("custom_data", "contents"), {"id": "x"})),
        (
            "contents item quantity as text",
            setter(("custom_data", "contents"), [{"id": "x", "quantity": 1}, {"quantity": "2"}]),
        ),
        ("contents item unknown key", setter(("custom_data", "contents"), [{"sku": "x"}])),
        ("app_info width as float", setter(("app_info",), {"window_width": 1.5})),
        ("device_info languages as text", setter(("device_info",), {"languages": "en"})),
        ("opt_out as text", setter(("opt_out",), "yes")),
        ("wifi as int", setter(("wifi",), 1)),
        ("missing event_id", deleter("event_id")),
        ("missing user_data", deleter("user_data")),
        ("big int in a string field", setter(("event_id",), 2**70)),
    ]


def invalid_bodies(now: int) -> list[tuple[str, bytes]]:
    """Request bodies answered 400 (or refused before validation), each named.

    Event-level violations sit at index 3 of a 5-event batch whose other events are valid, and
    some events carry two violations, so the answer must name the first one in document order.
    """
    import json

    base = varied_batch(5, now, seed=11, failures=False)
    out: list[tuple[str, bytes]] = []
    for name, mutate in _schema_mutations():
        events = copy.deepcopy(base)
        events[3] = mutate(events[3] | {"custom_data": {"value": "1.00"}})
        out.append((name, json.dumps({"data": events}).encode()))
    two = copy.deepcopy(base)
    two[1] = {"user_data": {"em": "x"}, **two[1], "custom_data": {"value": 1}, "zz": 1}
    out.append(("two violations, user_data first", json.dumps({"data": two}).encode()))
    two[1] = {"custom_data": {"value": 1}, **two[1]}
    out.append(("two violations, custom_data first", json.dumps({"data": two}).encode()))
    good = json.dumps({"data": base})
    out += [
        ("not JSON", b"{data: []}"),
        ("NaN", _first_time(good, "NaN")),
        ("Infinity", _first_time(good, "-Infinity")),
        ("number beyond float", _first_time(good, "1e400")),
        ("truncated", good[:-5].encode()),
        ("invalid UTF-8", good.encode()[:-3] + b"\xff]}"),
        ("UTF-8 BOM", b"\xef\xbb\xbf" + json.dumps({"data": [{"x": 1}]}).encode()),
        ("lone surrogate key", good.replace('"event_name"', '"\\ud800"', 1).encode()),
        ("extra top-level key", json.dumps({"data": base, "test": True}).encode()),
        ("data missing", b"{}"),
        ("data not a list", b'{"data": {}}'),
        ("data empty", b'{"data": []}'),
        ("body is a list", b"[]"),
        ("1,001 events", json.dumps({"data": [base[0]] * 1001}).encode()),
        ("event is a string", json.dumps({"data": [base[0], "event"]}).encode()),
        ("deep nesting", b'{"data": [' + b"[" * 5000 + b"]" * 5000 + b"]}"),
    ]
    return out


def _first_time(body: str, literal: str) -> bytes:
    """``body`` with its first event_time replaced by the JSON text ``literal``."""
    return re.sub(r'"event_time": -?[0-9]+', f'"event_time": {literal}', body, count=1).encode()


def edge_bodies(now: int) -> list[tuple[str, bytes]]:
    """Valid bodies that a fast JSON parser may read differently from the stdlib's."""
    import json

    events = varied_batch(3, now, seed=13, failures=False)
    good = json.dumps({"data": events})
    return [
        ("event_time beyond 64 bits", _first_time(good, "1" + "0" * 25)),
        ("event_time below int64", _first_time(good, "-9223372036854775809")),
        ("event_time just inside uint64", _first_time(good, "18446744073709551615")),
        ("lone surrogate in event_id", good.replace('"ev-13-0"', '"ev-\\udc80"').encode()),
        ("UTF-8 BOM before a valid body", b"\xef\xbb\xbf" + good.encode()),
        ("UTF-16 body", good.encode("utf-16")),
        (
            "duplicate keys",
            good.replace('"event_id": "ev-13-1"', '"event_id": 1, "event_id": "ev-13-1"').encode(),
        ),
        (
            "duplicate keys, both valid",
            good.replace(
                '"event_id": "ev-13-2"', '"event_id": "a", "event_id": "ev-13-2"'
            ).encode(),
        ),
        ("escaped slashes and unicode", good.replace("https://", "https:\\/\\/").encode()),
        ("non-ASCII as escapes", good.replace('"web"', '"w\\u00e9b"').encode()),
    ]


# -- pinning the answers -------------------------------------------------------------------

PINNED_NOW = 1_800_000_000  # the sandbox's clock while answers are pinned
ACCOUNT = "549755885175"
TOKEN = "sandbox-token-abc"


def pinned_requests() -> list[tuple[str, bytes, dict[str, Any] | None]]:
    """(name, body, fault as JSON or None) for every answer ``capture_answers`` pins."""
    import json

    now = PINNED_NOW

    def body(events: list[dict[str, Any]]) -> bytes:
        return json.dumps({"data": events}).encode()

    varied = body(varied_batch(1000, now))
    valid = body(varied_batch(1000, now, failures=False))
    out: list[tuple[str, bytes, dict[str, Any] | None]] = [
        ("1,000 varied events, some failing", varied, None),
        ("1,000 varied events, all valid", valid, None),
        (
            "valid events, forced statuses",
            valid,
            {"event_status": {"0": "failed", "5": "processed"}},
        ),
        (
            "valid events, every one forced to fail",
            body(varied_batch(3, now, failures=False)),
            {"event_status": {"0": "failed", "1": "failed", "2": "failed"}},
        ),
        ("valid events, as 422", body(varied_batch(4, now, failures=False)), {"as_422": True}),
        (
            "compact encoding",
            json.dumps({"data": varied_batch(20, now)}, separators=(",", ":")).encode(),
            None,
        ),
        ("every event too old", body(varied_batch(50, now - 30 * DAY, failures=False)), None),
        (
            "forced per-event statuses",
            varied,
            {"event_status": {"0": "failed", "1": "processed", "7": "failed", "999": "processed"}},
        ),
        (
            "forced statuses with a message, as 422",
            body(varied_batch(30, now)),
            {"event_status": {"2": "failed"}, "message": "Nope — ünïcode", "as_422": True},
        ),
    ]
    for kind in range(SPOILS):  # valid batches but for one event: each rule on its own
        events = varied_batch(1000, now, seed=30 + kind, failures=False)
        index = 37 * kind + 5
        _spoil(random.Random(kind), events[index], index, kind)
        out.append((f"1,000 valid events but one, spoilt by kind {kind}", body(events), None))
    out += [(name, data, None) for name, data in invalid_bodies(now) + edge_bodies(now)]
    return out


def capture_answers(
    server_cls: Any,
    fault_cls: Any,
    requests: list[tuple[str, bytes, dict[str, Any] | None]] | None = None,
) -> dict[str, list[Any]]:
    """name → [status, sha256 of the body, sha256 of what the ledger recorded] per request.

    Runs a sandbox of ``server_cls`` (with its clock at :data:`PINNED_NOW`) and real HTTP, for
    ``requests`` (default: :func:`pinned_requests`).  Needs neither Django nor the test
    settings, so an older tree's sandbox can run it too.
    """
    import json

    import httpx

    answers: dict[str, list[Any]] = {}
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with (
        server_cls(accounts={ACCOUNT: TOKEN}, clock=lambda: PINNED_NOW) as srv,
        httpx.Client(timeout=60, headers=headers) as http,
    ):
        url = f"{srv.url}/ad_accounts/{ACCOUNT}/events"
        for name, data, fault in requests if requests is not None else pinned_requests():
            srv.reset()
            if fault is not None:
                srv.faults.add(fault_cls.from_json(fault))
            response = http.post(url, content=data)
            entries = [
                {k: v for k, v in e.items() if k != "request_seq"} for e in srv.ledger.events()
            ]
            requests_seen = [
                # seq and the client's port differ from run to run (and older sandboxes had
                # no port): what is pinned is the rest of the entry.
                {k: v for k, v in r.items() if k not in ("seq", "client_port")}
                for r in srv.ledger.requests()
            ]
            recorded = json.dumps([entries, requests_seen], sort_keys=True).encode()
            answers[name] = [
                response.status_code,
                hashlib.sha256(response.content).hexdigest(),
                hashlib.sha256(recorded).hexdigest(),
            ]
    return answers


if __name__ == "__main__":
    # python -m tests.sandbox_batches [--tree DIR]: the answers of this tree's sandbox, or of the
    # sandbox in DIR (say, an older commit unpacked with `git archive`), as tests/
    # sandbox_answers.json holds them.
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", help="a source tree whose pinterest_capi to run instead")
    args = parser.parse_args()
    if args.tree:
        sys.path.insert(0, args.tree)
        for name in [m for m in sys.modules if m.split(".")[0] == "pinterest_capi"]:
            del sys.modules[name]
    from pinterest_capi.sandbox import Fault, SandboxServer

    print(json.dumps(capture_answers(SandboxServer, Fault), indent=1, ensure_ascii=False))
