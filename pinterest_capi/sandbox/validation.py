"""Contract checks for ``POST /v5/ad_accounts/{id}/events``, lean enough for thousands of events/s.

Two kinds of failure, as Pinterest has them (see ``contract.md``):

* a schema violation anywhere (unknown key, wrong JSON type, missing required field, 0 or >1000
  events) rejects the WHOLE request with 400: :class:`SchemaError`;
* a semantic problem with one event (hash not SHA-256 hex, no usable identifier, event_time too
  old or in the future) fails that event only: :func:`check_event` returns its message.

Plain dict/str checks with precompiled regexes; no jsonschema (too slow for a benchmark stand-in).
Stricter than Pinterest's published schema in one place: unknown keys in ``user_data`` are
rejected too (the schema's ``anyOf`` does not forbid them), to catch typos in the app.

This module is the reference: it names the first violation in document order, the message a 400
carries.  The benchmarks' common case, a batch whose events are all valid and clean, is answered
by :mod:`.fastcheck` in a fraction of the time; it only ever says "all clean" where the checks
here would find nothing either, and defers to them otherwise.
"""

from __future__ import annotations

import re
from typing import Any

MAX_EVENTS = 1000
DEFAULT_MAX_EVENT_AGE = 7 * 24 * 3600  # seconds: older events fail per event
DEFAULT_MAX_FUTURE_SKEW = 600  # seconds: tolerated clock skew for event_time in the future

_NONE = type(None)
_STR = (str,)
_NSTR = (str, _NONE)
_INT = (int,)
_NINT = (int, _NONE)
_BOOL = (bool,)
_STRLIST = "string-array"  # marker kinds for containers
_HASHED = "hashed-array"

_TYPE_NAMES = {
    _STR: "string",
    _NSTR: "string",
    _INT: "integer",
    _NINT: "integer",
    _BOOL: "boolean",
    _STRLIST: "array",
    _HASHED: "array",
}

_is_sha256 = re.compile(r"[0-9a-f]{64}").fullmatch
_NOT_SHA256 = "expected a lowercase SHA-256 hex digest"

ACTION_SOURCES = frozenset({"web", "app_android", "app_ios", "offline"})
STANDARD_EVENT_NAMES = frozenset(
    "add_to_cart checkout custom lead page_visit search signup view_category watch_video "
    "add_payment_info add_to_wishlist initiate_checkout subscribe view_content app_install "
    "app_open contact customize_product find_location schedule start_trial "
    "submit_application".split()
)
REQUIRED = ("event_name", "action_source", "event_time", "event_id", "user_data")
HASHED_FIELDS = ("em", "ph", "ge", "db", "fn", "ln", "ct", "st", "zp", "country", "external_id")

USER_DATA: dict[str, Any] = {name: _HASHED for name in (*HASHED_FIELDS, "hashed_maids")}
USER_DATA.update(client_ip_address=_STR, client_user_agent=_STR, click_id=_NSTR, partner_id=_NSTR)

CONTENT_ITEM: dict[str, Any] = {
    "id": _STR,
    "item_brand": _STR,
    "item_category": _STR,
    "item_name": _STR,
    "item_price": _STR,
    "quantity": _INT,
}
_CONTENTS = "contents"
CUSTOM_DATA: dict[str, Any] = {
    "content_brand": _NSTR,
    "content_category": _NSTR,
    "content_ids": _STRLIST,
    "content_name": _NSTR,
    "contents": _CONTENTS,
    "currency": _NSTR,
    "external_measurement_id": _NSTR,
    "external_measurement_vendor_id": _NINT,
    "np": _NSTR,
    "num_items": _INT,
    "opt_out_type": _NSTR,
    "order_id": _NSTR,
    "predicted_ltv": _NSTR,
    "search_string": _NSTR,
    "value": _NSTR,
}
APP_INFO: dict[str, Any] = {
    "app_id": _STR,
    "app_name": _STR,
    "app_package_name": _STR,
    "app_store": _STR,
    "app_version": _STR,
    "install_time": _INT,
    "user_agent": _STR,
    "window_height": _INT,
    "window_width": _INT,
}
DEVICE_INFO: dict[str, Any] = {
    name: _INT
    for name in (
        "battery_level cpu_cores external_storage_free_space external_storage_size "
        "screen_density screen_height screen_width storage_free_space storage_size"
    ).split()
}
DEVICE_INFO.update(
    {
        name: _STR
        for name in (
            "brand carrier form_factor kernel_version locale model network_type os_family "
            "os_name os_release_name os_version timezone timezone_abbr type"
        ).split()
    }
)
DEVICE_INFO["languages"] = _STRLIST

_USER_DATA = "user_data"
_CUSTOM = "custom_data"
EVENT: dict[str, Any] = {
    "event_name": _STR,
    "action_source": _STR,
    "event_time": _INT,
    "event_id": _STR,
    "user_data": _USER_DATA,
    "custom_data": _CUSTOM,
    "app_info": APP_INFO,
    "device_info": DEVICE_INFO,
    "event_source_url": _NSTR,
    "opt_out": _BOOL,
    "partner_name": _NSTR,
    "language": _NSTR,
    "wifi": _BOOL,
}
EVENT.update(
    {
        name: _NSTR
        for name in (
            "app_id app_name app_version device_brand device_carrier device_model "
            "device_type os_version"
        ).split()
    }
)


