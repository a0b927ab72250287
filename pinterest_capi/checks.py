"""System checks: configuration problems reported by ``manage.py check`` with ids."""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings
from django.core import checks

from .conf import SETTINGS_NAME, app_settings


@checks.register("pinterest_capi")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for key in app_settings.unknown_keys():
        messages.append(
            checks.Warning(
                f"{SETTINGS_NAME}[{key!r}] is not a setting of pinterest_capi.",
                hint="Check the spelling against the settings table in the README.",
                id="pinterest_capi.W001",
            )
        )
    base_url = str(app_settings.API_BASE_URL)
    try:
        parsed = httpx.URL(base_url)
        valid = parsed.scheme in ("http", "https") and bool(parsed.host)
    except (httpx.InvalidURL, ValueError, TypeError):
        valid = False
    if not valid:
        messages.append(
            checks.Error(
                f"{SETTINGS_NAME}['API_BASE_URL'] is not an http(s) URL: {base_url!r}.",
                hint="Pinterest: https://api.pinterest.com/v5; the sandbox: http://HOST:PORT/v5",
                id="pinterest_capi.E007",
            )
        )
    keys = app_settings.ENCRYPTION_KEYS
    if not keys:
        messages.append(
            checks.Error(
                f"{SETTINGS_NAME}['ENCRYPTION_KEYS'] is empty: access tokens cannot be stored.",
                hint="Generate a key with cryptography.fernet.Fernet.generate_key() and keep it "
                "outside the code (an environment variable).",
                id="pinterest_capi.E001",
            )
        )
    else:
        from . import crypto

        try:
            crypto._fernet()
        except Exception as exc:  # ConfigurationError names the problem
            messages.append(checks.Error(str(exc), id="pinterest_capi.E002"))
    batch = app_settings.BATCH_SIZE
    if not isinstance(batch, int) or not 1 <= batch <= 1000:
        messages.append(
            checks.Error(
                f"{SETTINGS_NAME}['BATCH_SIZE'] must be an integer from 1 to 1000 (got {batch!r}).",
                id="pinterest_capi.E003",
            )
        )
    lanes = app_settings.FLUSH_LANES
    if not isinstance(lanes, int) or isinstance(lanes, bool) or not 1 <= lanes <= 16:
        messages.append(
            checks.Error(
                f"{SETTINGS_NAME}['FLUSH_LANES'] must be an integer from 1 to 16 (got {lanes!r}).",
                id="pinterest_capi.E008",
            )
        )
    if app_settings.CONSENT_DENIED not in ("skip", "opt_out"):
        messages.append(
            checks.Error(
                f"{SETTINGS_NAME}['CONSENT_DENIED'] must be 'skip' or 'opt_out' "
                f"(got {app_settings.CONSENT_DENIED!r}).",
                id="pinterest_capi.E005",
            )
        )
    for key in ("CONSENT_HOOK", "TENANT_RESOLVER", "ADMIN_TENANTS"):
        try:
            app_settings.import_callable(key)
        except Exception as exc:  # ImproperlyConfigured names the key and the path
            messages.append(checks.Error(str(exc), id="pinterest_capi.E006"))
    messages.extend(check_signal_table())
    lease = app_settings.LEASE_SECONDS
    deadline = app_settings.REQUEST_DEADLINE
    q_timeout = getattr(settings, "Q_CLUSTER", {}).get("timeout")
    if q_timeout is not None and not (lease > q_timeout > deadline):
        messages.append(
            checks.Error(
                f"Need LEASE_SECONDS ({lease}) > Q_CLUSTER['timeout'] ({q_timeout}) > "
                f"REQUEST_DEADLINE ({deadline}): otherwise a second worker can claim events "
                "a slow worker is still sending.",
                id="pinterest_capi.E004",
            )
        )
    elif not lease > deadline:
        messages.append(
            checks.Error(
                f"LEASE_SECONDS ({lease}) must exceed REQUEST_DEADLINE ({deadline}).",
                id="pinterest_capi.E004",
            )
        )
    for alias, db in settings.DATABASES.items():
        if db.get("ENGINE") != "django.db.backends.sqlite3":
            continue
        options = db.get("OPTIONS", {})
        if (
            options.get("transaction_mode") != "IMMEDIATE"
            or "wal" not in str(options.get("init_command", "")).lower()
        ):
            messages.append(
                checks.Warning(
                    f"SQLite database {alias!r} lacks transaction_mode='IMMEDIATE' and WAL: "
                    "the worker and the shop will hit 'database is locked'.",
                    hint='OPTIONS={"transaction_mode": "IMMEDIATE", "timeout": 20, '
                    '"init_command": "PRAGMA journal_mode=WAL;"}',
                    id="pinterest_capi.W002",
                )
            )
    return messages


