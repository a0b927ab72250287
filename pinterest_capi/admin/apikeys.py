"""Admin of REST API keys: create (the key is shown once), list by prefix, revoke.

The full key exists only in the response to the "add" form: it is rendered on a page of
its own (never put in a message, which would sit in the session or a cookie) and then
forgotten; the table keeps its SHA-256.  Keys are scoped by tenant like the ad accounts:
a staff user sees, makes and revokes keys of their own tenants only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import apikeys
from ..models import ApiKey
from ..permissions import request_tenants
from .common import ADMIN_CSS
from .tenancy import TenantCheckedFormMixin, TenantListFilter, TenantScopedAdminMixin

_NEW_KEY_ATTR = "_pinterest_capi_new_api_key"


class ApiKeyForm(TenantCheckedFormMixin, forms.ModelForm):
    """Tenant and name; a tenant the user may not manage is refused on the tenant field."""

    class Meta:
        model = ApiKey
        fields = ["tenant", "name"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    tenant_lookup = "tenant"
    form = ApiKeyForm
    list_display = (
        "name",
        "tenant",
        "prefix_display",
        "active",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (("tenant", TenantListFilter), "active")
    search_fields = ("name", "=prefix", "tenant")
    readonly_fields = ("prefix_display", "active", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke_keys"]

    class Media:
        css = ADMIN_CSS

    @admin.display(description=_("key"), ordering="prefix")
    def prefix_display(self, obj: ApiKey) -> str:
        return f"{apikeys.KEY_SCHEME}_{obj.prefix}_…" if obj.prefix else "—"

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        if obj is None:
            return ("tenant", "name")
        return ("name", "tenant", *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        if obj is None:
            return ()
        return ("tenant", *self.readonly_fields)  # a key never moves to another tenant

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        form.allowed_tenants = request_tenants(request)
        return form

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        tenants = request_tenants(request)
        if tenants is not None and len(tenants) == 1 and "tenant" not in initial:
            initial["tenant"] = next(iter(tenants))
        return initial

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if not change:
            setattr(request, _NEW_KEY_ATTR, apikeys.assign_new_key(obj))
        super().save_model(request, obj, form, change)

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The one page that shows the full key (no redirect: it is not stored anywhere)."""
        raw_key = getattr(request, _NEW_KEY_ATTR, None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("API key created"),
            "api_key": obj,
            "raw_key": raw_key,
        }
        response = TemplateResponse(request, "admin/pinterest_capi/apikey/created.html", context)
        add_never_cache_headers(response)
        return response

    @admin.action(description=_("Revoke selected API keys"), permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = apikeys.revoke(queryset)
        self.message_user(
            request,
            ngettext(
                "%(count)d API key revoked; it no longer authenticates.",
                "%(count)d API keys revoked; they no longer authenticate.",
                revoked,
            )
            % {"count": revoked},
            messages.SUCCESS if revoked else messages.WARNING,
        )
