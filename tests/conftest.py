"""Shared fixtures: a real sandbox server on loopback, ad accounts pointing at it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SANDBOX_ACCOUNT_ID = "549755885175"
SANDBOX_TOKEN = "pina_sandbox_TOKEN_9f3c"


TESTS_DIR = Path(__file__).resolve().parent
CONTRIB_PROJECT = TESTS_DIR / "contrib_project"
CONTRIB_SETTINGS = "tests.contrib_project.settings"


def pytest_ignore_collect(collection_path, config):
    """tests/contrib_project (a django-oscar + allauth shop) runs only under its own settings.

    It is a separate invocation (``--ds=tests.contrib_project.settings``, see
    scripts/test.sh): the main suite's settings lack Oscar, and the contrib settings lack
    the demo shop, so each invocation collects only its own tests.
    """
    path = Path(collection_path)
    in_contrib = path == CONTRIB_PROJECT or CONTRIB_PROJECT in path.parents
    if os.environ.get("DJANGO_SETTINGS_MODULE") != CONTRIB_SETTINGS:
        return True if in_contrib else None
    in_tests = TESTS_DIR in path.parents
    if in_tests and not in_contrib and path not in CONTRIB_PROJECT.parents:
        return True
    return None


def pytest_report_header(config):
    db = os.environ.get("DATABASE_URL", "sqlite (in-memory test database)")
    scheme = db.split(":", 1)[0]
    return [f"pinterest_capi test database: {scheme}"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )


@pytest.fixture
def sandbox():
    """A running SandboxServer on 127.0.0.1 (random port) knowing one account and token."""
    from pinterest_capi.sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0, accounts={SANDBOX_ACCOUNT_ID: SANDBOX_TOKEN})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def capi_settings(settings, sandbox):
    """PINTEREST_CAPI pointed at the sandbox, with short timeouts for tests."""
    from pinterest_capi import client

    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "API_BASE_URL": sandbox.url,
        "CONNECT_TIMEOUT": 2.0,
        "READ_TIMEOUT": 3.0,
        "REQUEST_DEADLINE": 5.0,
        "LEASE_SECONDS": 30,
        "BACKOFF_BASE_SECONDS": 0,
    }
    client.close_clients()
    yield settings.PINTEREST_CAPI
    client.close_clients()


@pytest.fixture
def one_lane(capi_settings, settings):
    """One flush lane: for tests that count how a backlog is cut into batches.

    With two lanes (the default, PostgreSQL) the lanes' first claims run at once and may share
    the backlog between them (SKIP LOCKED), so the batches' sizes depend on timing; the lanes
    themselves are tested in tests/test_flush_lanes.py and by the reliability suite.
    """
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "FLUSH_LANES": 1}


@pytest.fixture
def account(db, capi_settings):
    """An active ad account of tenant "demo" known to the sandbox."""
    from pinterest_capi.models import AdAccount

    acct = AdAccount(tenant="demo", ad_account_id=SANDBOX_ACCOUNT_ID, name="Demo")
    acct.set_token(SANDBOX_TOKEN)
    acct.save()
    return acct


def build_test_event(n: int, **overrides):
    """A valid API event (hashed email, fixed id) built by the app's own event builder."""
    from pinterest_capi import events

    kwargs = {
        "user_data": {"em": f"buyer{n}@example.com", "client_ip_address": "203.0.113.7"},
        "custom_data": {"currency": "GBP", "value": "10.00", "order_id": f"T{n}"},
        "event_id": f"checkout-T{n}",
    }
    kwargs.update(overrides)
    return events.build_event("checkout", **kwargs)


def make_outbox_events(account, count: int, *, start: int = 0, payload_override=None):
    """Insert ``count`` pending outbox rows for ``account`` directly (fast test set-up)."""
    from pinterest_capi.models import OutboxEvent
    from pinterest_capi.outbox import new_row

    rows = []
    for n in range(start, start + count):
        event = build_test_event(n)
        if payload_override is not None:
            event = payload_override(n, event)
        rows.append(new_row(event, account))
    OutboxEvent.objects.bulk_create(rows, batch_size=1000)
    return list(OutboxEvent.objects.filter(account=account).order_by("pk"))


@pytest.fixture
def second_account(db, sandbox, capi_settings):
    """Another tenant's account, known to the sandbox with its own token."""
    from pinterest_capi.models import AdAccount

    sandbox.add_account("549755885176", "pina_sandbox_TOKEN_second")
    acct = AdAccount(tenant="other", ad_account_id="549755885176", name="Other")
    acct.set_token("pina_sandbox_TOKEN_second")
    acct.save()
    return acct


@pytest.fixture(autouse=True)
def _clear_cache():
    """The nudge guard lives in the cache: no test inherits another's pending nudge."""
    from django.core.cache import cache

    from pinterest_capi import tasks

    cache.clear()
    tasks.forget_seen_nudge()
    yield
    cache.clear()
    tasks.forget_seen_nudge()
