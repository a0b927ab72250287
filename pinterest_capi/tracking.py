"""``track()``: the public entry that turns a conversion into outbox rows.

It resolves the tenant, asks the shop's consent hook (:mod:`pinterest_capi.consent`),
builds the API event (normalising and hashing PII — raw values never reach
the database) and records one row per active ad account, inside the caller's
transaction.  Bad input raises
:class:`~pinterest_capi.exceptions.InvalidEventError` naming the field; the
signal receivers catch and log it so a shop's checkout never breaks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.http import HttpRequest

from . import consent, events, outbox, tag_events
from .conf import app_settings
from .context import get_current_request, request_user_data
from .models import OutboxEvent
from .savepoints import DeferredSavepoint
from .tenants import resolve_tenant

logger = logging.getLogger(__name__)


def track(
    event_name: str,
    *,
    tenant: str | None = None,
    user_data: Mapping[str, Any] | None = None,
    custom_data: Mapping[str, Any] | None = None,
    event_id: str | None = None,
    event_time: int | float | datetime | None = None,
    action_source: str = "web",
    event_source_url: str | None = None,
    request: HttpRequest | None = None,
    obj: Any = None,
    browser_tag: bool = True,
    **event_fields: Any,
) -> list[OutboxEvent]:
    """Record ``event_name`` for every active ad account of the tenant.

    ``user_data`` takes raw values under Pinterest's own keys (``em``, ``ph``,
    ``fn``, … ``client_ip_address``, ``client_user_agent``, ``click_id``); the
    app normalises and hashes them.  For web events the current request (passed,
    or kept by the middleware) supplies the IP address, user agent, click id and
    page URL where they are not given.  Returns the outbox rows (existing rows
    when the same event was recorded before: recording is idempotent).

    ``CONSENT_HOOK`` is asked first (here, so direct calls and signal receivers obey
    it alike): when it refuses, ``CONSENT_DENIED`` either records nothing (``[]``,
    before the input is even read, so nothing about the visitor is processed) or
    records the event with ``opt_out: true``; a ``Consent`` with
    ``limited_data_processing`` adds ``opt_out_type "LDP"`` and the hashed state
    and country.  An ``opt_out=True`` the caller passes is kept whatever the hook says.

    A web event recorded with consent and a request is also queued for the page's Pinterest
    Tag (:mod:`pinterest_capi.tag_events`): ``{% pinterest_tag_events %}`` renders its
    ``pintrk('track', …)`` call with the same ``event_id``.  ``browser_tag=False`` skips that,
    for events whose browser call was already made (the beacon) or that no page shows.
    """
    return record_event(
        event_name,
        tenant=tenant,
        user_data=user_data,
        custom_data=custom_data,
        event_id=event_id,
        event_time=event_time,
        action_source=action_source,
        event_source_url=event_source_url,
        request=request,
        obj=obj,
        browser_tag=browser_tag,
        **event_fields,
    )


def record_event(
    event_name: str,
    *,
    tenant: str | None = None,
    user_data: Mapping[str, Any] | None = None,
    custom_data: Mapping[str, Any] | None = None,
    event_id: str | None = None,
    event_time: int | float | datetime | None = None,
    action_source: str = "web",
    event_source_url: str | None = None,
    request: HttpRequest | None = None,
    obj: Any = None,
    browser_tag: bool = True,
    savepoint: bool | DeferredSavepoint = True,
    **event_fields: Any,
) -> list[OutboxEvent]:
    """:func:`track`, for callers that record inside a savepoint of their own.

    The signal receivers run mapper and recording in a
    :class:`~pinterest_capi.savepoints.DeferredSavepoint` and pass it as ``savepoint``: the
    insert opens it (on PostgreSQL in the same round trip) unless a statement before did;
    ``savepoint=False`` means the caller's savepoint is open already.  Everything else is
    :func:`track`'s.
    """
    if not app_settings.ENABLED:
        return []
    request = request if request is not None else get_current_request()
    tenant_key = resolve_tenant(tenant=tenant, request=request, obj=obj)
    decision = consent.ask_consent(
        request=request, obj=obj, event_name=event_name, tenant=tenant_key
    )
    if not decision.allowed:
        if consent.denied_action() == consent.DENIED_SKIP:
            logger.info(
                "Pinterest event %r of tenant %r not recorded: consent not given.",
                event_name,
                tenant_key,
            )
            return []
        event_fields["opt_out"] = True  # Pinterest keeps it for reporting only
    merged_user_data = dict(user_data or {})
    custom_data = consent.apply_limited_data_processing(decision, merged_user_data, custom_data)
    if request is not None and action_source == "web":
        for key, value in request_user_data(request).items():
            merged_user_data.setdefault(key, value)
        if event_source_url is None:
            event_source_url = request.build_absolute_uri()
    event = events.build_event(
        event_name,
        user_data=merged_user_data,
        custom_data=custom_data,
        event_id=event_id,
        event_time=event_time,
        action_source=action_source,
        event_source_url=event_source_url,
        default_phone_region=app_settings.DEFAULT_PHONE_REGION,
        **event_fields,
    )
    rows = outbox.record_for_tenant(event, tenant=tenant_key, savepoint=savepoint)
    if not rows:
        logger.warning(
            "No active Pinterest ad account for tenant %r: %s %s not recorded.",
            tenant_key,
            event["event_name"],
            event["event_id"],
        )
        return []
    if (
        browser_tag
        and rows
        and request is not None
        and decision.allowed
        and event["action_source"] == "web"
        and not event.get("opt_out")
    ):
        tag_events.queue_for_page(request, event, using=rows[0]._state.db)
    return rows
