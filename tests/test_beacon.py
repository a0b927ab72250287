"""The browser beacon: same origin, throttle, robots, consent, validation, idempotence.

Every request goes through the real URLconf (``/pinterest/beacon/``), DRF and ``track()`` into
the outbox; delivery is checked against the sandbox in the demo-page and browser tests.
"""

from __future__ import annotations

import json
import uuid

import pytest

from pinterest_capi.models import OutboxEvent
from tests.api_helpers import SCHEMA_URL

URL = "/pinterest/beacon/"
HOST = "testserver"
ORIGIN = f"http://{HOST}"
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)


def new_id(name: str = "page_visit") -> str:
    return f"{name}-{uuid.uuid4()}"


def post(client, body, *, origin=ORIGIN, ua=BROWSER_UA, ip="203.0.113.9", **headers):
    extra = {"REMOTE_ADDR": ip, **headers}
    if origin is not None:
        extra["HTTP_ORIGIN"] = origin
    if ua is not None:
        extra["HTTP_USER_AGENT"] = ua
    return client.post(URL, json.dumps(body), content_type="application/json", **extra)


def page_visit(**custom):
    return {
        "event_name": "page_visit",
        "event_id": new_id(),
        "event_source_url": f"{ORIGIN}/p/hl-1001/",
        "custom_data": custom or {"content_ids": ["HL-1001"], "value": "24.00", "currency": "gbp"},
    }


@pytest.fixture
def beacon_settings(settings, account):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "BEACON_THROTTLE_RATE": "1000/min"}
    return settings


def test_a_page_visit_is_recorded_with_the_browser_id_and_the_requests_context(
    client, beacon_settings, account
):
    body = page_visit()
    client.cookies["_epik"] = "epik-from-cookie"
    response = post(client, body)
    assert response.status_code == 202, response.content
    assert response.json() == {"event_id": body["event_id"], "duplicate": False}
    row = OutboxEvent.objects.get(account=account)
    assert (row.event_name, row.event_id) == ("page_visit", body["event_id"])
    event = row.payload_dict
    assert event["action_source"] == "web"
    assert event["event_source_url"] == f"{ORIGIN}/p/hl-1001/"
    assert event["user_data"]["client_ip_address"] == "203.0.113.9"
    assert event["user_data"]["client_user_agent"] == BROWSER_UA
    assert event["user_data"]["click_id"] == "epik-from-cookie"
    assert event["custom_data"] == {"content_ids": ["HL-1001"], "value": "24.00", "currency": "GBP"}


def test_the_click_id_comes_from_the_pages_url_when_there_is_no_cookie_yet(
    client, beacon_settings, account
):
    body = page_visit()
    body["event_source_url"] = f"{ORIGIN}/p/hl-1001/?epik=dj0yJnU9abc"
    assert post(client, body).status_code == 202
    assert OutboxEvent.objects.get().payload_dict["user_data"]["click_id"] == "dj0yJnU9abc"


def test_the_same_event_id_twice_records_one_row(client, beacon_settings, account):
    body = page_visit()
    first, second = post(client, body), post(client, body)
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json() == {"event_id": body["event_id"], "duplicate": True}
    assert OutboxEvent.objects.filter(event_id=body["event_id"]).count() == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "http://testserver.evil.example"},
        {"origin": "https://testserver"},  # another scheme is another origin
        {"origin": None, "HTTP_REFERER": "https://evil.example/page"},
        {"origin": None},  # neither Origin nor Referer
        {"origin": "null"},
    ],
)
def test_a_post_from_another_origin_is_refused_and_records_nothing(
    client, beacon_settings, account, headers
):
    response = post(client, page_visit(), **headers)
    assert response.status_code == 403
    assert "Origin" in response.json()["detail"]
    assert not OutboxEvent.objects.exists()


def test_the_referer_stands_in_for_a_missing_origin(client, beacon_settings, account):
    response = post(client, page_visit(), origin=None, HTTP_REFERER=f"{ORIGIN}/c/home/")
    assert response.status_code == 202


def test_an_allowed_origin_from_the_settings_is_accepted(client, beacon_settings, account):
    beacon_settings.PINTEREST_CAPI = {
        **beacon_settings.PINTEREST_CAPI,
        "BEACON_ALLOWED_ORIGINS": ["https://www.shop.example/"],
    }
    body = page_visit()
    body["event_source_url"] = "https://www.shop.example/p/hl-1001/"
    assert post(client, body, origin="https://www.shop.example").status_code == 202
    assert post(client, page_visit(), origin="https://shop.example").status_code == 403


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Pinterestbot/1.0 (+http://www.pinterest.com/bot.html)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/126.0 Safari/537.36",
        "python-requests/2.32",
        "",
        None,
    ],
)
def test_robots_are_answered_but_nothing_is_recorded(client, beacon_settings, account, ua):
    response = post(client, page_visit(), ua=ua)
    assert response.status_code == 204
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (Linux; Android 12; CUBOT P60) AppleWebKit/537.36 Chrome/120 Mobile",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) [Pinterest/iOS]",
    ],
)
def test_people_whose_user_agent_merely_resembles_a_robot_are_recorded(
    client, beacon_settings, account, ua
):
    assert post(client, page_visit(), ua=ua).status_code == 202


