"""The Pinterest Tag template tags: base code, Tag calls sharing the outbox row's event_id,
escaping, consent, and the Tag id that Verify connection fills in."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import transaction
from django.http import HttpResponse
from django.template import Context, Template
from django.test import RequestFactory

import pinterest_capi
from pinterest_capi import tag_events
from pinterest_capi.consent import Consent
from pinterest_capi.events import sha256_hex
from pinterest_capi.models import AdAccount, OutboxEvent

TAG_ID = "2612345678901"
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"

_TRACK = re.compile(r"pintrk\('track',(\"[a-z]+\"),(\{.*?\})\);")


def render(source: str, request) -> str:
    return Template("{% load pinterest_capi %}" + source).render(Context({"request": request}))


def tracked(html: str) -> list[tuple[str, dict]]:
    """Every ``pintrk('track', name, params)`` call in ``html``, decoded as the browser would."""
    return [(json.loads(name), json.loads(params)) for name, params in _TRACK.findall(html)]


def make_request(*, session: bool = True, path: str = "/"):
    request = RequestFactory().get(path, HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.5")
    if session:
        SessionMiddleware(lambda r: HttpResponse()).process_request(request)
        request.session.save()  # a visitor who already has a session (a cart, a login)
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    return request


@pytest.fixture
def tagged(account):
    account.tag_id = TAG_ID
    account.save()
    return account


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """The test runs inside a transaction: run on_commit callbacks as a real commit would."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def checkout(request, number: str = "1001", **extra):
    return pinterest_capi.track(
        "checkout",
        request=request,
        event_id=f"checkout-{number}",
        user_data={"em": "ada@example.com"},
        custom_data={
            "currency": "GBP",
            "value": "72.39",
            "order_id": number,
            "num_items": 2,
            "contents": [
                {"id": "HL-1001", "item_price": "24.00", "quantity": 1, "item_name": "Cushion"},
                {"id": "KT-2001", "item_price": "48.39", "quantity": 1},
            ],
            **extra,
        },
    )


# -- base code -----------------------------------------------------------------------------


def test_the_base_code_loads_the_tenants_tag_id(tagged):
    html = render("{% pinterest_tag_base %}", make_request())
    assert "src=e;" in html and '("https:\\/\\/s.pinimg.com\\/ct\\/core.js")' not in html
    assert '("https://s.pinimg.com/ct/core.js");' in html
    assert f"pintrk('load',\"{TAG_ID}\");" in html
    assert "pintrk('page');" in html
    assert f"https://ct.pinterest.com/v3/?event=init&amp;tid={TAG_ID}&amp;noscript=1" in html


@pytest.mark.parametrize("case", ["no tag id", "disabled", "inactive", "consent", "no request"])
def test_the_base_code_renders_nothing_when_it_should_not(tagged, settings, case):
    request = make_request()
    if case == "no tag id":
        AdAccount.objects.update(tag_id="")
    elif case == "disabled":
        settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "ENABLED": False}
    elif case == "inactive":
        AdAccount.objects.update(active=False)
    elif case == "consent":
        settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "CONSENT_HOOK": deny}
    elif case == "no request":
        request = None
    assert render("{% pinterest_tag_base %}{% pinterest_tag_events %}", request) == ""


def deny(**kwargs):
    return False


def test_the_tag_of_another_tenant_is_not_loaded(tagged, second_account):
    second_account.tag_id = "2610000000002"
    second_account.save()
    html = render("{% pinterest_tag_base %}", make_request())
    assert TAG_ID in html and "2610000000002" not in html


def test_limited_data_processing_sets_the_hashed_state_and_country(tagged, settings):
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "CONSENT_HOOK": lambda **kw: Consent(allowed=True, limited_data_processing=True),
    }
    html = render("{% pinterest_tag_base %}", make_request())
    match = re.search(r"pintrk\('set',(\{.*?\})\);", html)
    assert json.loads(match.group(1)) == {
        "opt_out_type": "LDP",
        "st": sha256_hex("ca"),
        "country": sha256_hex("us"),
    }
    assert html.index("pintrk('set'") < html.index("pintrk('page')")


def test_a_nonce_is_put_on_the_script(tagged):
    html = render('{% pinterest_tag_base nonce="abc123" %}', make_request())
    assert '<script nonce="abc123">' in html


# -- Tag calls for the events the server recorded ------------------------------------------


