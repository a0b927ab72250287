"""Settings of the demo shop, driven by the environment.

- ``DATABASE_URL``: default a SQLite file under ``var/`` (PostgreSQL: ``postgres://…``).
- ``PINTEREST_CAPI_API_BASE_URL``: default Pinterest; the demo points it at the sandbox.
- ``PINTEREST_CAPI_ENCRYPTION_KEYS``: comma-separated Fernet keys; a fixed demo key otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SHOP_DEMO_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-secret-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_q",
    "pinterest_capi",
    "shop_demo.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "pinterest_capi.middleware.PinterestRequestMiddleware",
]

ROOT_URLCONF = "shop_demo.urls"
WSGI_APPLICATION = "shop_demo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop_demo.shop.context_processors.cart",
            ]
        },
    }
]


def _database_from_url(url: str) -> dict:
    config = dj_database_url.parse(url, conn_max_age=0)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE transactions, WAL and a busy timeout: see shared reliability F13.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        config.setdefault("TEST", {})
    return config


DATABASES = {
    "default": _database_from_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'shop_demo.sqlite3'}")
    )
}

CACHES = {
    # Shared between the web process and the worker, so the "one pending nudge" guard holds.
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "shop:login"

_DEMO_KEY = "m6s0u6hGQ3cPZ3Tq0o3b4f9Qb0mQ8wQd1Yq7cT5rC3E="  # demo only; never use in production

PINTEREST_CAPI = {
    "API_BASE_URL": os.environ.get("PINTEREST_CAPI_API_BASE_URL", "https://api.pinterest.com/v5"),
    "ENCRYPTION_KEYS": [
        k.strip()
        for k in os.environ.get("PINTEREST_CAPI_ENCRYPTION_KEYS", _DEMO_KEY).split(",")
        if k.strip()
    ],
    "DEFAULT_TENANT": os.environ.get("SHOP_DEMO_TENANT", "demo"),
    # The demo reads the tenant from an X-Shop-Tenant header (shop_demo_simulate --tenant);
    # a real multi-tenant shop resolves it from its own site or domain model.
    "TENANT_RESOLVER": "pinterest_capi.tenants.tenant_from_header",
    "DEFAULT_PHONE_REGION": "GB",
    # The shop's own signals, mapped to Pinterest events by the app's standard mappers.
    "SIGNALS": {
        "shop_demo.shop.signals.order_placed": "pinterest_capi.mappers.checkout_from_order",
        "shop_demo.shop.signals.cart_item_added": "pinterest_capi.mappers.add_to_cart_from_line",
        "shop_demo.shop.signals.customer_signed_up": "pinterest_capi.mappers.signup_from_user",
    },
}

# Per-process overrides as a JSON object merged into PINTEREST_CAPI (the reliability tests run
# worker processes with short leases, deadlines and backoff this way), e.g.
# PINTEREST_CAPI_OVERRIDES='{"LEASE_SECONDS": 8, "NUDGE": "off"}'.
PINTEREST_CAPI.update(json.loads(os.environ.get("PINTEREST_CAPI_OVERRIDES") or "{}"))

Q_CLUSTER = {
    "name": "shop_demo",
    "orm": "default",  # the ORM broker: no extra server needed
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    # > PINTEREST_CAPI REQUEST_DEADLINE (30 s), < LEASE_SECONDS; Q_TIMEOUT: tests with short leases
    "timeout": int(os.environ.get("Q_TIMEOUT", "60")),
    "retry": int(os.environ.get("Q_TIMEOUT", "60")) + 30,  # > timeout
    "max_attempts": 2,
    "catch_up": False,
    "save_limit": 200,
    "poll": 0.2,
    "ack_failures": True,
    "sync": os.environ.get("Q_SYNC", "0") == "1",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "pinterest_capi": {"handlers": ["console"], "level": os.environ.get("PCAPI_LOG", "INFO")},
    },
}
