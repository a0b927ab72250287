"""Event admin operations at scale: "resend every failed event matching the filter" (a
confirmation with the count, then a django-q2 task requeueing in batches, run inline here by
django-q2's sync mode) and a changelist whose cost does not grow with the outbox (no unbounded
COUNT, a constant number of queries).  Everything goes through the real admin with Django's
test client; nothing on the path is mocked.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pinterest_capi import outbox, tasks
from pinterest_capi.admin.paginator import CappedCountPaginator, CountKind, planner_row_estimate
from pinterest_capi.admin.resend_matching import SESSION_JOBS_KEY
from pinterest_capi.models import AdAccount, EventStatus, OutboxEvent
from tests.test_admin import HASHED_EMAIL, make_account, make_attempt, staff_user, url
from tests.test_tenant_isolation import make_staff

pytestmark = pytest.mark.django_db

EVENTS_TABLE = OutboxEvent._meta.db_table


def bulk_events(account: AdAccount, count: int, status: str, *, start: int) -> None:
    """``count`` rows of ``status`` for ``account``, ids checkout-T<start>… (one INSERT batch)."""
    rows = []
    for n in range(start, start + count):
        event = {
            "event_name": "checkout",
            "action_source": "web",
            "event_time": 1_700_000_000 + n,
            "event_id": f"checkout-T{n}",
            "user_data": {"em": [HASHED_EMAIL]},
            "custom_data": {"currency": "GBP", "value": "10.00", "order_id": f"T{n}"},
        }
        row = outbox.new_row(event, account)
        row.status = status
        if status == EventStatus.FAILED:
            row.attempts = 8
            row.last_error = "server error"
        rows.append(row)
    OutboxEvent.objects.bulk_create(rows, batch_size=500)


def statuses(account: AdAccount) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in OutboxEvent.objects.filter(account=account).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


@pytest.fixture
def world() -> SimpleNamespace:
    """Tenant shop-a: two accounts (150 failed + 50 sent, 60 failed); shop-b: 80 failed."""
    a1 = make_account("shop-a", "111111", name="A main")
    a2 = make_account("shop-a", "111112", name="A second")
    b1 = make_account("shop-b", "222222", name="B main")
    bulk_events(a1, 150, EventStatus.FAILED, start=0)
    bulk_events(a1, 50, EventStatus.SENT, start=1000)
    bulk_events(a2, 60, EventStatus.FAILED, start=2000)
    bulk_events(b1, 80, EventStatus.FAILED, start=3000)
    return SimpleNamespace(a1=a1, a2=a2, b1=b1)


@pytest.fixture
def alice(world) -> Client:
    """Staff of tenant shop-a with view and resend permissions."""
    client = Client()
    client.force_login(make_staff("alice", "shop-a"))
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


MATCHING = "outboxevent_resend_matching"


# --- resend every failed event matching the filter -------------------------------------------


def test_resend_matching_confirms_with_the_count_then_requeues_only_matching_rows(alice, world):
    query = f"?account__id__exact={world.a1.pk}&status__exact=failed"
    changelist = alice.get(url("outboxevent_changelist") + query)
    button = url(MATCHING) + query
    assert f'href="{button}"' in changelist.content.decode().replace("&amp;", "&")

    confirm = alice.get(button)
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "150 failed events match the current filter." in html
    assert "A main (shop-a)" in html  # the account filter in words
    assert statuses(world.a1)[EventStatus.FAILED] == 150  # a GET changes nothing

    done = alice.post(button, {"confirm": "yes"}, follow=True)
    assert done.redirect_chain[-1][0] == url("outboxevent_changelist") + query
    text = messages_of(done)
    assert any("Requeueing 150 failed events in the background" in m for m in text), text
    # django-q2 runs in sync mode in the tests: the task has already run, and the list says so.
    assert any("Background requeue done: 150 failed events requeued" in m for m in text), text
    assert statuses(world.a1) == {EventStatus.PENDING: 150, EventStatus.SENT: 50}
    requeued = OutboxEvent.objects.filter(account=world.a1, status=EventStatus.PENDING)
    assert set(requeued.values_list("attempts", flat=True)) == {0}
    assert requeued.filter(event_id="checkout-T7").exists()  # the dedup key never changes
    # Other rows of the same tenant outside the filter, and the other tenant: untouched.
    assert statuses(world.a2) == {EventStatus.FAILED: 60}
    assert statuses(world.b1) == {EventStatus.FAILED: 80}
    # Reported once: the next load has no message about it, and the session forgets the job.
    again = alice.get(url("outboxevent_changelist"))
    assert not any("Background requeue" in m for m in messages_of(again))
    assert alice.session.get(SESSION_JOBS_KEY) == []


def test_resend_matching_without_filter_is_limited_to_the_users_tenants(alice, world):
    confirm = alice.get(url(MATCHING))
    assert "210 failed events match the current filter." in confirm.content.decode()
    alice.post(url(MATCHING), {"confirm": "yes"})
    assert statuses(world.a1) == {EventStatus.PENDING: 150, EventStatus.SENT: 50}
    assert statuses(world.a2) == {EventStatus.PENDING: 60}
    assert statuses(world.b1) == {EventStatus.FAILED: 80}


def test_resend_matching_with_another_tenants_account_finds_nothing(alice, world):
    query = f"?account__id__exact={world.b1.pk}"
    response = alice.post(url(MATCHING) + query, {"confirm": "yes"}, follow=True)
    assert any("No failed event matches" in m for m in messages_of(response))
    assert statuses(world.b1) == {EventStatus.FAILED: 80}


def test_resend_matching_respects_the_search(alice, world):
    # Event ids checkout-T10 … checkout-T19 and checkout-T1 (prefix search), all failed in a1.
    confirm = alice.get(url(MATCHING) + "?q=checkout-T1")
    assert "Search: checkout-T1" in confirm.content.decode()
    expected = OutboxEvent.objects.filter(
        account__tenant="shop-a", status=EventStatus.FAILED, event_id__startswith="checkout-T1"
    ).count()
    assert f"{expected} failed events match" in confirm.content.decode()
    alice.post(url(MATCHING) + "?q=checkout-T1", {"confirm": "yes"})
    assert OutboxEvent.objects.filter(status=EventStatus.PENDING).count() == expected


def test_resend_matching_needs_the_resend_permission(world):
    client = Client()
    client.force_login(staff_user("view_outboxevent", tenant="shop-a"))
    html = client.get(url("outboxevent_changelist")).content.decode()
    assert url(MATCHING) not in html
    assert client.get(url(MATCHING)).status_code == 403
    assert client.post(url(MATCHING), {"confirm": "yes"}).status_code == 403
    assert statuses(world.a1)[EventStatus.FAILED] == 150


def test_select_all_across_pages_then_resend_leads_to_the_confirmation(alice, world):
    query = f"?account__id__exact={world.a2.pk}"
    page = OutboxEvent.objects.filter(account=world.a2).values_list("pk", flat=True)
    response = alice.post(  # the page's boxes stay ticked when "select all" is clicked
        url("outboxevent_changelist") + query,
        {"action": "resend_failed", "select_across": "1", "index": "0", "_selected_action": page},
    )
    assert response.status_code == 302
    assert response["Location"] == url(MATCHING) + query
    assert statuses(world.a2) == {EventStatus.FAILED: 60}  # nothing before the confirmation


def test_requeue_matching_works_in_primary_key_ranges(world):
    seen: list[int] = []
    events = OutboxEvent.objects.filter(account__tenant="shop-a")
    requeued = outbox.requeue_matching(events, batch_size=40, progress=seen.append)
    assert requeued == 210
    assert seen == [40, 80, 120, 160, 200, 210]  # the last range (10 rows) is open-ended
    assert not OutboxEvent.objects.filter(account__tenant="shop-a", status="failed").exists()
    assert statuses(world.b1) == {EventStatus.FAILED: 80}


def test_the_task_records_its_result_for_the_admin(world):
    failed = OutboxEvent.objects.filter(account=world.b1, status=EventStatus.FAILED)
    job_id = tasks.enqueue_requeue_matching(failed, matched=80)  # sync mode: runs inline
    assert tasks.requeue_job_state(job_id) == {
        "state": "done",
        "matched": 80,
        "requeued": 80,
        "error": "",
    }


# --- a changelist that scales ----------------------------------------------------------------


def unbounded_counts(queries: list[dict]) -> list[str]:
    """COUNT queries over the events table that are not over a LIMITed subquery."""
    found = []
    for query in queries:
        sql = query["sql"]
        if EVENTS_TABLE in sql and re.search(r"\bCOUNT\(", sql, re.I):
            if not re.search(r"\bLIMIT\b", sql, re.I):
                found.append(sql)
    return found


@pytest.mark.parametrize(
    "query",
    ["", "?status__exact=failed", "?status__exact=sent", "?q=checkout-T1", "?p=2", "?o=-2"],
)
def test_changelist_never_counts_the_whole_outbox(admin_client, world, query):
    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get(url("outboxevent_changelist") + query)
    assert response.status_code == 200
    assert unbounded_counts(ctx.captured_queries) == []
    assert any("LIMIT" in q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"])


def test_the_list_says_more_than_the_cap_and_pages_past_it(admin_client, world, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 250)
    response = admin_client.get(url("outboxevent_changelist"))
    cl = response.context["cl"]
    assert cl.paginator.count_kind is CountKind.AT_LEAST
    html = response.content.decode()
    assert "more than 250 outbox events" in html
    assert "Select all more than 250 outbox events" in html
    # 340 rows, 100 a page: page 4 lies past the capped count (251 → 3 pages) and still works.
    page3 = admin_client.get(url("outboxevent_changelist") + "?p=3")
    assert len(page3.context["cl"].result_list) == 100  # not cut at the capped count
    page4 = admin_client.get(url("outboxevent_changelist") + "?p=4")
    assert page4.status_code == 200
    assert len(page4.context["cl"].result_list) == 40
    # A filter under the cap is counted exactly.
    failed_b = admin_client.get(
        url("outboxevent_changelist") + f"?account__id__exact={world.b1.pk}"
    )
    assert failed_b.context["cl"].paginator.count_is_exact
    assert "80 outbox events" in failed_b.content.decode()


def test_planner_estimate_is_only_for_unfiltered_postgresql_querysets(world):
    assert planner_row_estimate(OutboxEvent.objects.filter(status="failed")) is None
    estimate = planner_row_estimate(OutboxEvent.objects.all())
    if connection.vendor != "postgresql":
        assert estimate is None
    paginator = CappedCountPaginator(OutboxEvent.objects.filter(account=world.b1), 100)
    assert (paginator.count, paginator.count_kind, paginator.count_display) == (
        80,
        CountKind.EXACT,
        "80",
    )


def changelist_queries(client: Client, name: str, query: str = "") -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url(name) + query)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("name", ["outboxevent_changelist", "deliveryattempt_changelist"])
def test_changelist_query_count_does_not_grow_with_the_rows(name):
    accounts = [make_account("shop-a", f"11111{i}", name=f"A{i}") for i in range(3)]
    client = Client()
    client.force_login(make_staff("alice", "shop-a"))
    bulk_events(accounts[0], 2, EventStatus.FAILED, start=0)
    make_attempt(accounts[0], list(OutboxEvent.objects.all()))
    few = changelist_queries(client, name)
    few_filtered = changelist_queries(client, name, f"?account__id__exact={accounts[1].pk}")
    for i, account in enumerate(accounts):
        bulk_events(account, 100, EventStatus.FAILED, start=10_000 * (i + 1))
        make_attempt(account, list(OutboxEvent.objects.filter(account=account)[:5]))
    assert changelist_queries(client, name) == few
    assert changelist_queries(client, name, f"?account__id__exact={accounts[1].pk}") == few_filtered


# --- links between an event, its attempts and its account ------------------------------------


def test_event_attempt_and_account_link_to_each_other(admin_client, world):
    event = OutboxEvent.objects.filter(account=world.a1).order_by("pk").first()
    attempt = make_attempt(world.a1, [event])
    account_url = reverse("admin:pinterest_capi_adaccount_change", args=[world.a1.pk])
    event_html = admin_client.get(url("outboxevent_change", event.pk)).content.decode()
    assert account_url in event_html  # event → account
    assert url("deliveryattempt_change", attempt.pk) in event_html  # event → attempt
    attempt_html = admin_client.get(url("deliveryattempt_change", attempt.pk)).content.decode()
    assert account_url in attempt_html  # attempt → account
    assert f"{url('outboxevent_changelist')}?delivery_attempts__id__exact={attempt.pk}" in (
        attempt_html
    )  # attempt → its events
    listed = admin_client.get(
        url("outboxevent_changelist") + f"?delivery_attempts__id__exact={attempt.pk}"
    )
    assert [e.pk for e in listed.context["cl"].result_list] == [event.pk]
    # account → its events and attempts (on its list row or its page)
    accounts_html = "".join(
        admin_client.get(page).content.decode()
        for page in (url("adaccount_changelist"), url("adaccount_change", world.a1.pk))
    )
    assert f"{url('outboxevent_changelist')}?account__id__exact={world.a1.pk}" in accounts_html
    assert f"{url('deliveryattempt_changelist')}?account__id__exact={world.a1.pk}" in (
        accounts_html
    )


def test_superuser_sees_every_tenant_in_the_matching_count(world):
    root = Client()
    root.force_login(User.objects.create_superuser("root", password="pw"))
    confirm = root.get(url(MATCHING) + "?status__exact=failed")
    assert "290 failed events match the current filter." in confirm.content.decode()
