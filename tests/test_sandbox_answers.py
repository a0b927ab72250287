"""The sandbox's fast path changes no answer: pinned answers, and the two paths held together.

The events endpoint answers a batch of valid, clean events through ``sandbox/fastcheck.py``
(msgspec) and everything else through the reference path (stdlib ``json`` and
``sandbox/validation.py``).  These tests prove the split invisible from outside:

* the answers (status, body bytes, what the ledger recorded) to ~60 requests — 1,000 varied
  events, per-event failures and warnings, forced statuses, every kind of schema violation,
  bodies a fast parser might read differently — are those the sandbox gave before the fast path
  existed (``tests/sandbox_answers.json``), with the fast path and without it (one changed on
  purpose since, as the file says: JSON nested too deeply is a 400, no longer a 500);
* on thousands of mutated events, the fast path says "all clean" exactly when the reference
  path finds no error, no warning and no schema violation.

Real HTTP to a SandboxServer on loopback; no database.
"""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from pinterest_capi.sandbox import Fault, SandboxServer, fastcheck
from pinterest_capi.sandbox.api import parse_json
from pinterest_capi.sandbox.validation import (
    DEFAULT_MAX_EVENT_AGE,
    DEFAULT_MAX_FUTURE_SKEW,
    OK,
    SchemaError,
    check_body,
    check_events,
)

from .sandbox_batches import capture_answers, pinned_requests, sha, varied_batch

PINNED = json.loads((Path(__file__).parent / "sandbox_answers.json").read_text())["answers"]
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def requests() -> list[tuple[str, bytes, dict[str, Any] | None]]:
    return pinned_requests()


@pytest.mark.skipif(not fastcheck.FAST, reason="msgspec is not installed: no fast path")
def test_answers_are_those_of_before_the_fast_path(requests):
    assert capture_answers(SandboxServer, Fault, requests) == PINNED


def test_the_reference_path_alone_gives_the_same_answers(monkeypatch, requests):
    monkeypatch.setattr(fastcheck, "FAST", False)
    assert capture_answers(SandboxServer, Fault, requests) == PINNED


@pytest.mark.skipif(not fastcheck.FAST, reason="msgspec is not installed: no fast path")
def test_a_batch_of_valid_events_takes_the_fast_path():
    body = json.dumps({"data": varied_batch(1000, NOW, failures=False)}).encode()
    assert fastcheck.all_clean(body, NOW, DEFAULT_MAX_EVENT_AGE, DEFAULT_MAX_FUTURE_SKEW) == 1000
    compact = json.dumps({"data": varied_batch(5, NOW, failures=False)}, separators=(",", ":"))
    assert fastcheck.all_clean(compact.encode(), NOW, 1e9, 1e9) == 5


# -- the two paths, held against each other on mutated events --------------------------------

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    1.5,
    1.0,
    "",
    "x",
    "web",
    "checkout",
    sha("a"),
    sha("a").upper(),
    sha("a")[:63],
    sha("a") + "\n",
    sha("a") + "0",
    [],
    ["x"],
    [sha("b")],
    [1],
    [None],
    {},
    {"id": "x"},
    {"value": "1.00"},
]
KEYS = [
    "event_name",
    "action_source",
    "event_time",
    "event_id",
    "user_data",
    "custom_data",
    "em",
    "ph",
    "hashed_maids",
    "client_ip_address",
    "client_user_agent",
    "click_id",
    "contents",
    "content_ids",
    "quantity",
    "item_price",
    "languages",
    "window_width",
    "opt_out",
    "wifi",
    "unknown",
]


def _containers(value: Any) -> list[Any]:
    """Every dict and list inside ``value`` (itself included)."""
    found = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            found.append(item)
            stack.extend(item)
    return found


