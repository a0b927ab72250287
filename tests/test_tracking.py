"""Recording: track(), the signal receivers, the request context and the middleware."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.db import transaction
from django.dispatch import Signal
from django.http import HttpResponse
from django.test import RequestFactory

from pinterest_capi import track
from pinterest_capi.exceptions import InvalidEventError
from pinterest_capi.middleware import PinterestRequestMiddleware
from pinterest_capi.models import AdAccount, EventStatus, OutboxEvent
from pinterest_capi.receivers import make_receiver

pytestmark = pytest.mark.django_db

EMAIL = "Jane.Buyer@Example.com"
EMAIL_HASH = hashlib.sha256(b"jane.buyer@example.com").hexdigest()


def add_account(tenant="demo", ad_account_id="111", active=True):
    acct = AdAccount(tenant=tenant, ad_account_id=ad_account_id, active=active)
    acct.set_token("pina_tracking_TOKEN")
    acct.save()
    return acct


def test_track_writes_one_row_per_active_account_with_pii_hashed():
    a, b = add_account(ad_account_id="111"), add_account(ad_account_id="222")
    add_account(ad_account_id="333", active=False)
    add_account(tenant="elsewhere", ad_account_id="444")
    rows = track(
        "checkout",
        tenant="demo",
        user_data={"em": EMAIL, "ph": "+44 20 7946 0000"},
        custom_data={"currency": "GBP", "value": "72.39", "order_id": "1001"},
        event_id="checkout-1001",
    )
    assert {r.account_id for r in rows} == {a.pk, b.pk}
    row = OutboxEvent.objects.filter(account=a).get()
    assert row.status == EventStatus.PENDING and row.order_id == "1001"
    payload = json.loads(row.payload)
    assert payload["user_data"]["em"] == [EMAIL_HASH]
    stored = " ".join(OutboxEvent.objects.values_list("payload", flat=True))
    assert EMAIL not in stored and EMAIL.lower() not in stored and "7946" not in stored


def test_recording_the_same_event_twice_writes_one_row():
    add_account()
    for _ in range(2):
        rows = track("signup", user_data={"em": EMAIL}, event_id="signup-7")
        assert len(rows) == 1
    assert OutboxEvent.objects.count() == 1


def test_rolled_back_transaction_leaves_no_row():
    add_account()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            track("checkout", user_data={"em": EMAIL}, event_id="checkout-9")
            raise RuntimeError("checkout failed after the signal")
    assert OutboxEvent.objects.count() == 0


def test_bad_input_names_the_field_and_writes_nothing():
    add_account()
    with pytest.raises(InvalidEventError) as err:
        track("checkout", user_data={"em": EMAIL}, custom_data={"colour": "red"})
    assert "custom_data.colour" in str(err.value)
    with pytest.raises(InvalidEventError) as err:
        track("checkout", user_data={"fn": "Jane"})
    assert err.value.field == "user_data"
    assert OutboxEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"event_name": "x" * 65}, "event_name"),
        ({"event_id": "e" * 256}, "event_id"),
        ({"custom_data": {"order_id": "o" * 256}}, "custom_data.order_id"),
    ],
)
def test_values_longer_than_their_outbox_column_are_refused_naming_the_field(kwargs, field):
    """Not a database error (PostgreSQL) nor a value kept whole (SQLite): the field named."""
    add_account()
    call = {"event_name": "checkout", "user_data": {"em": EMAIL}} | kwargs
    with pytest.raises(InvalidEventError) as err:
        with transaction.atomic():
            track(**call)
    assert err.value.field == field
    assert OutboxEvent.objects.count() == 0
    # The longest values the columns hold are recorded.
    longest = {"event_name": "x" * 64, "event_id": "e" * 255}.get(field)
    if longest:
        assert track(**(call | {field: longest}))


def test_no_active_account_records_nothing_and_says_so(caplog):
    assert track("signup", tenant="nobody", user_data={"em": EMAIL}) == []
    assert "No active Pinterest ad account for tenant 'nobody'" in caplog.text
    assert EMAIL not in caplog.text


def test_disabled_app_records_nothing(settings):
    add_account()
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "ENABLED": False}
    assert track("signup", user_data={"em": EMAIL}) == []
    assert OutboxEvent.objects.count() == 0


def test_web_events_take_ip_user_agent_url_and_click_id_from_the_request():
    add_account()
    seen = {}

    def view(request):
        seen["rows"] = track("page_visit", event_id="pv-1")
        return HttpResponse("ok")

    request = RequestFactory().get(
        "/product/red-mug/?epik=dj0yJnU9abc",
        REMOTE_ADDR="203.0.113.9",
        HTTP_USER_AGENT="Mozilla/5.0 test",
    )
    response = PinterestRequestMiddleware(view)(request)
    payload = json.loads(seen["rows"][0].payload)
    assert payload["user_data"]["client_ip_address"] == "203.0.113.9"
    assert payload["user_data"]["client_user_agent"] == "Mozilla/5.0 test"
    assert payload["user_data"]["click_id"] == "dj0yJnU9abc"
    assert payload["event_source_url"] == "http://testserver/product/red-mug/?epik=dj0yJnU9abc"
    # The click id is kept as a first-party cookie for later conversions.
    assert response.cookies["_epik"].value == "dj0yJnU9abc"


def test_click_id_falls_back_to_the_first_party_cookie():
    add_account()
    request = RequestFactory().get("/cart/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="UA")
    request.COOKIES["_epik"] = "cookie-click-id"
    rows = track("add_to_cart", request=request)
    assert json.loads(rows[0].payload)["user_data"]["click_id"] == "cookie-click-id"


def test_client_ip_header_is_used_only_when_configured(settings):
    add_account()
    request = RequestFactory().get(
        "/",
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.4, 10.0.0.1",
        HTTP_USER_AGENT="UA",
    )
    rows = track("page_visit", request=request, event_id="a")
    assert json.loads(rows[0].payload)["user_data"]["client_ip_address"] == "10.0.0.1"
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "CLIENT_IP_HEADER": "HTTP_X_FORWARDED_FOR",
    }
    rows = track("page_visit", request=request, event_id="b")
    assert json.loads(rows[0].payload)["user_data"]["client_ip_address"] == "198.51.100.4"


def test_tenant_resolver_setting_chooses_the_tenant(settings):
    add_account(tenant="brand-b", ad_account_id="555")
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "TENANT_RESOLVER": "pinterest_capi.tenants.tenant_from_header",
    }
    request = RequestFactory().get("/", HTTP_X_SHOP_TENANT="brand-b", HTTP_USER_AGENT="UA")
    rows = track("page_visit", request=request, event_id="x")
    assert [r.account.tenant for r in rows] == ["brand-b"]


order_paid = Signal()


def _mapper(*, email, **_):
    return {"event_name": "lead", "user_data": {"em": email}, "event_id": f"lead-{email}"}


def _broken_mapper(**_):
    raise ValueError("mapper bug")


def test_a_receiver_records_through_its_mapper():
    add_account()
    receiver = make_receiver("tests.test_tracking._mapper")
    order_paid.connect(receiver, weak=False)
    try:
        with transaction.atomic():
            order_paid.send(sender=None, email=EMAIL)
    finally:
        order_paid.disconnect(receiver)
    assert OutboxEvent.objects.get().event_name == "lead"


def test_a_failing_receiver_never_breaks_the_shops_transaction(settings, caplog):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "RAISE_RECORD_ERRORS": False}
    add_account()
    receiver = make_receiver("tests.test_tracking._broken_mapper")
    order_paid.connect(receiver, weak=False)
    try:
        with transaction.atomic():
            AdAccount.objects.filter(ad_account_id="111").update(name="still works")
            order_paid.send(sender=None, email=EMAIL)
    finally:
        order_paid.disconnect(receiver)
    assert AdAccount.objects.get(ad_account_id="111").name == "still works"
    assert "Pinterest event not recorded" in caplog.text


def test_receiver_errors_are_raised_when_configured():
    receiver = make_receiver("tests.test_tracking._broken_mapper")
    order_paid.connect(receiver, weak=False)
    try:
        with pytest.raises(ValueError, match="mapper bug"):
            order_paid.send(sender=None, email=EMAIL)
    finally:
        order_paid.disconnect(receiver)