def check_signal_table() -> list[checks.CheckMessage]:
    """Every signal → mapper entry (adapters' defaults and ``SIGNALS``) must import.

    Each message names the entry and where it was declared; the receivers skip such an
    entry, so without this check an event would silently never be recorded.
    """
    from . import receivers
    from .exceptions import ConfigurationError

    try:
        entries = receivers.signal_table()
    except ConfigurationError as exc:
        return [checks.Error(str(exc), id="pinterest_capi.E010")]
    messages: list[checks.CheckMessage] = []
    for entry in entries:
        try:
            receivers.load_signal(entry)
        except ConfigurationError as exc:
            messages.append(
                checks.Error(
                    str(exc),
                    hint="Give the dotted path of a django.dispatch.Signal instance, e.g. "
                    "'oscar.apps.order.signals.order_placed'; map it to None to drop an "
                    "adapter's entry.",
                    id="pinterest_capi.E011",
                )
            )
        try:
            receivers.load_mapper(entry.mapper, entry=entry)
        except ConfigurationError as exc:
            messages.append(
                checks.Error(
                    str(exc),
                    hint="A mapper is a callable(**signal_kwargs) returning None or a dict of "
                    "track() arguments with 'event_name', or its dotted path.",
                    id="pinterest_capi.E012",
                )
            )
    return messages


_MIDDLEWARE = "pinterest_capi.middleware.PinterestRequestMiddleware"
_SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"


@checks.register("pinterest_capi")
def check_tag_and_beacon(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The Pinterest Tag's, the beacon's and the API's throttle settings: caught here rather
    than as a 500 later."""
    messages: list[checks.CheckMessage] = []
    # DRF parses a rate only when a request is throttled: a bad one would be a 500 there.
    for key in ("API_THROTTLE_RATE", "BEACON_THROTTLE_RATE"):
        rate = getattr(app_settings, key)
        if rate is None:
            continue
        count, _, period = str(rate).partition("/")
        if not (count.isdigit() and period[:1] in {"s", "m", "h", "d"}):
            messages.append(
                checks.Error(
                    f"{SETTINGS_NAME}[{key!r}] = {rate!r} is not a rate.",
                    hint="Like '60/min' (per second, minute, hour or day), or None for no limit.",
                    id="pinterest_capi.E020",
                )
            )
    for key in ("BEACON_ALLOWED_ORIGINS", "BEACON_BOT_USER_AGENTS"):
        value = getattr(app_settings, key)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            messages.append(
                checks.Error(
                    f"{SETTINGS_NAME}[{key!r}] must be a list of strings.",
                    id="pinterest_capi.E021",
                )
            )
    for origin in app_settings.BEACON_ALLOWED_ORIGINS or []:
        if isinstance(origin, str) and not origin.startswith(("http://", "https://")):
            messages.append(
                checks.Error(
                    f"{SETTINGS_NAME}['BEACON_ALLOWED_ORIGINS'] entry {origin!r} is not an origin.",
                    hint="Scheme and host, like 'https://www.shop.example'.",
                    id="pinterest_capi.E021",
                )
            )
    middleware = list(getattr(settings, "MIDDLEWARE", []) or [])
    if _MIDDLEWARE in middleware and _SESSION_MIDDLEWARE in middleware:
        if middleware.index(_MIDDLEWARE) < middleware.index(_SESSION_MIDDLEWARE):
            messages.append(
                checks.Warning(
                    f"{_MIDDLEWARE} is listed before SessionMiddleware: Pinterest Tag calls of "
                    "events recorded before a redirect would not reach the next page.",
                    hint="Put it after SessionMiddleware (last is fine).",
                    id="pinterest_capi.W020",
                )
            )
    return messages
