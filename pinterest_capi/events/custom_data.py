"""custom_data: shop values -> Pinterest's exact wire types (decimal strings, ints, strings)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ..exceptions import InvalidEventError
from .fields import _COUNT_FIELDS, _MONEY_FIELDS, CONTENT_FIELDS, CUSTOM_DATA_FIELDS

_is_currency = re.compile(r"[A-Z]{3}").fullmatch
_MAX_MONEY_DIGITS = 30


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
    # "1e999999999" is a finite Decimal whose plain form is a billion characters: amounts are
    # kept to 30 digits either side of the point (no price or value comes near).
    if not -_MAX_MONEY_DIGITS <= amount.as_tuple().exponent <= _MAX_MONEY_DIGITS or (
        amount.adjusted() > _MAX_MONEY_DIGITS
    ):
        raise InvalidEventError(
            field, "is out of range (at most 30 digits either side of the point)"
        )
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
