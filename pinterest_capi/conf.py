"""The app's settings: one ``PINTEREST_CAPI`` dict, read on every access.

Values are looked up lazily (never frozen at import) so ``override_settings``
works in tests and a deployment can change them without code.  Every key and
its default lives in :data:`DEFAULTS`; the README's settings table is checked
against it by a test.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

SETTINGS_NAME = "PINTEREST_CAPI"

DEFAULTS: dict[str, Any] = {
    # Where requests go. The sandbox speaks the same contract at http://HOST:PORT/v5.
    "API_BASE_URL": "https://api.pinterest.com/v5",
    # Fernet keys (url-safe base64, 32 bytes). The first encrypts; all decrypt.
    "ENCRYPTION_KEYS": [],
    # Master switch: when False, track() and the receivers record nothing.
    "ENABLED": True,
    # Events per request to Pinterest (the API allows 1..1000).
    "BATCH_SIZE": 1000,
    # Rows one flush cycle claims at most (split into batches per account). Small enough that
    # flush lanes share a backlog evenly and the first claim (which nothing overlaps) is short.
    "CLAIM_SIZE": 2000,
    # PostgreSQL: flush loops one worker runs side by side when draining a backlog (each
    # claims its own rows; while one waits for Pinterest another saves or claims). 1: one.
    "FLUSH_LANES": 2,
    # PostgreSQL: commit the flush's claim/result transactions waiting for the WAL flush
    # (True), or not (False: much faster; a database crash may forget the last moments of
    # bookkeeping, and those events are resent with the same event_id, which Pinterest
    # deduplicates). Never applies to the shop's own transactions.
    "SYNCHRONOUS_BOOKKEEPING": False,
    # httpx timeouts in seconds, and an overall deadline per request.
    "CONNECT_TIMEOUT": 5.0,
    "READ_TIMEOUT": 20.0,
    "REQUEST_DEADLINE": 30.0,
    # How long a claimed row stays ours; must exceed the task timeout.
    "LEASE_SECONDS": 120,
    # Sends of one event before it is marked failed (429s do not count).
    "MAX_ATTEMPTS": 8,
    # Jittered exponential backoff: base * 2**(attempt-1), capped.
    "BACKOFF_BASE_SECONDS": 15,
    "BACKOFF_MAX_SECONDS": 3600,
    # Requests per minute per ad account, shared by all workers (Pinterest allows 5,000;
    # enforced in 10-second windows, so 4,200 never exceeds 4,900 in any minute). 0: off.
    "RATE_LIMIT_PER_MINUTE": 4200,
    # Pause for a 429 without a usable Retry-After header.
    "RATE_LIMIT_PAUSE_SECONDS": 60,
    # Days a sent event is kept before purge removes it.
    "RETENTION_DAYS": 30,
    # Minutes between sweeps of the periodic django-q2 schedule.
    "SWEEP_INTERVAL_MINUTES": 1,
    # Nudge a flush task on commit after recording ("async"), run it inline
    # after commit ("sync", for tests and tiny shops), or rely on the sweep only ("off").
    "NUDGE": "async",
    # Dotted path to a callable(request=None, obj=None, user=None) -> tenant key or None.
    "TENANT_RESOLVER": None,
    # Tenant used when no resolver is set or it returns None.
    "DEFAULT_TENANT": "default",
    # Region used to parse phone numbers written without a country code.
    "DEFAULT_PHONE_REGION": "US",
    # Signal → mapper wiring: {"dotted.path.to.signal": "dotted.path.to.mapper" (or the
    # callable)}, over the entries of installed adapters (pinterest_capi.contrib.oscar, …);
    # a None value drops an adapter's entry. See pinterest_capi.receivers.
    "SIGNALS": {},
    # Re-raise recording errors instead of logging them (set True in tests).
    "RAISE_RECORD_ERRORS": False,
    # django-q2 queue name for flush tasks (None: the cluster's default).
    "Q_CLUSTER": None,
    # request.META key holding the client's address behind a trusted proxy
    # (e.g. "HTTP_X_FORWARDED_FOR"); None uses REMOTE_ADDR.
    "CLIENT_IP_HEADER": None,
    # Request header naming the tenant, read by pinterest_capi.tenants.tenant_from_header
    # (only behind a proxy that sets it: a visitor could send it too).
    "TENANT_HEADER": "X-Shop-Tenant",
    # Name of the first-party click id cookie kept by the middleware.
    "CLICK_ID_COOKIE": "_epik",
    # Lifetime of that cookie in days.
    "CLICK_ID_COOKIE_DAYS": 365,
    # Dotted path to callable(user) -> iterable of tenant keys (or None: all) that a staff
    # user may manage in the admin. None: pinterest_capi.permissions.tenants_from_groups
    # (superusers all; others the tenants of their "pinterest_capi:tenant:<key>" groups).
    "ADMIN_TENANTS": None,
    # Dotted path to callable(*, request=None, user=None, event_name, tenant) returning
    # Consent, bool or None; track() asks it before every event (None: no hook, allowed).
    "CONSENT_HOOK": None,
    # When the hook says no: "skip" records nothing; "opt_out" records the event with
    # opt_out: true (Pinterest then uses it for reporting only).
    "CONSENT_DENIED": "skip",
    # REST API: requests per API key (DRF rate syntax "N/second|minute|hour|day"); None: off.
    "API_THROTTLE_RATE": "120/minute",
    # Browser beacon (page_visit, search, view_category with a browser-made event_id): extra
    # origins allowed to post besides the request's own host, e.g. ["https://shop.example"].
    "BEACON_ALLOWED_ORIGINS": [],
    # DRF rate per client IP (CLIENT_IP_HEADER honoured) for the beacon; None: no limit.
    "BEACON_THROTTLE_RATE": "60/min",
    # Robots whose beacons are answered (204) but not recorded: case-insensitive substrings
    # of the User-Agent. A request without a User-Agent counts as a robot too.
    "BEACON_BOT_USER_AGENTS": [
        "bot/",
        "bot-",
        "bot;",
        "bot)",
        "crawler",
        "spider",
        "slurp",
        "headlesschrome",
        "phantomjs",
        "lighthouse",
        "facebookexternalhit",
        "python-",
        "curl/",
        "wget/",
        "httpx",
        "go-http-client",
        "java/",
    ],  # fmt: skip
}


class AppSettings:
    """Attribute access to ``settings.PINTEREST_CAPI`` with defaults."""

    def _user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTINGS_NAME, {}) or {}
        if not isinstance(value, dict):
            raise ImproperlyConfigured(f"settings.{SETTINGS_NAME} must be a dict.")
        return value

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown {SETTINGS_NAME} setting: {name!r}")
        return self._user_settings().get(name, DEFAULTS[name])

    def unknown_keys(self) -> list[str]:
        """Keys present in the user's dict that the app does not know (typos)."""
        return sorted(set(self._user_settings()) - set(DEFAULTS))

    def import_callable(self, name: str) -> Any:
        """Import the dotted path stored under ``name`` (None stays None)."""
        path = getattr(self, name)
        if path is None or callable(path):
            return path
        try:
            return import_string(path)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"{SETTINGS_NAME}[{name!r}] = {path!r} cannot be imported: {exc}"
            ) from exc


app_settings = AppSettings()
