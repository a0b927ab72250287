"""validate_event: keys, exact JSON types and the identifier rule of a built event."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from ..exceptions import InvalidEventError, MissingIdentifierError
from .fields import (
    _ACTION_SOURCE_MESSAGE,
    _COUNT_FIELDS,
    _EVENT_BOOL_FIELDS,
    _INFO_SPECS,
    _USER_FIELDS,
    ACTION_SOURCES,
    CONTENT_FIELDS,
    CUSTOM_DATA_FIELDS,
    EVENT_FIELDS,
    IDENTIFIER_MESSAGE,
    PLAIN_USER_FIELDS,
    REQUIRED_EVENT_FIELDS,
    _is_two_letters,
)

_is_hashed = re.compile(r"[a-f0-9]{64}").fullmatch
_PLAIN = frozenset(PLAIN_USER_FIELDS)
_JSON_TYPES = {str: "string", int: "integer", bool: "boolean", list: "array"}


def _check_keys(obj: Any, allowed: Collection[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise InvalidEventError(where, "must be an object")
    for key in obj:
        if key not in allowed:
            raise InvalidEventError(f"{where}.{key}", f"is not a field of {where}")


def _check_type(value: Any, kind: type, field: str) -> None:
    if type(value) is not kind:  # exact: a bool is not an int on the wire
        raise InvalidEventError(field, f"must be of JSON type {_JSON_TYPES[kind]}")


def _check_user_data(user_data: Any) -> None:
    _check_keys(user_data, _USER_FIELDS, "user_data")
    for key, value in user_data.items():
        if key in _PLAIN:
            _check_type(value, str, f"user_data.{key}")
            continue
        _check_type(value, list, f"user_data.{key}")
        for item in value:
            if type(item) is not str or not _is_hashed(item):
                raise InvalidEventError(f"user_data.{key}", "must hold lowercase SHA-256 hex")
    if not (
        user_data.get("em")
        or user_data.get("hashed_maids")
        or (user_data.get("client_ip_address") and user_data.get("client_user_agent"))
    ):
        raise MissingIdentifierError("user_data", IDENTIFIER_MESSAGE)


def _check_custom_data(custom_data: Any) -> None:
    _check_keys(custom_data, CUSTOM_DATA_FIELDS, "custom_data")
    for key, value in custom_data.items():
        field = f"custom_data.{key}"
        if key in _COUNT_FIELDS:
            _check_type(value, int, field)
        elif key in ("content_ids", "contents"):
            _check_type(value, list, field)
            for i, item in enumerate(value):
                if key == "content_ids":
                    _check_type(item, str, f"{field}[{i}]")
                    continue
                _check_keys(item, CONTENT_FIELDS, f"{field}[{i}]")
                for name, v in item.items():
                    _check_type(v, int if name == "quantity" else str, f"{field}[{i}].{name}")
        else:
            _check_type(value, str, field)


def _check_info(info: Any, where: str) -> None:
    spec = _INFO_SPECS[where]
    _check_keys(info, spec.keys(), where)
    for key, value in info.items():
        field, kind = f"{where}.{key}", spec[key]
        _check_type(value, str if isinstance(kind, frozenset) else kind, field)
        if isinstance(kind, frozenset) and value not in kind:
            raise InvalidEventError(field, f"must be one of {', '.join(sorted(kind))}")
        if kind is int and value < 0:
            raise InvalidEventError(field, "must not be negative")
        if kind is list:
            for i, item in enumerate(value):
                _check_type(item, str, f"{field}[{i}]")


def validate_event(event: Mapping[str, Any]) -> None:
    """Check a built event against the contract; raise InvalidEventError naming the field.

    Keys at every level, JSON types, hashed arrays of lowercase SHA-256 hex and the identifier
    rule: what would make Pinterest reject the whole batch (400) or this event.  The event_time
    window is not checked here (it depends on when the event is sent, not what it is).
    """
    if not isinstance(event, Mapping):
        raise InvalidEventError("event", "must be a mapping")
    for name in REQUIRED_EVENT_FIELDS:
        if name not in event:
            raise InvalidEventError(name, "is required")
    for key, value in event.items():
        if key not in EVENT_FIELDS:
            raise InvalidEventError(key, "is not a field of Pinterest's event object")
        if key == "user_data":
            _check_user_data(value)
        elif key == "custom_data":
            _check_custom_data(value)
        elif key in _INFO_SPECS:
            _check_info(value, key)
        elif key in _EVENT_BOOL_FIELDS:
            _check_type(value, bool, key)
        else:
            _check_type(value, int if key == "event_time" else str, key)
    if not event["event_name"] or not event["event_id"]:
        raise InvalidEventError("event_name" if not event["event_name"] else "event_id", "is empty")
    if event["action_source"] not in ACTION_SOURCES:
        raise InvalidEventError("action_source", _ACTION_SOURCE_MESSAGE)
    if "language" in event and not _is_two_letters(event["language"]):
        raise InvalidEventError("language", "must be a two-letter ISO-639-1 code")