class SchemaError(ValueError):
    """The request violates the schema: Pinterest answers 400 (code 4196) for the whole batch."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _not_type(value: Any, kind: Any, where: str) -> SchemaError:
    return SchemaError(f"{_short(value)} is not of type '{_TYPE_NAMES[kind]}' at {where}")


def _unexpected(key: str, where: str) -> SchemaError:
    return SchemaError(f"Additional properties are not allowed ({key!r} was unexpected) at {where}")


def _check_strings(value: Any, kind: Any, where: str) -> None:
    """An array of strings (content_ids, every hashed user_data field), else a schema error."""
    if type(value) is not list:
        raise _not_type(value, kind, where)
    for item in value:
        if type(item) is not str:
            raise _not_type(item, _STR, f"{where}[]")


def _check_object(obj: Any, spec: dict[str, Any], where: str) -> None:
    """Flat objects (custom_data, contents items, app_info, device_info): keys and types."""
    if type(obj) is not dict:
        raise SchemaError(f"{_short(obj)} is not of type 'object' at {where}")
    for key, value in obj.items():
        kind = spec.get(key)
        if kind is None:
            raise _unexpected(key, where)
        if kind is _STRLIST:
            _check_strings(value, kind, f"{where}.{key}")
        elif kind is _CONTENTS:
            if type(value) is not list:
                raise _not_type(value, _STRLIST, f"{where}.{key}")
            for i, item in enumerate(value):
                _check_object(item, CONTENT_ITEM, f"{where}.{key}[{i}]")
        elif type(value) not in kind:
            raise _not_type(value, kind, f"{where}.{key}")


def _check_user_data(user_data: Any, where: str) -> str:
    """Schema-check user_data; return the per-event error message ("" when fine)."""
    if type(user_data) is not dict:
        raise SchemaError(f"{_short(user_data)} is not of type 'object' at {where}")
    error = ""
    for key, value in user_data.items():
        kind = USER_DATA.get(key)
        if kind is None:
            raise _unexpected(key, where)
        if kind is _HASHED:
            _check_strings(value, kind, f"{where}.{key}")
            for item in value:
                if not error and not _is_sha256(item):
                    error = f"Invalid hashed value in field {key}: {_NOT_SHA256}"
        elif type(value) not in kind:
            raise _not_type(value, kind, f"{where}.{key}")
    if not error and not (
        user_data.get("em")
        or user_data.get("hashed_maids")
        or (user_data.get("client_ip_address") and user_data.get("client_user_agent"))
    ):
        error = (
            "Missing user identifier: user_data needs em, hashed_maids, "
            "or both client_ip_address and client_user_agent"
        )
    return error


def check_event(
    event: Any,
    index: int,
    now: float,
    max_age: float = DEFAULT_MAX_EVENT_AGE,
    max_future: float = DEFAULT_MAX_FUTURE_SKEW,
) -> tuple[str, str]:
    """Check one event; return ``(error_message, warning_message)`` ("" when none).

    Raises :class:`SchemaError` for a schema violation (the whole request then fails).
    """
    where = f"data[{index}]"
    if type(event) is not dict:
        raise SchemaError(f"{_short(event)} is not of type 'object' at {where}")
    for name in REQUIRED:
        if name not in event:
            raise SchemaError(f"{name!r} is a required property at {where}")
    error = ""
    for key, value in event.items():
        kind = EVENT.get(key)
        if kind is None:
            raise _unexpected(key, where)
        if kind is _USER_DATA:
            error = _check_user_data(value, f"{where}.user_data")
        elif kind is _CUSTOM or type(kind) is dict:
            _check_object(value, CUSTOM_DATA if kind is _CUSTOM else kind, f"{where}.{key}")
        elif type(value) not in kind:
            raise _not_type(value, kind, f"{where}.{key}")
    if not error:
        event_time = event["event_time"]
        if event_time < now - max_age:
            error = "Invalid event_timestamp parameter. Given timestamp is in the past"
        elif event_time > now + max_future:
            error = "Invalid event_timestamp parameter. Given timestamp is in the future"
        elif event["action_source"] not in ACTION_SOURCES:
            error = f"Invalid action_source {_short(event['action_source'])}"
    warning = ""
    if event["event_name"] not in STANDARD_EVENT_NAMES:
        warning = f"event_name {_short(event['event_name'])} is not a standard event name"
    elif not event["event_id"]:
        warning = "Empty event_id: this event cannot be deduplicated"
    if not error and not warning:
        return OK
    return error, warning


OK = ("", "")  # a clean event's result: the same tuple every time, recognisable by identity


def check_events(
    data: list[Any],
    now: float,
    max_age: float = DEFAULT_MAX_EVENT_AGE,
    max_future: float = DEFAULT_MAX_FUTURE_SKEW,
) -> list[tuple[str, str]]:
    """:func:`check_event` for every event of a batch (``data[i]`` → result ``i``).

    Raises :class:`SchemaError` at the first event with a schema violation.
    """
    return [check_event(event, i, now, max_age, max_future) for i, event in enumerate(data)]


def check_body(payload: Any) -> list[Any]:
    """Check the envelope ``{"data": [...]}``; return the list of events or raise SchemaError."""
    if type(payload) is not dict:
        raise SchemaError(f"{_short(payload)} is not of type 'object'")
    for key in payload:
        if key != "data":
            raise _unexpected(key, "the request body")
    if "data" not in payload:
        raise SchemaError("'data' is a required property")
    data = payload["data"]
    if type(data) is not list:
        raise SchemaError(f"{_short(data)} is not of type 'array' at data")
    if not data:
        raise SchemaError("[] is too short: data needs at least 1 event")
    if len(data) > MAX_EVENTS:
        raise SchemaError(f"data is too long: {len(data)} events, at most {MAX_EVENTS} per request")
    return data
