"""The demo shop's pages and the Pinterest Tag: every event recorded with the right custom_data,
and every Tag call on the page carrying the event_id of the outbox row (and of what the sandbox
received).

These run with real commits (``transaction=True``): a Tag call is queued only when the
transaction that recorded its event commits, as in production.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.test import Client

from pinterest_capi import delivery
from pinterest_capi.events import sha256_hex
from pinterest_capi.models import OutboxEvent
from shop_demo.shop.catalog import seed_catalog
from shop_demo.shop.models import Order

pytestmark = pytest.mark.django_db(transaction=True)

TAG_ID = "2612000000042"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
ORIGIN = "http://testserver"
_TRACK = re.compile(r"pintrk\('track',(\"[a-z]+\"),(\{.*?\})\);")
_ISLAND = re.compile(r'<script type="application/json" data-pinterest-capi-event>(.*?)</script>')
SHOPPER = {
    "email": "ada@example.com",
    "phone": "020 7946 0123",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "city": "London",
    "postcode": "SW1A 1AA",
    "country": "GB",
}


@pytest.fixture
def shop(account):
    account.tag_id = TAG_ID
    account.save()
    seed_catalog()
    return Client(HTTP_USER_AGENT=UA)


def tag_calls(html: str) -> list[tuple[str, dict]]:
    return [(json.loads(n), json.loads(p)) for n, p in _TRACK.findall(html)]


def browser_events(html: str) -> list[dict]:
    return [json.loads(data) for data in _ISLAND.findall(html)]


def as_beacon_js(client: Client, page_url: str, spec: dict) -> str:
    """What beacon.js does with one data island: a browser-made id, posted to the beacon."""
    event_id = f"{spec['event_name']}-{uuid.uuid4()}"
    body = {"event_name": spec["event_name"], "event_id": event_id, "event_source_url": page_url}
    if spec["custom_data"]:
        body["custom_data"] = spec["custom_data"]
    response = client.post(
        "/pinterest/beacon/", json.dumps(body), content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
    )  # fmt: skip
    assert response.status_code == 202, response.content
    return event_id


def row(event_name: str) -> OutboxEvent:
    return OutboxEvent.objects.get(event_name=event_name)


def test_every_page_loads_the_tag_base_code(shop):
    html = shop.get("/").content.decode()
    assert f"pintrk('load',\"{TAG_ID}\");" in html
    assert html.index("pintrk('load'") < html.index("</head>")


def test_a_product_page_emits_a_page_visit_with_the_products_custom_data(shop, account):
    html = shop.get("/p/hl-1002/").content.decode()
    (spec,) = browser_events(html)
    expected = {
        "content_ids": ["HL-1002"],
        "content_name": "Wool Throw Blanket",
        "content_category": "Home & Living",
        "content_brand": "Fellside",
        "value": "68.00",
        "currency": "GBP",
    }
    assert spec["event_name"] == "page_visit" and spec["tag_event"] == "pagevisit"
    assert spec["custom_data"] == expected
    assert spec["tag_params"] == {
        "value": 68,
        "currency": "GBP",
        "line_items": [{"product_id": "HL-1002"}],
    }
    event_id = as_beacon_js(shop, f"{ORIGIN}/p/hl-1002/", spec)
    recorded = row("page_visit")
    assert recorded.event_id == event_id
    assert recorded.payload_dict["custom_data"] == expected
    assert recorded.payload_dict["event_source_url"] == f"{ORIGIN}/p/hl-1002/"


def test_a_category_page_emits_view_category(shop):
    html = shop.get("/c/kitchen/").content.decode()
    assert "Enamel Milk Pan" in html
    (spec,) = browser_events(html)
    assert spec["event_name"] == "view_category"
    assert spec["custom_data"] == {
        "content_category": "Kitchen",
        "content_ids": ["KT-2001", "KT-2002", "KT-2003"],
    }
    as_beacon_js(shop, f"{ORIGIN}/c/kitchen/", spec)
    assert row("view_category").payload_dict["custom_data"] == spec["custom_data"]


def test_a_search_emits_search_with_the_search_string(shop):
    html = shop.get("/search/", {"q": "linen"}).content.decode()
    assert "Linen Cushion Cover" in html and "Linen Desk Planner" in html
    (spec,) = browser_events(html)
    assert spec["event_name"] == "search"
    assert spec["custom_data"]["search_string"] == "linen"
    assert set(spec["custom_data"]["content_ids"]) == {"HL-1001", "HL-1003", "ST-4003"}
    assert spec["tag_params"]["search_query"] == "linen"
    as_beacon_js(shop, f"{ORIGIN}/search/?q=linen", spec)
    assert row("search").payload_dict["custom_data"]["search_string"] == "linen"
    # An empty search shows the form only: no event.
    assert browser_events(shop.get("/search/").content.decode()) == []


def test_an_order_fires_the_tag_with_the_ids_the_server_recorded_and_sent(shop, sandbox):
    response = shop.post("/p/kt-2002/add/", {"quantity": 2}, follow=True)
    ((name, params),) = tag_calls(response.content.decode())  # on the cart page
    added = row("add_to_cart")
    assert (name, params["event_id"]) == ("addtocart", added.event_id)
    assert params["value"] == 68 and params["currency"] == "GBP"
    assert params["line_items"][0]["product_id"] == "KT-2002"

    response = shop.post("/checkout/", SHOPPER, follow=True)
    html = response.content.decode()
    number = Order.objects.get().number
    assert f'<strong id="order-number">{number}</strong>' in html
    ((name, params),) = tag_calls(html)  # on the thank-you page, after the redirect
    checkout = row("checkout")
    assert name == "checkout"
    assert params["event_id"] == checkout.event_id == f"checkout-{number}"
    assert params["order_id"] == number and params["value"] == 68 and params["order_quantity"] == 2
    assert "ada@example.com" not in html.split("</main>")[1]  # no PII in the Tag
    # A reload does not fire it again (Pinterest would deduplicate it anyway).
    assert tag_calls(shop.get("/checkout/thanks/").content.decode()) == []

    delivery.flush(until_empty=True)
    assert set(sandbox.ledger.event_ids()) == {added.event_id, checkout.event_id}


def test_a_signup_fires_the_tag_on_the_next_page(shop):
    response = shop.post(
        "/account/signup/",
        {"email": "grace@example.com", "password": "a-long-password-1", "first_name": "Grace"},
        follow=True,
    )
    ((name, params),) = tag_calls(response.content.decode())
    signup = row("signup")
    assert (name, params["event_id"]) == ("signup", signup.event_id)
    assert signup.event_id.startswith("signup-")


def test_the_newsletter_form_records_a_lead_and_the_tag_fires_it(shop):
    shop.get("/c/garden/")
    response = shop.post(
        "/newsletter/", {"email": " Bea@Example.com ", "next": "/c/garden/"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/c/garden/"
    html = response.content.decode()
    assert "You are on the list" in html
    ((name, params),) = tag_calls(html)
    lead = row("lead")
    assert (name, params["event_id"]) == ("lead", lead.event_id)
    assert params["lead_type"] == "newsletter"
    event = lead.payload_dict
    assert event["custom_data"] == {"content_name": "newsletter"}
    assert event["user_data"]["em"] == [sha256_hex("bea@example.com")]
    assert "Bea@Example.com" not in lead.payload


def test_the_newsletter_form_never_redirects_off_site(shop):
    response = shop.post(
        "/newsletter/", {"email": "c@example.com", "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    bad = shop.post("/newsletter/", {"email": "not-an-email"}, follow=True)
    assert "valid email" in bad.content.decode()
    assert not OutboxEvent.objects.filter(event_name="lead", payload__contains="not-an").exists()
