"""The sandbox: a real HTTP server on loopback speaking Pinterest's Conversions API contract.

Real HTTP with httpx against a SandboxServer started per test; no database.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

from pinterest_capi.sandbox import Fault, SandboxServer
from tests.reliability.harness import wait_until

ACCOUNT = "549755885175"
TOKEN = "sandbox-token-abc"
OTHER_ACCOUNT = "549755885176"
OTHER_TOKEN = "sandbox-token-other"
EM = hashlib.sha256(b"test@example.com").hexdigest()
PH = hashlib.sha256(b"442079460000").hexdigest()
ROOT = Path(__file__).resolve().parent.parent


def make_event(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid checkout event, built by hand from the contract."""
    event = {
        "event_name": "checkout",
        "action_source": "web",
        "event_time": int(time.time()) - 60,
        "event_id": f"checkout-{i}",
        "event_source_url": "https://shop.example/checkout",
        "user_data": {
            "em": [EM],
            "ph": [PH],
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0",
        },
        "custom_data": {
            "currency": "USD",
            "value": "72.39",
            "order_id": f"order-{i}",
            "num_items": 2,
            "content_ids": ["sku-1"],
            "contents": [{"id": "sku-1", "item_price": "36.195", "quantity": 2}],
        },
    }
    event.update(overrides)
    return event


@pytest.fixture
def srv():
    with SandboxServer(accounts={ACCOUNT: TOKEN, OTHER_ACCOUNT: OTHER_TOKEN}) as server:
        yield server


@pytest.fixture
def client(srv):
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        yield c


def post(
    client: httpx.Client,
    events: list | None = None,
    *,
    account: str = ACCOUNT,
    token: str | None = TOKEN,
    test: bool = False,
    body: Any = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    payload = (
        body if body is not None else {"data": events if events is not None else [make_event()]}
    )
    params = {"test": "true"} if test else None
    return client.post(
        f"/ad_accounts/{account}/events", json=payload, headers=headers, params=params
    )


# -- the happy path -------------------------------------------------------------------------


def test_valid_batch_answers_200_and_fills_the_ledger(srv, client):
    events = [make_event(i) for i in range(3)]
    r = post(client, events)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "num_events_received": 3,
        "num_events_processed": 3,
        "events": [{"status": "processed", "error_message": "", "warning_message": ""}] * 3,
    }
    received = srv.ledger.events()
    assert [e["event"] for e in received] == events
    assert [e["index"] for e in received] == [0, 1, 2]
    assert {(e["ad_account_id"], e["test"], e["status"]) for e in received} == {
        (ACCOUNT, False, "processed")
    }
    (req,) = srv.ledger.requests()
    assert req["seq"] == received[0]["request_seq"]
    assert isinstance(req["client_port"], int)  # the sender's side of the connection
    assert req == {
        "seq": req["seq"],
        "client_port": req["client_port"],
        "method": "POST",
        "path": f"/v5/ad_accounts/{ACCOUNT}/events",
        "ad_account_id": ACCOUNT,
        "test": False,
        "num_events": 3,
        "status_code": 200,
        "fault": None,
        "authorization_ok": True,
    }
    assert srv.ledger.event_ids() == ["checkout-0", "checkout-1", "checkout-2"]


def test_resends_are_counted_and_clear_empties(srv, client):
    post(client, [make_event(1)])
    post(client, [make_event(1), make_event(2)])
    assert srv.ledger.event_ids(ACCOUNT) == ["checkout-1", "checkout-1", "checkout-2"]
    assert srv.ledger.event_ids(OTHER_ACCOUNT) == []
    srv.ledger.clear()
    assert srv.ledger.events() == [] and srv.ledger.requests() == []


def test_test_mode_is_recorded_as_test(srv, client):
    assert post(client, [make_event(1)], test=True).status_code == 200
    post(client, [make_event(2)])
    assert [e["event"]["event_id"] for e in srv.ledger.events(test=True)] == ["checkout-1"]
    assert srv.ledger.event_ids(test=False) == ["checkout-2"]
    assert [r["test"] for r in srv.ledger.requests()] == [True, False]


def test_nonstandard_event_name_is_processed_with_a_warning(client):
    r = post(client, [make_event(event_name="my_custom_thing")])
    (result,) = r.json()["events"]
    assert result["status"] == "processed" and "my_custom_thing" in result["warning_message"]


