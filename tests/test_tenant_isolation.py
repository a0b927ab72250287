"""Reliability row F17 in the admin: staff of tenant A cannot see, change, delete or resend
tenant B's ad accounts, outbox events or delivery attempts; superusers see all.

Two tenants, each with an account, a pending, a failed and a sent event and one attempt; two
staff users with the same permissions and one tenant group each; a superuser.  Every request
goes through the real admin with Django's test client.
"""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from pinterest_capi.models import AdAccount, DeliveryAttempt, EventStatus, OutboxEvent
from pinterest_capi.permissions import tenant_group_name, user_tenants
from tests.test_admin import make_account, make_attempt, make_event, url

pytestmark = pytest.mark.django_db

PERMS = (
    "view_adaccount",
    "change_adaccount",
    "add_adaccount",
    "delete_adaccount",
    "view_outboxevent",
    "resend_outboxevent",
    "view_deliveryattempt",
)
MISSING = "doesn’t exist"  # Django's words for a missing object (typographic apostrophe)


def make_staff(username: str, *tenants: str) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="pinterest_capi", codename__in=PERMS)
    )
    for tenant in tenants:
        user.groups.add(Group.objects.get_or_create(name=tenant_group_name(tenant))[0])
    return user


def tenant_rows(tenant: str, ad_account_id: str, letter: str, base: int) -> SimpleNamespace:
    account = make_account(tenant, ad_account_id, name=f"Shop {letter} main")
    pending = make_event(account, base + 1, EventStatus.PENDING)
    failed = make_event(account, base + 2, EventStatus.FAILED, last_error="bad", attempts=8)
    sent = make_event(account, base + 3, EventStatus.SENT)
    attempt = make_attempt(account, [failed, sent])
    return SimpleNamespace(
        account=account, pending=pending, failed=failed, sent=sent, attempt=attempt
    )


@pytest.fixture
def world() -> SimpleNamespace:
    a = tenant_rows("shop-a", "111111", "A", 100)
    b = tenant_rows("shop-b", "222222", "B", 200)
    return SimpleNamespace(a=a, b=b)


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice(world) -> Client:
    return login(make_staff("alice", "shop-a"))


@pytest.fixture
def root(world) -> Client:
    return login(User.objects.create_superuser("root", password="pw"))


def pks(response) -> set[int]:
    assert response.status_code == 200, response.content[:300]
    return {obj.pk for obj in response.context["cl"].result_list}


def assert_hidden(client: Client, response, *secrets: str) -> None:
    """Answered like a missing object: redirect to the index with Django's message."""
    assert response.status_code == 302, response.status_code
    assert response["Location"] == reverse("admin:index")
    page = client.get(response["Location"])
    text = " ".join(str(m) for m in page.context["messages"])
    assert MISSING in text
    for secret in secrets:
        assert secret not in page.content.decode()


def rows_of(world, side: str) -> dict[str, set[int]]:
    rows = getattr(world, side)
    return {
        "adaccount": {rows.account.pk},
        "outboxevent": {rows.pending.pk, rows.failed.pk, rows.sent.pk},
        "deliveryattempt": {rows.attempt.pk},
    }


# --- lists ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["adaccount", "outboxevent", "deliveryattempt"])
def test_changelist_lists_only_own_rows_and_counts_them(alice, root, world, model):
    response = alice.get(url(f"{model}_changelist"))
    assert pks(response) == rows_of(world, "a")[model]
    assert response.context["cl"].result_count == len(rows_of(world, "a")[model])
    assert "Shop B" not in response.content.decode()
    both = rows_of(world, "a")[model] | rows_of(world, "b")[model]
    assert pks(root.get(url(f"{model}_changelist"))) == both


def test_search_does_not_find_the_other_tenants_rows(alice, root, world):
    query = f"?q={world.b.failed.event_id}"
    assert pks(alice.get(url("outboxevent_changelist") + query)) == set()
    assert pks(alice.get(url("outboxevent_changelist") + f"?q={world.b.failed.order_id}")) == set()
    assert pks(alice.get(url("adaccount_changelist") + "?q=shop-b")) == set()
    assert pks(alice.get(url("adaccount_changelist") + "?q=222222")) == set()
    assert pks(root.get(url("outboxevent_changelist") + query)) == {world.b.failed.pk}


