"""POST /pinterest/api/v1/events/: per-tenant API keys, per-index results, real delivery.

Every call goes through Django's URLconf, DRF and the app's services with a real key; the
recorded events are then flushed over HTTP to the sandbox on loopback and read back from
its ledger.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from django.core.cache import cache

from pinterest_capi import apikeys, delivery, events
from pinterest_capi.models import AdAccount, ApiKey, OutboxEvent
from tests.api_helpers import (
    EVENTS_URL,
    RAW_EMAIL,
    RAW_IP,
    RAW_PHONE,
    api_event,
    key_client,
    post_events,
)
from tests.conftest import SANDBOX_ACCOUNT_ID

pytestmark = pytest.mark.django_db


def hashed(value: str) -> str:
    return events.sha256_hex(value)


def test_recorded_event_is_delivered_to_the_sandbox_with_hashed_user_data(account, sandbox):
    client, _raw = key_client("demo")
    response = post_events(client, [api_event(1)])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["counts"] == {"recorded": 1, "valid": 0, "duplicate": 0, "invalid": 0}
    assert body["events"][0]["status"] == "recorded"
    assert body["events"][0]["event_id"] == "api-order-1"
    row = OutboxEvent.objects.get()
    assert row.account == account and row.order_id == "A1"
    assert RAW_EMAIL not in row.payload and "7946" not in row.payload

    summary = delivery.flush(until_empty=True)
    assert summary.sent == 1
    [received] = sandbox.ledger.events(SANDBOX_ACCOUNT_ID)
    assert received["status"] == "processed"
    sent = received["event"]
    assert sent["event_id"] == "api-order-1"
    assert sent["user_data"]["em"] == [hashed(RAW_EMAIL.strip().lower())]
    assert sent["user_data"]["ph"] == [hashed("442079460123")]
    assert sent["user_data"]["client_ip_address"] == RAW_IP
    assert sent["custom_data"] == {"currency": "EUR", "value": "19.90", "order_id": "A1"}


def test_prehashed_user_data_passes_through_unchanged(account):
    client, _raw = key_client("demo")
    digest = hashed("someone@example.com").upper()  # any case: stored lowercased
    event = api_event(2, user_data={"em": [digest], "external_id": "CRM-9"})
    response = post_events(client, [event])
    assert response.json()["events"][0]["status"] == "recorded"
    payload = json.loads(OutboxEvent.objects.get().payload)
    assert payload["user_data"] == {"em": [digest.lower()], "external_id": [hashed("crm-9")]}


def test_one_row_per_active_account_of_the_keys_tenant_only(account, second_account):
    extra = AdAccount(tenant="demo", ad_account_id="777", name="Second demo")
    extra.set_token("pina_x")
    extra.save()
    AdAccount.objects.create(tenant="demo", ad_account_id="778", active=False, token_last4="")
    client, _raw = key_client("demo")
    assert post_events(client, [api_event(3)]).status_code == 200
    rows = OutboxEvent.objects.all()
    assert sorted(r.account_id for r in rows) == sorted([account.pk, extra.pk])
    assert not OutboxEvent.objects.filter(account=second_account).exists()  # tenant "other"


def test_mixed_valid_invalid_duplicate_get_per_index_results(account):
    client, _raw = key_client("demo")
    assert post_events(client, [api_event(10)]).status_code == 200  # recorded before
    data = [
        api_event(11),  # 0 new
        api_event(12, event_time="yesterday"),  # 1 invalid type
        api_event(10),  # 2 already recorded
        api_event(11),  # 3 repeats index 0
        api_event(13, user_data={"fn": "Jane"}),  # 4 no identifier
        "not an object",  # 5
        api_event(14, custom_data={"value": "1", "colour": "red"}),  # 6 unknown field
        api_event(15, user_data={"em": RAW_EMAIL, "ph": "12"}),  # 7 bad phone
        {**api_event(16), "surprise": True},  # 8 unknown top-level field
        api_event(17, event_id="x" * 256),  # 9 too long for the outbox
    ]
    response = post_events(client, data)
    assert response.status_code == 200, response.content
    results = response.json()["events"]
    assert [r["index"] for r in results] == list(range(len(data)))
    assert [r["status"] for r in results] == [
        "recorded",
        "invalid",
        "duplicate",
        "duplicate",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
    ]
    fields = {r["index"]: r["field"] for r in results if r["status"] == "invalid"}
    assert fields == {
        1: "event_time",
        4: "user_data",
        5: "event",
        6: "custom_data.colour",
        7: "user_data.ph",
        8: "surprise",
        9: "event_id",
    }
    assert all(r["reason"] for r in results if r["status"] == "invalid")
    assert results[3]["duplicate_of"] == 0 and results[2]["duplicate_of"] is None
    assert response.json()["counts"] == {"recorded": 1, "valid": 0, "duplicate": 2, "invalid": 7}
    assert sorted(OutboxEvent.objects.values_list("event_id", flat=True)) == [
        "api-order-10",
        "api-order-11",
    ]
    # No raw PII echoed back, not even for the events that were refused.
    text = response.content.decode()
    assert RAW_EMAIL not in text and "Jane" not in text and RAW_PHONE not in text


def test_duplicate_is_per_tenant_and_event_name(account, second_account):
    demo, _ = key_client("demo")
    other, _ = key_client("other")
    assert post_events(demo, [api_event(20)]).json()["events"][0]["status"] == "recorded"
    # Same event_id for another tenant, and another event_name for the same tenant: both new.
    assert post_events(other, [api_event(20)]).json()["events"][0]["status"] == "recorded"
    lead = api_event(20, event_name="lead")
    assert post_events(demo, [lead]).json()["events"][0]["status"] == "recorded"
    assert post_events(demo, [api_event(20)]).json()["events"][0]["status"] == "duplicate"
    assert OutboxEvent.objects.count() == 3


def test_test_flag_judges_everything_and_records_nothing(account):
    client, _raw = key_client("demo")
    response = post_events(client, [api_event(30), api_event(31, user_data={})], test=True)
    assert response.status_code == 200
    body = response.json()
    assert body["test"] is True
    assert [r["status"] for r in body["events"]] == ["valid", "invalid"]
    assert body["counts"]["recorded"] == 0 and body["counts"]["valid"] == 1
    assert OutboxEvent.objects.count() == 0


def test_more_than_1000_events_is_a_400_naming_data(account):
    client, _raw = key_client("demo")
    response = post_events(client, [api_event(n) for n in range(1001)])
    assert response.status_code == 400
    assert "data" in response.json() and "1000" in response.json()["data"][0]
    assert OutboxEvent.objects.count() == 0
    # Exactly 1,000 is fine, and recorded in one go.
    response = post_events(client, [api_event(n) for n in range(1000)])
    assert response.status_code == 200
    assert response.json()["counts"]["recorded"] == 1000
    assert OutboxEvent.objects.count() == 1000


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "data"),
        ({"data": []}, "data"),
        ({"data": {"event_name": "checkout"}}, "data"),
        ({"data": [{}], "test": "maybe"}, "test"),
        ({"data": [{}], "extra": 1}, "extra"),
        ([1, 2], "non_field_errors"),
    ],
)
def test_malformed_body_is_a_400_naming_the_field(account, body, field):
    client, _raw = key_client("demo")
    response = client.post(EVENTS_URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_unparseable_json_is_a_400(account):
    client, _raw = key_client("demo")
    response = client.post(EVENTS_URL, b'{"data": [', content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_no_active_account_is_a_409_and_records_nothing(db, capi_settings):
    client, _raw = key_client("lonely")
    response = post_events(client, [api_event(40)])
    assert response.status_code == 409
    assert "no active ad account" in response.json()["detail"]
    assert OutboxEvent.objects.count() == 0


def test_keys_are_stored_as_sha256_only(db):
    api_key, raw = apikeys.create_key(tenant="demo", name="ERP")
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert stored.key_hash == apikeys.hash_key(raw) and len(stored.key_hash) == 64
    assert raw.startswith(f"pcapi_{stored.prefix}_")
    secret = raw.split("_", 2)[2]
    for value in ApiKey.objects.values().get().values():
        assert secret not in str(value) and raw != str(value)
    assert raw not in repr(stored) and raw not in str(stored)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer pcapi_nope",
        "Bearer pcapi_0123456789ab_wrongsecret",
        "Token whatever",
        "Bearer a b",
    ],
)
def test_missing_or_bad_keys_are_refused(account, header):
    key_client("demo")  # a real key exists; these are not it
    from rest_framework.test import APIClient

    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = post_events(client, [api_event(50)])
    assert response.status_code in (401, 403)
    if header and header.startswith("Bearer"):
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert OutboxEvent.objects.count() == 0


def test_a_revoked_key_is_401(account):
    client, raw = key_client("demo")
    assert post_events(client, [api_event(60)]).status_code == 200
    assert apikeys.revoke(ApiKey.objects.all()) == 1
    response = post_events(client, [api_event(61)])
    assert response.status_code == 401
    assert OutboxEvent.objects.count() == 1
    assert ApiKey.objects.get().revoked_at is not None


def test_a_staff_session_cannot_record_events(account, admin_client):
    response = admin_client.post(
        EVENTS_URL, {"data": [api_event(70)]}, content_type="application/json"
    )
    assert response.status_code in (401, 403)
    assert OutboxEvent.objects.count() == 0


def test_last_used_at_is_set_on_use(account):
    client, _raw = key_client("demo")
    assert ApiKey.objects.get().last_used_at is None
    post_events(client, [api_event(80)], test=True)
    assert ApiKey.objects.get().last_used_at is not None


def test_throttled_per_key(account, settings):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "API_THROTTLE_RATE": "3/minute"}
    cache.clear()
    first, _ = key_client("demo", "first")
    second, _ = key_client("demo", "second")
    statuses = [post_events(first, [api_event(90)], test=True).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = post_events(first, [api_event(90)], test=True)
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    # The limit is per key: another key of the same tenant is not affected.
    assert post_events(second, [api_event(90)], test=True).status_code == 200


def test_throttle_can_be_switched_off(account, settings):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "API_THROTTLE_RATE": None}
    client, _ = key_client("demo")
    assert all(
        post_events(client, [api_event(95)], test=True).status_code == 200 for _ in range(10)
    )


def test_shop_rest_framework_settings_do_not_change_the_api(account, settings):
    settings.REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.BrowsableAPIRenderer"],
        "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
        "DEFAULT_THROTTLE_RATES": {"anon": "0/minute"},
        "EXCEPTION_HANDLER": "tests.test_api_events.broken_handler",
    }
    client, _ = key_client("demo")
    response = post_events(client, [api_event(99)])
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert post_events(client, []).status_code == 400


def broken_handler(exc, context):  # a shop's global handler the API must not use
    raise AssertionError("the shop's EXCEPTION_HANDLER was used")


def test_recording_switched_off_is_a_503(account, settings):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "ENABLED": False}
    client, _ = key_client("demo")
    assert post_events(client, [api_event(98)]).status_code == 503
    assert OutboxEvent.objects.count() == 0


def test_the_readme_example_gives_the_readme_answer(account):
    """The README's curl body, sent as is (with the shell's $(date +%s) filled in), gets
    exactly the answer the README shows; and the schema URL it names answers."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme[readme.index("curl -sS http://127.0.0.1:8000/pinterest/api/v1/events/") :]
    body = block[block.index("-d '") + 4 : block.index("}'\n") + 1]
    body = body.replace("'\"$(date +%s)\"'", str(int(time.time())))
    answer_start = block.index("```json") + len("```json")
    answer = block[answer_start : block.index("```", answer_start)]
    client, _raw = key_client("demo")
    response = client.post(EVENTS_URL, json.loads(body), format="json")
    assert response.json() == json.loads(answer)
    schema = client.get("/pinterest/api/v1/schema/?format=json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")


