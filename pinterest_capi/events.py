"""Pure event building: raw shop data in, the exact Pinterest Conversions API event dict out.

No settings, no models, no database (Django is reached only through the app's exception class):
everything here is a function of its arguments (plus the clock and uuid4 where a default is
asked for), so the outbox stores exactly what this returns and the tests can pin every byte.
The rules follow ``contract.md``; where it says "unsure" the choice made is documented on the
function that makes it.

Raw PII never appears in an exception message: errors name the field and the rule, not the value.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

from .exceptions import InvalidEventError, MissingIdentifierError

HASHED_USER_FIELDS: tuple[str, ...] = (
    "em", "ph", "ge", "db", "fn", "ln", "ct", "st", "zp", "country", "external_id", "hashed_maids",
)  # fmt: skip
PLAIN_USER_FIELDS: tuple[str, ...] = (
    "client_ip_address", "client_user_agent", "click_id", "partner_id",
)  # fmt: skip
REQUIRED_EVENT_FIELDS: tuple[str, ...] = (
    "event_name", "action_source", "event_time", "event_id", "user_data",
)  # fmt: skip
# Optional top-level string fields (legacy flat app/device fields among them).
_EVENT_STRING_FIELDS = frozenset(
    "event_source_url partner_name language app_id app_name app_version device_brand "
    "device_carrier device_model device_type os_version".split()
)
_EVENT_BOOL_FIELDS = frozenset({"opt_out", "wifi"})
EVENT_FIELDS: frozenset[str] = frozenset(
    {*REQUIRED_EVENT_FIELDS, *_EVENT_STRING_FIELDS, *_EVENT_BOOL_FIELDS}
    | {"custom_data", "app_info", "device_info"}
)
# custom_data fields by wire type.
_MONEY_FIELDS = frozenset({"value", "predicted_ltv"})
_COUNT_FIELDS = frozenset({"num_items", "external_measurement_vendor_id"})
_CUSTOM_STRING_FIELDS = frozenset(
    "content_name content_category content_brand order_id search_string opt_out_type np "
    "external_measurement_id".split()
)
CUSTOM_DATA_FIELDS: frozenset[str] = frozenset(
    _MONEY_FIELDS | _COUNT_FIELDS | _CUSTOM_STRING_FIELDS | {"currency", "content_ids", "contents"}
)
CONTENT_FIELDS: frozenset[str] = frozenset(
    {"id", "item_price", "quantity", "item_name", "item_category", "item_brand"}
)
STANDARD_EVENT_NAMES: frozenset[str] = frozenset(
    "add_to_cart checkout custom lead page_visit search signup view_category watch_video "
    "add_payment_info add_to_wishlist initiate_checkout subscribe view_content app_install "
    "app_open contact customize_product find_location schedule start_trial "
    "submit_application".split()
)
ACTION_SOURCES: frozenset[str] = frozenset({"web", "app_android", "app_ios", "offline"})

# app_info / device_info: the schema sets additionalProperties false on both, and a schema
# violation fails the whole batch, so keys, types and enums are checked here (lengths are not).
# A spec maps each key to int, str, list (of str) or a frozenset of the allowed strings.
_APP_INFO: dict[str, Any] = {
    **dict.fromkeys(("install_time", "window_height", "window_width"), int),
    **dict.fromkeys(
        ("app_id", "app_name", "app_package_name", "app_store", "app_version", "user_agent"), str
    ),
}
_DEVICE_INFO: dict[str, Any] = {
    **dict.fromkeys(
        "battery_level cpu_cores external_storage_free_space external_storage_size screen_density "
        "screen_height screen_width storage_free_space storage_size".split(),
        int,
    ),
    **dict.fromkeys(
        "brand carrier kernel_version locale model os_name os_release_name os_version timezone "
        "timezone_abbr type".split(),
        str,
    ),
    "languages": list,
    "form_factor": frozenset(
        "desktop laptop cellphone tablet smartwatch tv vr console other".split()
    ),
    "network_type": frozenset(
        "wifi cellular_2g cellular_3g cellular_4g cellular_5g cellular_6g ethernet unknown".split()
    ),
    "os_family": frozenset("ios android macos windows linux bsd other".split()),
}
_INFO_SPECS = {"app_info": _APP_INFO, "device_info": _DEVICE_INFO}

MAX_EVENT_NAME_LENGTH = 100
MAX_EVENT_AGE = 7 * 24 * 3600  # seconds: Pinterest fails older events
MAX_FUTURE_SKEW = 5 * 60  # seconds of clock skew tolerated; Pinterest's future rule is unsure
_MILLISECONDS_THRESHOLD = 10**11  # Unix seconds reach 1e11 only in the year 5138

_is_sha256 = re.compile(r"[A-Fa-f0-9]{64}").fullmatch
_is_hashed = re.compile(r"[a-f0-9]{64}").fullmatch
_is_us_zip = re.compile(r"\d{5}(-?\d{4})?").fullmatch
_is_two_letters = re.compile(r"[a-z]{2}").fullmatch
_is_currency = re.compile(r"[A-Z]{3}").fullmatch
_DATE_FORMATS = {8: "%Y%m%d", 10: "%Y-%m-%d"}
_GENDERS = {
    **dict.fromkeys(("f", "female", "woman"), "f"),
    **dict.fromkeys(("m", "male", "man"), "m"),
    **dict.fromkeys(("n", "non-binary", "nonbinary"), "n"),
}
_USER_FIELDS = frozenset(HASHED_USER_FIELDS + PLAIN_USER_FIELDS)
_ACTION_SOURCE_MESSAGE = f"must be one of {', '.join(sorted(ACTION_SOURCES))}"
IDENTIFIER_MESSAGE = "needs em, hashed_maids, or both client_ip_address and client_user_agent"


def sha256_hex(value: str) -> str:
    """SHA-256 of the UTF-8 bytes as lowercase hex: the only hash Pinterest matches on."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


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


