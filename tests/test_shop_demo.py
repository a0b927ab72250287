"""The demo shop on its own: pages, cart, checkout, signup, its signals and its commands.

These tests never look at the Pinterest app's outbox (its own tests do): they check that the
shop does its work and fires its signals the way the app expects, inside its transactions.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import escape

from shop_demo.shop import services
from shop_demo.shop.catalog import PRODUCTS, seed_catalog
from shop_demo.shop.models import Cart, CartLine, Category, Order, OrderLine, Product
from shop_demo.shop.signals import cart_item_added, customer_signed_up, order_placed
from tests.demo_process import running_demo

pytestmark = pytest.mark.django_db
PROJECT_DIR = Path(__file__).resolve().parent.parent

CUSTOMER = {
    "email": "ada@example.com",
    "phone": "020 7946 0123",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "city": "London",
    "postcode": "sw1a 1aa",
    "country": "GB",
}


@pytest.fixture
def catalog() -> list[Product]:
    return seed_catalog()


@pytest.fixture
def recorded() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Receivers on the shop's three signals noting their kwargs and the transaction state."""
    calls: dict[str, list[dict[str, Any]]] = {"order": [], "cart": [], "signup": []}

    def recorder(name: str):
        def receive(sender: Any, **kwargs: Any) -> None:
            kwargs.pop("signal")
            entry = {"sender": sender, "in_atomic": transaction.get_connection().in_atomic_block}
            if "order" in kwargs:  # what a listener can read while still inside the transaction
                entry["line_count"] = kwargs["order"].lines.count()
            calls[name].append({**entry, **kwargs})

        return receive

    receivers = {
        order_placed: recorder("order"),
        cart_item_added: recorder("cart"),
        customer_signed_up: recorder("signup"),
    }
    for sig, receiver in receivers.items():
        sig.connect(receiver, weak=False, dispatch_uid=f"test-recorder-{id(sig)}")
    try:
        yield calls
    finally:
        for sig in receivers:
            sig.disconnect(dispatch_uid=f"test-recorder-{id(sig)}")


def product(sku: str) -> Product:
    return Product.objects.get(sku=sku)


def add(client, sku: str, quantity: int = 1):
    return client.post(
        reverse("shop:add_to_cart", args=[product(sku).slug]), {"quantity": quantity}
    )


# -- catalogue and pages ---------------------------------------------------------------------


def test_seed_catalog_is_idempotent(catalog):
    seed_catalog()
    assert Product.objects.count() == len(PRODUCTS) == len(catalog)
    assert Category.objects.count() == 4
    assert all(p.currency == "GBP" and p.active for p in catalog)


