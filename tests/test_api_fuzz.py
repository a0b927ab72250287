"""Property-based fuzz of every REST API endpoint from its own OpenAPI document (F16).

schemathesis reads ``/pinterest/api/v1/schema/`` from the real WSGI application and, per
operation, sends generated requests — valid ones and deliberately broken ones (wrong types,
missing fields, out-of-range values, odd strings) — authenticated with a real API key or a
real staff user, so they reach the handlers.  Every answer must be something other than a
5xx and, where the document describes the answer's body, match it.  Afterwards every outbox
row the fuzz made must be whole: a payload that parses and passes the app's own validator,
its columns matching the payload, and one row per active account of the tenant.

Bounded (``MAX_EXAMPLES`` per operation, no shrinking phase on success) so the whole file
runs in well under a minute and a half on two cores, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter

import pytest
import schemathesis
from django.contrib.auth.models import Group, Permission, User
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from pinterest_capi import apikeys
from pinterest_capi.events import validate_event
from pinterest_capi.models import AdAccount, EventStatus, OutboxEvent
from pinterest_capi.permissions import tenant_group_name
from tests.api_helpers import SCHEMA_URL, api_event
from tests.test_admin import make_event

MAX_EXAMPLES = 40
TENANT = "fuzz"


class TestWSGIHandler(WSGIHandler):
    """Django's WSGI handler without closing the connection after each request.

    The real handler's ``request_finished`` → ``close_old_connections`` would close the
    connection inside the test's transaction (pytest-django's ``django_db``), as Django's
    own test client avoids too.  Everything else — middleware, URLconf, DRF — is the real path.
    """

    __test__ = False

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            return super().__call__(environ, start_response)
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(db, settings):
    """Two active accounts and one inactive of the tenant, events in every state, a staff
    user of the tenant with the admin's permissions, and a key of the tenant."""
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "API_THROTTLE_RATE": None,
        "BEACON_THROTTLE_RATE": None,
        # The WSGI environ schemathesis builds has no REMOTE_ADDR: the beacon's client
        # address (one of its identifiers) comes from a trusted proxy's header instead.
        "CLIENT_IP_HEADER": "HTTP_X_FORWARDED_FOR",
    }
    accounts = []
    for ad_account_id, active in (("900001", True), ("900002", True), ("900003", False)):
        account = AdAccount(tenant=TENANT, ad_account_id=ad_account_id, active=active)
        account.set_token(f"pina_fuzz_{ad_account_id}")
        account.save()
        accounts.append(account)
    events = [
        make_event(accounts[0], 7000 + n, status) for n, status in enumerate(EventStatus.values)
    ]
    user = User.objects.create_user("fuzzer", password="fuzz-pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="pinterest_capi"))
    user.groups.add(Group.objects.create(name=tenant_group_name(TENANT)))
    _api_key, raw_key = apikeys.create_key(tenant=TENANT, name="fuzz")
    basic = base64.b64encode(b"fuzzer:fuzz-pw").decode()
    return {
        "events": {"Authorization": f"Bearer {raw_key}"},
        "ops": {"Authorization": f"Basic {basic}"},
        # A page of this site in a browser (the beacon's same-origin and robot checks pass),
        # of the fuzzed tenant (the demo settings resolve it from this header).
        "beacon": {
            "Origin": "http://localhost",
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
            "X-Shop-Tenant": TENANT,
            "X-Forwarded-For": "203.0.113.9",
        },
        "active_accounts": {a.pk for a in accounts if a.active},
        "event_ids": [event.pk for event in events],
    }


# Every operation of the document, by label; the first test fails if one is added or lost,
# so no endpoint escapes the fuzz.
OPERATIONS = [
    "POST /pinterest/api/v1/events/",
    "GET /pinterest/api/v1/ops/accounts/",
    "GET /pinterest/api/v1/ops/events/",
    "POST /pinterest/api/v1/ops/events/resend/",
    "GET /pinterest/api/v1/ops/events/{id}/",
    "POST /pinterest/api/v1/ops/events/{id}/resend/",
    "POST /pinterest/beacon/",
]


@pytest.fixture
def api_schema(fuzz_world):
    return schemathesis.openapi.from_wsgi(SCHEMA_URL, TestWSGIHandler())


def test_the_fuzz_covers_every_operation(api_schema):
    labels = sorted(result.ok().label for result in api_schema.get_all_operations())
    assert labels == sorted(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_error_and_answers_match_the_schema(label, api_schema, fuzz_world):
    """Valid and deliberately invalid requests (schemathesis' positive and negative modes)."""
    operation = api_schema.find_operation_by_label(label)
    audience = "ops" if "/ops/" in label else "beacon" if "/beacon/" in label else "events"
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    if "{id}" in label:  # random ids are all 404: also aim at existing events, any status
        cases = st.one_of(
            cases,
            st.sampled_from(fuzz_world["event_ids"]).flatmap(
                lambda pk: operation.as_strategy(path_parameters={"id": pk})
            ),
        )

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case):
        if audience == "events":
            steer_towards_recording(case.body)
        elif audience == "beacon":
            steer_beacon_towards_recording(case.body)
        response = case.call(headers=fuzz_world[audience])
        seen[response.status_code // 100 * 100] += 1
        if audience == "events" and response.status_code == 200:
            seen["recorded"] += response.json()["counts"]["recorded"]
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        if audience == "events" and response.status_code == 200:
            results = response.json()["events"]
            assert [r["index"] for r in results] == list(range(len(results)))
        assert_outbox_is_whole(fuzz_world["active_accounts"])

    seen: Counter[int | str] = Counter()
    fuzz()
    # The fuzz reached the handlers, not only the authentication and the envelope checks.
    assert seen[200] > 0, seen  # any 2xx
    if audience == "events":
        assert seen["recorded"] > 0, seen


def steer_towards_recording(body: object) -> None:
    """Nudge generated events past the two checks random data almost never passes.

    A random integer is almost never inside Pinterest's 7-day event_time window, and a
    random user_data rarely carries an identifier; without this nearly every generated
    event would stop there and the fuzz would not reach hashing, dedup and recording.
    Integer event_times are moved into the last hour and an email is added to a user_data
    object without an identifier; everything else (and every non-integer event_time or
    non-object user_data of the negative mode) is left as generated.
    """
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return
    now = int(time.time())
    for event in body["data"]:
        if not isinstance(event, dict):
            continue
        if type(event.get("event_time")) is int:
            event["event_time"] = now - event["event_time"] % 3600
        user_data = event.get("user_data")
        if isinstance(user_data, dict) and not any(
            user_data.get(key) for key in ("em", "hashed_maids", "client_ip_address")
        ):
            user_data["em"] = "fuzz@example.com"


def steer_beacon_towards_recording(body: object) -> None:
    """The beacon's two checks random data almost never passes: a page URL of this site
    (a generated string) and a search event's search_string.  Only string URLs and object
    custom_data are touched; the negative mode's wrong types stay as generated."""
    if not isinstance(body, dict):
        return
    if isinstance(body.get("event_source_url"), str):
        body["event_source_url"] = "http://localhost/products/1/"
    custom_data = body.get("custom_data")
    if body.get("event_name") == "search" and isinstance(custom_data, dict):
        if not str(custom_data.get("search_string") or "").strip():
            custom_data["search_string"] = "blue mug"


def assert_outbox_is_whole(active_accounts: set[int]) -> None:
    """Every row written through the API is complete, and on every active account."""
    per_event: Counter[tuple[str, str]] = Counter()
    for row in OutboxEvent.objects.exclude(event_id__startswith="checkout-T7"):
        event = json.loads(row.payload)
        validate_event(event)
        assert (row.event_name, row.event_id, row.event_time) == (
            event["event_name"],
            event["event_id"],
            event["event_time"],
        )
        assert row.event_id and row.status == EventStatus.PENDING
        assert row.account_id in active_accounts
        per_event[(row.event_name, row.event_id)] += 1
    assert all(count == len(active_accounts) for count in per_event.values()), per_event


def test_the_fuzz_reaches_the_recording_path(fuzz_world, client):
    """The checks above are only worth something if valid calls get recorded: one does."""
    response = client.post(
        "/pinterest/api/v1/events/",
        {"data": [api_event(1)]},
        content_type="application/json",
        HTTP_AUTHORIZATION=fuzz_world["events"]["Authorization"],
    )
    assert response.json()["events"][0]["status"] == "recorded"
    assert OutboxEvent.objects.filter(event_id="api-order-1").count() == 2
    assert_outbox_is_whole(fuzz_world["active_accounts"])