def test_conversion_tags(client):
    r = client.get(
        f"/ad_accounts/{ACCOUNT}/conversion_tags", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 200
    (tag,) = r.json()["items"]
    assert tag["ad_account_id"] == ACCOUNT and tag["status"] == "ACTIVE" and tag["id"].isdigit()
    r = client.get(
        f"/ad_accounts/{ACCOUNT}/conversion_tags", headers={"Authorization": "Bearer nope"}
    )
    assert r.status_code == 401 and r.json()["code"] == 2
    r = client.get(
        f"/ad_accounts/{ACCOUNT}/conversion_tags",
        headers={"Authorization": f"Bearer {OTHER_TOKEN}"},
    )
    assert r.status_code == 403 and r.json()["code"] == 29


# -- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "token", "status", "code"),
    [
        (ACCOUNT, None, 401, 2),
        (ACCOUNT, "wrong-token", 401, 2),
        (ACCOUNT, OTHER_TOKEN, 403, 29),
        ("123456789", TOKEN, 404, 404),
        ("not-digits", TOKEN, 404, 404),
        ("1234567890123456789", TOKEN, 404, 404),
    ],
)
def test_auth_errors(srv, client, account, token, status, code):
    r = post(client, [make_event()], account=account, token=token)
    assert r.status_code == status
    body = r.json()
    assert body["code"] == code and body["message"]
    if status == 401:
        assert body["message"] == "Authentication failed."
    assert srv.ledger.events() == []
    (req,) = srv.ledger.requests()
    assert req["status_code"] == status and req["authorization_ok"] is False


def test_accounts_can_be_added_and_removed_and_any_token_mode(srv, client):
    srv.add_account("42", "t-42")
    assert post(client, account="42", token="t-42").status_code == 200
    srv.remove_account("42")
    assert post(client, account="42", token="t-42").status_code == 401
    with SandboxServer(accept_any_token=True) as any_srv, httpx.Client(base_url=any_srv.url) as c:
        assert post(c, account="777", token="whatever").status_code == 200
        assert post(c, account="777", token=None).status_code == 401
        assert post(c, account="abc", token="whatever").status_code == 404


# -- whole-request schema violations (400) ------------------------------------------------


def _bad(path: str, value: Any) -> dict[str, Any]:
    """A valid event with ``value`` set at a dotted path (``"custom_data.contents.0.foo"``)."""
    event = make_event()
    *parents, leaf = path.split(".")
    node: Any = event
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[leaf] = value
    return event


@pytest.mark.parametrize(
    "path",
    ["foo", "user_data.foo", "custom_data.foo", "custom_data.contents.0.foo"],
)
def test_unknown_field_at_any_level_rejects_the_whole_batch(srv, client, path):
    events = [make_event(1), _bad(path, "x"), make_event(3)]
    r = post(client, events)
    assert r.status_code == 400
    assert r.json()["code"] == 4196
    assert "Additional properties are not allowed ('foo' was unexpected)" in r.json()["message"]
    assert srv.ledger.events() == []
    assert srv.ledger.requests()[0]["num_events"] == 3


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("event_time", "1700000000"),
        ("event_time", 1700000000.5),
        ("event_time", True),
        ("event_id", 17),
        ("custom_data.value", 72.39),
        ("custom_data.num_items", "2"),
        ("custom_data.contents.0.quantity", "2"),
        ("custom_data.contents.0.item_price", 36.2),
        ("user_data.em", EM),
        ("user_data.em", [123]),
        ("user_data", None),
        ("opt_out", "false"),
    ],
)
def test_wrong_json_types_reject_the_whole_batch(client, path, value):
    r = post(client, [make_event(0), _bad(path, value)])
    assert r.status_code == 400
    assert "is not of type" in r.json()["message"]


@pytest.mark.parametrize(
    "field", ["event_name", "action_source", "event_time", "event_id", "user_data"]
)
def test_missing_required_field_is_400(client, field):
    event = make_event()
    del event[field]
    r = post(client, [event])
    assert r.status_code == 400 and f"'{field}' is a required property" in r.json()["message"]


@pytest.mark.parametrize("count", [0, 1001])
def test_batch_size_limits(srv, client, count):
    r = post(client, [make_event(i) for i in range(count)])
    assert r.status_code == 400 and r.json()["code"] == 4196
    assert srv.ledger.events() == []


