"""The staff operations endpoints (ops/…): permissions, tenant isolation (F17), no secrets.

Two tenants with an account, a pending, a failed and a sent event and an attempt each
(the admin tests' world); staff users with the admin's permissions and one tenant group
each; real requests through DRF with basic auth and with the admin's session.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from rest_framework.test import APIClient

from pinterest_capi.models import AdAccount, EventStatus, OutboxEvent
from tests.api_helpers import OPS, RAW_EMAIL, RAW_IP, api_event, key_client, post_events
from tests.test_admin import TOKEN, make_event
from tests.test_tenant_isolation import make_staff, world  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def basic(user: str, password: str = "pw") -> APIClient:
    client = APIClient()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
    return client


@pytest.fixture
def alice(world) -> APIClient:  # noqa: F811
    make_staff("alice", "shop-a")
    return basic("alice")


@pytest.fixture
def bob(world) -> APIClient:  # noqa: F811
    make_staff("bob", "shop-b")
    return basic("bob")


@pytest.fixture
def root(world) -> APIClient:  # noqa: F811
    User.objects.create_superuser("root", password="pw")
    return basic("root")


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_event_list_is_scoped_to_the_users_tenants(world, alice, bob, root):  # noqa: F811
    a = {world.a.pending.pk, world.a.failed.pk, world.a.sent.pk}
    b = {world.b.pending.pk, world.b.failed.pk, world.b.sent.pk}
    assert ids(alice.get(f"{OPS}events/")) == a
    assert ids(bob.get(f"{OPS}events/")) == b
    assert ids(root.get(f"{OPS}events/")) == a | b
    # Filters can only narrow: another tenant's account or tenant name finds nothing.
    assert ids(alice.get(f"{OPS}events/", {"account": world.b.account.pk})) == set()
    assert ids(alice.get(f"{OPS}events/", {"tenant": "shop-b"})) == set()
    assert ids(alice.get(f"{OPS}events/", {"event_id": world.b.failed.event_id})) == set()


def test_event_list_filters(world, alice):  # noqa: F811
    assert ids(alice.get(f"{OPS}events/", {"status": "failed"})) == {world.a.failed.pk}
    assert ids(alice.get(f"{OPS}events/", {"account": world.a.account.pk})) == {
        world.a.pending.pk,
        world.a.failed.pk,
        world.a.sent.pk,
    }
    lead = make_event(world.a.account, 150, event_name="lead")
    assert ids(alice.get(f"{OPS}events/", {"event_name": "lead"})) == {lead.pk}
    OutboxEvent.objects.filter(pk=lead.pk).update(created_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert lead.pk not in ids(alice.get(f"{OPS}events/", {"since": since}))
    assert ids(alice.get(f"{OPS}events/", {"until": since})) == {lead.pk}
    bad = alice.get(f"{OPS}events/", {"status": "lost", "account": "x"})
    assert bad.status_code == 400 and set(bad.json()) == {"status", "account"}


def test_event_list_cursor_pagination(world, alice):  # noqa: F811
    for n in range(300, 305):
        make_event(world.a.account, n)
    seen: list[int] = []
    url = f"{OPS}events/?page_size=3"
    while url:
        page = alice.get(url).json()
        assert "count" not in page  # no COUNT(*) over the outbox
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 8


def test_event_detail_with_attempts_and_no_pii(world, alice, bob):  # noqa: F811
    client, _ = key_client("shop-a")
    assert post_events(client, [api_event(1)]).status_code == 200
    recorded = OutboxEvent.objects.get(event_id="api-order-1")
    detail = alice.get(f"{OPS}events/{recorded.pk}/")
    assert detail.status_code == 200
    payload = detail.json()["payload"]
    assert payload["user_data"]["client_ip_address"] == "[redacted]"
    assert len(payload["user_data"]["em"][0]) == 64
    text = detail.content.decode()
    assert RAW_EMAIL not in text and RAW_IP not in text and TOKEN not in text

    failed = alice.get(f"{OPS}events/{world.a.failed.pk}/").json()
    [delivery] = failed["deliveries"]
    assert delivery["attempt_id"] == world.a.attempt.pk
    assert delivery["result"] == "failed" and delivery["message"] == "Invalid event_timestamp"
    assert delivery["http_status"] == 200 and delivery["response_excerpt"]
    # Another tenant's event answers exactly like a missing one.
    assert bob.get(f"{OPS}events/{world.a.failed.pk}/").status_code == 404
    assert bob.get(f"{OPS}events/999999/").status_code == 404


def test_resend_one_event(world, alice, bob):  # noqa: F811
    url = f"{OPS}events/{world.a.failed.pk}/resend/"
    assert bob.post(url).status_code == 404
    assert OutboxEvent.objects.get(pk=world.a.failed.pk).status == EventStatus.FAILED
    response = alice.post(url)
    assert response.json() == {"id": world.a.failed.pk, "requeued": True, "status": "pending"}
    row = OutboxEvent.objects.get(pk=world.a.failed.pk)
    assert row.status == EventStatus.PENDING and row.attempts == 0
    assert row.event_id == world.a.failed.event_id
    again = alice.post(f"{OPS}events/{world.a.sent.pk}/resend/").json()
    assert again == {"id": world.a.sent.pk, "requeued": False, "status": "sent"}


def test_resend_matching_is_scoped_and_has_a_dry_run(world, alice, root):  # noqa: F811
    extra = make_event(world.a.account, 160, EventStatus.FAILED, event_name="lead")
    dry = alice.post(f"{OPS}events/resend/", {"dry_run": True}, format="json").json()
    assert dry == {"dry_run": True, "matched": 2, "requeued": 0}
    assert OutboxEvent.objects.filter(status=EventStatus.FAILED).count() == 3
    only_lead = alice.post(f"{OPS}events/resend/", {"event_name": "lead"}, format="json")
    assert only_lead.json() == {"dry_run": False, "matched": 1, "requeued": 1}
    assert OutboxEvent.objects.get(pk=extra.pk).status == EventStatus.PENDING
    done = alice.post(f"{OPS}events/resend/", {}, format="json").json()
    assert done["requeued"] == 1
    # Tenant B's failed event was never touched by alice.
    assert OutboxEvent.objects.get(pk=world.b.failed.pk).status == EventStatus.FAILED
    bad = alice.post(f"{OPS}events/resend/", {"since": "soon"}, format="json")
    assert bad.status_code == 400 and "since" in bad.json()
    assert root.post(f"{OPS}events/resend/", {}, format="json").json()["requeued"] == 1


def test_account_health_is_scoped_and_never_shows_the_token(world, alice, root):  # noqa: F811
    AdAccount.objects.filter(pk=world.a.account.pk).update(
        auth_error="Pinterest refused the token (401)", auth_error_at=timezone.now()
    )
    rows = alice.get(f"{OPS}accounts/").json()
    assert [r["id"] for r in rows] == [world.a.account.pk]
    [row] = rows
    assert (row["pending"], row["failed"], row["in_flight"]) == (1, 1, 0)
    assert row["state"] == "auth" and row["auth_error"].startswith("Pinterest refused")
    assert row["oldest_pending_at"] is not None
    everything = root.get(f"{OPS}accounts/")
    assert {r["tenant"] for r in everything.json()} == {"shop-a", "shop-b"}
    assert [r["tenant"] for r in root.get(f"{OPS}accounts/", {"tenant": "shop-b"}).json()] == [
        "shop-b"
    ]
    for response in (everything, alice.get(f"{OPS}accounts/")):
        text = response.content.decode()
        assert TOKEN not in text and TOKEN[-4:] not in text and "token_" not in text


OPS_CALLS = [
    ("get", "events/"),
    ("get", "events/{pk}/"),
    ("post", "events/{pk}/resend/"),
    ("post", "events/resend/"),
    ("get", "accounts/"),
]


@pytest.mark.parametrize("method, path", OPS_CALLS)
def test_every_ops_endpoint_refuses_anonymous_keys_and_non_staff(world, method, path):  # noqa: F811
    url = OPS + path.format(pk=world.a.failed.pk)
    assert getattr(APIClient(), method)(url).status_code == 401
    key, _ = key_client("shop-a")
    assert getattr(key, method)(url).status_code in (401, 403)  # an API key is not staff
    User.objects.create_user("carol", password="pw")  # not staff
    assert getattr(basic("carol"), method)(url).status_code == 403
    assert getattr(basic("alice", "wrong"), method)(url).status_code == 401


@pytest.mark.parametrize("method, path", OPS_CALLS)
def test_every_ops_endpoint_needs_the_admins_model_permission(world, method, path):  # noqa: F811
    user = make_staff("dora", "shop-a")
    user.user_permissions.remove(
        *Permission.objects.filter(codename__in=["view_outboxevent", "view_adaccount"])
    )
    url = OPS + path.format(pk=world.a.failed.pk)
    assert getattr(basic("dora"), method)(url).status_code == 403


def test_resend_needs_the_resend_permission(world):  # noqa: F811
    user = make_staff("erin", "shop-a")
    user.user_permissions.remove(Permission.objects.get(codename="resend_outboxevent"))
    client = basic("erin")
    assert client.get(f"{OPS}events/{world.a.failed.pk}/").status_code == 200
    assert client.post(f"{OPS}events/{world.a.failed.pk}/resend/").status_code == 403
    assert client.post(f"{OPS}events/resend/", {}, format="json").status_code == 403
    assert OutboxEvent.objects.get(pk=world.a.failed.pk).status == EventStatus.FAILED


def test_staff_in_no_tenant_sees_nothing(world):  # noqa: F811
    make_staff("nobody")
    client = basic("nobody")
    assert ids(client.get(f"{OPS}events/")) == set()
    assert client.get(f"{OPS}accounts/").json() == []
    assert client.get(f"{OPS}events/{world.a.failed.pk}/").status_code == 404
    assert client.post(f"{OPS}events/resend/", {}, format="json").json()["matched"] == 0


def test_session_auth_works_and_keeps_csrf(world):  # noqa: F811
    user = make_staff("fay", "shop-a")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(f"{OPS}events/").status_code == 200
    refused = client.post(f"{OPS}events/{world.a.failed.pk}/resend/")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]


def test_unstorable_text_in_filters_is_a_400(world, alice):  # noqa: F811
    body = json.dumps({"event_name": "\ud800", "tenant": "a\x00b"})
    response = alice.post(f"{OPS}events/resend/", body, content_type="application/json")
    assert response.status_code == 400 and set(response.json()) == {"event_name", "tenant"}
    listed = alice.get(f"{OPS}events/", {"event_name": "a\x00b"})
    assert listed.status_code == 400 and "event_name" in listed.json()