def test_consent_denied_records_nothing(client, beacon_settings, account):
    beacon_settings.PINTEREST_CAPI = {
        **beacon_settings.PINTEREST_CAPI,
        "CONSENT_HOOK": "tests.test_beacon.consent_from_cookie",
    }
    response = post(client, page_visit())
    assert response.status_code == 204
    assert not OutboxEvent.objects.exists()
    client.cookies["ads_consent"] = "yes"
    assert post(client, page_visit()).status_code == 202
    assert OutboxEvent.objects.count() == 1


def consent_from_cookie(*, request=None, user=None, event_name, tenant):
    return request is not None and request.COOKIES.get("ads_consent") == "yes"


def test_the_throttle_answers_429_per_client_ip(client, beacon_settings, account):
    beacon_settings.PINTEREST_CAPI = {
        **beacon_settings.PINTEREST_CAPI,
        "BEACON_THROTTLE_RATE": "3/min",
    }
    codes = [post(client, page_visit()).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    assert OutboxEvent.objects.count() == 3
    # Another address has its own budget.
    assert post(client, page_visit(), ip="198.51.100.20").status_code == 202


@pytest.mark.parametrize(
    ("body", "field_path"),
    [
        ({"event_name": "checkout"}, ["event_name"]),
        ({"event_name": "add_to_cart"}, ["event_name"]),
        ({"event_id": "short"}, ["event_id"]),
        ({"event_id": "x" * 129}, ["event_id"]),
        ({"event_id": "page_visit-<script>alert(1)</script>"}, ["event_id"]),
        ({"event_source_url": "https://evil.example/p/1/"}, ["event_source_url"]),
        ({"event_source_url": "not a url"}, ["event_source_url"]),
        ({"custom_data": {"content_ids": "HL-1001"}}, ["custom_data", "content_ids"]),
        ({"custom_data": {"content_ids": ["x" * 101]}}, ["custom_data", "content_ids"]),
        ({"custom_data": {"colour": "red"}}, ["custom_data", "colour"]),
        ({"custom_data": {"currency": "pounds"}}, ["custom_data", "currency"]),
        ({"custom_data": {"value": "lots"}}, ["custom_data", "value"]),
        ({"custom_data": {"search_string": "x" * 501}}, ["custom_data", "search_string"]),
        ({"event_time": 1}, ["event_time"]),
        (
            {"event_name": "search", "event_id": new_id("search"), "custom_data": {}},
            ["custom_data", "search_string"],
        ),
    ],
)
def test_validation_errors_name_the_field(client, beacon_settings, account, body, field_path):
    response = post(client, {**page_visit(), **body})
    assert response.status_code == 400, response.content
    errors = response.json()
    for key in field_path:
        assert key in errors, (field_path, errors)
        errors = errors[key]
    assert not OutboxEvent.objects.exists()


def test_a_body_that_is_not_json_is_a_400(client, beacon_settings, account):
    response = client.post(
        URL, "event_name=page_visit", content_type="application/json",
        HTTP_ORIGIN=ORIGIN, HTTP_USER_AGENT=BROWSER_UA,
    )  # fmt: skip
    assert response.status_code == 400


def test_search_and_view_category_carry_their_custom_data(client, beacon_settings, account):
    search = {
        "event_name": "search",
        "event_id": new_id("search"),
        "custom_data": {"search_string": "  linen ", "content_ids": ["HL-1001", "ST-4003"]},
    }
    view = {
        "event_name": "view_category",
        "event_id": new_id("view_category"),
        "custom_data": {"content_category": "Kitchen", "content_ids": ["KT-2001"]},
    }
    assert post(client, search, HTTP_REFERER=f"{ORIGIN}/search/?q=linen").status_code == 202
    assert post(client, view).status_code == 202
    by_name = {row.event_name: row.payload_dict for row in OutboxEvent.objects.all()}
    assert by_name["search"]["custom_data"] == {
        "search_string": "linen",
        "content_ids": ["HL-1001", "ST-4003"],
    }
    assert by_name["search"]["event_source_url"] == f"{ORIGIN}/search/?q=linen"
    assert by_name["view_category"]["custom_data"] == {
        "content_category": "Kitchen",
        "content_ids": ["KT-2001"],
    }


def test_a_signed_in_customer_adds_the_hashed_email(client, beacon_settings, account):
    from django.contrib.auth import get_user_model

    from pinterest_capi.events import sha256_hex

    user = get_user_model().objects.create_user("ann", "Ann@Example.com", "pw-12345678")
    client.force_login(user)
    assert post(client, page_visit()).status_code == 202
    user_data = OutboxEvent.objects.get().payload_dict["user_data"]
    assert user_data["em"] == [sha256_hex("ann@example.com")]
    assert user_data["external_id"] == [sha256_hex(str(user.pk))]
    assert "Ann@Example.com" not in OutboxEvent.objects.get().payload


def test_no_active_account_is_a_204(client, beacon_settings, account):
    account.active = False
    account.save()
    assert post(client, page_visit()).status_code == 204
    assert not OutboxEvent.objects.exists()


def test_the_tenant_comes_from_the_configured_resolver(
    client, beacon_settings, account, second_account
):
    # The demo's resolver reads X-Shop-Tenant (tests.settings inherits it).
    response = post(client, page_visit(), HTTP_X_SHOP_TENANT="other")
    assert response.status_code == 202
    assert list(OutboxEvent.objects.values_list("account__tenant", flat=True)) == ["other"]


def test_the_beacon_records_no_tag_call_for_the_next_page(client, beacon_settings, account):
    """The browser already called the Tag with this id: the next page must not fire it again."""
    from pinterest_capi.tag_events import SESSION_KEY

    client.get("/")  # a session, as a shopper has
    session = client.session
    session["x"] = 1
    session.save()
    assert post(client, page_visit()).status_code == 202
    assert SESSION_KEY not in client.session


def test_the_view_is_independent_of_the_shops_rest_framework_settings(
    client, beacon_settings, account, settings
):
    settings.REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    }
    from rest_framework.settings import api_settings

    api_settings.reload()
    try:
        client_csrf = client.__class__(enforce_csrf_checks=True)
        assert post(client_csrf, page_visit()).status_code == 202
    finally:
        del settings.REST_FRAMEWORK
        api_settings.reload()


