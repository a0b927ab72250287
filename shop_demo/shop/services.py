"""The shop's domain operations, shared by the views, the simulator and tests.

Each one does its writes and sends its signal inside one ``transaction.atomic()`` block: a
listener's database writes (such as an outbox row) commit or roll back with the shop's own.
Each takes the current request, or ``None`` when there is none (scripts, tests).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.http import HttpRequest

import pinterest_capi

from .models import Cart, CartLine, Order, OrderLine, Product
from .signals import cart_item_added, customer_signed_up, order_placed

logger = logging.getLogger(__name__)

CART_SESSION_KEY = "shop_cart_id"
NEWSLETTER_SESSION_KEY = "shop_newsletter"
LAST_ORDER_SESSION_KEY = "shop_last_order"


class CheckoutError(Exception):
    """The cart cannot be turned into an order (empty, or mixed currencies)."""


def _user_or_none(request: HttpRequest | None) -> Any:
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def get_cart(request: HttpRequest | None, *, create: bool = False) -> Cart | None:
    """The cart remembered in the session, or a new one if ``create`` (None otherwise)."""
    session = getattr(request, "session", None)
    cart_id = session.get(CART_SESSION_KEY) if session is not None else None
    cart = Cart.objects.filter(pk=cart_id).first() if cart_id else None
    if cart is None and create:
        if session is not None and not session.session_key:
            session.save()  # a session key to note on the cart
        cart = Cart.objects.create(
            session_key=(session.session_key or "") if session is not None else "",
            user=_user_or_none(request),
        )
        if session is not None:
            session[CART_SESSION_KEY] = cart.pk
    return cart


def add_to_cart(
    request: HttpRequest | None, product: Product, quantity: int = 1, *, cart: Cart | None = None
) -> CartLine:
    """Put ``quantity`` of ``product`` in the cart (the session's, unless one is given)."""
    if quantity < 1:
        raise ValueError("quantity must be at least 1")
    with transaction.atomic():
        if cart is None:
            cart = get_cart(request, create=True)
        line, created = CartLine.objects.get_or_create(
            cart=cart, product=product, defaults={"quantity": quantity}
        )
        if not created:
            CartLine.objects.filter(pk=line.pk).update(quantity=F("quantity") + quantity)
            line.refresh_from_db(fields=["quantity"])
        cart_item_added.send(
            sender=CartLine,
            product=product,
            quantity=quantity,
            cart=cart,
            line=line,
            request=request,
        )
    return line


def remove_from_cart(request: HttpRequest | None, line_id: int) -> None:
    """Drop a line from the session's cart (lines of other carts are left alone)."""
    cart = get_cart(request)
    if cart is not None:
        cart.lines.filter(pk=line_id).delete()


def place_order(request: HttpRequest | None, cart: Cart, customer: Mapping[str, Any]) -> Order:
    """Turn ``cart`` into an order for ``customer`` (checkout form fields), then empty it.

    Prices, names and categories are copied onto the lines so the order stays what was bought.
    """
    lines = list(cart.lines.select_related("product__category"))
    if not lines:
        raise CheckoutError("Your cart is empty.")
    currencies = {line.product.currency for line in lines}
    if len(currencies) != 1:
        raise CheckoutError("All items of one order must be priced in the same currency.")
    with transaction.atomic():
        order = Order.objects.create(
            user=_user_or_none(request),
            email=customer["email"],
            phone=customer.get("phone") or "",
            first_name=customer["first_name"],
            last_name=customer["last_name"],
            city=customer["city"],
            postcode=customer["postcode"],
            country=customer.get("country") or "GB",
            currency=currencies.pop(),
            total=sum((line.subtotal for line in lines), 0),
        )
        # From the primary key: unique without a lock, increasing, "1001" for the first order.
        order.number = str(Order.NUMBER_OFFSET + order.pk)
        order.save(update_fields=["number"])
        order_lines = OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                product=line.product,
                sku=line.product.sku,
                product_name=line.product.name,
                unit_price=line.product.price,
                quantity=line.quantity,
                category=line.product.category.name,
                brand=line.product.brand,
            )
            for line in lines
        )
        cart.lines.all().delete()
        # The lines go along: a listener need not query what the shop has in hand.
        order_placed.send(sender=Order, order=order, lines=order_lines, request=request)
    session = getattr(request, "session", None)
    if session is not None:
        session[LAST_ORDER_SESSION_KEY] = order.number
    return order


def sign_up(
    request: HttpRequest | None,
    *,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
) -> AbstractBaseUser:
    """Create a customer account (the email is the username) and log it in if there's a request."""
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.create_user(
            username=email[:150],
            email=email,
            password=password,
            first_name=first_name,
            last_name=last_name,
        )
        customer_signed_up.send(sender=user_model, user=user, request=request)
    if request is not None:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        cart = get_cart(request)
        if cart is not None and cart.user_id is None:
            Cart.objects.filter(pk=cart.pk).update(user=user)
    return user


def search_products(query: str, *, limit: int = 50) -> list[Product]:
    """Active products whose name, brand, description, SKU or category mention ``query``."""
    query = query.strip()
    if not query:
        return []
    match = (
        Q(name__icontains=query)
        | Q(brand__icontains=query)
        | Q(description__icontains=query)
        | Q(sku__iexact=query)
        | Q(category__name__icontains=query)
    )
    return list(Product.objects.filter(match, active=True).select_related("category")[:limit])


def subscribe_newsletter(request: HttpRequest | None, email: str) -> list[Any]:
    """A newsletter sign-up: a Pinterest ``lead``, recorded with a direct ``track()`` call.

    (The other events come from the shop's signals; this shows the direct call.)  The session
    remembers the sign-up first, so the visitor has a session to carry the Tag call to the
    page they are sent back to.  Returns the outbox rows (their event_id is the Tag's).
    """
    session = getattr(request, "session", None)
    if session is not None:
        session[NEWSLETTER_SESSION_KEY] = True
    try:
        return pinterest_capi.track(
            "lead",
            request=request,
            user_data={"em": email},
            custom_data={"content_name": "newsletter"},
        )
    except Exception:  # measurement must never break the sign-up
        if settings.PINTEREST_CAPI.get("RAISE_RECORD_ERRORS"):
            raise
        logger.exception("Pinterest lead not recorded; the newsletter sign-up goes on.")
        return []
