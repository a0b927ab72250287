"""The operator's flow on the running demo, in headless Chromium.

One test, in numbered steps, against ``shop_demo_serve`` (web server, django-q2 worker and the
Pinterest sandbox, each a real process): log in to the admin, add an ad account with a token,
verify it (when the admin offers it), buy as a shopper, watch the checkout event get ``sent``,
make the sandbox fail the next order's event, see it ``failed`` with Pinterest's message, resend
it, see it ``sent``, and look at the delivery dashboard (when the admin has one). Every step
leaves a PNG in the folder printed at the start (``test-artifacts/browser/<timestamp>/``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

DEMO_ACCOUNT_LABEL = "Demo ad account (demo)"  # seeded by shop_demo_serve
NEW_AD_ACCOUNT_ID = "549755880042"
NEW_ACCOUNT_NAME = "Browser test account"
NEW_ACCOUNT_LABEL = f"{NEW_ACCOUNT_NAME} (demo)"
NEW_TOKEN = "pina_browser_TOKEN_5e3d91c0ffee"  # a sandbox token, not a Pinterest secret
FAULT_MESSAGE = "Invalid parameter: event rejected by the sandbox (browser test)"  # < 80 chars
POLL_SECONDS = 20.0  # how long an outbox event may take to reach the state we wait for
TIMEOUT_MS = 10_000  # Playwright's auto-waiting per action / expectation

SHOPPER = {
    "email": "ada@example.com",
    "phone": "020 7946 0123",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "city": "London",
    "postcode": "SW1A 1AA",
}

# Every outbox row of one event_id on the changelist: its account, status and problem cells.
_READ_ROWS = """(eventId) => Array.from(document.querySelectorAll('#result_list tbody tr'))
    .map(tr => {
        const cell = (name) => (tr.querySelector('.field-' + name)?.innerText || '').trim();
        return {event_id: cell('event_id'), account: cell('account'),
                status: cell('status_display'), problem: cell('problem'),
                href: tr.querySelector('.field-id a')?.getAttribute('href') || ''};
    })
    .filter(row => row.event_id === eventId)"""

# Bars of the dashboard's chart: shapes with a visible box inside an <svg>; elements whose class
# says "bar" when the chart marks them, otherwise any <rect>.
_COUNT_BARS = """() => {
    const visible = (el) => { const b = el.getBBox(); return b.width > 0 && b.height > 0; };
    const marked = Array.from(document.querySelectorAll('svg [class*="bar"]'))
        .filter(el => el.tagName !== 'g' && el.tagName !== 'svg');
    const shapes = marked.length ? marked : Array.from(document.querySelectorAll('svg rect'));
    return {svgs: document.querySelectorAll('svg').length, bars: shapes.filter(visible).length};
}"""


def test_operator_flow(browser, demo, shots, note):
    from playwright.sync_api import expect

    started = time.monotonic()
    expect.set_options(timeout=TIMEOUT_MS)

    def step(number: int, title: str) -> None:
        print(f"[{time.monotonic() - started:5.1f} s] step {number}: {title}", flush=True)

    admin = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    shopper = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    for page in (admin, shopper):
        page.set_default_timeout(TIMEOUT_MS)
    server_errors: list[str] = []  # any 5xx answer to either browser fails the test at the end
    for page in (admin, shopper):
        page.on(
            "response",
            lambda r: server_errors.append(f"{r.status} {r.url}") if r.status >= 500 else None,
        )

    def outbox_rows(event_id: str) -> list[dict[str, str]]:
        admin.goto(f"{demo.base_url}/admin/pinterest_capi/outboxevent/?q={event_id}")
        return admin.evaluate(_READ_ROWS, event_id)

    def wait_for_statuses(event_id: str, wanted: dict[str, str]) -> list[dict[str, str]]:
        """Reload the changelist until each account's row of ``event_id`` has its status."""
        deadline = time.monotonic() + POLL_SECONDS
        while True:
            rows = outbox_rows(event_id)
            seen = {row["account"]: row["status"] for row in rows}
            if all(seen.get(account) == status for account, status in wanted.items()):
                return rows
            if time.monotonic() > deadline:
                shots(admin, f"timeout-{event_id}")
                pytest.fail(
                    f"{event_id}: wanted {wanted} within {POLL_SECONDS:.0f} s, the admin shows "
                    f"{rows}\n--- demo log (end) ---\n{demo.log()[-4000:]}"
                )
            admin.wait_for_timeout(400)  # the poll's pace; the deadline bounds it

    # 1. Log in to the admin ---------------------------------------------------------------
    step(1, "log in to /admin/ as admin/admin")
    admin.goto(demo.admin_url)
    expect(admin).to_have_url(re.compile(r"/admin/login/"))
    admin.fill("#id_username", "admin")
    admin.fill("#id_password", "admin")
    shots(admin, "admin-login")
    admin.get_by_role("button", name="Log in").click()
    expect(admin).to_have_title(re.compile("Site administration"))
    expect(admin.get_by_role("link", name=re.compile("Outbox events", re.I))).to_be_visible()
    shots(admin, "admin-home")

    # 2. Add an ad account with a token; the token never comes back ----------------------
    step(2, f"add ad account {NEW_AD_ACCOUNT_ID} (tenant demo) with a token")
    demo.sandbox(
        "POST", "/_sandbox/accounts", {"ad_account_id": NEW_AD_ACCOUNT_ID, "token": NEW_TOKEN}
    )
    admin.goto(f"{demo.base_url}/admin/pinterest_capi/adaccount/add/")
    admin.fill("#id_tenant", "demo")
    admin.fill("#id_name", NEW_ACCOUNT_NAME)
    admin.fill("#id_ad_account_id", NEW_AD_ACCOUNT_ID)
    admin.fill("#id_access_token", NEW_TOKEN)
    shots(admin, "add-ad-account-form")
    admin.locator("input[name=_continue]").click()
    expect(admin.locator("ul.messagelist li.success")).to_contain_text("was added successfully")
    expect(admin.locator("#content")).to_contain_text(f"…{NEW_TOKEN[-4:]}")
    assert NEW_TOKEN not in admin.content(), "the token is in the account page after saving"
    assert admin.input_value("#id_access_token") == ""
    account_url = admin.url
    shots(admin, "ad-account-saved")

    # 3. Verify connection (optional: only when the admin has the button) -----------------
    step(3, "verify the connection, if the account page offers it")
    name = re.compile(r"verify connection", re.I)
    verify = admin.get_by_role("button", name=name).or_(admin.get_by_role("link", name=name))
    if verify.count() == 0:
        note("step 3 skipped: no 'Verify connection' button on the ad account page")
    else:
        tags = demo.sandbox(
            "GET", f"/v5/ad_accounts/{NEW_AD_ACCOUNT_ID}/conversion_tags", token=NEW_TOKEN
        )
        tag_id = tags["items"][0]["id"]
        verify.first.click()
        message = admin.locator("ul.messagelist li")
        expect(message.first).to_be_visible()
        expect(admin.locator("ul.messagelist li.success")).to_contain_text(tag_id)
        assert NEW_TOKEN not in admin.content()
        shots(admin, "verify-connection")
        note(f"step 3 ran: 'Verify connection' reported Tag id {tag_id}")
        admin.goto(account_url)

    # 4. A shopper places an order --------------------------------------------------------
    step(4, "a shopper places an order")
    first = place_order(shopper, demo, shots, expect, "order-1")
    print(f"    order {first}", flush=True)

    # 5. Its checkout event is sent, to both of the tenant's accounts ---------------------
    step(5, f"outbox: checkout-{first} becomes sent")
    rows = wait_for_statuses(
        f"checkout-{first}", {DEMO_ACCOUNT_LABEL: "sent", NEW_ACCOUNT_LABEL: "sent"}
    )
    assert len(rows) == 2, rows
    shots(admin, "outbox-checkout-sent")

    # 6. The sandbox fails the next event for the new account; the admin shows it ---------
    step(6, "the sandbox fails the next order's event: the admin shows it failed")

    def add_to_carts() -> int:
        ledger = demo.sandbox("GET", f"/_sandbox/ledger?ad_account_id={NEW_AD_ACCOUNT_ID}")
        return sum(e["event"].get("event_name") == "add_to_cart" for e in ledger["events"])

    already = add_to_carts()

    def arm_fault() -> None:
        # The cart's add_to_cart must be delivered first, or it would take the fault.
        deadline = time.monotonic() + POLL_SECONDS
        while add_to_carts() <= already:
            assert time.monotonic() < deadline, "the add_to_cart event never reached the sandbox"
            shopper.wait_for_timeout(200)
        demo.sandbox(
            "POST",
            "/_sandbox/faults",
            {
                "ad_account_id": NEW_AD_ACCOUNT_ID,
                "event_status": {"0": "failed"},
                "message": FAULT_MESSAGE,
                "times": 1,
            },
        )

    second = place_order(shopper, demo, shots, expect, "order-2", before_submit=arm_fault)
    print(f"    order {second}", flush=True)
    event_id = f"checkout-{second}"
    rows = wait_for_statuses(event_id, {DEMO_ACCOUNT_LABEL: "sent", NEW_ACCOUNT_LABEL: "failed"})
    failed = next(row for row in rows if row["account"] == NEW_ACCOUNT_LABEL)
    assert FAULT_MESSAGE in failed["problem"], failed
    shots(admin, "outbox-checkout-failed")
    admin.goto(demo.base_url + failed["href"])
    expect(admin.locator(".field-last_error")).to_contain_text(FAULT_MESSAGE)
    expect(admin.locator(".pcapi-resend-button")).to_be_visible()
    shots(admin, "failed-event-page")

    # 7. Resend it from the changelist; clear the fault; it is sent -----------------------
    step(7, f"resend {event_id} (changelist action), clear the fault, wait until sent")
    faults = demo.sandbox("GET", "/_sandbox/faults")["faults"]
    assert [f["fired"] for f in faults] == [1], faults  # used up: the resend cannot hit it
    outbox_rows(event_id)
    row = admin.locator("#result_list tbody tr").filter(has_text=NEW_ACCOUNT_LABEL)
    expect(row).to_have_count(1)
    row.locator("input.action-select").check()
    actions = admin.locator("select[name=action] option")
    labels = actions.all_inner_texts()
    resend = [label for label in labels if re.search(r"resend", label, re.I)]
    assert resend, f"no resend action in {labels}"
    admin.select_option("select[name=action]", label=resend[0])
    shots(admin, "resend-action-selected")
    admin.locator("button[name=index]").click()
    expect(admin.locator("ul.messagelist li.success")).to_contain_text("requeued")
    shots(admin, "resend-requeued")
    assert demo.sandbox("DELETE", "/_sandbox/faults")["cleared"] == 1
    wait_for_statuses(event_id, {DEMO_ACCOUNT_LABEL: "sent", NEW_ACCOUNT_LABEL: "sent"})
    shots(admin, "outbox-resent-sent")
    ledger = demo.sandbox("GET", f"/_sandbox/ledger?ad_account_id={NEW_AD_ACCOUNT_ID}")
    answers = [e["status"] for e in ledger["events"] if e["event"].get("event_id") == event_id]
    assert answers == ["failed", "processed"], answers  # the same event_id, sent twice

    # 8. The delivery dashboard (optional: only when the admin has it) --------------------
    step(8, "open the delivery dashboard, if the admin has one")
    admin.goto(demo.admin_url)
    dashboard = admin.get_by_role("link", name=re.compile(r"delivery dashboard", re.I))
    if dashboard.count() == 0:
        note("step 8 skipped: no 'Delivery dashboard' entry in the admin")
    else:
        dashboard.first.click()
        expect(admin.locator("svg").first).to_be_visible()
        drawn = admin.evaluate(_COUNT_BARS)
        shots(admin, "delivery-dashboard")
        assert drawn["bars"] >= 1, f"the dashboard's chart has no bar: {drawn}"
        note(f"step 8 ran: the delivery dashboard drew {drawn['bars']} bar(s) in an <svg>")

    assert not server_errors, server_errors
    print(
        f"[{time.monotonic() - started:5.1f} s] done; {shots.count} screenshots in {shots.folder}",
        flush=True,
    )


def place_order(
    page: Any,
    demo: Any,
    shots: Callable[[Any, str], Any],
    expect: Any,
    label: str,
    before_submit: Callable[[], None] | None = None,
) -> str:
    """Product page → add to cart → checkout form → thanks page; returns the order number."""
    page.goto(demo.base_url + "/")
    product = page.locator(".grid .card a").first
    name = product.inner_text().strip()
    product.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    shots(page, f"{label}-product")
    page.get_by_role("button", name="Add to cart").click()
    expect(page).to_have_url(re.compile(r"/cart/$"))
    expect(page.locator("main table")).to_contain_text(name)
    shots(page, f"{label}-cart")
    page.locator("a.button", has_text="Checkout").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout")
    for field, value in SHOPPER.items():
        page.fill(f"#id_{field}", value)
    page.select_option("#id_country", "GB")
    shots(page, f"{label}-checkout")
    if before_submit is not None:
        before_submit()
    page.get_by_role("button", name="Place order").click()
    number = page.locator("#order-number")
    expect(number).to_have_text(re.compile(r"\S+"))
    shots(page, f"{label}-thanks")
    return number.inner_text().strip()
