"""Ad accounts in the admin: verify the connection against the real sandbox, pause and resume
sending (the worker's claim respects it), and the health columns of the list.

Every request goes through the real admin with Django's test client; every check talks HTTP to
the sandbox on loopback.  The superuser is pytest-django's ``admin_client``; tenant staff users
get exactly the permissions a test names.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from cryptography.fernet import Fernet
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.messages import get_messages
from django.test import Client

from pinterest_capi import delivery
from pinterest_capi.admin.accounts import MANUAL_PAUSE_UNTIL
from pinterest_capi.models import AdAccount, EventStatus, OutboxEvent
from pinterest_capi.permissions import tenant_group_name
from pinterest_capi.sandbox import api as sandbox_api
from pinterest_capi.verification import VERIFY_EVENT_PREFIX, verify_account
from tests.conftest import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN, make_outbox_events
from tests.test_admin import url

pytestmark = pytest.mark.django_db

VIEW_CHANGE = ("view_adaccount", "change_adaccount", "view_outboxevent")


def expected_tag_id(ad_account_id: str) -> str:
    """The Tag id the sandbox answers for an account (read from its own reply)."""
    return json.loads(sandbox_api._tags(ad_account_id).body)["items"][0]["id"]


def staff(username: str, tenant: str, *codenames: str) -> Client:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="pinterest_capi", codename__in=codenames)
    )
    user.groups.add(Group.objects.get_or_create(name=tenant_group_name(tenant))[0])
    client = Client()
    client.force_login(user)
    return client


def verify(client: Client, account: AdAccount):
    return client.post(url("adaccount_verify", account.pk), follow=True)


def said(response) -> list[tuple[str, str]]:
    """(level tag, text) of the messages the last page showed."""
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


# --- verify connection ------------------------------------------------------------------------


def test_verify_ok_shows_the_tag_id_and_clears_the_auth_error(admin_client, account, sandbox):
    AdAccount.objects.filter(pk=account.pk).update(auth_error="old 401", last_success_at=None)
    response = verify(admin_client, account)
    tag_id = expected_tag_id(SANDBOX_ACCOUNT_ID)
    [(level, text)] = said(response)
    assert level == "success"
    assert (
        f"OK — Pinterest Tag id {tag_id} (Sandbox tag): paste it in your page's Pinterest Tag "
        "base code" in text
    )
    assert tag_id in response.content.decode()
    account.refresh_from_db()
    assert account.auth_error == "" and account.auth_error_at is None
    assert account.last_success_at is not None
    assert account.tag_id == tag_id  # the one Tag listed, saved for {% pinterest_tag_base %}
    assert f"Saved as this account's Tag id ({tag_id})" in text
    assert LogEntry.objects.filter(object_id=str(account.pk), change_message__contains="OK")


def test_the_test_event_reaches_the_sandbox_as_test_and_not_the_outbox(account, sandbox):
    result = verify_account(account)
    assert result.ok and result.tag_ids == (expected_tag_id(SANDBOX_ACCOUNT_ID),)
    assert [(r["method"], r["test"]) for r in sandbox.ledger.requests()] == [
        ("GET", False),
        ("POST", True),
    ]
    [entry] = sandbox.ledger.events()
    assert entry["test"] is True and entry["status"] == "processed"
    assert entry["event"]["event_id"].startswith(VERIFY_EVENT_PREFIX)
    assert abs(entry["event"]["event_time"] - sandbox.clock()) < 60
    assert not OutboxEvent.objects.exists()


def test_wrong_token_says_401_and_flags_the_account(admin_client, account, sandbox, caplog):
    account.set_token("pina_WRONG_token_0000")
    account.save()
    with caplog.at_level(logging.DEBUG):
        response = verify(admin_client, account)
    [(level, text)] = said(response)
    assert level == "error"
    assert "Token rejected by Pinterest (401): " in text
    account.refresh_from_db()
    assert "(401)" in account.auth_error and account.auth_error_at is not None
    assert not sandbox.ledger.events()  # stopped at the Tags request, no event posted
    for secret in ("pina_WRONG_token_0000", SANDBOX_TOKEN):
        assert secret not in response.content.decode() and secret not in caplog.text


def test_account_unknown_to_pinterest_says_404(admin_client, account, sandbox):
    unknown = AdAccount(tenant="demo", ad_account_id="123456789", name="Nobody knows")
    unknown.set_token(SANDBOX_TOKEN)
    unknown.save()
    [(level, text)] = said(verify(admin_client, unknown))
    assert level == "error" and "Ad account not found (404)" in text
    assert "(404)" in AdAccount.objects.get(pk=unknown.pk).auth_error


def test_token_of_another_account_says_403(admin_client, account, second_account):
    mixed = AdAccount(tenant="demo", ad_account_id=second_account.ad_account_id, name="Mixed")
    mixed.set_token(SANDBOX_TOKEN)  # a valid token, but of the first account
    mixed.save()
    [(level, text)] = said(verify(admin_client, mixed))
    assert level == "error"
    assert f"This token has no access to ad account {second_account.ad_account_id} (403)" in text
    assert "(403)" in AdAccount.objects.get(pk=mixed.pk).auth_error


def test_stopped_sandbox_says_could_not_reach_and_changes_nothing(admin_client, account, sandbox):
    sandbox.stop()  # capi_settings still points at its (now closed) port
    [(level, text)] = said(verify(admin_client, account))
    assert level == "error" and text.startswith(f"{account}: Could not reach Pinterest: ")
    account.refresh_from_db()
    assert account.auth_error == "" and account.last_success_at is None


def test_undecryptable_token_is_said_without_a_request(admin_client, account, sandbox, settings):
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
    }
    [(level, text)] = said(verify(admin_client, account))
    assert level == "error"
    assert "Token cannot be decrypted with the configured keys" in text
    assert sandbox.ledger.requests() == []
    assert "decrypted" in AdAccount.objects.get(pk=account.pk).auth_error  # as the worker does


def test_rejected_test_event_is_a_warning(admin_client, account, sandbox):
    from pinterest_capi.sandbox.faults import Fault

    sandbox.faults.add(Fault(event_status={0: "failed"}, message="event_time is too old"))
    [(level, text)] = said(verify(admin_client, account))
    assert level == "warning"
    assert "The token works, but Pinterest rejected the test event: event_time is too old" in text
    assert AdAccount.objects.get(pk=account.pk).last_success_at is None


def test_verify_action_checks_each_selected_account(admin_client, account, second_account):
    response = admin_client.post(
        url("adaccount_changelist"),
        {"action": "verify_connection", "_selected_action": [account.pk, second_account.pk]},
        follow=True,
    )
    messages = said(response)
    assert [level for level, _ in messages] == ["success", "success"]
    assert expected_tag_id(second_account.ad_account_id) in messages[1][1]
    assert not OutboxEvent.objects.exists()


# --- who may verify ---------------------------------------------------------------------------


def test_without_the_verify_permission_nothing_is_offered_and_the_url_refuses(account, sandbox):
    client = staff("ann", "demo", *VIEW_CHANGE)
    page = client.get(url("adaccount_change", account.pk)).content.decode()
    assert url("adaccount_verify", account.pk) not in page
    listing = client.get(url("adaccount_changelist")).content.decode()
    assert 'value="verify_connection"' not in listing
    assert client.post(url("adaccount_verify", account.pk)).status_code == 403
    response = client.post(
        url("adaccount_changelist"),
        {"action": "verify_connection", "_selected_action": [account.pk]},
    )
    assert response.status_code in (200, 302)
    assert sandbox.ledger.requests() == []


def test_verify_permission_needs_view_permission_too(account, sandbox):
    client = staff("bob", "demo", "verify_adaccount")
    assert client.post(url("adaccount_verify", account.pk)).status_code == 403
    assert sandbox.ledger.requests() == []


def test_tenant_staff_with_the_permission_verifies_only_own_accounts(
    account, second_account, sandbox
):
    client = staff("cat", "demo", *VIEW_CHANGE, "verify_adaccount")
    page = client.get(url("adaccount_change", account.pk)).content.decode()
    assert url("adaccount_verify", account.pk) in page
    assert 'value="verify_connection"' in client.get(url("adaccount_changelist")).content.decode()

    response = client.post(url("adaccount_verify", second_account.pk), follow=True)
    assert "doesn’t exist" in response.content.decode()
    response = client.post(
        url("adaccount_changelist"),
        {"action": "verify_connection", "_selected_action": [account.pk, second_account.pk]},
        follow=True,
    )
    [(level, text)] = said(response)
    assert level == "success" and text.startswith(f"{account}: OK")
    assert {r["ad_account_id"] for r in sandbox.ledger.requests()} == {SANDBOX_ACCOUNT_ID}


def test_verify_url_is_post_only(admin_client, account, sandbox):
    assert admin_client.get(url("adaccount_verify", account.pk)).status_code == 405
    assert sandbox.ledger.requests() == []


# --- pause and resume -------------------------------------------------------------------------


def test_pause_holds_only_that_account_and_resume_lets_it_go(
    admin_client, account, second_account, sandbox
):
    make_outbox_events(account, 3)
    make_outbox_events(second_account, 2, start=100)
    page = admin_client.get(url("adaccount_change", account.pk)).content.decode()
    assert url("adaccount_pause", account.pk) in page
    assert url("adaccount_resume", account.pk) not in page

    response = admin_client.post(url("adaccount_pause", account.pk), follow=True)
    assert said(response)[0][0] == "success"
    account.refresh_from_db()
    assert account.paused_until == MANUAL_PAUSE_UNTIL and account.pause_reason == "Paused by admin"
    assert "paused until resumed: Paused by admin" in response.content.decode()
    assert "still recorded" in response.content.decode()  # the page says what pause does

    delivery.flush(until_empty=True)
    assert {e["ad_account_id"] for e in sandbox.ledger.events()} == {"549755885176"}
    assert set(OutboxEvent.objects.filter(account=account).values_list("status", flat=True)) == {
        EventStatus.PENDING
    }

    page = admin_client.get(url("adaccount_change", account.pk)).content.decode()
    assert url("adaccount_resume", account.pk) in page
    assert url("adaccount_pause", account.pk) not in page
    admin_client.post(url("adaccount_resume", account.pk))
    account.refresh_from_db()
    assert account.paused_until is None and account.pause_reason == ""
    delivery.flush(until_empty=True)
    assert len(sandbox.ledger.event_ids(SANDBOX_ACCOUNT_ID, test=False)) == 3
    assert not OutboxEvent.objects.exclude(status=EventStatus.SENT).exists()


def test_pause_action_keeps_recording_and_says_so(admin_client, account):
    response = admin_client.post(
        url("adaccount_changelist"),
        {"action": "pause_sending", "_selected_action": [account.pk]},
        follow=True,
    )
    [(level, text)] = said(response)
    assert level == "success" and "recorded and wait until resumed" in text
    assert AdAccount.objects.get(pk=account.pk).active  # still recording
    response = admin_client.post(
        url("adaccount_changelist"),
        {"action": "pause_sending", "_selected_action": [account.pk]},
        follow=True,
    )
    assert said(response) == [("info", "The selected accounts were already paused.")]
    admin_client.post(
        url("adaccount_changelist"), {"action": "clear_pause", "_selected_action": [account.pk]}
    )
    assert AdAccount.objects.get(pk=account.pk).paused_until is None


def test_pause_and_resume_need_change_permission(account):
    client = staff("dan", "demo", "view_adaccount")
    response = client.get(url("adaccount_change", account.pk))
    assert response.status_code == 200  # view only: read-only page, no token field
    page = response.content.decode()
    assert 'name="access_token"' not in page and "…9f3c" in page
    assert url("adaccount_pause", account.pk) not in page
    assert 'value="pause_sending"' not in client.get(url("adaccount_changelist")).content.decode()
    assert client.post(url("adaccount_pause", account.pk)).status_code == 403
    assert client.post(url("adaccount_resume", account.pk)).status_code == 403
    assert AdAccount.objects.get(pk=account.pk).paused_until is None


def test_tenant_staff_cannot_pause_another_tenants_account(account, second_account):
    client = staff("eve", "demo", *VIEW_CHANGE)
    client.post(url("adaccount_pause", second_account.pk))
    client.post(
        url("adaccount_changelist"),
        {"action": "pause_sending", "_selected_action": [account.pk, second_account.pk]},
    )
    assert AdAccount.objects.get(pk=second_account.pk).paused_until is None
    assert AdAccount.objects.get(pk=account.pk).pause_reason == "Paused by eve"


# --- health on the list -----------------------------------------------------------------------


def add_accounts(n: int, start: int) -> list[AdAccount]:
    accounts = []
    for i in range(start, start + n):
        acct = AdAccount(tenant="demo", ad_account_id=str(700000 + i), name=f"Shop {i}")
        acct.set_token(SANDBOX_TOKEN)
        acct.save()
        events = make_outbox_events(acct, 3, start=i * 10)
        OutboxEvent.objects.filter(pk=events[0].pk).update(status=EventStatus.FAILED)
        accounts.append(acct)
    return accounts


def test_list_shows_counts_links_and_pause(admin_client, account):
    make_outbox_events(account, 5)
    first_two = list(OutboxEvent.objects.order_by("pk").values_list("pk", flat=True)[:2])
    OutboxEvent.objects.filter(pk__in=first_two).update(status=EventStatus.FAILED)
    AdAccount.objects.filter(pk=account.pk).update(
        paused_until=MANUAL_PAUSE_UNTIL, pause_reason="Paused by zoe", last_error="boom"
    )
    html = admin_client.get(url("adaccount_changelist")).content.decode()
    events = url("outboxevent_changelist")
    assert f'{events}?account__id__exact={account.pk}&amp;status__exact=pending">3</a>' in html
    assert f'{events}?account__id__exact={account.pk}&amp;status__exact=failed">2</a>' in html
    assert "until resumed: Paused by zoe" in html
    linked = admin_client.get(f"{events}?account__id__exact={account.pk}&status__exact=failed")
    assert re.findall(r'name="_selected_action" value="(\d+)"', linked.content.decode()) == [
        str(pk) for pk in sorted(first_two, reverse=True)
    ]


def test_list_sorts_by_failed_count(admin_client, account):
    make_outbox_events(account, 4)
    OutboxEvent.objects.filter(account=account).update(status=EventStatus.FAILED)
    add_accounts(2, 1)  # one failed event each
    response = admin_client.get(
        url("adaccount_changelist") + "?o=-11"
    )  # failed (0 is the checkbox)
    ids = re.findall(r'name="_selected_action" value="(\d+)"', response.content.decode())
    assert ids[0] == str(account.pk)


@pytest.mark.parametrize("who", ["superuser", "tenant staff"])
def test_list_queries_do_not_grow_with_accounts(
    admin_client, account, second_account, who, django_assert_max_num_queries
):
    client = admin_client if who == "superuser" else staff("fay", "demo", *VIEW_CHANGE)
    add_accounts(2, 1)
    with django_assert_max_num_queries(12) as few:
        client.get(url("adaccount_changelist"))
    add_accounts(15, 10)
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = client.get(url("adaccount_changelist")).content.decode()
    assert html.count("status__exact=failed") == (18 if who == "tenant staff" else 19)


def test_delete_selected_still_works_on_the_health_list(admin_client, account):
    make_outbox_events(account, 2)
    admin_client.post(
        url("adaccount_changelist"),
        {"action": "delete_selected", "_selected_action": [account.pk], "post": "yes"},
    )
    assert not AdAccount.objects.exists() and not OutboxEvent.objects.exists()
