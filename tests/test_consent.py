"""Consent and opt-out: CONSENT_HOOK / CONSENT_DENIED through the real track() and outbox.

Hooks are plain module functions named by dotted path in the settings, exactly as a shop
would configure them; what they saw is kept in ``CALLS`` for the assertions.
"""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.dispatch import Signal
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from pinterest_capi import delivery, track
from pinterest_capi.consent import Consent
from pinterest_capi.middleware import PinterestRequestMiddleware
from pinterest_capi.models import AdAccount, EventStatus, OutboxEvent
from pinterest_capi.receivers import make_receiver

pytestmark = pytest.mark.django_db

EMAIL = "Jane.Buyer@Example.com"
EMAIL_HASH = hashlib.sha256(b"jane.buyer@example.com").hexdigest()
CA_HASH = hashlib.sha256(b"ca").hexdigest()
US_HASH = hashlib.sha256(b"us").hexdigest()
HOOKS = "tests.test_consent"
CALLS: list[dict] = []


# --- hooks, configured by dotted path ------------------------------------------------------


def allow(**kwargs):
    CALLS.append(kwargs)
    return True


def allow_none(**kwargs):
    CALLS.append(kwargs)
    return None


def deny(**kwargs):
    CALLS.append(kwargs)
    return False


def ldp(**kwargs):
    CALLS.append(kwargs)
    return Consent(allowed=True, limited_data_processing=True)


def ldp_denied(**kwargs):
    return Consent(allowed=False, limited_data_processing=True)


def broken(**kwargs):
    raise RuntimeError(f"hook bug while reading {EMAIL}")


def odd_answer(**kwargs):
    return "yes"


def broken_query(**kwargs):
    # A failing query inside the shop's transaction (PostgreSQL would abort it without
    # the savepoint track() puts around the hook).
    AdAccount.objects.raw("SELECT no_such_column FROM pinterest_capi_adaccount")[0]


def cookie_consent(*, request=None, user=None, event_name, tenant):
    """The README's example: consent from a cookie, LDP from another."""
    CALLS.append({"request": request, "user": user, "event_name": event_name, "tenant": tenant})
    if request is None or request.COOKIES.get("ads_consent") != "yes":
        return False
    if request.COOKIES.get("ccpa_ldp") == "1":
        return Consent(allowed=True, limited_data_processing=True)
    return True


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()
    yield
    CALLS.clear()


@pytest.fixture
def acct():
    acct = AdAccount(tenant="demo", ad_account_id="111")
    acct.set_token("pina_x")
    acct.save()
    return acct


@pytest.fixture
def consent_settings(settings):
    """Set CONSENT_HOOK (a function name in this module) and optionally CONSENT_DENIED."""

    def configure(hook: str | None, denied: str | None = None) -> None:
        extra = {"CONSENT_HOOK": f"{HOOKS}.{hook}" if hook else None}
        if denied is not None:
            extra["CONSENT_DENIED"] = denied
        settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, **extra}

    return configure


def checkout(**kwargs):
    kwargs.setdefault("user_data", {"em": EMAIL})
    return track(
        "checkout",
        tenant="demo",
        custom_data={"currency": "USD", "value": "12.50", "order_id": "1001"},
        event_id="checkout-1001",
        **kwargs,
    )


def stored(row: OutboxEvent) -> dict:
    return json.loads(row.payload)


# --- allowed / denied ----------------------------------------------------------------------


def test_without_a_hook_the_event_is_recorded(acct):
    rows = checkout()
    payload = stored(rows[0])
    assert payload["user_data"]["em"] == [EMAIL_HASH]
    assert "opt_out" not in payload and "opt_out_type" not in payload["custom_data"]


@pytest.mark.parametrize("hook", ["allow", "allow_none"])
def test_true_or_none_allows(acct, consent_settings, hook):
    consent_settings(hook)
    assert len(checkout()) == 1
    assert "opt_out" not in stored(OutboxEvent.objects.get())


def test_denied_with_skip_records_nothing_and_logs_without_pii(acct, consent_settings, caplog):
    consent_settings("deny")  # CONSENT_DENIED defaults to "skip"
    with caplog.at_level(logging.INFO, logger="pinterest_capi"):
        assert checkout() == []
    assert OutboxEvent.objects.count() == 0
    record = next(r for r in caplog.records if "consent not given" in r.getMessage())
    assert record.levelno == logging.INFO
    assert "'checkout'" in record.getMessage() and "'demo'" in record.getMessage()
    assert EMAIL not in caplog.text and EMAIL.lower() not in caplog.text