def test_filter_by_the_other_tenants_account_or_attempt_shows_nothing(alice, world):
    b = world.b
    assert not pks(alice.get(url("outboxevent_changelist") + f"?account__id__exact={b.account.pk}"))
    assert not pks(
        alice.get(url("deliveryattempt_changelist") + f"?account__id__exact={b.account.pk}")
    )
    assert not pks(alice.get(url("adaccount_changelist") + "?tenant=shop-b"))


def test_attempt_to_events_link_shows_only_own_events(alice, world):
    own = alice.get(
        url("outboxevent_changelist") + f"?delivery_attempts__id__exact={world.a.attempt.pk}"
    )
    assert pks(own) == {world.a.failed.pk, world.a.sent.pk}
    other = alice.get(
        url("outboxevent_changelist") + f"?delivery_attempts__id__exact={world.b.attempt.pk}"
    )
    assert pks(other) == set()


def filter_choices(response, title: str) -> list[str]:
    for spec in response.context["cl"].filter_specs:
        if str(spec.title) == title:
            return [str(c["display"]) for c in spec.choices(response.context["cl"])][1:]
    raise AssertionError(f"no {title!r} filter")


@pytest.mark.parametrize("model", ["outboxevent", "deliveryattempt"])
def test_account_filter_lists_only_own_accounts(root, world, model):
    make_account("shop-c", "333333", name="Shop C main")
    carol = login(make_staff("carol", "shop-a", "shop-c"))
    own = ["Shop A main (shop-a)", "Shop C main (shop-c)"]
    assert filter_choices(carol.get(url(f"{model}_changelist")), "ad account") == own
    everyone = filter_choices(root.get(url(f"{model}_changelist")), "ad account")
    assert everyone == ["Shop A main (shop-a)", "Shop B main (shop-b)", "Shop C main (shop-c)"]


def test_tenant_filter_on_accounts_lists_only_own_tenants(root, world):
    make_account("shop-c", "333333", name="Shop C main")
    carol = login(make_staff("carol", "shop-a", "shop-c"))
    assert filter_choices(carol.get(url("adaccount_changelist")), "tenant") == ["shop-a", "shop-c"]
    everyone = filter_choices(root.get(url("adaccount_changelist")), "tenant")
    assert everyone == ["shop-a", "shop-b", "shop-c"]


def test_a_single_choice_filter_still_applies(alice, world):
    # One account, one tenant: the sidebar has nothing to offer, the URL's filter still counts.
    query = f"?account__id__exact={world.a.account.pk}"
    assert (
        pks(alice.get(url("outboxevent_changelist") + query)) == rows_of(world, "a")["outboxevent"]
    )
    assert pks(alice.get(url("adaccount_changelist") + "?tenant=shop-a")) == {world.a.account.pk}


def test_autocomplete_and_raw_id_popup_offer_only_own_accounts(alice, world):
    response = alice.get(
        "/admin/autocomplete/",
        {"app_label": "pinterest_capi", "model_name": "outboxevent", "field_name": "account"},
    )
    assert response.status_code == 200
    ids = [item["id"] for item in json.loads(response.content)["results"]]
    assert ids == [str(world.a.account.pk)]
    popup = alice.get(url("adaccount_changelist") + "?_popup=1&_to_field=id")
    assert pks(popup) == {world.a.account.pk}


def test_changelist_queries_do_not_grow_with_rows(alice, world, django_assert_max_num_queries):
    for n in range(40):
        make_event(world.a.account if n % 2 else world.b.account, 500 + n, EventStatus.FAILED)
    with django_assert_max_num_queries(14):
        response = alice.get(url("outboxevent_changelist"))
    assert len(pks(response)) == 3 + 20


# --- single objects ------------------------------------------------------------------------


def pages(rows: SimpleNamespace) -> dict[str, str]:
    return {
        "account change": url("adaccount_change", rows.account.pk),
        "account history": url("adaccount_history", rows.account.pk),
        "account delete": url("adaccount_delete", rows.account.pk),
        "event change": url("outboxevent_change", rows.failed.pk),
        "event history": url("outboxevent_history", rows.failed.pk),
        "attempt change": url("deliveryattempt_change", rows.attempt.pk),
        "attempt history": url("deliveryattempt_history", rows.attempt.pk),
    }