def test_unstorable_text_is_an_invalid_event_not_a_500(account):
    """NUL characters (PostgreSQL text cannot hold them) and unpaired surrogates (not UTF-8)
    are refused per event; a bad key is named by its parent, never echoed."""
    client, _raw = key_client("demo")
    data = [
        api_event(1, event_id="nul\x00id"),
        api_event(2, user_data={"em": RAW_EMAIL, "fn": "Ja\ud800ne"}),
        api_event(3, custom_data={"\ud800": "x"}),
        {**api_event(4), "\udfff": 1},
    ]
    # json.dumps escapes the surrogates (\ud800), as a client in any language would send them.
    response = client.post(EVENTS_URL, json.dumps({"data": data}), content_type="application/json")
    assert response.status_code == 200
    assert [(r["status"], r["field"]) for r in response.json()["events"]] == [
        ("invalid", "event_id"),
        ("invalid", "user_data.fn"),
        ("invalid", "custom_data"),
        ("invalid", "event"),
    ]
    bad_key = json.dumps({"data": [api_event(5)], "\ud800": 1})
    body = client.post(EVENTS_URL, bad_key, content_type="application/json")
    assert body.status_code == 400 and list(body.json()) == ["\\ud800"]
    assert OutboxEvent.objects.count() == 0