# --- user_data -------------------------------------------------------------------------------


def _lower(text: str) -> str:
    return text.lower()


def _city(text: str) -> str:
    """Lowercase, no spaces or punctuation; letters of any script (and digits) are kept."""
    return "".join(ch for ch in text.lower() if unicodedata.category(ch)[0] in "LNM")


def _state(text: str) -> str:
    """A two-letter code lowercased; anything longer keeps its letters only ("N.Y." -> "ny").

    A full state name ("California") is hashed as its lowercase letters: mapping names to
    codes needs per-country tables this module does not carry.
    """
    text = text.lower()
    return text if _is_two_letters(text) else "".join(ch for ch in text if ch.isalpha())


def _zip(text: str) -> str:
    """US ZIP / ZIP+4 -> the first five digits; elsewhere lowercase without spaces."""
    text = "".join(text.lower().split())
    return text[:5] if _is_us_zip(text) else text


def _country(text: str) -> str:
    text = text.lower()
    if not _is_two_letters(text):
        raise InvalidEventError("user_data.country", "must be a two-letter ISO-3166 code")
    return text


def _gender(text: str) -> str:
    """f, m or n; any other answer is omitted rather than guessed."""
    return _GENDERS.get(text.lower(), "")


def _birth_date(text: str) -> str:
    fmt = _DATE_FORMATS.get(len(text))
    try:
        if fmt is None:
            raise ValueError
        return datetime.strptime(text, fmt).strftime("%Y%m%d")
    except ValueError:
        raise InvalidEventError(
            "user_data.db", "must be a date as YYYYMMDD or YYYY-MM-DD"
        ) from None


