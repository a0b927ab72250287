"""The contrib project's TENANT_RESOLVER: the order's site, else the request's (as a shop might)."""

from __future__ import annotations

from typing import Any

from django.contrib.sites.shortcuts import get_current_site
from django.http import HttpRequest

SITE_TENANTS = {"testserver": "demo", "example.com": "demo", "other.example": "other"}


def tenant_for_site(*, request: HttpRequest | None = None, obj: Any = None) -> str | None:
    """An Oscar order knows its Site; anything else falls back to the request's site."""
    site = getattr(obj, "site", None)
    if site is None and request is not None:
        site = get_current_site(request)
    return SITE_TENANTS.get(site.domain) if site is not None else None
