"""Test settings: the demo shop's settings with test-friendly overrides."""

from shop_demo.settings import *  # noqa: F401,F403
from shop_demo.settings import PINTEREST_CAPI, Q_CLUSTER

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PINTEREST_CAPI = {
    **PINTEREST_CAPI,
    "API_BASE_URL": "http://127.0.0.1:9/v5",  # tests point it at their own sandbox
    "RAISE_RECORD_ERRORS": True,
    "NUDGE": "off",
}
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
LOGGING = {"version": 1, "disable_existing_loggers": False}