def test_denied_with_opt_out_records_the_event_opted_out(acct, consent_settings):
    consent_settings("deny", denied="opt_out")
    rows = checkout()
    payload = stored(rows[0])
    assert payload["opt_out"] is True
    assert payload["user_data"]["em"] == [EMAIL_HASH]
    assert rows[0].status == EventStatus.PENDING


def test_an_explicit_opt_out_is_kept_when_the_hook_allows(acct, consent_settings):
    consent_settings("allow")
    rows = checkout(opt_out=True)
    assert stored(rows[0])["opt_out"] is True


def test_denied_opt_out_overrides_an_explicit_opt_out_false(acct, consent_settings):
    consent_settings("deny", denied="opt_out")
    assert stored(checkout(opt_out=False)[0])["opt_out"] is True


def test_an_unknown_consent_denied_value_acts_as_skip(acct, consent_settings, caplog):
    consent_settings("deny", denied="opt-out")  # typo
    assert checkout() == []
    assert "CONSENT_DENIED" in caplog.text and "'skip'" in caplog.text


# --- limited data processing ---------------------------------------------------------------


def test_ldp_adds_opt_out_type_and_hashed_state_and_country(acct, consent_settings):
    consent_settings("ldp")
    payload = stored(checkout()[0])
    assert payload["custom_data"]["opt_out_type"] == "LDP"
    assert payload["user_data"]["st"] == [CA_HASH]
    assert payload["user_data"]["country"] == [US_HASH]
    assert "opt_out" not in payload  # LDP is not an opt-out
    assert payload["custom_data"]["order_id"] == "1001"  # the caller's custom_data is kept


def test_ldp_state_and_country_from_the_consent_win(acct, settings):
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "CONSENT_HOOK": lambda **kw: Consent(True, True, state="CA", country="US"),
    }
    payload = stored(checkout(user_data={"em": EMAIL, "st": "ny"})[0])
    assert payload["user_data"]["st"] == [CA_HASH]  # normalised (lowercased) before hashing
    assert payload["user_data"]["country"] == [US_HASH]


def test_ldp_keeps_the_callers_state_when_the_consent_gives_none(acct, consent_settings):
    consent_settings("ldp")
    payload = stored(checkout(user_data={"em": EMAIL, "st": "California"})[0])
    assert payload["user_data"]["st"] == [hashlib.sha256(b"california").hexdigest()]
    assert payload["user_data"]["country"] == [US_HASH]


def test_ldp_with_denied_opt_out_carries_both(acct, consent_settings):
    consent_settings("ldp_denied", denied="opt_out")
    payload = stored(checkout()[0])
    assert payload["opt_out"] is True and payload["custom_data"]["opt_out_type"] == "LDP"


# --- what the hook is told -----------------------------------------------------------------


def test_the_hook_receives_request_user_event_name_and_tenant(acct, consent_settings):
    consent_settings("allow")
    user = get_user_model().objects.create_user("jane", EMAIL, "pw")
    request = RequestFactory().get("/checkout/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="UA")
    request.user = user
    checkout(request=request)
    assert CALLS == [{"request": request, "user": user, "event_name": "checkout", "tenant": "demo"}]


def test_an_anonymous_request_gives_no_user(acct, consent_settings):
    from django.contrib.auth.models import AnonymousUser

    consent_settings("allow")
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="UA")
    request.user = AnonymousUser()
    checkout(request=request)
    assert CALLS[0]["user"] is None and CALLS[0]["request"] is request


def test_the_tenant_is_resolved_before_the_hook_is_asked(acct, consent_settings, settings):
    consent_settings("allow")
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "DEFAULT_TENANT": "demo"}
    track("lead", user_data={"em": EMAIL})
    assert CALLS[0]["tenant"] == "demo" and CALLS[0]["request"] is None


user_signed_up = Signal()


def test_signal_receivers_go_through_the_hook_with_the_user_as_obj(acct, consent_settings):
    """A signup signal carries the user: the hook gets it as ``user`` (no request here)."""
    consent_settings("deny")
    user = get_user_model().objects.create_user("sam", "sam@example.com", "pw")
    receiver = make_receiver("pinterest_capi.mappers.signup_from_user")
    user_signed_up.connect(receiver, weak=False)
    try:
        with transaction.atomic():
            user_signed_up.send(sender=None, user=user)
    finally:
        user_signed_up.disconnect(receiver)
    assert OutboxEvent.objects.count() == 0
    assert CALLS == [{"request": None, "user": user, "event_name": "signup", "tenant": "demo"}]


