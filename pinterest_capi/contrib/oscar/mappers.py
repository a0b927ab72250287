"""Mappers for django-oscar's signals (see ``apps.PinterestCapiOscarConfig`` for the wiring).

Each takes the signal's keyword arguments and returns ``track()`` arguments, like the
standard mappers in :mod:`pinterest_capi.mappers`.  They read Oscar's own models and
request attributes (``request.strategy`` from Oscar's basket middleware), so they work with
Oscar's default apps and with forks that keep the field names.

Content ids: a product's UPC, else its primary key (the same for a product page, a basket
addition and an order line, so Pinterest can join them to one catalogue item).  A shop whose
Pinterest catalogue uses other ids maps the signals to its own mappers (it may call these
and rewrite ``custom_data``).

Visitor details: ``order_placed`` and ``user_search`` carry no request, so ``track()`` takes
the IP address, user agent, click id (``_epik``) and page URL from the request the
``PinterestRequestMiddleware`` keeps; the other signals pass theirs.  The tenant comes from
``TENANT_RESOLVER`` called with that request and the order/product/user as ``obj``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import HttpRequest

from ... import events


def content_id(product: Any) -> str:
    """A product's catalogue id for Pinterest: its UPC, else its primary key."""
    return str(getattr(product, "upc", None) or product.pk)


def _request(request: Any, sender: Any) -> HttpRequest | None:
    """The signal's request, else the sending view's (Oscar sends from view instances)."""
    for candidate in (request, getattr(sender, "request", None)):
        if isinstance(candidate, HttpRequest):
            return candidate
    return None


def _signed_in(user: Any) -> dict[str, Any]:
    """Email and external id of an authenticated user; nothing for a visitor."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    return {"em": getattr(user, "email", None) or None, "external_id": str(user.pk)}


def _price(request: HttpRequest | None, product: Any) -> tuple[Decimal | None, str | None]:
    """The price the visitor is shown (Oscar's strategy: tax-inclusive where known)."""
    strategy = getattr(request, "strategy", None)
    if strategy is None:
        return None, None
    if getattr(product, "is_parent", False):
        info = strategy.fetch_for_parent(product)
    else:
        info = strategy.fetch_for_product(product)
    price = info.price
    if not price.exists:
        return None, None
    return (price.incl_tax if price.is_tax_known else price.excl_tax), price.currency


def _phone(address: Any) -> str | None:
    """The address's phone as E.164 text, or None when absent or not a valid number.

    An invalid number is left out rather than passed on: ``track()`` would reject the
    whole event for it, and a checkout is worth more than one matching field.
    """
    number = getattr(address, "phone_number", None)
    if not number:
        return None
    if hasattr(number, "is_valid"):  # phonenumber_field's PhoneNumber
        return number.as_e164 if number.is_valid() else None
    return str(number)


def _address_fields(address: Any) -> dict[str, Any]:
    """Name, city, state, postcode, country and phone of an Oscar address (None: nothing)."""
    if address is None:
        return {}
    return {
        "fn": address.first_name or None,
        "ln": address.last_name or None,
        "ct": address.line4 or None,  # Oscar's "City"
        "st": address.state or None,
        "zp": address.postcode or None,
        "country": address.country_id or None,  # Country's primary key is the ISO alpha-2
        "ph": _phone(address),
    }


def _line_item(line: Any) -> dict[str, Any]:
    price = line.unit_price_incl_tax
    if price is None:
        price = line.unit_price_excl_tax
    return {
        "id": str(line.upc or line.product_id or line.partner_sku),
        "item_name": line.title or None,
        "item_price": price,
        "quantity": int(line.quantity),
    }


def checkout_from_order(*, order: Any, user: Any = None, **_: Any) -> dict[str, Any]:
    """``order_placed`` → ``checkout`` with event id ``checkout-<order number>``.

    Value is the order total including tax and shipping, in the order's currency; the
    email is the order's (guest email, else the customer's); name, city, state, postcode,
    country and phone come from the shipping address (else the billing address).  The
    event time is the order's ``date_placed``.
    """
    lines = [_line_item(line) for line in order.lines.all()]
    address = order.shipping_address or order.billing_address
    customer = user if user is not None else order.user
    user_data = {
        "em": order.email or None,
        "external_id": str(customer.pk) if customer is not None and customer.pk else None,
        **_address_fields(address),
    }
    return {
        "event_name": "checkout",
        "event_id": events.make_event_id("checkout", order.number),
        "event_time": order.date_placed,
        "user_data": user_data,
        "custom_data": {
            "currency": order.currency,
            "value": order.total_incl_tax,
            "order_id": str(order.number),
            "num_items": sum(item["quantity"] for item in lines),
            "content_ids": [item["id"] for item in lines],
            "contents": lines,
        },
        "obj": order,
    }


def add_to_cart_from_basket(
    *, product: Any, user: Any = None, request: Any = None, sender: Any = None, **_: Any
) -> dict[str, Any]:
    """``basket_addition`` → ``add_to_cart`` (a unique event id: every add is a conversion).

    The quantity is the one posted to Oscar's add-to-basket form (the signal does not
    carry it); the price is the visitor's, from ``request.strategy``.
    """
    request = _request(request, sender)
    quantity = _posted_quantity(request)
    price, currency = _price(request, product)
    item = {
        "id": content_id(product),
        "item_name": product.get_title() or None,
        "item_price": price,
        "quantity": quantity,
    }
    return {
        "event_name": "add_to_cart",
        "user_data": _signed_in(user),
        "custom_data": {
            "currency": currency,
            "value": price * quantity if price is not None else None,
            "num_items": quantity,
            "content_ids": [item["id"]],
            "contents": [item],
        },
        "request": request,
        "obj": product,
    }


def _posted_quantity(request: HttpRequest | None) -> int:
    """The add-to-basket form's ``quantity`` (validated by Oscar before the signal), else 1."""
    try:
        return max(int(request.POST.get("quantity", 1)), 1) if request is not None else 1
    except (TypeError, ValueError):
        return 1


def page_visit_from_product(
    *, product: Any, user: Any = None, request: Any = None, sender: Any = None, **_: Any
) -> dict[str, Any]:
    """``product_viewed`` → ``page_visit`` with the product as the one content item."""
    request = _request(request, sender)
    price, currency = _price(request, product)
    item = {"id": content_id(product), "item_name": product.get_title() or None}
    if price is not None:
        item["item_price"] = price
    return {
        "event_name": "page_visit",
        "user_data": _signed_in(user),
        "custom_data": {"currency": currency, "content_ids": [item["id"]], "contents": [item]},
        "request": request,
        "obj": product,
    }


def search_from_query(
    *, query: Any = "", user: Any = None, sender: Any = None, **_: Any
) -> dict[str, Any] | None:
    """``user_search`` → ``search`` with ``search_string``; an empty query records nothing."""
    text = str(query or "").strip()
    if not text:
        return None
    return {
        "event_name": "search",
        "user_data": _signed_in(user),
        "custom_data": {"search_string": text},
        "request": _request(None, sender),
    }
