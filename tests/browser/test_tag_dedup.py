"""The Pinterest Tag and the server events share their event_ids, in a real browser.

Headless Chromium shops on the running demo (``shop_demo_serve``: web server, django-q2 worker,
sandbox): a product page, a search, a category page, an order and a newsletter sign-up.
Pinterest's ``core.js`` is blocked (there is no internet, and the test must see the calls the
page made), so every ``pintrk(…)`` call stays in ``window.pintrk.queue``. For each Tag call the
test checks that the demo's outbox holds a row with the same event name and event_id (read
from its SQLite file) and that the sandbox received that event_id, processed, with the custom
data the page described.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

DEMO_AD_ACCOUNT_ID = "549755885175"  # seeded by shop_demo_serve
DEMO_TOKEN = "sandbox-demo-token"
# A desktop Chrome: HeadlessChrome is on the beacon's robot list (its events are not recorded).
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
POLL_SECONDS = 20.0
TIMEOUT_MS = 10_000
SHOPPER = {
    "email": "grace@example.com",
    "first_name": "Grace",
    "last_name": "Hopper",
    "city": "London",
    "postcode": "EC1A 1BB",
}
API_NAMES = {
    "pagevisit": "page_visit",
    "search": "search",
    "viewcategory": "view_category",
    "addtocart": "add_to_cart",
    "checkout": "checkout",
    "lead": "lead",
}


def queue(page: Any) -> list[list[Any]]:
    return page.evaluate("() => (window.pintrk && window.pintrk.queue) || []")


def tracks(page: Any, tag_event: str) -> list[dict[str, Any]]:
    return [c[2] for c in queue(page) if c[0] == "track" and c[1] == tag_event]


def outbox_row(demo: Any, event_name: str, event_id: str) -> dict[str, Any] | None:
    """The demo account's outbox row of this event, read from the demo's SQLite file."""
    uri = f"file:{demo.database_path}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as db:
        found = db.execute(
            "SELECT e.event_id, e.status, e.payload FROM pinterest_capi_outboxevent e "
            "JOIN pinterest_capi_adaccount a ON a.id = e.account_id "
            "WHERE a.ad_account_id = ? AND e.event_name = ? AND e.event_id = ?",
            (DEMO_AD_ACCOUNT_ID, event_name, event_id),
        ).fetchone()
    if found is None:
        return None
    return {"event_id": found[0], "status": found[1], "payload": json.loads(found[2])}


def wait_until_sent(demo: Any, event_name: str, event_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        row = outbox_row(demo, event_name, event_id)
        if row is not None and row["status"] == "sent":
            return row
        if time.monotonic() > deadline:
            pytest.fail(
                f"{event_name} {event_id}: outbox row {row} not sent within {POLL_SECONDS:.0f} s"
                f"\n--- demo log (end) ---\n{demo.log()[-3000:]}"
            )
        time.sleep(0.3)


def received(demo: Any, event_id: str) -> list[dict[str, Any]]:
    ledger = demo.sandbox("GET", f"/_sandbox/ledger?ad_account_id={DEMO_AD_ACCOUNT_ID}")
    return [e for e in ledger["events"] if e["event"].get("event_id") == event_id]


def test_the_tag_and_the_server_send_the_same_event_ids(browser, demo, shots):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    assert demo.database_path is not None
    context = browser.new_context(user_agent=USER_AGENT, viewport={"width": 1100, "height": 900})
    blocked: list[str] = []

    def block(route: Any) -> None:
        blocked.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^https://(s\.pinimg\.com|ct\.pinterest\.com)/"), block)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    beacons: list[Any] = []
    page.on("response", lambda r: beacons.append(r) if "/pinterest/beacon/" in r.url else None)
    errors: list[str] = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    seen: dict[str, str] = {}  # tag event -> event_id fired by the page

    def fired(tag_event: str) -> str:
        calls = tracks(page, tag_event)
        assert len(calls) == 1, f"{tag_event}: {queue(page)}"
        event_id = calls[0]["event_id"]
        assert isinstance(event_id, str) and event_id, calls
        seen[tag_event] = event_id
        return event_id

    def beacon_answered(count: int) -> None:
        deadline = time.monotonic() + 10
        while len(beacons) < count and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert len(beacons) == count, [b.url for b in beacons]
        assert beacons[-1].status == 202, beacons[-1].text()

    # 1. The base code loads the demo account's Tag id (filled by Verify connection).
    tags = demo.sandbox(
        "GET", f"/v5/ad_accounts/{DEMO_AD_ACCOUNT_ID}/conversion_tags", token=DEMO_TOKEN
    )
    tag_id = tags["items"][0]["id"]
    page.goto(demo.base_url + "/")
    assert ["load", tag_id] in queue(page), queue(page)
    assert ["page"] in queue(page)
    assert any("s.pinimg.com/ct/core.js" in url for url in blocked), blocked
    shots(page, "tag-home")

    # 2. A product page: page_visit, id made in the browser, posted to the beacon.
    page.locator(".grid .card a", has_text="Ceramic Table Lamp").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ceramic Table Lamp")
    beacon_answered(1)
    visit_id = fired("pagevisit")
    assert re.fullmatch(r"page_visit-[0-9a-f-]{36}", visit_id), visit_id
    assert tracks(page, "pagevisit")[0]["line_items"] == [{"product_id": "HL-1003"}]
    shots(page, "tag-product-page")

    # 3. A search from the header box.
    page.get_by_role("searchbox", name="Search products").first.fill("linen")
    page.keyboard.press("Enter")
    expect(page.locator("#result-count")).to_contain_text("for “linen”")
    beacon_answered(2)
    search_id = fired("search")
    assert tracks(page, "search")[0]["search_query"] == "linen"
    shots(page, "tag-search")
    # The same from script, as a single-page app would after load.
    spa_id = page.evaluate(
        "() => window.pinterestCapi.send({event_name: 'search', custom_data: "
        "{search_string: 'oak'}})"
    )
    assert tracks(page, "search")[-1] == {"search_query": "oak", "event_id": spa_id}
    beacon_answered(3)

    # 4. A category page.
    page.get_by_role("navigation", name="Categories").get_by_role("link", name="Garden").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Garden")
    beacon_answered(4)
    category_id = fired("viewcategory")

    # 5. Add to cart, check out: the server-made ids reach the Tag on the next page.
    page.locator(".grid .card a", has_text="Ash Handled Trowel").click()
    beacon_answered(5)  # the product page's page_visit
    page.get_by_role("button", name="Add to cart").click()
    expect(page).to_have_url(re.compile(r"/cart/$"))
    cart_id = fired("addtocart")
    shots(page, "tag-cart")
    page.locator("a.button", has_text="Checkout").click()
    for field, value in SHOPPER.items():
        page.fill(f"#id_{field}", value)
    page.get_by_role("button", name="Place order").click()
    number = page.locator("#order-number").inner_text().strip()
    checkout_id = fired("checkout")
    assert checkout_id == f"checkout-{number}"
    assert tracks(page, "checkout")[0]["order_id"] == number
    shots(page, "tag-thanks")

    # 6. The newsletter form in the footer: a lead.
    page.fill("#newsletter-email", "grace.news@example.com")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.locator(".messages")).to_contain_text("on the list")
    lead_id = fired("lead")
    shots(page, "tag-lead")

    # 7. Every id the page gave the Tag is an outbox row of the same event, sent, and the
    #    sandbox received it (processed) with the page's data.
    assert set(seen.values()) == {
        visit_id, search_id, category_id, cart_id, checkout_id, lead_id
    }  # fmt: skip
    for tag_event, event_id in seen.items():
        row = wait_until_sent(demo, API_NAMES[tag_event], event_id)
        assert row["event_id"] == event_id
        answers = received(demo, event_id)
        assert [a["status"] for a in answers] == ["processed"], (tag_event, answers)
        assert answers[0]["event"]["event_name"] == API_NAMES[tag_event]
        assert answers[0]["event"] == row["payload"]
    visit = received(demo, visit_id)[0]["event"]
    assert visit["custom_data"]["content_ids"] == ["HL-1003"]
    assert visit["event_source_url"].endswith("/p/hl-1003/")
    assert visit["user_data"]["client_user_agent"] == USER_AGENT
    assert received(demo, search_id)[0]["event"]["custom_data"]["search_string"] == "linen"
    spa = wait_until_sent(demo, "search", spa_id)
    assert spa["payload"]["custom_data"] == {"search_string": "oak"}
    assert [a["status"] for a in received(demo, spa_id)] == ["processed"]
    category = received(demo, category_id)[0]["event"]["custom_data"]
    assert category["content_category"] == "Garden"
    assert not errors, errors
    context.close()