@pytest.mark.parametrize(
    "page",
    [
        "account change",
        "account history",
        "account delete",
        "event change",
        "event history",
        "attempt change",
        "attempt history",
    ],
)
def test_own_object_pages_open_and_the_others_do_not(alice, root, world, page):
    assert alice.get(pages(world.a)[page]).status_code == 200
    assert_hidden(alice, alice.get(pages(world.b)[page]), "Shop B", world.b.failed.event_id)
    assert root.get(pages(world.b)[page]).status_code == 200


def test_posting_the_other_tenants_account_form_changes_nothing(alice, world):
    b = world.b.account
    data = {"tenant": "shop-a", "name": "Mine now", "ad_account_id": b.ad_account_id}
    assert_hidden(alice, alice.post(url("adaccount_change", b.pk), data))
    b.refresh_from_db()
    assert (b.tenant, b.name) == ("shop-b", "Shop B main")


def test_deleting_the_other_tenants_rows_is_refused(alice, world):
    assert_hidden(alice, alice.post(url("adaccount_delete", world.b.account.pk), {"post": "yes"}))
    response = alice.post(url("outboxevent_delete", world.b.failed.pk), {"post": "yes"})
    assert response.status_code in (302, 403)  # event deletes are for superusers anyway
    response = alice.post(
        url("adaccount_changelist"),
        {"action": "delete_selected", "_selected_action": [world.b.account.pk], "post": "yes"},
    )
    assert AdAccount.objects.filter(pk=world.b.account.pk).exists()
    assert OutboxEvent.objects.filter(pk=world.b.failed.pk).exists()


def test_account_form_refuses_a_tenant_the_user_may_not_manage(alice, world):
    a = world.a.account
    moved = {"tenant": "shop-b", "name": "Moved", "ad_account_id": a.ad_account_id, "active": "on"}
    response = alice.post(url("adaccount_change", a.pk), moved)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["tenant"]
    assert "You may not manage tenant “shop-b”. Your tenants: shop-a." in errors["tenant"][0]
    a.refresh_from_db()
    assert a.tenant == "shop-a"

    new = {"tenant": "shop-b", "ad_account_id": "333333", "access_token": "pina_x_9999"}
    response = alice.post(url("adaccount_add"), new)
    assert list(response.context["adminform"].form.errors) == ["tenant"]
    assert not AdAccount.objects.filter(ad_account_id="333333").exists()

    # The only tenant is filled in, and adding under it works.
    form = alice.get(url("adaccount_add")).context["adminform"].form
    assert form.initial["tenant"] == "shop-a"
    response = alice.post(url("adaccount_add"), {**new, "tenant": "shop-a"})
    assert response.status_code == 302
    assert AdAccount.objects.get(ad_account_id="333333").tenant == "shop-a"


def test_superuser_may_move_an_account_to_any_tenant(root, world):
    a = world.a.account
    data = {"tenant": "shop-c", "name": "Moved", "ad_account_id": a.ad_account_id}
    assert root.post(url("adaccount_change", a.pk), data).status_code == 302
    assert AdAccount.objects.get(pk=a.pk).tenant == "shop-c"


# --- resend and other actions --------------------------------------------------------------


def test_resend_action_requeues_only_own_events_and_reports_the_rest(alice, world):
    a, b = world.a, world.b
    selected = [a.failed.pk, a.pending.pk, b.failed.pk, b.sent.pk]
    response = alice.post(
        url("outboxevent_changelist"),
        {"action": "resend_failed", "_selected_action": selected},
        follow=True,
    )
    text = response.content.decode()
    assert "1 failed event requeued; 1 selected event was not failed and was left as it is." in text
    assert "2 selected events were not found and were skipped." in text
    assert OutboxEvent.objects.get(pk=a.failed.pk).status == EventStatus.PENDING
    assert OutboxEvent.objects.get(pk=b.failed.pk).status == EventStatus.FAILED