# --- failures fail closed ------------------------------------------------------------------


def test_a_raising_hook_means_not_allowed_logged_without_pii(acct, consent_settings, caplog):
    consent_settings("broken")
    assert checkout() == []  # fail closed: as if the hook had said no (CONSENT_DENIED "skip")
    assert OutboxEvent.objects.count() == 0
    assert "RuntimeError" in caplog.text and "fail closed" in caplog.text
    assert "tests/test_consent.py" in caplog.text  # where it broke, for the developer
    assert EMAIL not in caplog.text  # the exception's message is not logged


def test_a_raising_hook_with_denied_opt_out_records_the_event_opted_out(acct, consent_settings):
    consent_settings("broken", denied="opt_out")
    assert stored(checkout()[0])["opt_out"] is True


def test_a_hook_answering_something_else_means_not_allowed(acct, consent_settings, caplog):
    consent_settings("odd_answer")
    assert checkout() == []
    assert "returned a str" in caplog.text


def test_an_unimportable_hook_means_not_allowed(acct, settings, caplog):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "CONSENT_HOOK": "tests.nowhere.hook"}
    assert checkout() == []
    assert "ImproperlyConfigured" in caplog.text


def test_a_failing_query_in_the_hook_does_not_spoil_the_shops_transaction(acct, consent_settings):
    """On PostgreSQL a failed query aborts the whole transaction: the hook runs in a savepoint."""
    consent_settings("broken_query")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert checkout() == []
        assert any(q["sql"].startswith("ROLLBACK TO SAVEPOINT") for q in queries)
        AdAccount.objects.filter(pk=acct.pk).update(name="order still saved")
    assert AdAccount.objects.get(pk=acct.pk).name == "order still saved"


# --- through the middleware ----------------------------------------------------------------


def _view_recording_checkout(seen):
    def view(request):
        seen["rows"] = checkout(user_data={"em": EMAIL})
        return HttpResponse("ok")

    return view


@pytest.mark.parametrize(
    ("cookies", "expected"),
    [
        ({}, "none"),
        ({"ads_consent": "yes"}, "plain"),
        ({"ads_consent": "yes", "ccpa_ldp": "1"}, "ldp"),
    ],
)
def test_a_cookie_hook_through_the_middleware(acct, consent_settings, cookies, expected):
    consent_settings("cookie_consent")
    seen: dict = {}
    request = RequestFactory().get("/checkout/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="UA")
    request.COOKIES.update(cookies)
    PinterestRequestMiddleware(_view_recording_checkout(seen))(request)
    assert CALLS[0]["request"] is request  # from the middleware's context, not an argument
    if expected == "none":
        assert seen["rows"] == [] and OutboxEvent.objects.count() == 0
        return
    payload = stored(seen["rows"][0])
    assert payload["user_data"]["client_ip_address"] == "203.0.113.9"
    if expected == "ldp":
        assert payload["custom_data"]["opt_out_type"] == "LDP"
        assert payload["user_data"]["st"] == [CA_HASH]
    else:
        assert "opt_out_type" not in payload["custom_data"] and "st" not in payload["user_data"]


# --- end to end: Pinterest's stand-in accepts the opted-out event ---------------------------


def test_an_opted_out_ldp_event_is_accepted_by_the_sandbox(acct, settings):
    from pinterest_capi import client
    from pinterest_capi.sandbox import SandboxServer

    srv = SandboxServer(host="127.0.0.1", port=0, accounts={"111": "pina_x"})
    srv.start()
    try:
        settings.PINTEREST_CAPI = {
            **settings.PINTEREST_CAPI,
            "API_BASE_URL": srv.url,
            "CONSENT_HOOK": f"{HOOKS}.ldp_denied",
            "CONSENT_DENIED": "opt_out",
        }
        client.close_clients()
        request = RequestFactory().get("/done/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="UA")
        with transaction.atomic():
            checkout(request=request)
        summary = delivery.flush(until_empty=True)
        assert summary.sent == 1
        [entry] = srv.ledger.events(ad_account_id="111")
        assert entry["status"] == "processed"
        assert entry["event"]["event_id"] == "checkout-1001"
        assert entry["event"]["opt_out"] is True
        assert entry["event"]["custom_data"]["opt_out_type"] == "LDP"
        assert entry["event"]["user_data"]["st"] == [CA_HASH]
        assert entry["event"]["user_data"]["country"] == [US_HASH]
        assert OutboxEvent.objects.get().status == EventStatus.SENT
    finally:
        client.close_clients()
        srv.stop()
