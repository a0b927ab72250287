"""pinterest_capi.contrib.oscar against a real django-oscar shop, over real HTTP to the sandbox.

Every event starts in Oscar's own code: its basket, catalogue, search, registration and
checkout views (the order is placed by Oscar's ``OrderPlacementMixin``/``OrderCreator``,
which send ``order_placed``), driven with the test client.  The flush posts to the sandbox
server on loopback and the tests read what it received.
"""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sites.models import Site
from django.urls import reverse
from oscar.apps.address.models import Country
from oscar.apps.order.models import Order
from oscar.apps.order.signals import order_placed
from oscar.test.factories import create_product

from pinterest_capi import delivery
from pinterest_capi.models import EventStatus, OutboxEvent

pytestmark = pytest.mark.django_db

BROWSER = {"REMOTE_ADDR": "203.0.113.60", "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux) Oscar"}
EMAIL = "  Guest.Buyer@Example.COM "


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def catalogue(db):
    """Two products with stock and prices in GBP, and Great Britain as the shipping country."""
    Country.objects.create(
        iso_3166_1_a2="GB",
        iso_3166_1_a3="GBR",
        iso_3166_1_numeric="826",
        name="United Kingdom of Great Britain and Northern Ireland",
        printable_name="United Kingdom",
        is_shipping_country=True,
    )
    hobbit = create_product(
        upc="9780261102217",
        title="The Hobbit",
        price=Decimal("12.50"),
        partner_sku="HOB-1",
        num_in_stock=10,
    )
    map_ = create_product(
        upc="", title="Map of Middle-earth", price=Decimal("4.99"), num_in_stock=10
    )
    return hobbit, map_


def add_to_basket(client, product, quantity):
    url = reverse("basket:add", kwargs={"pk": product.pk})
    response = client.post(url, {"quantity": quantity}, **BROWSER)
    assert response.status_code == 302, response.content[:300]


def guest_checkout(client, email=EMAIL):
    """Oscar's checkout, step by step, ending on its "place order" button (the preview)."""
    steps = [
        ("post", reverse("checkout:index"), {"username": email, "options": "anonymous"}),
        (
            "post",
            reverse("checkout:shipping-address"),
            {
                "first_name": "Bilbo",
                "last_name": "Baggins",
                "line1": "1 Bagshot Row",
                "line4": "Hobbiton",
                "state": "The Shire",
                "postcode": "SH1 1RE",
                "phone_number": "+44 20 7946 0123",
            },
        ),
        ("get", reverse("checkout:shipping-method"), None),
        ("get", reverse("checkout:payment-method"), None),
        ("post", reverse("checkout:preview"), {"action": "place_order"}),
    ]
    for method, url, data in steps:
        response = getattr(client, method)(url, data or {}, **BROWSER)
        assert response.status_code == 302, (url, response.content[:500])
    assert response["Location"].endswith(reverse("checkout:thank-you")), response["Location"]
    return Order.objects.get()


def received(sandbox, event_name):
    return [e["event"] for e in sandbox.ledger.events() if e["event"]["event_name"] == event_name]