def test_the_beacon_is_in_the_apps_openapi_document(client):
    """Served beside the REST API's operations (and so fuzzed with them, tests/test_api_fuzz)."""
    schema = client.get(SCHEMA_URL, {"format": "json"}).json()
    operation = schema["paths"]["/pinterest/beacon/"]["post"]
    assert set(operation["responses"]) == {"202", "204", "400", "403", "429"}
    body = schema["components"]["schemas"]["BeaconRequest"]
    assert set(body["properties"]) == {"event_name", "event_id", "event_source_url", "custom_data"}


def test_a_shops_site_wide_document_includes_the_beacon(settings):
    """A shop generating one document for its whole site (its own DRF views and ours)."""
    from drf_spectacular.generators import SchemaGenerator

    settings.REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
    from rest_framework.settings import api_settings

    api_settings.reload()
    try:
        schema = SchemaGenerator().get_schema(request=None, public=True)
    finally:
        del settings.REST_FRAMEWORK
        api_settings.reload()
    assert "post" in schema["paths"]["/pinterest/beacon/"]
    assert "/pinterest/api/v1/events/" in schema["paths"]
    assert not any(path.endswith("/schema/") for path in schema["paths"])


def test_without_a_page_url_the_event_has_none_rather_than_the_beacons(
    client, beacon_settings, account
):
    body = page_visit()
    del body["event_source_url"]
    assert post(client, body).status_code == 202
    assert "event_source_url" not in OutboxEvent.objects.get().payload_dict


@pytest.mark.parametrize(
    ("override", "check_id"),
    [
        ({"BEACON_THROTTLE_RATE": "sixty a minute"}, "pinterest_capi.E020"),
        ({"API_THROTTLE_RATE": "120 per minute"}, "pinterest_capi.E020"),
        ({"BEACON_BOT_USER_AGENTS": "bot"}, "pinterest_capi.E021"),
        ({"BEACON_ALLOWED_ORIGINS": ["shop.example"]}, "pinterest_capi.E021"),
    ],
)
def test_system_checks_name_a_bad_beacon_or_throttle_setting(settings, override, check_id):
    from pinterest_capi.checks import check_tag_and_beacon

    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, **override}
    messages = check_tag_and_beacon()
    assert [m.id for m in messages] == [check_id]
    assert repr(next(iter(override))) in messages[0].msg


def test_system_check_warns_when_the_middleware_comes_before_the_sessions(settings):
    from pinterest_capi.checks import check_tag_and_beacon

    assert check_tag_and_beacon() == []
    settings.MIDDLEWARE = [
        "pinterest_capi.middleware.PinterestRequestMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
    ]
    assert [m.id for m in check_tag_and_beacon()] == ["pinterest_capi.W020"]
