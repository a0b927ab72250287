"""Consent and opt-out: ask the shop whether an event may be tracked, and how.

A shop knows its visitors' choices (a cookie banner, an account preference, a
"Do not sell or share" link); this app does not.  ``PINTEREST_CAPI["CONSENT_HOOK"]``
names a callable that :func:`~pinterest_capi.tracking.track` asks before every event, so
direct calls and the signal receivers obey the same answer::

    def consent_hook(*, request=None, user=None, event_name, tenant):
        return request is None or request.COOKIES.get("ads_consent") == "yes"

It may return ``True``/``None`` (allowed), ``False`` (not allowed), or a :class:`Consent`,
which can also switch on California limited data processing (LDP).  What "not allowed" means
is ``CONSENT_DENIED``: ``"skip"`` records nothing, ``"opt_out"`` records the event with
``opt_out: true`` so Pinterest uses it for reporting only.

The hook is privacy code, so every failure is a "no" (fail closed): a hook that cannot be
imported, raises, or answers something else is logged and the event is treated as not allowed.
Logs name the hook, the event name and the tenant, never the request, the user or the
exception's message (which may quote a cookie or an email address).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import transaction
from django.http import HttpRequest

from .conf import SETTINGS_NAME, app_settings

logger = logging.getLogger(__name__)

DENIED_SKIP = "skip"
DENIED_OPT_OUT = "opt_out"
DENIED_CHOICES: frozenset[str] = frozenset({DENIED_SKIP, DENIED_OPT_OUT})
LDP = "LDP"
# Pinterest's LDP applies to California residents: these are sent (hashed) unless told otherwise.
LDP_DEFAULT_STATE = "ca"
LDP_DEFAULT_COUNTRY = "us"


@dataclass(frozen=True)
class Consent:
    """A consent hook's full answer.

    ``allowed`` decides whether the event may be tracked (see ``CONSENT_DENIED`` for what
    happens when not).  ``limited_data_processing`` marks the event for Pinterest's
    California LDP: ``custom_data.opt_out_type = "LDP"`` plus the user's hashed state and
    country, ``state``/``country`` when given, else ``"ca"``/``"us"``.
    """

    allowed: bool
    limited_data_processing: bool = False
    state: str | None = None
    country: str | None = None


ALLOWED = Consent(allowed=True)
DENIED = Consent(allowed=False)


def user_for(request: HttpRequest | None, obj: Any = None) -> Any:
    """The user the hook is told about: ``request.user`` if authenticated, else ``obj`` if it
    is an instance of the user model (a signup signal), else None.

    Kept deliberately simple: an order's customer is not looked up; a hook that needs it
    can read the request or its own tables.
    """
    user = getattr(request, "user", None) if request is not None else None
    if user is not None and getattr(user, "is_authenticated", False) is True:
        return user
    if obj is not None and apps.is_installed("django.contrib.auth"):
        from django.contrib.auth import get_user_model

        if isinstance(obj, get_user_model()):
            return obj
    return None


def _where(exc: BaseException) -> str:
    """The traceback of ``exc`` without its message: enough to find the bug, no PII."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


def ask_consent(
    *, request: HttpRequest | None, obj: Any = None, event_name: str, tenant: str
) -> Consent:
    """Call ``CONSENT_HOOK`` and return its answer as a :class:`Consent` (never raises).

    No hook configured means allowed.  Inside the shop's transaction the call runs in a
    savepoint, so a hook whose database query fails cannot leave that transaction unusable
    (PostgreSQL aborts the whole transaction otherwise); outside one no transaction is
    opened (on SQLite in IMMEDIATE mode that would take the write lock for a read).
    """
    path = app_settings.CONSENT_HOOK
    if path is None:
        return ALLOWED
    name = path if isinstance(path, str) else getattr(path, "__qualname__", repr(path))
    try:
        hook = app_settings.import_callable("CONSENT_HOOK")
        user = user_for(request, obj)
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():
                answer = hook(request=request, user=user, event_name=event_name, tenant=tenant)
        else:
            answer = hook(request=request, user=user, event_name=event_name, tenant=tenant)
    except Exception as exc:
        logger.error(
            "%s['CONSENT_HOOK'] %s raised %s for event %r of tenant %r: treated as not "
            "allowed (fail closed). Traceback (message omitted):\n%s",
            SETTINGS_NAME,
            name,
            type(exc).__qualname__,
            event_name,
            tenant,
            _where(exc),
        )
        return DENIED
    if answer is None or answer is True:
        return ALLOWED
    if answer is False:
        return DENIED
    if isinstance(answer, Consent):
        return answer
    logger.error(
        "%s['CONSENT_HOOK'] %s returned a %s for event %r of tenant %r (expected Consent, "
        "bool or None): treated as not allowed (fail closed).",
        SETTINGS_NAME,
        name,
        type(answer).__qualname__,
        event_name,
        tenant,
    )
    return DENIED


def denied_action() -> str:
    """``CONSENT_DENIED`` checked: an unknown value is logged and acts as ``"skip"``.

    Skipping is the choice that cannot send anything the visitor refused, so a typo in the
    setting errs on the side of privacy instead of breaking the shop's checkout.
    """
    value = app_settings.CONSENT_DENIED
    if value in DENIED_CHOICES:
        return value
    logger.error(
        "%s['CONSENT_DENIED'] is %r; expected one of %s. Acting as %r.",
        SETTINGS_NAME,
        value,
        ", ".join(sorted(repr(c) for c in DENIED_CHOICES)),
        DENIED_SKIP,
    )
    return DENIED_SKIP


def apply_limited_data_processing(
    consent: Consent, user_data: dict[str, Any], custom_data: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Mark an event for LDP when ``consent`` asks for it; returns the custom_data to use.

    ``user_data`` (raw values, hashed later by the event builder like any other) gets ``st``
    and ``country``: the Consent's values first (the hook decided the jurisdiction), then
    values the caller already gave, then ``"ca"``/``"us"``.  An ``opt_out_type`` the caller
    set explicitly is kept.
    """
    if not consent.limited_data_processing:
        return dict(custom_data) if custom_data is not None else None
    for key, given, default in (
        ("st", consent.state, LDP_DEFAULT_STATE),
        ("country", consent.country, LDP_DEFAULT_COUNTRY),
    ):
        if given:
            user_data[key] = given
        elif not user_data.get(key):
            user_data[key] = default
    custom = dict(custom_data or {})
    if not custom.get("opt_out_type"):
        custom["opt_out_type"] = LDP
    return custom