def _mutate(rnd: random.Random, event: dict[str, Any]) -> None:
    """One random change anywhere in ``event``: a value replaced, a key added or removed, a
    rule of check_event broken, or event_time moved to an edge of the accepted window."""
    kind = rnd.randrange(7)
    if kind == 0:
        event["event_time"] = rnd.choice(
            [
                NOW - DEFAULT_MAX_EVENT_AGE,
                NOW - DEFAULT_MAX_EVENT_AGE - 1,
                NOW + DEFAULT_MAX_FUTURE_SKEW,
                NOW + DEFAULT_MAX_FUTURE_SKEW + 1,
            ]
        )
        return
    if kind == 1:  # a per-event rule: a warning or an error, maybe
        key, value = rnd.choice(
            [
                ("event_id", ""),
                ("event_name", "Checkout"),
                ("event_name", ""),
                ("action_source", "Web"),
                ("action_source", ""),
            ]
        )
        event[key] = value
        return
    if kind == 2:  # the identifier rule
        user = event.get("user_data")
        if not isinstance(user, dict):
            return
        for name in rnd.sample(["em", "hashed_maids", "client_ip_address", "client_user_agent"], 3):
            if rnd.random() < 0.5:
                user.pop(name, None)
            else:
                user[name] = [] if name in ("em", "hashed_maids") else ""
        return
    target = event if kind == 3 else rnd.choice(_containers(event))
    value = copy.deepcopy(rnd.choice(ODD_VALUES))
    if isinstance(target, list):
        if target and kind != 4:
            target[rnd.randrange(len(target))] = value
        else:
            target.append(value)
    elif kind == 4 or not target:
        target[rnd.choice(KEYS)] = value
    elif kind == 5:
        del target[rnd.choice(list(target))]
    else:
        target[rnd.choice(list(target))] = value


def _reference_clean(body: bytes) -> bool:
    """True when the reference path finds every event valid, without error or warning."""
    try:
        data = check_body(parse_json(body))
        results = check_events(data, NOW, DEFAULT_MAX_EVENT_AGE, DEFAULT_MAX_FUTURE_SKEW)
    except (SchemaError, ValueError):
        return False
    return all(result is OK for result in results)


@pytest.mark.skipif(not fastcheck.FAST, reason="msgspec is not installed: no fast path")
def test_fast_path_says_clean_exactly_when_the_reference_path_does():
    rnd = random.Random(2026)
    base = varied_batch(40, NOW, seed=21, failures=False)
    agreed = {True: 0, False: 0}
    started = time.monotonic()
    for trial in range(3000):
        events = copy.deepcopy(rnd.sample(base, 3))
        for _ in range(rnd.choice([0, 1, 1, 1, 2])):
            _mutate(rnd, rnd.choice(events))
        separators = (",", ":") if trial % 2 else None
        body = json.dumps({"data": events}, separators=separators).encode()
        fast = fastcheck.all_clean(body, NOW, DEFAULT_MAX_EVENT_AGE, DEFAULT_MAX_FUTURE_SKEW)
        reference = _reference_clean(body)
        assert bool(fast) == reference, body.decode()
        assert fast in (0, len(events))
        agreed[reference] += 1
    # Both outcomes were exercised plenty (a mutation may leave an event valid and clean).
    assert agreed[True] > 300 and agreed[False] > 1500, (agreed, time.monotonic() - started)


def test_concurrent_batches_get_their_own_answers_and_ledger_entries():
    """Four connections at once, as the benchmark posts: fast and reference paths interleaved
    give each request the answer it gets alone, and the ledger files each event under its own
    request."""
    import threading

    import httpx

    from .sandbox_batches import ACCOUNT, TOKEN

    bodies = [
        json.dumps({"data": varied_batch(200, NOW, seed=40 + i, failures=i % 2 == 1)}).encode()
        for i in range(8)
    ]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with SandboxServer(accounts={ACCOUNT: TOKEN}, clock=lambda: NOW) as srv:
        url = f"{srv.url}/ad_accounts/{ACCOUNT}/events"
        with httpx.Client(headers=headers) as http:
            alone = [http.post(url, content=body).content for body in bodies]
        srv.reset()
        answers: dict[int, list[bytes]] = {i: [] for i in range(len(bodies))}

        def post_all(offset: int) -> None:
            with httpx.Client(headers=headers, timeout=60) as http:
                for k in range(len(bodies)):
                    i = (offset + k) % len(bodies)
                    answers[i].append(http.post(url, content=bodies[i]).content)

        threads = [threading.Thread(target=post_all, args=(t * 2,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == {i: [alone[i]] * 4 for i in range(len(bodies))}
        by_seq: dict[int, list[Any]] = {}
        for entry in srv.ledger.events():
            by_seq.setdefault(entry["request_seq"], []).append(entry["event"])
        received = sorted(json.dumps(events) for events in by_seq.values())
        sent = sorted(json.dumps(json.loads(body)["data"]) for body in bodies for _ in range(4))
        assert received == sent
