"""Which tenants a staff user may manage.

One shop's staff must never see or touch another shop's ad accounts, events
or delivery attempts, yet most shops run one Django site with one user table.
The rule lives here, apart from the admin classes, so every place that shows
tenant data to a person (the admin today, an API view tomorrow) asks the same
question the same way.

The answer for a user is either ``None`` (all tenants) or a frozenset of
tenant keys (possibly empty: nothing).  ``PINTEREST_CAPI["ADMIN_TENANTS"]``
names a ``callable(user) -> Iterable[str] | None`` that gives it; by default
:func:`tenants_from_groups` does, so a shop can grant a tenant from the admin
itself by adding the user to a group called ``pinterest_capi:tenant:<key>``.
Superusers manage every tenant whatever the resolver says: they can grant
themselves any group or permission anyway, so restricting them would only
hide rows, not protect them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest

from .conf import SETTINGS_NAME, app_settings

#: Groups whose name starts with this grant the tenant named by the rest.
TENANT_GROUP_PREFIX = "pinterest_capi:tenant:"

# Where the answer for the current user is kept for the rest of the request:
# the admin asks many times per page (app list, permissions, queryset, filters).
_REQUEST_CACHE_ATTR = "_pinterest_capi_tenants"

Tenants = frozenset[str] | None


def tenant_group_name(tenant: str) -> str:
    """The group name that grants ``tenant`` to its members (for set-up code and tests)."""
    return f"{TENANT_GROUP_PREFIX}{tenant}"


def tenants_from_groups(user: Any) -> Tenants:
    """The built-in resolver: superusers all; others the tenants their groups name.

    A group ``pinterest_capi:tenant:shop-a`` grants tenant ``shop-a``.  A staff
    user in no such group gets an empty set and sees nothing.  One query.
    """
    if not getattr(user, "is_active", False):
        return frozenset()
    if getattr(user, "is_superuser", False):
        return None
    groups = getattr(user, "groups", None)
    if groups is None:  # a custom user model without PermissionsMixin
        return frozenset()
    names = groups.filter(name__startswith=TENANT_GROUP_PREFIX).values_list("name", flat=True)
    return frozenset(
        name[len(TENANT_GROUP_PREFIX) :] for name in names if len(name) > len(TENANT_GROUP_PREFIX)
    )


def user_tenants(user: Any) -> Tenants:
    """The tenants ``user`` may manage: None for all, else a frozenset (maybe empty).

    Inactive and anonymous users get nothing; active superusers get all; any
    other user gets what the ``ADMIN_TENANTS`` resolver (or the built-in one)
    answers.  A resolver returning a bare string is a configuration error,
    not a set of one-letter tenants.
    """
    if user is None or not getattr(user, "is_active", False):
        return frozenset()
    if getattr(user, "is_superuser", False):
        return None
    resolver = app_settings.import_callable("ADMIN_TENANTS") or tenants_from_groups
    answer = resolver(user)
    if answer is None:
        return None
    if isinstance(answer, str | bytes) or not isinstance(answer, Iterable):
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}['ADMIN_TENANTS'] must return an iterable of tenant keys or None, "
            f"not {type(answer).__name__}"
        )
    return frozenset(str(tenant) for tenant in answer if tenant)


def request_tenants(request: HttpRequest) -> Tenants:
    """:func:`user_tenants` of ``request.user``, worked out once per request."""
    user = getattr(request, "user", None)
    cached = getattr(request, _REQUEST_CACHE_ATTR, None)
    if cached is not None and cached[0] is user:
        return cached[1]
    tenants = user_tenants(user)
    setattr(request, _REQUEST_CACHE_ATTR, (user, tenants))
    return tenants


def may_manage(tenants: Tenants, tenant: str | None) -> bool:
    """Whether a user with ``tenants`` (from :func:`user_tenants`) may manage ``tenant``."""
    return tenants is None or (tenant is not None and tenant in tenants)


def scope_queryset(queryset: QuerySet, tenants: Tenants, lookup: str = "tenant") -> QuerySet:
    """``queryset`` cut to rows whose ``lookup`` (e.g. ``account__tenant``) is in ``tenants``."""
    if tenants is None:
        return queryset
    if not tenants:
        return queryset.none()
    return queryset.filter(**{f"{lookup}__in": sorted(tenants)})