def test_resend_action_with_only_the_other_tenants_ids_touches_nothing(alice, world):
    response = alice.post(
        url("outboxevent_changelist"),
        {"action": "resend_failed", "_selected_action": [world.b.failed.pk]},
        follow=True,
    )
    assert "None of the selected events was found; nothing was requeued." in (
        response.content.decode()
    )
    assert OutboxEvent.objects.get(pk=world.b.failed.pk).status == EventStatus.FAILED


def test_resend_url_of_the_other_tenants_event_is_refused(alice, world):
    response = alice.post(url("outboxevent_resend", world.b.failed.pk))
    assert_hidden(alice, response, world.b.failed.event_id)
    assert OutboxEvent.objects.get(pk=world.b.failed.pk).status == EventStatus.FAILED
    html = alice.get(url("outboxevent_change", world.a.failed.pk)).content.decode()
    assert url("outboxevent_resend", world.a.failed.pk) in html
    alice.post(url("outboxevent_resend", world.a.failed.pk))
    assert OutboxEvent.objects.get(pk=world.a.failed.pk).status == EventStatus.PENDING


def test_clear_pause_action_skips_the_other_tenants_account(alice, world):
    until = timezone.now() + timedelta(minutes=5)
    AdAccount.objects.update(paused_until=until, pause_reason="rate limited")
    alice.post(
        url("adaccount_changelist"),
        {"action": "clear_pause", "_selected_action": [world.a.account.pk, world.b.account.pk]},
    )
    assert AdAccount.objects.get(pk=world.a.account.pk).paused_until is None
    assert AdAccount.objects.get(pk=world.b.account.pk).paused_until == until


# --- who may manage what -------------------------------------------------------------------


def test_staff_without_a_tenant_group_sees_nothing_and_cannot_add(world):
    client = login(make_staff("nobody"))
    for model in ("adaccount", "outboxevent", "deliveryattempt"):
        assert pks(client.get(url(f"{model}_changelist"))) == set()
    assert client.get(url("adaccount_add")).status_code == 403


def test_user_with_two_tenant_groups_sees_both(world):
    client = login(make_staff("carol", "shop-a", "shop-b"))
    assert pks(client.get(url("adaccount_changelist"))) == {
        world.a.account.pk,
        world.b.account.pk,
    }


def test_account_choices_of_foreign_key_fields_are_limited(world):
    request = RequestFactory().get("/")
    request.user = make_staff("dave", "shop-b")
    model_admin = site.get_model_admin(DeliveryAttempt)
    field = model_admin.formfield_for_foreignkey(
        DeliveryAttempt._meta.get_field("account"), request
    )
    assert list(field.queryset) == [world.b.account]


def by_username(user: User) -> list[str] | None:
    """A custom ADMIN_TENANTS resolver for the test below: tenants from a fixed table."""
    return {"alice": ["shop-b"], "ops": None}.get(user.username, [])


def answers_a_string(user: User) -> str:
    return "shop-a"


def test_custom_admin_tenants_resolver_from_settings(settings, world):
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "ADMIN_TENANTS": "tests.test_tenant_isolation.by_username",
    }
    alice = login(make_staff("alice", "shop-a"))  # the group no longer counts
    assert pks(alice.get(url("adaccount_changelist"))) == {world.b.account.pk}
    assert alice.get(url("adaccount_change", world.b.account.pk)).status_code == 200
    assert alice.get(url("adaccount_change", world.a.account.pk)).status_code == 302
    ops = login(make_staff("ops"))
    assert len(pks(ops.get(url("outboxevent_changelist")))) == 6


def test_resolver_rules(settings, world):
    root = User.objects.create_superuser("root", password="pw")
    inactive = make_staff("gone", "shop-a")
    inactive.is_active = False
    assert user_tenants(root) is None
    assert user_tenants(inactive) == frozenset()
    assert user_tenants(make_staff("erin", "shop-a", "")) == frozenset({"shop-a"})
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "ADMIN_TENANTS": "tests.test_tenant_isolation.answers_a_string",
    }
    assert user_tenants(root) is None  # superusers see all whatever the resolver says
    with pytest.raises(ImproperlyConfigured, match="ADMIN_TENANTS"):
        user_tenants(make_staff("frank"))