def test_pages_render(client, catalog):
    first = catalog[0]
    for url in [
        reverse("shop:home"),
        reverse("shop:product", args=[first.slug]),
        reverse("shop:cart"),
        reverse("shop:signup"),
        reverse("shop:login"),
        "/admin/login/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
    home = client.get(reverse("shop:home")).content.decode()
    assert first.name in home and escape(first.category.name) in home
    assert 'href="/admin/"' in home


def test_inactive_product_is_not_found(client, catalog):
    Product.objects.filter(pk=catalog[0].pk).update(active=False)
    assert client.get(reverse("shop:product", args=[catalog[0].slug])).status_code == 404


def test_checkout_with_empty_cart_redirects_to_cart(client, catalog):
    response = client.get(reverse("shop:checkout"))
    assert response.status_code == 302 and response.url == reverse("shop:cart")
    assert client.get(reverse("shop:thanks")).status_code == 404


# -- cart --------------------------------------------------------------------------------------


def test_add_to_cart(client, catalog):
    response = add(client, "KT-2001", 2)
    assert response.status_code == 302 and response.url == reverse("shop:cart")
    add(client, "KT-2001", 1)
    add(client, "ST-4001")
    cart = Cart.objects.get()
    assert cart.session_key == client.session.session_key
    assert {line.product.sku: line.quantity for line in cart.lines.all()} == {
        "KT-2001": 3,
        "ST-4001": 1,
    }
    page = client.get(reverse("shop:cart"))
    assert page.context["cart_count"] == 4
    assert "Enamel Milk Pan" in page.content.decode()
    assert cart.total == Decimal("19.95") * 3 + Decimal("12.00")


def test_add_to_cart_needs_post_and_a_valid_quantity(client, catalog):
    url = reverse("shop:add_to_cart", args=[catalog[0].slug])
    assert client.get(url).status_code == 405
    assert client.post(url, {"quantity": 0}).status_code == 400
    assert client.post(url, {"quantity": "lots"}).status_code == 400
    assert not CartLine.objects.exists()


def test_remove_from_cart(client, catalog):
    add(client, "KT-2001")
    line = CartLine.objects.get()
    assert client.post(reverse("shop:remove_from_cart", args=[line.pk])).status_code == 302
    assert not CartLine.objects.exists()


def test_csrf_is_enforced(catalog):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert add(strict, "KT-2001").status_code == 403
    assert not CartLine.objects.exists()


# -- checkout --------------------------------------------------------------------------------


def test_checkout_creates_the_order_with_its_lines(client, catalog):
    add(client, "HL-1002", 2)  # 68.00
    add(client, "GD-3003", 1)  # 9.99
    assert client.get(reverse("shop:checkout")).status_code == 200
    response = client.post(reverse("shop:checkout"), CUSTOMER)
    assert response.status_code == 302 and response.url == reverse("shop:thanks")

    order = Order.objects.get()
    assert order.number == str(1000 + order.pk) and int(order.number) >= 1001
    assert order.total == Decimal("145.99") and order.currency == "GBP"
    assert (order.email, order.phone, order.city, order.postcode, order.country) == (
        "ada@example.com",
        "020 7946 0123",
        "London",
        "SW1A 1AA",
        "GB",
    )
    assert order.user_id is None
    lines = {line.sku: line for line in order.lines.all()}
    assert set(lines) == {"HL-1002", "GD-3003"}
    throw = lines["HL-1002"]
    assert (throw.product_name, throw.unit_price, throw.quantity) == (
        "Wool Throw Blanket",
        Decimal("68.00"),
        2,
    )
    assert (throw.category, throw.brand) == ("Home & Living", "Fellside")
    assert not CartLine.objects.exists()  # the cart is emptied

    thanks = client.get(reverse("shop:thanks"))
    assert thanks.status_code == 200 and order.number in thanks.content.decode()


def test_order_numbers_increase(client, catalog):
    numbers = []
    for _ in range(3):
        add(client, "ST-4001")
        client.post(reverse("shop:checkout"), CUSTOMER)
        numbers.append(int(Order.objects.order_by("-pk").first().number))
    assert numbers == sorted(set(numbers)) and len(numbers) == 3


def test_checkout_of_a_logged_in_customer_links_the_user(client, catalog):
    user = get_user_model().objects.create_user("bo", "bo@example.com", "pw", first_name="Bo")
    client.force_login(user)
    add(client, "ST-4001")
    form = client.get(reverse("shop:checkout")).context["form"]
    assert form.initial["email"] == "bo@example.com"
    client.post(reverse("shop:checkout"), CUSTOMER)
    assert Order.objects.get().user_id == user.pk


def test_invalid_checkout_creates_nothing(client, catalog, recorded):
    add(client, "ST-4001")
    response = client.post(reverse("shop:checkout"), {**CUSTOMER, "email": "not-an-email"})
    assert response.status_code == 400
    assert "email" in response.context["form"].errors
    assert not Order.objects.exists() and not OrderLine.objects.exists()
    assert CartLine.objects.count() == 1  # the cart is kept for another try
    assert recorded["order"] == []


def test_a_failing_listener_rolls_the_order_back(catalog):
    """The order and its signal share one transaction: an error in a listener undoes both."""
    cart = Cart.objects.create()
    services.add_to_cart(None, product("ST-4001"), 2, cart=cart)

    def explode(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("listener failed")

    order_placed.connect(explode, weak=False, dispatch_uid="test-explode")
    try:
        with pytest.raises(RuntimeError):
            services.place_order(None, cart, CUSTOMER)
    finally:
        order_placed.disconnect(dispatch_uid="test-explode")
    assert not Order.objects.exists() and not OrderLine.objects.exists()
    assert cart.lines.get().quantity == 2


def test_mixed_currencies_are_refused(catalog):
    cart = Cart.objects.create()
    Product.objects.filter(sku="ST-4002").update(currency="USD")
    services.add_to_cart(None, product("ST-4001"), cart=cart)
    services.add_to_cart(None, product("ST-4002"), cart=cart)
    with pytest.raises(services.CheckoutError):
        services.place_order(None, cart, CUSTOMER)
    assert not Order.objects.exists()


# -- accounts --------------------------------------------------------------------------------


def test_signup_creates_the_user_and_logs_in(client, catalog):
    data = {"email": "new@example.com", "password": "a-long-pass", "first_name": "Nia"}
    response = client.post(reverse("shop:signup"), {**data, "last_name": "Lee"})
    assert response.status_code == 302
    user = get_user_model().objects.get(email="new@example.com")
    assert (user.first_name, user.last_name) == ("Nia", "Lee")
    assert user.check_password("a-long-pass")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert "new@example.com" in client.get(reverse("shop:home")).content.decode()

    again = client.post(reverse("shop:signup"), data)
    assert again.status_code == 400 and "email" in again.context["form"].errors
    assert get_user_model().objects.count() == 1


def test_signup_rejects_a_short_password(client, recorded):
    response = client.post(reverse("shop:signup"), {"email": "x@example.com", "password": "x"})
    assert response.status_code == 400
    assert not get_user_model().objects.exists() and recorded["signup"] == []


def test_login_and_logout(client, catalog):
    get_user_model().objects.create_user("cy@example.com", "cy@example.com", "a-long-pass")
    response = client.post(
        reverse("shop:login"), {"username": "cy@example.com", "password": "a-long-pass"}
    )
    assert response.status_code == 302 and "_auth_user_id" in client.session
    assert client.post(reverse("shop:logout")).status_code == 302
    assert "_auth_user_id" not in client.session


# -- signals: once each, inside the shop's transaction, with the documented kwargs ------------


@pytest.mark.django_db(transaction=True)
def test_cart_item_added_fires_once_inside_the_transaction(client, recorded):
    seed_catalog()
    add(client, "KT-2002", 2)
    assert not transaction.get_connection().in_atomic_block  # a real transaction, not the test's
    [call] = recorded["cart"]
    assert call["in_atomic"] is True and call["sender"] is CartLine
    assert set(call) == {"sender", "in_atomic", "product", "quantity", "cart", "line", "request"}
    assert call["product"].sku == "KT-2002" and call["quantity"] == 2
    assert call["line"].quantity == 2 and call["line"].cart == call["cart"]
    assert isinstance(call["request"], HttpRequest)
    add(client, "KT-2002", 1)
    assert recorded["cart"][1]["quantity"] == 1 and recorded["cart"][1]["line"].quantity == 3
    assert recorded["order"] == [] and recorded["signup"] == []


@pytest.mark.django_db(transaction=True)
def test_order_placed_fires_once_inside_the_transaction_after_the_lines(client, recorded):
    seed_catalog()
    add(client, "KT-2002")
    add(client, "GD-3001", 2)
    client.post(reverse("shop:checkout"), CUSTOMER)
    [call] = recorded["order"]
    order = Order.objects.get()
    assert call["in_atomic"] is True and call["sender"] is Order
    assert set(call) == {"sender", "in_atomic", "line_count", "order", "lines", "request"}
    assert sorted(line.sku for line in call["lines"]) == ["GD-3001", "KT-2002"]
    assert call["order"] == order and call["order"].number == order.number
    assert call["line_count"] == 2  # the lines exist when the signal is sent
    assert call["order"].total == Decimal("79.00")
    assert isinstance(call["request"], HttpRequest)


@pytest.mark.django_db(transaction=True)
def test_customer_signed_up_fires_once_inside_the_transaction(client, recorded):
    client.post(reverse("shop:signup"), {"email": "sig@example.com", "password": "a-long-pass"})
    [call] = recorded["signup"]
    assert call["in_atomic"] is True and call["sender"] is get_user_model()
    assert set(call) == {"sender", "in_atomic", "user", "request"}
    assert call["user"].email == "sig@example.com" and call["user"].pk is not None
    assert isinstance(call["request"], HttpRequest)


def test_services_work_without_a_request(catalog, recorded):
    cart = Cart.objects.create()
    services.add_to_cart(None, product("ST-4001"), cart=cart)
    order = services.place_order(None, cart, CUSTOMER)
    user = services.sign_up(None, email="quiet@example.com", password="a-long-pass")
    assert order.lines.count() == 1 and user.pk
    assert [c["request"] for k in ("cart", "order", "signup") for c in recorded[k]] == [None] * 3


# -- shop_demo_simulate ----------------------------------------------------------------------


def _simulate(**options: Any) -> str:
    out = StringIO()
    call_command("shop_demo_simulate", stdout=out, **options)
    return out.getvalue()


def _snapshot() -> list[tuple]:
    return [
        (
            o.email,
            o.phone,
            o.first_name,
            o.last_name,
            o.city,
            o.postcode,
            o.country,
            o.total,
            tuple((line.sku, line.quantity) for line in o.lines.all()),
        )
        for o in Order.objects.order_by("pk")
    ] + sorted(get_user_model().objects.values_list("email", "first_name", "last_name"))


def test_simulate_creates_the_expected_counts_and_is_deterministic(recorded):
    output = _simulate(orders=3, carts=2, signups=2, seed=1)
    assert Order.objects.count() == 3 and get_user_model().objects.count() == 2
    assert Product.objects.count() == len(PRODUCTS)  # the catalogue was seeded
    assert sorted(Order.objects.values_list("email", flat=True)) == [
        f"customer{n}@example.com" for n in (1, 2, 3)
    ]
    for order in Order.objects.all():
        assert 1 <= order.lines.count() <= 3
        assert order.total == sum(line.unit_price * line.quantity for line in order.lines.all())
        assert order.country in {"GB", "US"} and order.city and order.postcode
    cart_adds = len(recorded["cart"])
    assert len(recorded["order"]) == 3 and len(recorded["signup"]) == 2
    assert re.search(rf"\b3 orders, {cart_adds} cart adds, 2 signups\b", output), output
    requests = [c["request"] for c in recorded["cart"]]
    assert all(r.META["REMOTE_ADDR"].startswith(("203.0.113.", "198.51.100.")) for r in requests)
    assert all(r.META["HTTP_USER_AGENT"].startswith("Mozilla/5.0") for r in requests)
    assert len({r.META["REMOTE_ADDR"] for r in requests}) == 5  # one IP per simulated visitor
    first = _snapshot()

    Order.objects.all().delete()
    Cart.objects.all().delete()
    get_user_model().objects.all().delete()
    _simulate(orders=3, carts=2, signups=2, seed=1)
    assert _snapshot() == first
    _simulate(orders=3, seed=2)
    assert _snapshot()[3:6] != first[:3]


def test_simulate_sends_the_tenant_header_and_reruns_on_the_same_database(recorded):
    _simulate(orders=1, signups=1, seed=3, tenant="acme")
    _simulate(signups=1, seed=3)  # the first member's email is taken: the next one is used
    metas = [c["request"].META for k in ("cart", "order", "signup") for c in recorded[k]]
    assert [m.get("HTTP_X_SHOP_TENANT") for m in metas[:-1]] == ["acme"] * (len(metas) - 1)
    assert "HTTP_X_SHOP_TENANT" not in metas[-1]
    assert get_user_model().objects.count() == 2


def test_simulate_help_explains_itself():
    from shop_demo.shop.management.commands.shop_demo_simulate import Command

    parser = Command().create_parser("manage.py", "shop_demo_simulate")
    text = parser.format_help()
    for option in ("--orders", "--carts", "--signups", "--tenant", "--seed"):
        assert option in text


# -- shop_demo_serve -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_serve_runs_the_demo_and_stops_all_children_on_sigint(tmp_path):
    # running_demo asserts on the way out: SIGINT stops it with 0 and no child is left.
    with running_demo(tmp_path / "serve.log") as demo:
        output = demo.log()
        assert "Storefront: http://127.0.0.1:" in output
        assert "password 'admin'" in output
        with urllib.request.urlopen(demo.base_url + "/", timeout=5) as response:
            assert response.status == 200
