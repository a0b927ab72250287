"""Shared pieces of the REST API tests: keys, clients, events in Pinterest's shape."""

from __future__ import annotations

import time
from typing import Any

from rest_framework.test import APIClient

from pinterest_capi import apikeys

EVENTS_URL = "/pinterest/api/v1/events/"
OPS = "/pinterest/api/v1/ops/"
SCHEMA_URL = "/pinterest/api/v1/schema/"
RAW_EMAIL = "Jane.Doe+api@Example.COM"
RAW_PHONE = "+44 20 7946 0123"
RAW_IP = "198.51.100.77"


def key_client(tenant: str = "demo", name: str = "ERP") -> tuple[APIClient, str]:
    """An APIClient sending a fresh key of ``tenant``; returns (client, full key)."""
    _api_key, raw = apikeys.create_key(tenant=tenant, name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, raw


def api_event(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid event in Pinterest's shape with raw (unhashed) user data."""
    event: dict[str, Any] = {
        "event_name": "checkout",
        "action_source": "web",
        "event_time": int(time.time()) - 60,
        "event_id": f"api-order-{n}",
        "user_data": {
            "em": RAW_EMAIL,
            "ph": RAW_PHONE,
            "client_ip_address": RAW_IP,
            "client_user_agent": "Mozilla/5.0 (API test)",
        },
        "custom_data": {"currency": "EUR", "value": "19.90", "order_id": f"A{n}"},
    }
    event.update(overrides)
    return event


def post_events(client: APIClient, events: list[Any], **body: Any):
    return client.post(EVENTS_URL, {"data": events, **body}, format="json")