def test_the_tag_call_carries_the_outbox_rows_event_id(tagged, committed):
    request = make_request()
    with committed():
        rows = checkout(request)
    html = render("{% pinterest_tag_events %}", request)
    calls = tracked(html)
    assert calls == [
        (
            "checkout",
            {
                "value": 72.39,
                "currency": "GBP",
                "order_id": "1001",
                "order_quantity": 2,
                "line_items": [
                    {
                        "product_id": "HL-1001",
                        "product_name": "Cushion",
                        "product_price": 24,
                        "product_quantity": 1,
                    },
                    {"product_id": "KT-2001", "product_price": 48.39, "product_quantity": 1},
                ],
                "event_id": rows[0].event_id,
            },
        )
    ]
    assert OutboxEvent.objects.get().event_id == "checkout-1001"
    # No user data reaches the page, hashed or not.
    assert "ada@example.com" not in html and sha256_hex("ada@example.com") not in html


def test_a_call_is_rendered_once(tagged, committed):
    request = make_request()
    with committed():
        checkout(request)
    assert len(tracked(render("{% pinterest_tag_events %}", request))) == 1
    assert render("{% pinterest_tag_events %}", request) == ""


def test_the_call_waits_in_the_session_for_the_page_after_the_redirect(tagged, committed):
    post = make_request()
    with committed():
        rows = checkout(post)
    post.session.save()  # SessionMiddleware does this on the redirect response
    following = make_request()
    following.session = post.session.__class__(post.session.session_key)
    calls = tracked(render("{% pinterest_tag_events %}", following))
    assert [params["event_id"] for _, params in calls] == [rows[0].event_id]


def test_without_a_session_the_call_stays_on_the_request(tagged, committed):
    request = make_request(session=False)
    with committed():
        rows = checkout(request)
    assert getattr(request, tag_events.REQUEST_ATTR)[0]["event_id"] == rows[0].event_id
    assert [p["event_id"] for _, p in tracked(render("{% pinterest_tag_events %}", request))] == [
        "checkout-1001"
    ]


def test_a_visitor_without_a_session_yet_gets_none_created(tagged, committed):
    request = make_request(session=False)
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)  # lazy, no key
    with committed():
        checkout(request)
    assert request.session.session_key is None and not request.session.modified


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_order_leaves_no_tag_call(tagged):
    request = make_request()
    with pytest.raises(RuntimeError), transaction.atomic():
        checkout(request)
        assert render("{% pinterest_tag_events %}", request) == ""  # not before commit
        raise RuntimeError("payment failed")
    assert not OutboxEvent.objects.exists()
    assert render("{% pinterest_tag_events %}", request) == ""
    with transaction.atomic():
        checkout(request, number="1002")
    assert [p["event_id"] for _, p in tracked(render("{% pinterest_tag_events %}", request))] == [
        "checkout-1002"
    ]


def test_events_the_tag_does_not_know_or_that_opt_out_are_not_queued(tagged, committed, settings):
    request = make_request()
    with committed():
        pinterest_capi.track("add_to_wishlist", request=request, user_data={"em": "a@example.com"})
        checkout(request, number="1003")  # kept
        pinterest_capi.track(
            "lead", request=request, user_data={"em": "a@example.com"}, browser_tag=False
        )
        pinterest_capi.track(
            "signup", request=request, user_data={"em": "b@example.com"}, opt_out=True
        )
        settings.PINTEREST_CAPI = {
            **settings.PINTEREST_CAPI,
            "CONSENT_HOOK": deny,
            "CONSENT_DENIED": "opt_out",
        }
        pinterest_capi.track("signup", request=request, user_data={"em": "c@example.com"})
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "CONSENT_HOOK": None}
    assert OutboxEvent.objects.count() == 5
    calls = tracked(render("{% pinterest_tag_events %}", request))
    assert [(name, p["event_id"]) for name, p in calls] == [("checkout", "checkout-1003")]


def test_consent_is_asked_again_when_rendering(tagged, committed, settings):
    request = make_request()
    with committed():
        checkout(request)
        pinterest_capi.track("lead", request=request, user_data={"em": "a@example.com"})
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "CONSENT_HOOK": lambda *, event_name, **kw: event_name != "lead",
    }
    calls = tracked(render("{% pinterest_tag_events %}", request))
    assert [name for name, _ in calls] == ["checkout"]


def test_pending_calls_are_bounded_and_expire():
    entries = [
        {"event_name": "lead", "event_id": f"lead-{n}", "at": 1000 + n, "tag_event": "lead"}
        for n in range(30)
    ]
    kept = tag_events._fresh(entries, now=1000 + 30)
    assert [e["event_id"] for e in kept] == [f"lead-{n}" for n in range(10, 30)]
    assert (
        tag_events._fresh(entries, now=1000 + tag_events.MAX_AGE_SECONDS + 20)
        == [e for e in entries if e["at"] >= 1020][-tag_events.MAX_PENDING :]
    )


