"""The admin operators use: accounts with a write-only token, read-only events and attempts,
and the resend action/button going through outbox.requeue with its own permission."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse
from django.utils import timezone

from pinterest_capi.models import (
    AdAccount,
    AttemptEvent,
    AttemptOutcome,
    DeliveryAttempt,
    EventStatus,
    OutboxEvent,
)
from pinterest_capi.outbox import encode_payload
from pinterest_capi.permissions import tenant_group_name

TOKEN = "pina_SECRET_TOKEN_1234"
NEW_TOKEN = "pina_OTHER_SECRET_TOKEN_9876"
HASHED_EMAIL = "a" * 64

pytestmark = pytest.mark.django_db


def url(name: str, *args: object) -> str:
    return reverse(f"admin:pinterest_capi_{name}", args=args)


def make_account(tenant: str = "shop1", ad_account_id: str = "549755885175", **kw) -> AdAccount:
    acct = AdAccount(tenant=tenant, ad_account_id=ad_account_id, **kw)
    acct.set_token(TOKEN)
    acct.save()
    return acct


def make_event(account: AdAccount, n: int, status: str = EventStatus.PENDING, **kw) -> OutboxEvent:
    event = {
        "event_name": kw.pop("event_name", "checkout"),
        "action_source": "web",
        "event_time": 1_700_000_000 + n,
        "event_id": f"checkout-T{n}",
        "user_data": {"em": [HASHED_EMAIL]},
        "custom_data": {"currency": "GBP", "value": "10.00", "order_id": f"T{n}"},
    }
    event.update(kw.pop("extra", {}))
    return OutboxEvent.objects.create(
        account=account,
        event_id=event["event_id"],
        event_name=event["event_name"],
        event_time=event["event_time"],
        order_id=f"T{n}",
        payload=encode_payload(event),
        status=status,
        **kw,
    )


def make_attempt(account: AdAccount, events: list[OutboxEvent], **kw) -> DeliveryAttempt:
    attempt = DeliveryAttempt.objects.create(
        account=account,
        started_at=timezone.now(),
        outcome=kw.pop("outcome", AttemptOutcome.PARTIAL),
        http_status=kw.pop("http_status", 200),
        num_events=len(events),
        num_processed=len(events) - 1,
        num_failed=1,
        duration_ms=42,
        response_excerpt=kw.pop(
            "response_excerpt", '{"num_events_received": 2, "events": [{"status": "failed"}]}'
        ),
        **kw,
    )
    for event in events:
        AttemptEvent.objects.create(
            attempt=attempt, event=event, result="failed", message="Invalid event_timestamp"
        )
    return attempt


def staff_user(*perms: str, tenant: str | None = "shop1") -> User:
    """A non-superuser staff user; since tenant isolation it needs a tenant group to see rows."""
    user = User.objects.create_user("operator", password="pw", is_staff=True)
    if tenant is not None:
        user.groups.add(Group.objects.get_or_create(name=tenant_group_name(tenant))[0])
    for codename in perms:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="pinterest_capi", codename=codename)
        )
    return User.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def account() -> AdAccount:
    return make_account(name="Main shop")


@pytest.fixture
def events(account: AdAccount) -> list[OutboxEvent]:
    """Five events: three failed, one sent, one pending."""
    return [
        make_event(
            account, 1, EventStatus.FAILED, last_error="Invalid event_timestamp", attempts=8
        ),
        make_event(account, 2, EventStatus.FAILED, last_error="server error", attempts=8),
        make_event(account, 3, EventStatus.FAILED, attempts=8),
        make_event(account, 4, EventStatus.SENT, warning="missing client_user_agent"),
        make_event(account, 5, EventStatus.PENDING),
    ]


def assert_no_token(html: str) -> None:
    assert TOKEN not in html
    assert NEW_TOKEN not in html
    assert "SECRET" not in html
    assert "gAAAA" not in html  # Fernet ciphertext prefix


# --- every page renders -----------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?q=shop1",
        "?q=549755885175",
        "?tenant=shop1",
        "?active__exact=1",
        "?test_mode__exact=0",
    ],
)
def test_account_changelist_renders(admin_client, account, query):
    response = admin_client.get(url("adaccount_changelist") + query)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Main shop" in html
    assert "…1234" in html
    assert_no_token(html)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?status__exact=failed",
        "?event_name=checkout",
        "?event_name=my_custom_event",
        "?account__id__exact={pk}",
        "?created_at__gte=2000-01-01+00:00:00%2B00:00",
        "?q=checkout-T1",
        "?q=T2",
        "?o=5",
    ],
)
def test_event_changelist_renders(admin_client, events, query):
    query = query.format(pk=events[0].account_id)
    response = admin_client.get(url("outboxevent_changelist") + query)
    assert response.status_code == 200, response.content[:500]
    assert_no_token(response.content.decode())


def test_event_status_filter_selects_exactly_the_rows_of_that_status(admin_client, events):
    """The filter adds the queue join or the derived failed column for the index: same rows."""
    in_flight = make_event(events[0].account, 6, EventStatus.IN_FLIGHT, lease_owner="w1")
    expected = {
        EventStatus.FAILED: {e.pk for e in events[:3]},
        EventStatus.SENT: {events[3].pk},
        EventStatus.PENDING: {events[4].pk},
        EventStatus.IN_FLIGHT: {in_flight.pk},
    }
    for status, pks in expected.items():
        response = admin_client.get(url("outboxevent_changelist") + f"?status__exact={status}")
        assert response.status_code == 200
        shown = {obj.pk for obj in response.context["cl"].result_list}
        assert shown == pks, status


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?outcome__exact=partial",
        "?account__id__exact={pk}",
        "?started_at__gte=2000-01-01+00:00:00%2B00:00",
    ],
)
def test_attempt_changelist_renders(admin_client, events, query):
    attempt = make_attempt(events[0].account, events[:2])
    response = admin_client.get(
        url("deliveryattempt_changelist") + query.format(pk=attempt.account_id)
    )
    assert response.status_code == 200
    assert_no_token(response.content.decode())


def test_change_views_render(admin_client, events):
    account = events[0].account
    attempt = make_attempt(account, events[:2])
    for page in (
        url("adaccount_change", account.pk),
        url("outboxevent_change", events[0].pk),
        url("outboxevent_change", events[3].pk),
        url("deliveryattempt_change", attempt.pk),
        url("adaccount_add"),
        url("adaccount_history", account.pk),
    ):
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert_no_token(response.content.decode())


def test_event_search_matches_event_id_prefix_and_exact_order_id(admin_client, events):
    response = admin_client.get(url("outboxevent_changelist") + "?q=checkout-T1")
    assert [e.pk for e in response.context["cl"].result_list] == [events[0].pk]
    response = admin_client.get(url("outboxevent_changelist") + "?q=T4")
    assert [e.pk for e in response.context["cl"].result_list] == [events[3].pk]
    response = admin_client.get(url("outboxevent_changelist") + "?q=checkout-")
    assert len(response.context["cl"].result_list) == 5
    response = admin_client.get(url("outboxevent_changelist") + "?status__exact=failed")
    assert {e.pk for e in response.context["cl"].result_list} == {e.pk for e in events[:3]}


def test_event_changelist_shows_status_and_short_problem(admin_client, events):
    html = admin_client.get(url("outboxevent_changelist")).content.decode()
    assert 'class="pcapi-badge pcapi-status-failed"' in html
    assert "Invalid event_timestamp" in html
    assert "warning: missing client_user_agent" in html


# --- the account form: write-only token --------------------------------------------------


def account_post(**overrides) -> dict:
    data = {
        "tenant": "shop2",
        "name": "Second shop",
        "ad_account_id": "123456789012",
        "access_token": TOKEN,
        "active": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_add_account_stores_token_encrypted_and_never_shows_it(admin_client):
    response = admin_client.post(url("adaccount_add"), account_post())
    assert response.status_code == 302, response.content.decode()[:2000]
    acct = AdAccount.objects.get(tenant="shop2")
    assert acct.get_token() == TOKEN
    assert TOKEN not in acct.token_ciphertext
    assert acct.token_last4 == "1234"

    for page in (url("adaccount_change", acct.pk), url("adaccount_changelist")):
        html = admin_client.get(page).content.decode()
        assert_no_token(html)
        assert acct.token_ciphertext not in html
        assert "…1234" in html
    change_html = admin_client.get(url("adaccount_change", acct.pk)).content.decode()
    assert 'type="password"' in change_html
    assert "token_ciphertext" not in change_html
    history = admin_client.get(url("adaccount_history", acct.pk)).content.decode()
    assert_no_token(history)


def test_add_account_requires_a_token(admin_client):
    response = admin_client.post(url("adaccount_add"), account_post(access_token=""))
    assert response.status_code == 200
    assert "access_token" in response.context["adminform"].form.errors
    assert not AdAccount.objects.filter(tenant="shop2").exists()


def test_token_not_echoed_after_a_validation_error(admin_client):
    response = admin_client.post(url("adaccount_add"), account_post(ad_account_id="abc"))
    assert response.status_code == 200
    assert_no_token(response.content.decode())


def test_token_with_spaces_is_refused_without_echoing_it(admin_client):
    response = admin_client.post(url("adaccount_add"), account_post(access_token="pina_SECRET x"))
    assert response.status_code == 200
    assert "access_token" in response.context["adminform"].form.errors
    assert "SECRET" not in response.content.decode()


@pytest.mark.parametrize("bad", ["abc", "12345678901234567890", "123-456", "12 34"])
def test_invalid_ad_account_id_names_the_field(admin_client, bad):
    response = admin_client.post(url("adaccount_add"), account_post(ad_account_id=bad))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["ad_account_id"]
    assert "digits only, at most 18" in errors["ad_account_id"][0]
    assert "digits only, at most 18" in response.content.decode()


def test_duplicate_account_for_tenant_is_refused(admin_client, account):
    response = admin_client.post(
        url("adaccount_add"), account_post(tenant="shop1", ad_account_id="549755885175")
    )
    assert response.status_code == 200
    assert AdAccount.objects.filter(tenant="shop1").count() == 1


def test_blank_token_on_change_keeps_the_token(admin_client, account):
    before = account.token_ciphertext
    response = admin_client.post(
        url("adaccount_change", account.pk),
        account_post(tenant="shop1", ad_account_id="549755885175", name="Renamed", access_token=""),
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Renamed"
    assert account.token_ciphertext == before
    assert account.get_token() == TOKEN


def test_new_token_replaces_it_and_clears_auth_error(admin_client, account):
    account.auth_error = "401: Authentication failed"
    account.auth_error_at = timezone.now()
    account.save()
    html = admin_client.get(url("adaccount_changelist")).content.decode()
    assert "token refused: 401: Authentication failed" in html

    response = admin_client.post(
        url("adaccount_change", account.pk),
        account_post(tenant="shop1", ad_account_id="549755885175", access_token=NEW_TOKEN),
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.get_token() == NEW_TOKEN
    assert account.token_last4 == "9876"
    assert account.auth_error == ""
    assert account.auth_error_at is None
    assert_no_token(admin_client.get(url("adaccount_change", account.pk)).content.decode())


def test_account_status_words(admin_client, account):
    html = admin_client.get(url("adaccount_changelist")).content.decode()
    assert 'pcapi-account-ok">OK<' in html
    account.paused_until = timezone.now() + timedelta(minutes=5)
    account.pause_reason = "rate limited (429)"
    account.save()
    html = admin_client.get(url("adaccount_changelist")).content.decode()
    assert "paused until" in html
    assert "rate limited (429)" in html


def test_clear_pause_action(admin_client, account):
    account.paused_until = timezone.now() + timedelta(minutes=5)
    account.pause_reason = "rate limited"
    account.save()
    response = admin_client.post(
        url("adaccount_changelist"),
        {"action": "clear_pause", "_selected_action": [account.pk]},
        follow=True,
    )
    assert response.status_code == 200
    account.refresh_from_db()
    assert account.paused_until is None
    assert account.pause_reason == ""
    assert "Pause cleared on 1 account" in response.content.decode()


# --- read-only events and attempts --------------------------------------------------------


def test_event_admin_is_read_only(admin_client, events):
    event = events[0]
    assert admin_client.get(
        reverse("admin:pinterest_capi_outboxevent_changelist") + "add/"
    ).status_code in (302, 403, 404)
    response = admin_client.post(url("outboxevent_change", event.pk), {"status": "sent"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    html = admin_client.get(url("outboxevent_change", event.pk)).content.decode()
    assert 'name="status"' not in html
    assert 'name="payload"' not in html


def test_event_page_pretty_prints_and_escapes_payload(admin_client, account):
    event = make_event(
        account,
        7,
        EventStatus.FAILED,
        extra={"custom_data": {"content_name": "<script>alert(1)</script>", "value": "1"}},
        last_error="Invalid <b>timestamp</b>",
        warning="Pinterest says <i>hi</i>",
    )
    html = admin_client.get(url("outboxevent_change", event.pk)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    pretty = json.dumps(json.loads(event.payload), indent=2, ensure_ascii=False)
    first_lines = pretty.splitlines()[:3]
    assert first_lines[1].replace('"', "&quot;") in html
    assert '<pre class="pcapi-pre">' in html
    assert HASHED_EMAIL in html
    assert "Invalid &lt;b&gt;timestamp&lt;/b&gt;" in html
    assert "Pinterest says &lt;i&gt;hi&lt;/i&gt;" in html


def test_event_page_lists_its_attempts(admin_client, events):
    attempt = make_attempt(events[0].account, events[:2], http_status=200)
    html = admin_client.get(url("outboxevent_change", events[0].pk)).content.decode()
    assert url("deliveryattempt_change", attempt.pk) in html
    assert "Invalid event_timestamp" in html
    assert "some events failed" in html
    assert 'name="results-0-result"' not in html  # shown, not editable
    assert 'name="results-0-DELETE"' not in html


def test_attempt_page_links_to_its_events_and_the_link_filters(admin_client, events):
    account = events[0].account
    attempt = make_attempt(account, events[:2], response_excerpt='{"message": "<oops>"}')
    other = make_attempt(account, events[2:4])
    html = admin_client.get(url("deliveryattempt_change", attempt.pk)).content.decode()
    link = url("outboxevent_changelist") + f"?delivery_attempts__id__exact={attempt.pk}"
    assert link in html
    assert '<pre class="pcapi-pre">{&quot;message&quot;: &quot;&lt;oops&gt;&quot;}</pre>' in html

    response = admin_client.get(link)
    assert response.status_code == 200
    assert {e.pk for e in response.context["cl"].result_list} == {events[0].pk, events[1].pk}
    assert f"attempt #{attempt.pk}" in response.content.decode()
    response = admin_client.get(
        url("outboxevent_changelist") + f"?delivery_attempts__id__exact={other.pk}"
    )
    assert {e.pk for e in response.context["cl"].result_list} == {events[2].pk, events[3].pk}
    response = admin_client.get(url("outboxevent_changelist") + "?delivery_attempts__id__exact=x")
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_attempt_admin_is_read_only(admin_client, events):
    attempt = make_attempt(events[0].account, events[:1])
    response = admin_client.post(url("deliveryattempt_change", attempt.pk), {"outcome": "success"})
    assert response.status_code == 403
    assert admin_client.get(url("deliveryattempt_changelist") + "add/").status_code != 200


def test_delete_is_for_superusers_only(client, events):
    client.force_login(staff_user("view_outboxevent", "delete_outboxevent"))
    response = client.get(url("outboxevent_delete", events[0].pk))
    assert response.status_code == 403


# --- resend -------------------------------------------------------------------------------


def test_resend_action_requeues_only_failed_and_reports_counts(client, events):
    client.force_login(staff_user("view_outboxevent", "resend_outboxevent"))
    response = client.post(
        url("outboxevent_changelist"),
        {"action": "resend_failed", "_selected_action": [e.pk for e in events]},
        follow=True,
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert (
        "3 failed events requeued; 2 selected events were not failed and were left as they are."
        in text
    )
    statuses = {e.pk: OutboxEvent.objects.get(pk=e.pk) for e in events}
    for e in events[:3]:
        row = statuses[e.pk]
        assert row.status == EventStatus.PENDING
        assert row.attempts == 0
        assert row.event_id == e.event_id  # the dedup key never changes
    assert statuses[events[3].pk].status == EventStatus.SENT
    assert statuses[events[4].pk].status == EventStatus.PENDING


def test_resend_action_with_nothing_failed_says_so(admin_client, events):
    response = admin_client.post(
        url("outboxevent_changelist"),
        {"action": "resend_failed", "_selected_action": [events[3].pk]},
        follow=True,
    )
    assert "not failed; nothing was requeued" in response.content.decode()
    assert OutboxEvent.objects.get(pk=events[3].pk).status == EventStatus.SENT


def test_resend_action_not_offered_without_permission(client, events):
    client.force_login(staff_user("view_outboxevent"))
    response = client.get(url("outboxevent_changelist"))
    assert response.status_code == 200
    assert "resend_failed" not in response.content.decode()
    response = client.post(
        url("outboxevent_changelist"),
        {"action": "resend_failed", "_selected_action": [events[0].pk]},
    )
    assert OutboxEvent.objects.get(pk=events[0].pk).status == EventStatus.FAILED


def test_resend_action_offered_with_permission(client, events):
    client.force_login(staff_user("view_outboxevent", "resend_outboxevent"))
    html = client.get(url("outboxevent_changelist")).content.decode()
    assert "Resend selected failed events" in html


def test_resend_button_posts_and_requeues(client, events):
    client.force_login(staff_user("view_outboxevent", "resend_outboxevent"))
    event = events[0]
    resend = url("outboxevent_resend", event.pk)
    html = client.get(url("outboxevent_change", event.pk)).content.decode()
    assert f'action="{resend}"' in html
    assert "csrfmiddlewaretoken" in html

    assert client.get(resend).status_code == 405
    assert OutboxEvent.objects.get(pk=event.pk).status == EventStatus.FAILED

    response = client.post(resend, follow=True)
    assert response.redirect_chain[-1][0] == url("outboxevent_change", event.pk)
    assert "requeued" in response.content.decode()
    assert OutboxEvent.objects.get(pk=event.pk).status == EventStatus.PENDING
    # Not failed any more: no button, and a second POST leaves it alone.
    html = client.get(url("outboxevent_change", event.pk)).content.decode()
    assert f'action="{resend}"' not in html
    response = client.post(resend, follow=True)
    assert "not failed" in response.content.decode()


def test_resend_button_needs_csrf(events):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(User.objects.create_superuser("root", password="pw"))
    response = csrf_client.post(url("outboxevent_resend", events[0].pk))
    assert response.status_code == 403
    assert OutboxEvent.objects.get(pk=events[0].pk).status == EventStatus.FAILED


def test_resend_button_refused_without_permission(client, events):
    client.force_login(staff_user("view_outboxevent"))
    event = events[0]
    html = client.get(url("outboxevent_change", event.pk)).content.decode()
    assert url("outboxevent_resend", event.pk) not in html
    assert client.post(url("outboxevent_resend", event.pk)).status_code == 403
    assert OutboxEvent.objects.get(pk=event.pk).status == EventStatus.FAILED


def test_resend_button_hidden_on_sent_event(admin_client, events):
    html = admin_client.get(url("outboxevent_change", events[3].pk)).content.decode()
    assert url("outboxevent_resend", events[3].pk) not in html


def test_resend_of_missing_event_redirects(admin_client):
    response = admin_client.post(url("outboxevent_resend", 999999))
    assert response.status_code == 302


def test_view_only_staff_sees_event_history_inline(client, events):
    make_attempt(events[0].account, events[:1])
    client.force_login(staff_user("view_outboxevent"))
    html = client.get(url("outboxevent_change", events[0].pk)).content.decode()
    assert "delivery history" in html.lower()


def test_event_changelist_query_count_does_not_grow_with_rows(
    admin_client, account, django_assert_max_num_queries
):
    other = make_account(tenant="shop9", ad_account_id="42")
    for n in range(40):
        make_event(account if n % 2 else other, 100 + n, EventStatus.FAILED, last_error="x")
    with django_assert_max_num_queries(12):
        response = admin_client.get(url("outboxevent_changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 40


def test_resend_button_needs_view_permission_too(client, events):
    client.force_login(staff_user("resend_outboxevent"))
    assert client.post(url("outboxevent_resend", events[0].pk)).status_code == 403
    assert OutboxEvent.objects.get(pk=events[0].pk).status == EventStatus.FAILED