def test_exactly_1000_events_is_fine(client):
    r = post(client, [make_event(i) for i in range(1000)])
    assert r.status_code == 200 and r.json()["num_events_processed"] == 1000


@pytest.mark.parametrize(
    "body", [{"data": [make_event()], "extra": 1}, {}, {"data": "x"}, ["x"], {"data": [1]}]
)
def test_malformed_envelope_is_400(client, body):
    r = post(client, body=body)
    assert r.status_code == 400 and r.json()["code"] == 4196


def test_not_json_or_wrong_content_type_is_400(client):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = f"/ad_accounts/{ACCOUNT}/events"
    r = client.post(url, content=b"{not json", headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400 and "Invalid JSON" in r.json()["message"]
    r = client.post(url, content=b'{"data": []}', headers={**auth, "Content-Type": "text/plain"})
    assert r.status_code == 400 and "Content-Type" in r.json()["message"]
    r = client.post(
        url, content=b'{"data": [NaN]}', headers={**auth, "Content-Type": "application/json"}
    )
    assert r.status_code == 400


def test_json_nested_deeper_than_the_parser_goes_is_400_not_500(client):
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    url = f"/ad_accounts/{ACCOUNT}/events"
    for body in (b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b"[" * 100_000):
        r = client.post(url, content=body, headers=headers)
        assert r.status_code == 400, r.text
        assert r.json() == {"code": 4196, "message": "Invalid JSON body: nested too deeply"}


# -- per-event failures (200 with failed entries, 422 when none processed) ------------------


def test_per_event_failures_in_a_mixed_batch(srv, client):
    now = int(time.time())
    events = [
        make_event(0),
        make_event(1, user_data={"em": [EM.upper()]}),
        make_event(2, user_data={"client_ip_address": "203.0.113.7"}),
        make_event(3, event_time=now - 8 * 24 * 3600),
        make_event(4, event_time=now * 1000),  # milliseconds by mistake
        make_event(5, user_data={"hashed_maids": [EM]}),
        make_event(6, user_data={"client_ip_address": "::1", "client_user_agent": "UA"}),
        make_event(7, user_data={"em": ["test@example.com"]}),
        make_event(8, action_source="email"),
    ]
    r = post(client, events)
    assert r.status_code == 200
    body = r.json()
    statuses = [e["status"] for e in body["events"]]
    assert statuses == ["processed", "failed", "failed", "failed", "failed", "processed",
                        "processed", "failed", "failed"]  # fmt: skip
    assert body["num_events_received"] == 9 and body["num_events_processed"] == 3
    messages = [e["error_message"] for e in body["events"]]
    assert "Invalid hashed value in field em" in messages[1]
    assert "test@example.com" not in messages[7]  # never echoes what may be raw PII
    assert "em, hashed_maids" in messages[2]
    assert messages[3] == "Invalid event_timestamp parameter. Given timestamp is in the past"
    assert "in the future" in messages[4]
    assert srv.ledger.event_ids() == ["checkout-0", "checkout-5", "checkout-6"]
    assert len(srv.ledger.event_ids(processed_only=False)) == 9


def test_all_events_failed_is_422_with_details(srv, client):
    old = int(time.time()) - 30 * 24 * 3600
    r = post(client, [make_event(0, event_time=old), make_event(1, event_time=old)])
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == 953 and body["message"]
    assert body["details"]["num_events_processed"] == 0
    assert [e["status"] for e in body["details"]["events"]] == ["failed", "failed"]
    assert [e["status"] for e in srv.ledger.events()] == ["failed", "failed"]


def test_clock_and_window_are_adjustable():
    with SandboxServer(accounts={ACCOUNT: TOKEN}, clock=lambda: time.time() + 3600) as s:
        with httpx.Client(base_url=s.url) as c:
            assert post(c, [make_event(event_time=int(time.time()) + 3000)]).status_code == 200


# -- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 4196), (401, 2), (403, 29), (404, 404), (429, 8), (500, 500), (502, 502), (503, 4197)],
)
def test_status_fault_answers_pinterests_error_body(srv, client, status, code):
    srv.faults.add(Fault(status=status, times=1))
    r = post(client, [make_event(1)])
    assert r.status_code == status and r.json()["code"] == code and r.json()["message"]
    assert srv.ledger.events() == []  # a whole-request error: nothing processed
    assert post(client, [make_event(2)]).status_code == 200
    first, second = srv.ledger.requests()
    assert first["fault"] == f"status={status}" and first["num_events"] == 1
    assert second["fault"] is None
    assert srv.ledger.event_ids() == ["checkout-2"]


