"""Drive the demo shop like real visitors do: through its URLs, views and forms.

Every simulated customer gets its own browser session (a ``django.test.Client``), its own
client IP and a browser User-Agent, so what the shop (and anything listening to it) sees is
what a real visit would produce. The same ``--seed`` gives the same customers and baskets.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from shop_demo.shop.catalog import seed_catalog
from shop_demo.shop.models import Product

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
]
FIRST_NAMES = [
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Noah",
    "Oliver",
    "George",
    "Leo",
    "Mia",
    "Harper",
    "Ethan",
    "Liam",
    "Sophia",
    "Lucas",
    "Grace",
    "Jack",
]
LAST_NAMES = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Miller",
    "Garcia",
    "Evans",
    "Walker",
    "Clarke",
    "Martin",
]
# city, postcode, phone (Ofcom drama numbers / US 555-01xx: realistic, never anyone's)
UK_PLACES = [
    ("London", "SW1A 1AA", "020 7946 0{:03d}"),
    ("Manchester", "M1 1AE", "0161 496 0{:03d}"),
    ("Edinburgh", "EH1 1YZ", "0131 496 0{:03d}"),
    ("Bristol", "BS1 4DJ", "0117 496 0{:03d}"),
    ("Leeds", "LS1 4AP", "0113 496 0{:03d}"),
    ("Birmingham", "B1 1BB", "0121 496 0{:03d}"),
]
US_PLACES = [
    ("New York", "10001", "+1 212-555-01{:02d}"),
    ("Chicago", "60601", "+1 312-555-01{:02d}"),
    ("San Francisco", "94103", "+1 415-555-01{:02d}"),
    ("Austin", "78701", "+1 512-555-01{:02d}"),
]
PASSWORD = "demo-pass-1234"  # simulated accounts only


@dataclass
class Tally:
    orders: int = 0
    cart_adds: int = 0
    signups: int = 0


class Command(BaseCommand):
    help = (
        "Simulate shop traffic through the demo shop's normal URLs and views: orders "
        "(1-3 products added to a cart, then checkout), abandoned carts and sign-ups. Each "
        "simulated customer has its own session, client IP (documentation ranges) and "
        "browser User-Agent. The same --seed repeats the same customers and baskets."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, default=0, help="Orders to place (default 0).")
        parser.add_argument(
            "--carts", type=int, default=0, help="Add-to-cart visits without checkout."
        )
        parser.add_argument("--signups", type=int, default=0, help="Accounts to sign up.")
        parser.add_argument(
            "--tenant",
            default=None,
            help="Tenant to record the events under: sent as the X-Shop-Tenant request header.",
        )
        parser.add_argument(
            "--seed", type=int, default=None, help="Random seed, for a repeatable run."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for name in ("orders", "carts", "signups"):
            if options[name] < 0:
                raise CommandError(f"--{name} must not be negative")
        started = time.monotonic()
        seed_catalog()
        self.rng = random.Random(options["seed"])
        self.tenant = options["tenant"]
        self.host = _test_host()
        self.products = list(Product.objects.filter(active=True).order_by("sku"))
        self.visitor = 0
        tally = Tally()
        for n in range(1, options["orders"] + 1):
            tally.cart_adds += self._order(n)
            tally.orders += 1
        for _ in range(options["carts"]):
            client = self._client()
            tally.cart_adds += self._add_products(client, self.rng.randint(1, 2))
        for n in range(1, options["signups"] + 1):
            self._signup(n)
            tally.signups += 1
        elapsed = time.monotonic() - started
        tenant = f" tenant={self.tenant}" if self.tenant else ""
        self.stdout.write(
            f"Simulated {tally.orders} orders, {tally.cart_adds} cart adds, "
            f"{tally.signups} signups{tenant} in {elapsed:.2f}s"
        )

    # -- one visitor ---------------------------------------------------------------------

    def _client(self) -> Client:
        """A fresh browser: own cookies, own IP, own User-Agent, optional tenant header."""
        self.visitor += 1
        net = "203.0.113" if self.visitor % 2 else "198.51.100"
        headers: dict[str, str] = {
            "REMOTE_ADDR": f"{net}.{(self.visitor // 2) % 254 + 1}",
            "HTTP_USER_AGENT": self.rng.choice(USER_AGENTS),
            "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9",
            "HTTP_HOST": self.host,
        }
        if self.tenant:
            headers["HTTP_X_SHOP_TENANT"] = self.tenant
        return Client(enforce_csrf_checks=False, **headers)

    def _add_products(self, client: Client, count: int) -> int:
        """Visit the home page and ``count`` product pages, adding each to the cart."""
        _expect(client.get(reverse("shop:home")), 200, "home page")
        for product in self.rng.sample(self.products, count):
            _expect(client.get(reverse("shop:product", args=[product.slug])), 200, "product page")
            response = client.post(
                reverse("shop:add_to_cart", args=[product.slug]),
                {"quantity": self.rng.choice([1, 1, 1, 2, 3])},
            )
            _expect(response, 302, f"add {product.sku} to cart")
        return count

    def _order(self, n: int) -> int:
        client = self._client()
        added = self._add_products(client, self.rng.randint(1, 3))
        _expect(client.get(reverse("shop:cart")), 200, "cart page")
        _expect(client.get(reverse("shop:checkout")), 200, "checkout page")
        response = client.post(reverse("shop:checkout"), self._customer(n))
        _expect(response, 302, "checkout")
        _expect(client.get(reverse("shop:thanks")), 200, "thank-you page")
        return added

    def _customer(self, n: int) -> dict[str, str]:
        rng = self.rng
        if rng.random() < 0.75:
            city, postcode, phone = rng.choice(UK_PLACES)
            country, phone = "GB", phone.format(rng.randint(0, 999))
        else:
            city, postcode, phone = rng.choice(US_PLACES)
            country, phone = "US", phone.format(rng.randint(0, 99))
        return {
            "email": f"customer{n}@example.com",
            "phone": phone if rng.random() < 0.8 else "",
            "first_name": rng.choice(FIRST_NAMES),
            "last_name": rng.choice(LAST_NAMES),
            "city": city,
            "postcode": postcode,
            "country": country,
        }

    def _signup(self, n: int) -> None:
        client = self._client()
        _expect(client.get(reverse("shop:signup")), 200, "signup page")
        email = _free_email("member", n)
        response = client.post(
            reverse("shop:signup"),
            {
                "email": email,
                "password": PASSWORD,
                "first_name": self.rng.choice(FIRST_NAMES),
                "last_name": self.rng.choice(LAST_NAMES),
            },
        )
        _expect(response, 302, f"sign up {email}")


def _free_email(prefix: str, n: int) -> str:
    """``{prefix}{n}@example.com``, or the next free number, so re-runs on one database work."""
    users = get_user_model().objects
    while users.filter(email__iexact=f"{prefix}{n}@example.com").exists():
        n += 1
    return f"{prefix}{n}@example.com"


def _test_host() -> str:
    """A Host header that ALLOWED_HOSTS accepts (the default ``testserver`` when it can)."""
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed or "*" in allowed or "testserver" in allowed:
        return "testserver"
    for host in allowed:
        if host and not host.startswith("."):
            return host
    return "testserver"


def _expect(response: HttpResponse, status: int, what: str) -> None:
    if response.status_code != status:
        raise CommandError(f"{what}: expected HTTP {status}, got {response.status_code}")
