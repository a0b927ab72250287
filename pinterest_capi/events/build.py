"""build_event: the complete API event from shop data; event ids and the event_time window."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..exceptions import InvalidEventError
from .custom_data import normalise_custom_data
from .fields import (
    _ACTION_SOURCE_MESSAGE,
    _MILLISECONDS_THRESHOLD,
    ACTION_SOURCES,
    EVENT_FIELDS,
    MAX_EVENT_AGE,
    MAX_EVENT_ID_LENGTH,
    MAX_EVENT_NAME_LENGTH,
    MAX_FUTURE_SKEW,
    MAX_ORDER_ID_LENGTH,
)
from .hashing import normalise_user_data
from .validation import validate_event


def make_event_id(event_name: str, key: str | int | None = None) -> str:
    """The dedup key shared with the Pinterest Tag.

    With ``key`` (an order number, a user id) it is deterministic, ``"checkout-1001"``, so a
    reloaded page or a re-recorded event yields the same id and Pinterest deduplicates it.
    Without, it is unique per call: each add-to-cart is its own conversion.
    """
    if key is None:
        return f"{event_name}-{uuid.uuid4().hex}"
    if isinstance(key, bool) or not isinstance(key, str | int) or str(key).strip() == "":
        raise InvalidEventError("event_id", "key must be a non-empty string or an integer")
    return f"{event_name}-{str(key).strip()}"


def _event_time(value: Any, now: float) -> int:
    """Unix seconds, checked against Pinterest's window (7 days back, a little skew forward)."""
    if value is None:
        seconds = int(now)
    elif isinstance(value, datetime):
        if value.utcoffset() is None:
            raise InvalidEventError("event_time", "datetime must be timezone-aware")
        seconds = int(value.timestamp())
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InvalidEventError("event_time", "must be a finite number")
        seconds = int(value)
    else:
        raise InvalidEventError("event_time", "must be Unix seconds or an aware datetime")
    if seconds > _MILLISECONDS_THRESHOLD:
        raise InvalidEventError("event_time", "looks like milliseconds; give Unix seconds")
    if seconds < now - MAX_EVENT_AGE:
        raise InvalidEventError("event_time", "is more than 7 days in the past")
    if seconds > now + MAX_FUTURE_SKEW:
        raise InvalidEventError("event_time", "is more than 5 minutes in the future")
    return seconds


def build_event(
    event_name: str,
    *,
    user_data: Mapping[str, Any] | None,
    custom_data: Mapping[str, Any] | None = None,
    event_id: str | None = None,
    event_time: int | float | datetime | None = None,
    action_source: str = "web",
    event_source_url: str | None = None,
    default_phone_region: str | None = "US",
    now: float | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The complete API event, ready to store and send as is.

    Required keys first (event_name, action_source, event_time, event_id, user_data), then
    the optional ones that have a value.  ``event_id`` defaults to a unique id: pass one
    (see :func:`make_event_id`) wherever the same conversion may be recorded twice.  Other
    top-level fields of Pinterest's event object (opt_out, partner_name, language, app_info,
    device_info, the legacy app/device strings, wifi) go in ``fields``; ``None`` omits one.
    """
    now = time.time() if now is None else now
    if not isinstance(event_name, str) or not event_name.strip():
        raise InvalidEventError("event_name", "must be a non-empty string")
    event_name = event_name.strip()
    if len(event_name) > MAX_EVENT_NAME_LENGTH:
        raise InvalidEventError("event_name", f"is longer than {MAX_EVENT_NAME_LENGTH} characters")
    if action_source not in ACTION_SOURCES:
        raise InvalidEventError("action_source", _ACTION_SOURCE_MESSAGE)
    if event_id is None:
        event_id = make_event_id(event_name)
    elif not isinstance(event_id, str) or not event_id.strip():
        raise InvalidEventError("event_id", "must be a non-empty string")
    if len(event_id.strip()) > MAX_EVENT_ID_LENGTH:
        raise InvalidEventError("event_id", f"is longer than {MAX_EVENT_ID_LENGTH} characters")
    event: dict[str, Any] = {
        "event_name": event_name,
        "action_source": action_source,
        "event_time": _event_time(event_time, now),
        "event_id": event_id.strip(),
        "user_data": normalise_user_data(user_data, default_phone_region=default_phone_region),
    }
    custom = normalise_custom_data(custom_data) or None
    if custom and len(str(custom.get("order_id") or "")) > MAX_ORDER_ID_LENGTH:
        raise InvalidEventError(
            "custom_data.order_id", f"is longer than {MAX_ORDER_ID_LENGTH} characters"
        )
    optional = {"event_source_url": event_source_url, "custom_data": custom, **fields}
    for name, value in optional.items():
        if name not in EVENT_FIELDS:
            raise InvalidEventError(name, "is not a field of Pinterest's event object")
        if isinstance(value, str):
            value = value.strip().lower() if name == "language" else value.strip()
        elif isinstance(value, Mapping):
            value = dict(value)
        if value is not None and value != "":
            event[name] = value
    validate_event(event)
    return event