def test_times_makes_a_sequence_500_502_503_then_200(srv, client):
    for status in (500, 502, 503):
        srv.faults.add(Fault(status=status, times=1))
    codes = [post(client, [make_event(1)]).status_code for _ in range(4)]
    assert codes == [500, 502, 503, 200]
    srv.faults.clear()
    forever = srv.faults.add(Fault(status=503))
    assert {post(client).status_code for _ in range(5)} == {503}
    assert forever.fired == 5
    assert srv.ledger.event_ids() == ["checkout-1"]


def test_rate_with_seed_is_reproducible(client, srv):
    def pattern() -> list[int]:
        srv.faults.clear()
        srv.faults.add(Fault(status=500, rate=0.3, seed=7))
        return [post(client).status_code for _ in range(40)]

    first = pattern()
    assert first == pattern()
    assert 0 < first.count(500) < 40 and set(first) == {200, 500}


def test_retry_after_seconds_and_http_date(client, srv):
    srv.faults.add(Fault(status=429, retry_after="2", times=1))
    date = formatdate(time.time() + 30, usegmt=True)
    srv.faults.add(Fault(status=429, retry_after=date, times=1))
    r1, r2, r3 = (post(client) for _ in range(3))
    assert (r1.status_code, r1.headers["retry-after"], r1.json()["code"]) == (429, "2", 8)
    assert (r2.status_code, r2.headers["retry-after"]) == (429, date)
    assert r3.status_code == 200 and "retry-after" not in r3.headers


def test_per_account_fault_leaves_other_accounts_alone(client, srv):
    srv.faults.add(Fault(status=429, ad_account_id=ACCOUNT))
    assert post(client, account=ACCOUNT).status_code == 429
    assert post(client, account=OTHER_ACCOUNT, token=OTHER_TOKEN).status_code == 200
    assert post(client, account=ACCOUNT).status_code == 429


def test_latency_delays_the_answer_and_records_events(client, srv):
    start = time.perf_counter()
    post(client)
    baseline = time.perf_counter() - start
    srv.faults.add(Fault(latency=0.4, times=1))
    start = time.perf_counter()
    r = post(client)
    assert r.status_code == 200
    assert time.perf_counter() - start >= 0.4 > baseline
    assert srv.ledger.requests()[1]["fault"] == "latency=0.4"
    assert len(srv.ledger.events()) == 2


def test_drip_sends_the_body_one_byte_at_a_time(client, srv):
    srv.faults.add(Fault(drip=0.05, times=1, status=503))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = f"/ad_accounts/{ACCOUNT}/events"
    with client.stream("POST", url, json={"data": [make_event()]}, headers=auth) as r:
        assert r.status_code == 503
        length = int(r.headers["content-length"])
        chunks, start = [], time.perf_counter()
        for chunk in r.iter_raw():
            chunks.append(chunk)
            if len(chunks) == 6:
                break
        elapsed = time.perf_counter() - start
    assert all(len(c) == 1 for c in chunks)  # bytes arrive one at a time
    assert elapsed >= 5 * 0.05 * 0.8 and length > 6


def test_drip_on_a_normal_answer_still_records_events(client, srv):
    srv.faults.add(Fault(drip=0.01, times=1))
    r = post(client, [make_event(1)])  # httpx reads the whole slow body
    assert r.status_code == 200 and r.json()["num_events_processed"] == 1
    assert srv.ledger.event_ids() == ["checkout-1"]
    assert srv.ledger.requests()[0]["fault"] == "drip=0.01"


def test_drip_is_abandoned_by_a_client_read_timeout(srv):
    srv.faults.add(Fault(drip=0.7))
    with httpx.Client(base_url=srv.url, timeout=httpx.Timeout(5, read=0.3)) as c:
        with pytest.raises(httpx.ReadTimeout):
            post(c, [make_event(1)])
    assert srv.ledger.event_ids() == ["checkout-1"]  # maybe sent: Pinterest got it


def test_drop_closes_without_answer_but_events_were_received(client, srv):
    srv.faults.add(Fault(drop=True, times=1))
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, [make_event(1)])
    assert srv.ledger.event_ids() == ["checkout-1"]
    assert srv.ledger.requests()[0]["fault"] == "drop"
    assert post(client, [make_event(1)]).status_code == 200  # a new connection works