def _phone(text: str, region: str | None) -> str:
    """E.164 digits without "+": country-aware, so national trunk zeros are dropped.

    A number without "+" is read in ``region``; if it is not a possible number there and is
    all digits, it is read once more as already carrying its country code ("442079460000").
    """
    candidates = [(text, None if text.startswith("+") else region)]
    if text.isdigit():
        candidates.append(("+" + text, None))
    for candidate, candidate_region in candidates:
        try:
            number = phonenumbers.parse(candidate, candidate_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
    raise InvalidEventError("user_data.ph", "is not a valid phone number")


_NORMALISERS: dict[str, Callable[[str], str]] = {
    "em": _lower,
    "fn": _lower,
    "ln": _lower,
    "ct": _city,
    "st": _state,
    "zp": _zip,
    "country": _country,
    "ge": _gender,
    "db": _birth_date,
    "external_id": _lower,
    "hashed_maids": _lower,
}


def _hash_one(key: str, value: Any, region: str | None) -> str:
    """One raw value -> its hash, or "" when it normalises to nothing (dropped, never hashed)."""
    if key == "db" and isinstance(value, date):
        return sha256_hex(value.strftime("%Y%m%d"))
    if isinstance(value, int) and not isinstance(value, bool) and key != "db":
        value = str(value)
    if not isinstance(value, str):
        raise InvalidEventError(f"user_data.{key}", "must be a string or a list of strings")
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        return ""
    if _is_sha256(text):
        return text.lower()
    normalised = _phone(text, region) if key == "ph" else _NORMALISERS[key](text)
    return sha256_hex(normalised) if normalised else ""


def normalise_user_data(
    user_data: Mapping[str, Any] | None, *, default_phone_region: str | None = "US"
) -> dict[str, Any]:
    """Raw values under Pinterest's keys -> the API's user_data.

    Hashed fields become lists of SHA-256 hex (a str or a list/tuple of str each; empties
    dropped, duplicates removed keeping order, a value that already is a SHA-256 digest passed
    through lowercased).  Plain fields are kept as trimmed strings.  Text is NFC-normalised
    first so "São" typed on different keyboards hashes the same.  ``None`` values are omitted.
    """
    if user_data is None:
        return {}
    if not isinstance(user_data, Mapping):
        raise InvalidEventError("user_data", "must be a mapping")
    result: dict[str, Any] = {}
    for key, value in user_data.items():
        if key in PLAIN_USER_FIELDS:
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidEventError(f"user_data.{key}", "must be a string")
            if value.strip():
                result[key] = value.strip()
        elif key in HASHED_USER_FIELDS:
            values = value if isinstance(value, list | tuple) else [value]
            hashes = (_hash_one(key, v, default_phone_region) for v in values if v is not None)
            unique = list(dict.fromkeys(h for h in hashes if h))
            if unique:
                result[key] = unique
        else:
            raise InvalidEventError(f"user_data.{key}", "is not a field of Pinterest's user_data")
    return result


# --- custom_data -----------------------------------------------------------------------------


def _money(value: Any, field: str) -> str:
    """An amount as the decimal string Pinterest wants, never in exponent notation.

    Decimal, int, float or str; a Decimal keeps its written precision (``Decimal("72.390")``
    -> ``"72.390"``), a float its shortest repr (``72.39`` -> ``"72.39"``).
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise InvalidEventError(field, "must be a number or a numeric string")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise InvalidEventError(field, "must be a number or a numeric string") from None
    if not amount.is_finite():
        raise InvalidEventError(field, "must be a finite number")
    return format(amount, "f")


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEventError(field, "must be an integer")
    if value < 0:
        raise InvalidEventError(field, "must not be negative")
    return int(value)


def _text(value: Any, field: str, *, ints: bool = False) -> str:
    if ints and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InvalidEventError(field, "must be a string")
    return value.strip()


def _currency(value: Any, field: str) -> str:
    code = _text(value, field).upper()
    if not _is_currency(code):
        raise InvalidEventError(field, "must be a three-letter ISO-4217 code")
    return code


def _content_ids(value: Any, field: str) -> list[str]:
    if not isinstance(value, list | tuple):
        raise InvalidEventError(field, "must be a list of strings")
    ids = (_text(v, f"{field}[{i}]", ints=True) for i, v in enumerate(value) if v is not None)
    return [i for i in ids if i]


def _contents(value: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple):
        raise InvalidEventError(field, "must be a list of objects")
    items = []
    for i, raw in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidEventError(where, "must be a mapping")
        item: dict[str, Any] = {}
        for key, v in raw.items():
            if key not in CONTENT_FIELDS:
                raise InvalidEventError(f"{where}.{key}", "is not a field of a contents item")
            if v is None:
                continue
            if key == "item_price":
                item[key] = _money(v, f"{where}.{key}")
            elif key == "quantity":
                item[key] = _count(v, f"{where}.{key}")
            elif text := _text(v, f"{where}.{key}", ints=key == "id"):
                item[key] = text
        if item:
            items.append(item)
    return items


def _custom_value(key: str, value: Any) -> Any:
    field = f"custom_data.{key}"
    if key in _MONEY_FIELDS:
        return _money(value, field)
    if key in _COUNT_FIELDS:
        return _count(value, field)
    if key == "currency":
        return _currency(value, field)
    if key == "content_ids":
        return _content_ids(value, field)
    if key == "contents":
        return _contents(value, field)
    return _text(value, field, ints=key == "order_id")


def normalise_custom_data(custom_data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Shop values -> custom_data with Pinterest's exact wire types.

    Amounts (value, predicted_ltv, item_price) become decimal strings, counts (quantity,
    num_items) non-negative ints, ids strings (an int order_id or content id is accepted),
    currency upper-case.  ``None``, empty strings and empty lists are omitted, never sent.
    """
    if custom_data is None:
        return {}
    if not isinstance(custom_data, Mapping):
        raise InvalidEventError("custom_data", "must be a mapping")
    result: dict[str, Any] = {}
    for key, value in custom_data.items():
        if key not in CUSTOM_DATA_FIELDS:
            raise InvalidEventError(
                f"custom_data.{key}", "is not a field of Pinterest's custom_data"
            )
        if value is None:
            continue
        normalised = _custom_value(key, value)
        if normalised != "" and normalised != []:
            result[key] = normalised
    return result


# --- the event -------------------------------------------------------------------------------


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
    event: dict[str, Any] = {
        "event_name": event_name,
        "action_source": action_source,
        "event_time": _event_time(event_time, now),
        "event_id": event_id.strip(),
        "user_data": normalise_user_data(user_data, default_phone_region=default_phone_region),
    }
    custom = normalise_custom_data(custom_data) or None
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


# --- validation ------------------------------------------------------------------------------


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
        if key in PLAIN_USER_FIELDS:
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