def test_an_order_placed_through_oscars_checkout_reaches_pinterest(
    client, account, sandbox, catalogue
):
    hobbit, map_ = catalogue
    client.get(hobbit.get_absolute_url() + "?epik=oscar-click-1", **BROWSER)  # keeps _epik
    add_to_basket(client, hobbit, 2)
    add_to_basket(client, map_, 1)
    order = guest_checkout(client)

    row = OutboxEvent.objects.get(event_name="checkout")
    assert row.event_id == f"checkout-{order.number}" and row.order_id == order.number
    assert "guest.buyer" not in row.payload.lower() and "7946" not in row.payload

    summary = delivery.flush(until_empty=True)
    assert summary.failed == 0 and summary.errors == []
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {EventStatus.SENT}
    [checkout] = received(sandbox, "checkout")
    assert checkout["event_id"] == f"checkout-{order.number}"
    assert checkout["action_source"] == "web"
    assert checkout["event_time"] == int(order.date_placed.timestamp())
    custom = checkout["custom_data"]
    assert order.total_incl_tax == Decimal("29.99")  # 2 × 12.50 + 4.99, free shipping
    assert custom["value"] == "29.99" and custom["currency"] == "GBP"
    assert custom["order_id"] == order.number and custom["num_items"] == 3
    assert custom["content_ids"] == ["9780261102217", str(map_.pk)]
    assert custom["contents"] == [
        {"id": "9780261102217", "item_name": "The Hobbit", "item_price": "12.50", "quantity": 2},
        {
            "id": str(map_.pk),
            "item_name": "Map of Middle-earth",
            "item_price": "4.99",
            "quantity": 1,
        },
    ]
    user = checkout["user_data"]
    assert user["em"] == [sha256("guest.buyer@example.com")]
    assert user["ph"] == [sha256("442079460123")]
    assert user["fn"] == [sha256("bilbo")] and user["ln"] == [sha256("baggins")]
    assert user["ct"] == [sha256("hobbiton")] and user["st"] == [sha256("theshire")]
    assert user["zp"] == [sha256("sh11re")] and user["country"] == [sha256("gb")]
    assert "external_id" not in user  # a guest has no account
    assert user["client_ip_address"] == "203.0.113.60"
    assert user["client_user_agent"] == BROWSER["HTTP_USER_AGENT"]
    assert user["click_id"] == "oscar-click-1"


def test_a_signed_in_customers_order_carries_their_email_and_id(
    client, account, sandbox, catalogue
):
    customer = get_user_model().objects.create_user(
        "frodo", email="Frodo@Example.com", password="ring-bearer-1"
    )
    client.force_login(customer)
    add_to_basket(client, catalogue[0], 1)
    steps = [
        (
            "post",
            reverse("checkout:shipping-address"),
            {
                "first_name": "Frodo",
                "last_name": "Baggins",
                "line1": "Bag End",
                "line4": "Hobbiton",
                "postcode": "SH1 1RE",
            },
        ),  # fmt: skip
        ("get", reverse("checkout:shipping-method"), None),
        ("get", reverse("checkout:payment-method"), None),
        ("post", reverse("checkout:preview"), {"action": "place_order"}),
    ]
    for method, url, data in steps:
        response = getattr(client, method)(url, data or {}, **BROWSER)
        assert response.status_code == 302, (url, response.content[:500])
    order = Order.objects.get()
    delivery.flush(until_empty=True)
    [checkout] = received(sandbox, "checkout")
    assert checkout["user_data"]["em"] == [sha256("frodo@example.com")]
    assert checkout["user_data"]["external_id"] == [sha256(str(customer.pk))]
    assert "ph" not in checkout["user_data"]  # no phone given: nothing invented
    [cart] = received(sandbox, "add_to_cart")
    assert cart["user_data"]["em"] == [sha256("frodo@example.com")]
    assert checkout["custom_data"]["value"] == str(order.total_incl_tax) == "12.50"


def test_basket_additions_product_views_and_searches_reach_pinterest(
    client, account, sandbox, catalogue
):
    hobbit, _map = catalogue
    response = client.get(hobbit.get_absolute_url(), **BROWSER)
    assert response.status_code == 200
    add_to_basket(client, hobbit, 3)
    response = client.get(reverse("search:search"), {"q": "hobbit"}, **BROWSER)
    assert response.status_code == 200
    client.get(reverse("search:search"), {"q": "  "}, **BROWSER)  # no query: no event

    delivery.flush(until_empty=True)
    [visit] = received(sandbox, "page_visit")
    assert visit["custom_data"] == {
        "currency": "GBP",
        "content_ids": ["9780261102217"],
        "contents": [{"id": "9780261102217", "item_name": "The Hobbit", "item_price": "12.50"}],
    }
    assert visit["event_source_url"].endswith(hobbit.get_absolute_url())
    [cart] = received(sandbox, "add_to_cart")
    assert cart["custom_data"] == {
        "currency": "GBP",
        "value": "37.50",
        "num_items": 3,
        "content_ids": ["9780261102217"],
        "contents": [
            {"id": "9780261102217", "item_name": "The Hobbit", "item_price": "12.50", "quantity": 3}
        ],
    }
    [search] = received(sandbox, "search")
    assert search["custom_data"] == {"search_string": "hobbit"}
    for event in (visit, cart, search):
        assert event["user_data"]["client_ip_address"] == "203.0.113.60"
        assert "em" not in event["user_data"]  # an anonymous visitor


