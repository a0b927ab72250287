"""Which tenant an event belongs to.

A tenant is a plain string key (a shop, a brand, a site).  Set
``PINTEREST_CAPI["TENANT_RESOLVER"]`` to a callable ``(request=None, obj=None)
-> str | None`` to derive it from the request or the object a signal carries;
``DEFAULT_TENANT`` is used when no resolver is set or it returns None.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .conf import app_settings


def resolve_tenant(
    *, tenant: str | None = None, request: HttpRequest | None = None, obj: Any = None
) -> str:
    """The explicit tenant, else the resolver's answer, else ``DEFAULT_TENANT``."""
    if tenant:
        return str(tenant)
    resolver = app_settings.import_callable("TENANT_RESOLVER")
    if resolver is not None:
        value = resolver(request=request, obj=obj)
        if value:
            return str(value)
    return str(app_settings.DEFAULT_TENANT)


def tenant_from_header(*, request: HttpRequest | None = None, obj: Any = None) -> str | None:
    """A resolver reading the header named by ``TENANT_HEADER`` (for trusted proxies and demos)."""
    if request is None or not app_settings.TENANT_HEADER:
        return None
    meta_key = "HTTP_" + str(app_settings.TENANT_HEADER).upper().replace("-", "_")
    return request.META.get(meta_key) or None
