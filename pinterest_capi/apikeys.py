"""API keys: make one (shown once), check one, revoke one.

A key looks like ``pcapi_<prefix>_<secret>``: ``prefix`` is 12 random hex
characters stored in clear to find the row (and to show in lists), ``secret``
is 32 random bytes (url-safe base64).  The database keeps only the SHA-256 of
the whole key.  A plain, unsalted SHA-256 is enough here (unlike passwords): the
secret has 256 bits of entropy, so there is nothing to guess or precompute,
and checking a key costs one index lookup and one hash per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from .models import ApiKey

KEY_SCHEME = "pcapi"
PREFIX_BYTES = 6  # 12 hex characters
SECRET_BYTES = 32
# last_used_at is written at most this often per key: not one UPDATE per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(raw_key: str) -> str:
    """The SHA-256 hex digest stored for ``raw_key``."""
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def _new_key() -> tuple[str, str]:
    prefix = secrets.token_hex(PREFIX_BYTES)
    return prefix, f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def assign_new_key(api_key: ApiKey) -> str:
    """Give an unsaved ``api_key`` a fresh prefix and digest; return the full key (once)."""
    prefix, raw = _new_key()
    api_key.prefix = prefix
    api_key.key_hash = hash_key(raw)
    return raw


def create_key(*, tenant: str, name: str) -> tuple[ApiKey, str]:
    """Create and save a key for ``tenant``; return the row and the full key.

    The full key exists only in the return value: show it to the person who asked
    for it and drop it.  A prefix collision (1 in 2**48 per pair) just retries.
    """
    tenant, name = (tenant or "").strip(), (name or "").strip()
    if not tenant:
        raise ValueError("tenant: must not be empty")
    for _attempt in range(5):
        api_key = ApiKey(tenant=tenant, name=name or tenant)
        raw = assign_new_key(api_key)
        try:
            with transaction.atomic():
                api_key.save()
        except IntegrityError:
            continue
        return api_key, raw
    raise RuntimeError("could not find a free API key prefix")


def parse_key(raw_key: str) -> str | None:
    """The prefix of a well-formed key, or None (never raises on garbage)."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not parts[2]:
        return None
    prefix = parts[1]
    if len(prefix) != 2 * PREFIX_BYTES or any(c not in "0123456789abcdef" for c in prefix):
        return None
    return prefix


def check_key(raw_key: str) -> ApiKey | None:
    """The active key ``raw_key`` is, or None (unknown, revoked or malformed).

    The digest comparison is constant-time; ``last_used_at`` is refreshed when
    older than :data:`LAST_USED_RESOLUTION`.
    """
    prefix = parse_key(raw_key)
    if prefix is None:
        return None
    api_key = ApiKey.objects.filter(prefix=prefix).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, hash_key(raw_key)):
        return None
    if not api_key.active:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def revoke(api_keys: QuerySet[ApiKey]) -> int:
    """Revoke the active keys of a queryset; returns how many were revoked. One-way."""
    return api_keys.filter(active=True).update(active=False, revoked_at=timezone.now())
