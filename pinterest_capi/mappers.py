"""Standard mappers: a shop object carried by a signal → the arguments of ``track()``.

Wire them with ``PINTEREST_CAPI["SIGNALS"] = {"myshop.signals.order_placed":
"pinterest_capi.mappers.checkout_from_order", …}``.  A mapper is called with the
signal's keyword arguments and returns a dict of ``track()`` keyword arguments
(``event_name`` included), or None to record nothing.  These read common
attribute names (documented per function); a shop whose objects differ
writes its own mapper of the same shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from . import events


def _items(value: Any) -> Iterable[Any]:
    """A list, or a related manager (``order.lines``), as an iterable."""
    if value is None:
        return []
    if hasattr(value, "all") and callable(value.all):
        return value.all()
    return value


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value not in (None, ""):
            return value
    return default


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def checkout_from_order(
    *, order: Any, lines: Any = None, request: Any = None, **_: Any
) -> dict[str, Any]:
    """``checkout`` from an order with ``number, total, currency, email, lines`` …

    Reads ``order.number`` (event_id ``checkout-<number>`` and ``order_id``),
    ``total``, ``currency``, ``email``, ``phone``, ``first_name``, ``last_name``,
    ``city``, ``postcode``, ``country``, ``user_id`` and per line of
    ``order.lines``: ``sku``/``product_id``, ``product_name``/``name``,
    ``unit_price``/``price``, ``quantity``, ``category``, ``brand``.  A signal that
    carries the lines itself (``lines=[…]``, what the shop just wrote) spares the query of
    ``order.lines`` inside the shop's checkout.
    """
    number = str(_get(order, "number", "pk"))
    contents = []
    num_items = 0
    for line in _items(lines if lines is not None else getattr(order, "lines", None)):
        quantity = int(_get(line, "quantity", default=1))
        num_items += quantity
        contents.append(
            {
                "id": _text(_get(line, "sku", "product_id")),
                "item_name": _text(_get(line, "product_name", "name")),
                "item_price": _get(line, "unit_price", "price"),
                "quantity": quantity,
                "item_category": _text(_get(line, "category")),
                "item_brand": _text(_get(line, "brand")),
            }
        )
    user_id = _get(order, "user_id")
    return {
        "event_name": "checkout",
        "event_id": events.make_event_id("checkout", number),
        "user_data": {
            "em": _get(order, "email"),
            "ph": _get(order, "phone"),
            "fn": _get(order, "first_name"),
            "ln": _get(order, "last_name"),
            "ct": _get(order, "city"),
            "zp": _get(order, "postcode", "zip_code"),
            "country": _get(order, "country"),
            "external_id": str(user_id) if user_id else None,
        },
        "custom_data": {
            "currency": _get(order, "currency"),
            "value": _get(order, "total"),
            "order_id": number,
            "content_ids": [c["id"] for c in contents if c["id"]],
            "contents": [{k: v for k, v in c.items() if v is not None} for c in contents],
            "num_items": num_items,
        },
        "request": request,
        "obj": order,
    }


def add_to_cart_from_line(
    *, product: Any, quantity: int = 1, request: Any = None, **_: Any
) -> dict[str, Any]:
    """``add_to_cart`` from a product (``sku, name, price, currency, category, brand``).

    Each add is its own conversion, so the event_id is unique per call.  The
    visitor is identified by the request's IP address and user agent (and
    email when signed in).
    """
    quantity = int(quantity or 1)
    price = Decimal(str(_get(product, "price", default=0)))
    user = getattr(request, "user", None)
    email = getattr(user, "email", None) if getattr(user, "is_authenticated", False) else None
    return {
        "event_name": "add_to_cart",
        "user_data": {"em": email, "external_id": str(user.pk) if email else None},
        "custom_data": {
            "currency": _get(product, "currency"),
            "value": price * quantity,
            "content_ids": [str(_get(product, "sku", "pk"))],
            "contents": [
                {
                    k: v
                    for k, v in {
                        "id": str(_get(product, "sku", "pk")),
                        "item_name": _text(_get(product, "name")),
                        "item_price": price,
                        "quantity": quantity,
                        "item_category": _text(_get(product, "category")),
                        "item_brand": _text(_get(product, "brand")),
                    }.items()
                    if v is not None
                }
            ],
            "num_items": quantity,
        },
        "request": request,
        "obj": product,
    }


def signup_from_user(*, user: Any, request: Any = None, **_: Any) -> dict[str, Any]:
    """``signup`` from a user (``pk, email, first_name, last_name``); id ``signup-<pk>``."""
    return {
        "event_name": "signup",
        "event_id": events.make_event_id("signup", user.pk),
        "user_data": {
            "em": _get(user, "email"),
            "fn": _get(user, "first_name"),
            "ln": _get(user, "last_name"),
            "external_id": str(user.pk),
        },
        "request": request,
        "obj": user,
    }