def test_oscar_registration_sends_signup_with_the_hashed_email(client, account, sandbox):
    response = client.post(
        reverse("customer:register"),
        {"email": "Sam.Gamgee@Example.com", "password1": "po-tay-toes-42",
         "password2": "po-tay-toes-42"},
        **BROWSER,
    )  # fmt: skip
    assert response.status_code == 302, response.content[:500]
    user = get_user_model().objects.get(email__iexact="sam.gamgee@example.com")
    delivery.flush(until_empty=True)
    [signup] = received(sandbox, "signup")
    assert signup["event_id"] == f"signup-{user.pk}"
    assert signup["user_data"]["em"] == [sha256("sam.gamgee@example.com")]
    assert signup["user_data"]["client_ip_address"] == "203.0.113.60"


def test_the_tenant_comes_from_the_resolver_with_the_order(
    client, account, second_account, sandbox, catalogue
):
    """The contrib project resolves the tenant from the order's Site (see tenants.py)."""
    Site.objects.filter(pk=1).update(domain="other.example")
    Site.objects.clear_cache()
    add_to_basket(client, catalogue[0], 1)
    order = guest_checkout(client)
    delivery.flush(until_empty=True)
    assert f"checkout-{order.number}" in sandbox.ledger.event_ids(second_account.ad_account_id)
    assert "checkout" not in {
        e["event"]["event_name"] for e in sandbox.ledger.events(account.ad_account_id)
    }


@pytest.fixture
def signals_setting(settings):
    """Sets PINTEREST_CAPI["SIGNALS"] and re-connects; restores Oscar's wiring afterwards."""
    from pinterest_capi import receivers

    def apply(mapping):
        settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "SIGNALS": mapping}
        return receivers.connect_configured_signals()

    yield apply
    apply({})


def test_a_failing_mapper_never_breaks_oscars_checkout(
    client, account, sandbox, catalogue, settings, signals_setting, caplog
):
    """The mapper's failed query (fatal to a PostgreSQL transaction) stays in its savepoint."""
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "RAISE_RECORD_ERRORS": False}
    signals_setting(
        {"oscar.apps.order.signals.order_placed": "tests.contrib_project.broken.mapper"}
    )
    add_to_basket(client, catalogue[0], 1)
    with caplog.at_level(logging.ERROR, logger="pinterest_capi.receivers"):
        order = guest_checkout(client)
    assert order.lines.count() == 1 and order.status == "Pending"
    assert not OutboxEvent.objects.filter(event_name="checkout").exists()
    assert (
        "Pinterest event not recorded (mapper tests.contrib_project.broken.mapper)" in caplog.text
    )
    assert OutboxEvent.objects.filter(event_name="add_to_cart").count() == 1  # others still work


def test_a_shop_can_drop_one_of_oscars_events_with_none(
    client, account, catalogue, signals_setting
):
    connected = signals_setting({"oscar.apps.catalogue.signals.product_viewed": None})
    assert "oscar.apps.catalogue.signals.product_viewed" not in connected
    assert "oscar.apps.order.signals.order_placed" in connected
    assert client.get(catalogue[0].get_absolute_url(), **BROWSER).status_code == 200
    add_to_basket(client, catalogue[0], 1)
    assert list(OutboxEvent.objects.values_list("event_name", flat=True)) == ["add_to_cart"]


def test_oscars_signals_are_connected_once_through_the_signal_table():
    from pinterest_capi.receivers import signal_table

    entries = {e.signal_path: e for e in signal_table()}
    assert entries["oscar.apps.order.signals.order_placed"].source == (
        "app 'pinterest_capi.contrib.oscar'"
    )
    connected = [r for r in order_placed.receivers if "pinterest_capi" in str(r[0])]
    assert len(connected) == 1