def test_hold_blocks_until_released(client, srv):
    release = threading.Event()
    srv.faults.add(Fault(hold=release, times=1))
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(r=post(client, [make_event(1)])))
    worker.start()
    assert srv.ledger.wait_for_requests(1, timeout=5)
    assert srv.ledger.event_ids() == ["checkout-1"]  # arrived and recorded while held
    time.sleep(0.2)
    assert "r" not in result
    release.set()
    worker.join(5)
    assert result["r"].status_code == 200


def test_stop_releases_a_held_request_and_closes_connections():
    s = SandboxServer(accounts={ACCOUNT: TOKEN}).start()
    s.faults.add(Fault(hold=threading.Event()))
    with httpx.Client(base_url=s.url, timeout=5) as c:
        errors: list[Exception] = []

        def call() -> None:
            try:
                post(c)
            except httpx.HTTPError as exc:
                errors.append(exc)

        t = threading.Thread(target=call)
        t.start()
        assert s.ledger.wait_for_requests(1)
        start = time.perf_counter()
        s.stop()
        t.join(5)
        assert not t.is_alive() and time.perf_counter() - start < 3
        with pytest.raises(httpx.HTTPError):
            post(c)
    s.stop()  # idempotent


def test_event_status_fault_forces_partial_batch(client, srv):
    srv.faults.add(Fault(event_status={1: "failed"}, message="Forced failure", times=1))
    r = post(client, [make_event(i) for i in range(4)])
    assert r.status_code == 200
    body = r.json()
    assert [e["status"] for e in body["events"]] == [
        "processed",
        "failed",
        "processed",
        "processed",
    ]
    assert body["events"][1]["error_message"] == "Forced failure"
    assert body["num_events_processed"] == 3
    assert srv.ledger.event_ids() == ["checkout-0", "checkout-2", "checkout-3"]


def test_event_status_fault_as_422(client, srv):
    srv.faults.add(Fault(event_status={"0": "failed"}, as_422=True, times=1))
    r = post(client, [make_event(0), make_event(1)])
    assert r.status_code == 422 and r.json()["code"] == 953
    details = r.json()["details"]
    assert [e["status"] for e in details["events"]] == ["failed", "processed"]
    assert srv.ledger.event_ids() == ["checkout-1"]


def test_fault_validation():
    with pytest.raises(ValueError):
        Fault(status=200)
    with pytest.raises(ValueError):
        Fault(rate=2)
    with pytest.raises(ValueError):
        Fault(event_status={0: "ok"})
    with pytest.raises(ValueError):
        Fault.from_json({"status": 503, "bogus": 1})


# -- control endpoints ----------------------------------------------------------------------


def test_control_endpoints(srv):
    base = srv.url.removesuffix("/v5")
    with httpx.Client(base_url=base) as c, httpx.Client(base_url=srv.url) as api:
        health = c.get("/_sandbox/health").json()
        assert health["status"] == "ok" and health["ad_account_ids"] == sorted(
            [ACCOUNT, OTHER_ACCOUNT]
        )
        assert TOKEN not in c.get("/_sandbox/health").text

        assert c.post("/_sandbox/faults", json={"status": 503, "times": 1}).status_code == 201
        assert c.post("/_sandbox/faults", json={"hold": True}).status_code == 400
        assert c.get("/_sandbox/faults").json()["faults"][0]["status"] == 503
        assert post(api).status_code == 503
        assert post(api, [make_event(9)]).status_code == 200
        c.post("/_sandbox/faults", json={"status": 500})
        assert c.delete("/_sandbox/faults").json() == {"cleared": 2}
        assert post(api).status_code == 200

        ledger = c.get("/_sandbox/ledger").json()
        assert [r["status_code"] for r in ledger["requests"]] == [503, 200, 200]
        assert [e["event"]["event_id"] for e in ledger["events"]] == ["checkout-9", "checkout-0"]
        assert c.get("/_sandbox/ledger", params={"ad_account_id": "1"}).json()["events"] == []

        r = c.post("/_sandbox/accounts", json={"ad_account_id": "99", "token": "t-99"})
        assert r.status_code == 201 and "t-99" not in r.text
        assert post(api, account="99", token="t-99").status_code == 200
        assert (
            c.post("/_sandbox/accounts", json={"ad_account_id": "x", "token": "t"}).status_code
            == 400
        )
        assert c.delete("/_sandbox/accounts/99").json() == {"removed": True}
        assert post(api, account="99", token="t-99").status_code == 401

        assert c.post("/_sandbox/reset").status_code == 200
        assert c.get("/_sandbox/ledger").json() == {"events": [], "requests": []}
        assert c.get("/_sandbox/nope").status_code == 404
    assert srv.ledger.requests() == []  # control calls are not API requests


