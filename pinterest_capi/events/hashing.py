"""user_data: normalisation and SHA-256 hashing of the matching fields, phones via phonenumbers.

Raw PII never appears in an exception message: errors name the field and the rule, not the value.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import phonenumbers

from ..exceptions import InvalidEventError
from .fields import HASHED_USER_FIELDS, PLAIN_USER_FIELDS, _is_two_letters

_is_sha256 = re.compile(r"[A-Fa-f0-9]{64}").fullmatch
_PLAIN, _HASHED = frozenset(PLAIN_USER_FIELDS), frozenset(HASHED_USER_FIELDS)
_is_us_zip = re.compile(r"\d{5}(-?\d{4})?").fullmatch
_DATE_FORMATS = {8: "%Y%m%d", 10: "%Y-%m-%d"}
_GENDERS = {
    **dict.fromkeys(("f", "female", "woman"), "f"),
    **dict.fromkeys(("m", "male", "man"), "m"),
    **dict.fromkeys(("n", "non-binary", "nonbinary"), "n"),
}


def sha256_hex(value: str) -> str:
    """SHA-256 of the UTF-8 bytes as lowercase hex: the only hash Pinterest matches on."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


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
        if key in _PLAIN:
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidEventError(f"user_data.{key}", "must be a string")
            if value.strip():
                result[key] = value.strip()
        elif key in _HASHED:
            if value is None:
                continue
            if not isinstance(value, list | tuple):  # one value, the usual case
                if digest := _hash_one(key, value, default_phone_region):
                    result[key] = [digest]
                continue
            hashes = (_hash_one(key, v, default_phone_region) for v in value if v is not None)
            unique = list(dict.fromkeys(h for h in hashes if h))
            if unique:
                result[key] = unique
        else:
            raise InvalidEventError(f"user_data.{key}", "is not a field of Pinterest's user_data")
    return result
