"""The OpenAPI (JSON Schema) description of one event of ``POST events/``.

Built from the same field tables :mod:`pinterest_capi.events` validates with, so the
document cannot drift from what the API accepts.  It describes Pinterest's own event
shape with one difference: a user_data field may be given raw (a string, or a list of
strings) and is then normalised and hashed by the app; a 64-hex value is taken as
already hashed.  The document is a description for callers and generators; the rules
themselves (normalisation, the identifier rule, the event_time window) are enforced by
``events.build_event`` and reported per event.
"""

from __future__ import annotations

from typing import Any

from ..events import (
    ACTION_SOURCES,
    CONTENT_FIELDS,
    HASHED_USER_FIELDS,
    PLAIN_USER_FIELDS,
    REQUIRED_EVENT_FIELDS,
)
from ..events.fields import (
    _COUNT_FIELDS,
    _CUSTOM_STRING_FIELDS,
    _EVENT_BOOL_FIELDS,
    _EVENT_STRING_FIELDS,
    _INFO_SPECS,
    _MONEY_FIELDS,
)

_STRING: dict[str, Any] = {"type": "string"}
_VISIBLE = r"^[^\x00]*\S[^\x00]*$"  # not blank; no NUL (a database cannot store it)
_MONEY: dict[str, Any] = {
    "oneOf": [{"type": "string"}, {"type": "number"}],
    "description": "An amount; sent to Pinterest as a decimal string.",
}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}


def _user_data() -> dict[str, Any]:
    hashed = {
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "description": "Raw (normalised and SHA-256 hashed by the app) or 64-hex already hashed.",
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "Needs em, hashed_maids, or both client_ip_address and client_user_agent.",
        "properties": {
            **{name: hashed for name in HASHED_USER_FIELDS},
            **{name: _STRING for name in PLAIN_USER_FIELDS},
        },
    }


def _custom_data() -> dict[str, Any]:
    content = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            name: _COUNT if name == "quantity" else _MONEY if name == "item_price" else _STRING
            for name in sorted(CONTENT_FIELDS)
        },
    }
    properties: dict[str, Any] = {
        "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$", "example": "USD"},
        "content_ids": {"type": "array", "items": {"type": "string"}},
        "contents": {"type": "array", "items": content},
        **{name: _MONEY for name in sorted(_MONEY_FIELDS)},
        **{name: _COUNT for name in sorted(_COUNT_FIELDS)},
        **{name: _STRING for name in sorted(_CUSTOM_STRING_FIELDS)},
    }
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _info(where: str) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, kind in sorted(_INFO_SPECS[where].items()):
        if isinstance(kind, frozenset):
            properties[name] = {"type": "string", "enum": sorted(kind)}
        elif kind is int:
            properties[name] = _COUNT
        elif kind is list:
            properties[name] = {"type": "array", "items": {"type": "string"}}
        else:
            properties[name] = _STRING
    return {"type": "object", "additionalProperties": False, "properties": properties}


def event_schema() -> dict[str, Any]:
    """JSON Schema of one event in Pinterest's shape (raw or hashed user_data)."""
    properties: dict[str, Any] = {
        "event_name": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "pattern": _VISIBLE,
            "example": "checkout",
        },
        "action_source": {"type": "string", "enum": sorted(ACTION_SOURCES)},
        "event_time": {
            "type": "integer",
            "description": "Unix seconds, at most 7 days ago and 5 minutes ahead.",
        },
        "event_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": _VISIBLE,
            "description": "The dedup key (shared with the Pinterest Tag); also this API's "
            "idempotency key per tenant and event_name.",
        },
        "user_data": _user_data(),
        "custom_data": _custom_data(),
        "app_info": _info("app_info"),
        "device_info": _info("device_info"),
        **{name: _STRING for name in sorted(_EVENT_STRING_FIELDS - {"language"})},
        "language": {"type": "string", "pattern": "^[A-Za-z]{2}$", "example": "en"},
        **{name: {"type": "boolean"} for name in sorted(_EVENT_BOOL_FIELDS)},
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(REQUIRED_EVENT_FIELDS),
        "properties": properties,
    }