def test_unknown_paths_and_methods(client):
    assert client.get("/nothing").status_code == 404
    r = client.get(f"/ad_accounts/{ACCOUNT}/events", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 405


def test_token_never_logged_or_stored(srv, client, caplog):
    caplog.set_level(logging.DEBUG, logger="pinterest_capi.sandbox")
    post(client)
    post(client, token="wrong-secret-token")
    srv.faults.add(Fault(status=503, times=1))
    post(client)

    def sandbox_lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "pinterest_capi.sandbox"]

    # The sandbox logs a request once its answer has left: the client can read the answer
    # before the server's thread writes the line (2 of 3 lines, once in a CI run).
    assert wait_until(lambda: len(sandbox_lines()) >= 3, 10), sandbox_lines()
    for secret in (TOKEN, "wrong-secret-token"):
        assert secret not in caplog.text
        assert secret not in repr(srv.ledger.requests()) and secret not in repr(srv)


# -- throughput self-check ------------------------------------------------------------------


def test_throughput_self_check(srv):
    """Prints events/s over keep-alive; asserts correctness only (machines differ)."""
    body = httpx.Request(
        "POST", "http://x", json={"data": [make_event(i) for i in range(1000)]}
    ).read()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(base_url=srv.url) as c:
        start = time.perf_counter()
        for _ in range(20):
            r = c.post(f"/ad_accounts/{ACCOUNT}/events", content=body, headers=headers)
            assert r.status_code == 200 and r.json()["num_events_processed"] == 1000
        elapsed = time.perf_counter() - start
    rate = 20000 / elapsed
    print(f"\nsandbox throughput: 20 x 1000 events in {elapsed:.2f}s = {rate:,.0f} events/s")
    assert len(srv.ledger.events()) == 20000
    assert {r["seq"] for r in srv.ledger.requests()} == set(range(1, 21))


# -- the management command -----------------------------------------------------------------


def test_management_command_serves_until_sigterm():
    env = {**os.environ, "PINTEREST_SANDBOX_ACCOUNTS": f"{OTHER_ACCOUNT}:{OTHER_TOKEN}"}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "pinterest_capi_sandbox",
            "--port",
            "0",
            "--account",
            f"{ACCOUNT}:{TOKEN}",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:(\d+)/v5)", line)
        assert match and match.group(2) != "0", line
        with httpx.Client(base_url=match.group(1), timeout=5) as c:
            assert post(c, [make_event(1)]).status_code == 200
            assert post(c, account=OTHER_ACCOUNT, token=OTHER_TOKEN).status_code == 200
            base = match.group(1).removesuffix("/v5")
            ledger = c.get(f"{base}/_sandbox/ledger").json()
            assert len(ledger["events"]) == 2
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert TOKEN not in line + out + err and OTHER_TOKEN not in line + out + err
    assert "/events -> 200" in err  # one log line per request


def test_management_command_rejects_bad_account_spec():
    proc = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "pinterest_capi_sandbox",
            "--port",
            "0",
            "--account",
            "abc:secret",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0 and "1-18 digits" in proc.stderr and "secret" not in proc.stderr


def test_chunked_body_and_body_size_limit(srv, client, monkeypatch):
    import json

    from pinterest_capi.sandbox import server

    payload = json.dumps({"data": [make_event(1)]}).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    url = f"/ad_accounts/{ACCOUNT}/events"
    r = client.post(url, content=iter([payload[:10], payload[10:]]), headers=headers)  # chunked
    assert r.status_code == 200 and srv.ledger.event_ids() == ["checkout-1"]
    monkeypatch.setattr(server, "MAX_BODY_BYTES", 100)
    r = client.post(url, content=payload, headers=headers)
    assert r.status_code == 413 and r.headers["connection"] == "close"
    monkeypatch.undo()
    assert post(client).status_code == 200  # the client reconnects
