"""End to end over real HTTP: storefront → outbox → flush → sandbox ledger → admin.

The shop is the demo shop, driven through its own views and forms; Pinterest is
the sandbox server on loopback; nothing in between is mocked.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from pinterest_capi import delivery
from pinterest_capi.models import EventStatus, OutboxEvent
from pinterest_capi.sandbox import Fault
from shop_demo.shop import signals as shop_signals
from shop_demo.shop.catalog import seed_catalog
from shop_demo.shop.models import Order
from tests.pinterest_schema import validate_request_body

pytestmark = pytest.mark.django_db

BROWSER = {"REMOTE_ADDR": "203.0.113.50", "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux) Flow"}
EMAIL = "  Jane.Doe@Example.COM "
PHONE = "+44 (0)20 7946 0123"


def buy(client, products, quantities=(2, 1)):
    for product, qty in zip(products, quantities, strict=False):
        url = reverse("shop:add_to_cart", args=[product.slug])
        response = client.post(url + "?epik=flow-click-id", {"quantity": qty}, **BROWSER)
        assert response.status_code in (302, 303), response.status_code
    response = client.post(
        reverse("shop:checkout"),
        {
            "email": EMAIL,
            "phone": PHONE,
            "first_name": "Jane",
            "last_name": "Doe",
            "city": "London",
            "postcode": "EC1A 1BB",
            "country": "GB",
        },
        **BROWSER,
    )
    assert response.status_code in (302, 303), response.content[:500]
    return Order.objects.latest("pk")


def requests_by_seq(sandbox):
    grouped: dict[int, list] = {}
    for item in sandbox.ledger.events():
        grouped.setdefault(item["request_seq"], []).append(item["event"])
    return grouped


def test_an_order_placed_in_the_storefront_is_sent_and_shown_in_the_admin(
    client, admin_client, account, sandbox
):
    products = seed_catalog()[:2]
    order = buy(client, products)
    rows = OutboxEvent.objects.order_by("pk")
    assert [r.event_name for r in rows] == ["add_to_cart", "add_to_cart", "checkout"]
    stored = " ".join(rows.values_list("payload", flat=True))
    assert "jane.doe@example.com" not in stored.lower() and "7946" not in stored

    summary = delivery.flush(until_empty=True)
    assert summary.sent == 3 and summary.failed == 0
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {EventStatus.SENT}

    ledger = {e["event"]["event_id"]: e["event"] for e in sandbox.ledger.events()}
    checkout = ledger[f"checkout-{order.number}"]
    assert checkout["event_name"] == "checkout" and checkout["action_source"] == "web"
    assert checkout["user_data"]["em"] == [hashlib.sha256(b"jane.doe@example.com").hexdigest()]
    assert checkout["user_data"]["ph"] == [hashlib.sha256(b"442079460123").hexdigest()]
    assert checkout["user_data"]["client_ip_address"] == "203.0.113.50"
    assert checkout["user_data"]["click_id"] == "flow-click-id"  # kept as a first-party cookie
    data = checkout["custom_data"]
    assert data["order_id"] == order.number and data["currency"] == order.currency
    assert data["value"] == f"{order.total}" and isinstance(data["value"], str)
    assert data["num_items"] == 3
    assert sorted(c["id"] for c in data["contents"]) == sorted(p.sku for p in products)
    assert all(isinstance(c["item_price"], str) for c in data["contents"])
    for events in requests_by_seq(sandbox).values():
        validate_request_body({"data": events})

    event = OutboxEvent.objects.get(event_name="checkout")
    changelist = admin_client.get(
        reverse("admin:pinterest_capi_outboxevent_changelist"), {"status__exact": "sent"}
    )
    assert changelist.status_code == 200 and event.event_id in changelist.content.decode()
    page = admin_client.get(reverse("admin:pinterest_capi_outboxevent_change", args=[event.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "sent" in html and order.number in html


def test_a_checkout_that_rolls_back_records_and_sends_nothing(client, account, sandbox):
    products = seed_catalog()[:1]

    def fail_after_signal(sender, **kwargs):
        raise RuntimeError("payment capture failed after the order signal")

    shop_signals.order_placed.connect(fail_after_signal, weak=False)
    try:
        with pytest.raises(RuntimeError):
            buy(client, products, quantities=(1,))
    finally:
        shop_signals.order_placed.disconnect(fail_after_signal)
    assert not Order.objects.exists()
    assert not OutboxEvent.objects.filter(event_name="checkout").exists()
    delivery.flush(until_empty=True)
    assert "checkout" not in {e["event"]["event_name"] for e in sandbox.ledger.events()}


def test_signup_is_sent_with_a_deterministic_id(client, account, sandbox):
    response = client.post(
        reverse("shop:signup"),
        {"email": "new.customer@example.com", "password": "a-long-password-1", "first_name": "N"},
        **BROWSER,
    )
    assert response.status_code in (302, 303)
    user = get_user_model().objects.get(email="new.customer@example.com")
    call_command("pinterest_capi_flush", "--until-empty", stdout=open("/dev/null", "w"))
    assert sandbox.ledger.event_ids() == [f"signup-{user.pk}"]


def test_admin_resend_of_a_failed_event_goes_out_again_with_the_same_id(
    client, admin_client, account, sandbox
):
    seed_catalog()
    order = buy(client, seed_catalog()[:1], quantities=(1,))
    sandbox.faults.add(Fault(event_status={0: "failed"}, message="Invalid value", times=1))
    # Send the checkout alone so index 0 is the checkout event.
    OutboxEvent.objects.exclude(event_name="checkout").update(status=EventStatus.SENT)
    delivery.flush(until_empty=True)
    event = OutboxEvent.objects.get(event_name="checkout")
    assert event.status == EventStatus.FAILED and "Invalid value" in event.last_error

    response = admin_client.post(
        reverse("admin:pinterest_capi_outboxevent_changelist"),
        {"action": "resend_failed", "_selected_action": [event.pk]},
        follow=True,
    )
    assert "1 failed event" in response.content.decode()
    event.refresh_from_db()
    assert event.status == EventStatus.PENDING
    delivery.flush(until_empty=True)
    event.refresh_from_db()
    assert event.status == EventStatus.SENT
    sends = [
        (e["event"]["event_id"], e["status"])
        for e in sandbox.ledger.events()
        if e["event"]["event_name"] == "checkout"
    ]
    assert sends == [
        (f"checkout-{order.number}", "failed"),
        (f"checkout-{order.number}", "processed"),
    ]
    payloads = {
        json.dumps(e["event"], sort_keys=True)
        for e in sandbox.ledger.events()
        if e["event"]["event_name"] == "checkout"
    }
    assert len(payloads) == 1  # the resend is byte-for-byte the same event
