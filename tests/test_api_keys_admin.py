"""API keys in the admin: the key shown once, prefix-only lists, revoke, tenant scoping."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from pinterest_capi import apikeys
from pinterest_capi.models import ApiKey
from tests.api_helpers import api_event, post_events
from tests.test_tenant_isolation import make_staff

pytestmark = pytest.mark.django_db

ADD = "/admin/pinterest_capi/apikey/add/"
LIST = "/admin/pinterest_capi/apikey/"
KEY_RE = re.compile(r"pcapi_[0-9a-f]{12}_[A-Za-z0-9_\-]{40,}")


def key_admin(username: str, *tenants: str) -> Client:
    user = make_staff(username, *tenants)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["add_apikey", "change_apikey", "view_apikey", "delete_apikey"]
        )
    )
    client = Client()
    client.force_login(user)
    return client


def test_create_shows_the_full_key_once_and_stores_only_its_hash(account):
    client = key_admin("alice", "demo")
    response = client.post(ADD, {"tenant": "demo", "name": "ERP sync"})
    assert response.status_code == 200
    html = response.content.decode()
    [raw] = set(KEY_RE.findall(html))
    assert "shown only this once" in html
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    stored = ApiKey.objects.get()
    assert stored.tenant == "demo" and stored.key_hash == apikeys.hash_key(raw)
    # Never again: not on the list, not on the key's own page.
    for page in (client.get(LIST), client.get(f"{LIST}{stored.pk}/change/")):
        text = page.content.decode()
        assert raw not in text and raw.split("_", 2)[2] not in text
        assert f"pcapi_{stored.prefix}_…" in text
    # And the key works.
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert post_events(api, [api_event(1)]).json()["events"][0]["status"] == "recorded"


def test_revoke_action_stops_the_key(account):
    client = key_admin("alice", "demo")
    api_key, raw = apikeys.create_key(tenant="demo", name="ERP")
    response = client.post(
        LIST, {"action": "revoke_keys", "_selected_action": [api_key.pk]}, follow=True
    )
    assert "1 API key revoked" in response.content.decode()
    api_key.refresh_from_db()
    assert not api_key.active and api_key.revoked_at is not None
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert post_events(api, [api_event(2)]).status_code == 401


def test_keys_are_scoped_by_tenant_in_the_admin(db):
    mine, _ = apikeys.create_key(tenant="shop-a", name="A's key")
    theirs, _ = apikeys.create_key(tenant="shop-b", name="B's key")
    client = key_admin("alice", "shop-a")
    listing = client.get(LIST).content.decode()
    assert "A&#x27;s key" in listing or "A's key" in listing
    assert "B&#x27;s key" not in listing and "B's key" not in listing
    assert client.get(f"{LIST}{theirs.pk}/change/").status_code == 302  # "doesn't exist"
    client.post(LIST, {"action": "revoke_keys", "_selected_action": [theirs.pk]})
    theirs.refresh_from_db()
    assert theirs.active
    refused = client.post(ADD, {"tenant": "shop-b", "name": "sneaky"})
    assert refused.status_code == 200 and "You may not manage tenant" in refused.content.decode()
    assert not ApiKey.objects.filter(name="sneaky").exists()
    assert KEY_RE.search(refused.content.decode()) is None
    assert mine.pk in {k.pk for k in ApiKey.objects.filter(tenant="shop-a")}


def test_a_revoked_key_stays_revoked_on_edit(db):
    client = key_admin("alice", "shop-a")
    api_key, _ = apikeys.create_key(tenant="shop-a", name="old")
    apikeys.revoke(ApiKey.objects.filter(pk=api_key.pk))
    client.post(f"{LIST}{api_key.pk}/change/", {"name": "renamed", "active": "on"})
    api_key.refresh_from_db()
    assert api_key.name == "renamed" and not api_key.active