# -- escaping ------------------------------------------------------------------------------

EVIL = "</script><script>alert('x')</script> & \"q\" <!-- \u2028"


def test_values_are_escaped_inside_the_script(tagged, committed):
    request = make_request()
    with committed():
        pinterest_capi.track(
            "search",
            request=request,
            user_data={"em": "a@example.com"},
            event_id="search-</script><b>",
            custom_data={"search_string": EVIL},
        )
    html = render("{% pinterest_tag_events %}", request)
    body = html.removeprefix("<script>").removesuffix("</script>")
    assert "<" not in body and ">" not in body and "&" not in body
    assert "\u2028" not in body
    ((name, params),) = tracked(html)
    assert name == "search"
    assert params == {"search_query": EVIL.strip(), "event_id": "search-</script><b>"}


def test_the_browser_event_data_is_escaped_json(tagged):
    request = make_request()
    html = Template(
        "{% load pinterest_capi %}{% pinterest_browser_event 'search' search_string=q %}"
    ).render(Context({"request": request, "q": EVIL}))
    data = re.search(
        r'<script type="application/json" data-pinterest-capi-event>(.*?)</script>', html, re.S
    ).group(1)
    assert "<" not in data and ">" not in data and "&" not in data
    assert json.loads(data) == {
        "event_name": "search",
        "tag_event": "search",
        "custom_data": {"search_string": EVIL.strip()},
        "tag_params": {"search_query": EVIL.strip()},
    }
    assert 'data-beacon-url="/pinterest/beacon/"' in html
    assert 'src="/static/pinterest_capi/beacon.js"' in html


def test_the_beacon_script_is_included_once_per_page(tagged):
    request = make_request()
    html = render(
        "{% pinterest_browser_event 'page_visit' content_ids='HL-1001' %}"
        "{% pinterest_browser_event 'view_category' content_category='Home' %}",
        request,
    )
    assert html.count("beacon.js") == 1
    assert html.count("data-pinterest-capi-event") == 2


@pytest.mark.parametrize(
    "source",
    [
        "{% pinterest_browser_event 'checkout' %}",  # not a browser event
        "{% pinterest_browser_event 'page_visit' colour='red' %}",  # not custom_data
        "{% pinterest_browser_event 'page_visit' currency='pounds' %}",  # invalid
    ],
)
def test_a_wrong_browser_event_renders_nothing_and_does_not_raise(tagged, source):
    assert render(source, make_request()) == ""


def test_a_browser_event_renders_without_a_tag_id_but_not_without_consent(account, settings):
    html = render(
        "{% pinterest_browser_event 'page_visit' content_ids='HL-1001' %}", make_request()
    )
    assert "data-pinterest-capi-event" in html  # the server half is sent anyway
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "CONSENT_HOOK": deny}
    assert render("{% pinterest_browser_event 'page_visit' %}", make_request()) == ""


# -- Tag id: the admin and Verify connection -----------------------------------------------


def test_verify_connection_fills_the_tag_id(account, sandbox):
    from pinterest_capi.verification import verify_account

    listed = sandbox_tag_id(sandbox)
    result = verify_account(account)
    assert result.ok, result.message
    account.refresh_from_db()
    assert account.tag_id == listed
    assert f"Saved as this account's Tag id ({listed})" in result.message
    # A second check finds it already there and says nothing more about it.
    assert "Saved as" not in verify_account(account).message


def sandbox_tag_id(sandbox) -> str:
    import httpx

    from tests.conftest import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN

    answer = httpx.get(
        f"{sandbox.url}/ad_accounts/{SANDBOX_ACCOUNT_ID}/conversion_tags",
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
    )
    (item,) = answer.json()["items"]
    return item["id"]


def test_the_tag_id_is_editable_in_the_account_admin(admin_client, account):
    url = f"/admin/pinterest_capi/adaccount/{account.pk}/change/"
    page = admin_client.get(url)
    assert 'name="tag_id"' in page.content.decode()
    form = {
        "tenant": account.tenant,
        "name": account.name,
        "ad_account_id": account.ad_account_id,
        "tag_id": "26 1234",
        "active": "on",
        "access_token": "",
    }
    assert admin_client.post(url, form).status_code == 302
    account.refresh_from_db()
    assert account.tag_id == "261234"
    bad = admin_client.post(url, {**form, "tag_id": "<script>"})
    assert bad.status_code == 200
    assert "digits only" in bad.content.decode()
