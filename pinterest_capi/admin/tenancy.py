"""Tenant isolation for the three admins: one mixin, one account filter.

Every way the admin reaches a row goes through ``get_queryset`` (changelists,
change/history/delete views, the resend URL, actions, autocomplete, raw-id
popups), so scoping it there makes another tenant's row look exactly like a
missing one: Django's "doesn't exist" redirect, never the object.  The
object-level permission checks repeat the rule for code that is handed an
object some other way, and the foreign-key hooks keep account choices (form
fields and the sidebar filter) inside the user's tenants.
"""

from __future__ import annotations

import operator
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..models import AdAccount
from ..permissions import Tenants, may_manage, request_tenants, scope_queryset


def scoped_accounts(request: HttpRequest) -> QuerySet[AdAccount]:
    """The ad accounts ``request.user`` may manage (all of them for superusers)."""
    return scope_queryset(AdAccount.objects.all(), request_tenants(request))


class TenantCheckedFormMixin:
    """A model form's ``tenant`` field refused, on that field, outside ``allowed_tenants``.

    The admin sets ``allowed_tenants`` from the user (None: every tenant). Without the check
    a staff user of shop A could write a row (an ad account, an API key) into shop B.
    """

    allowed_tenants: Tenants = None

    def clean_tenant(self) -> str:
        tenant = (self.cleaned_data.get("tenant") or "").strip()
        allowed = self.allowed_tenants
        if allowed is not None and tenant not in allowed:
            raise forms.ValidationError(
                _("You may not manage tenant “%(tenant)s”. Your tenants: %(allowed)s."),
                code="tenant_not_allowed",
                params={"tenant": tenant, "allowed": ", ".join(sorted(allowed)) or _("none")},
            )
        return tenant


class TenantScopedAdminMixin:
    """Limit a ModelAdmin to the tenants of the user (see :mod:`pinterest_capi.permissions`).

    ``tenant_lookup`` is the ORM path from the model to the tenant key:
    ``"tenant"`` on AdAccount, ``"account__tenant"`` on rows of an account.
    Put it first in the bases so its checks wrap the others'.
    """

    tenant_lookup: str = "account__tenant"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return scope_queryset(queryset, request_tenants(request), self.tenant_lookup)

    def tenant_of(self, obj: Any) -> str | None:
        """The tenant key of ``obj``, following ``tenant_lookup`` attribute by attribute."""
        getter = operator.attrgetter(self.tenant_lookup.replace("__", "."))
        try:
            return getter(obj)
        except AttributeError:
            return None

    def may_manage_object(self, request: HttpRequest, obj: Any) -> bool:
        """True for no object (model-level checks) or an object of one of the user's tenants."""
        return obj is None or may_manage(request_tenants(request), self.tenant_of(obj))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and self.may_manage_object(  # type: ignore[misc]
            request, obj
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self.may_manage_object(  # type: ignore[misc]
            request, obj
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self.may_manage_object(  # type: ignore[misc]
            request, obj
        )

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # A user with no tenant has nothing to add a row to.
        if request_tenants(request) == frozenset():
            return False
        return super().has_add_permission(request, *args)  # type: ignore[misc]

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        if field is not None and db_field.related_model is AdAccount:
            field.queryset = scope_queryset(field.queryset, request_tenants(request))
        return field


class _AppliedWhenSelectedMixin:
    """Keep a filter that is in the URL even when it has fewer than two choices.

    Django drops such a filter from the sidebar *and* stops applying it, so
    ``?account__id__exact=<another tenant's account>`` would quietly list all
    of the user's own rows instead of none.
    """

    lookup_val: Any
    lookup_val_isnull: Any

    def has_output(self) -> bool:
        return (
            super().has_output()  # type: ignore[misc]
            or self.lookup_val is not None
            or bool(self.lookup_val_isnull)
        )


class AccountListFilter(_AppliedWhenSelectedMixin, admin.RelatedFieldListFilter):
    """The sidebar's "ad account" filter, listing only the user's accounts.

    Django's own lists every account of every tenant; this one asks one
    query over the (small) accounts table, not a DISTINCT over the outbox.
    """

    def field_choices(
        self, field: Any, request: HttpRequest, model_admin: Any
    ) -> list[tuple[Any, str]]:
        ordering = self.field_admin_ordering(field, request, model_admin)
        accounts = scoped_accounts(request).only("pk", "tenant", "name", "ad_account_id")
        if ordering:  # the account admin's ordering, else the model's own
            accounts = accounts.order_by(*ordering)
        return [(account.pk, str(account)) for account in accounts]


class TenantListFilter(_AppliedWhenSelectedMixin, admin.AllValuesFieldListFilter):
    """The accounts' "tenant" filter: the tenants of the user's own accounts only.

    Django's filter already takes its values from the scoped queryset; this
    one also keeps applying ``?tenant=`` when the user has a single tenant.
    """
