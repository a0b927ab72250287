"""Admin of ad accounts: connection state at a glance, a write-only token."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters

from ..forms import AdAccountForm
from ..models import AdAccount
from ..permissions import Tenants, request_tenants
from .common import ADMIN_CSS, badge, short
from .tenancy import TenantListFilter, TenantScopedAdminMixin


def account_status(account: AdAccount) -> tuple[str, str]:
    """(kind, words) for an account: ``ok``, ``paused`` or ``auth``.

    A refused token wins over a pause: it will not heal by waiting.
    """
    if account.auth_error:
        return "auth", _("token refused: %(reason)s") % {"reason": account.auth_error}
    if account.paused_until and account.paused_until > timezone.now():
        until = date_format(timezone.localtime(account.paused_until), "DATETIME_FORMAT")
        words = _("paused until %(until)s") % {"until": until}
        if account.pause_reason:
            words = f"{words}: {account.pause_reason}"
        return "paused", words
    return "ok", _("OK")


class TenantCheckedAdAccountForm(AdAccountForm):
    """The account form for a user limited to some tenants: any other tenant is refused.

    Without it a staff user of shop A could create an account under shop B,
    or move one of A's accounts there, and so write into B's data.
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


@admin.register(AdAccount)
class AdAccountAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    # Like Django's UserAdmin: the token never appears in an error report's POST data.
    @method_decorator(sensitive_post_parameters("access_token"))
    def add_view(self, request: HttpRequest, *args: Any, **kwargs: Any):
        return super().add_view(request, *args, **kwargs)

    @method_decorator(sensitive_post_parameters("access_token"))
    def change_view(self, request: HttpRequest, *args: Any, **kwargs: Any):
        return super().change_view(request, *args, **kwargs)

    form = AdAccountForm
    tenant_lookup = "tenant"
    list_display = (
        "__str__",
        "tenant",
        "ad_account_id",
        "token_display",
        "active",
        "test_mode",
        "status_display",
        "last_success_at",
        "last_error_display",
    )
    list_filter = (("tenant", TenantListFilter), "active", "test_mode")
    search_fields = ("name", "=ad_account_id", "tenant")
    readonly_fields = (
        "token_display",
        "status_display",
        "paused_until",
        "pause_reason",
        "auth_error",
        "auth_error_at",
        "last_success_at",
        "last_error_at",
        "last_error",
        "links",
        "created_at",
        "updated_at",
    )
    actions = ["clear_pause"]

    class Media:
        css = ADMIN_CSS

    def get_form(
        self,
        request: HttpRequest,
        obj: AdAccount | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[AdAccountForm]:
        form = super().get_form(request, obj, change, **kwargs)
        tenants = request_tenants(request)
        if tenants is None:
            return form
        return type(
            form.__name__,
            (TenantCheckedAdAccountForm, form),
            {"allowed_tenants": tenants, "__module__": __name__},
        )

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        tenants = request_tenants(request)
        if tenants is not None and len(tenants) == 1 and "tenant" not in initial:
            initial["tenant"] = next(iter(tenants))  # the only choice: fill it in
        return initial

    def get_fieldsets(self, request: HttpRequest, obj: AdAccount | None = None) -> Any:
        account = (None, {"fields": ("tenant", "name", "ad_account_id", "active", "test_mode")})
        token = (_("Access token"), {"fields": ("access_token",)})
        if obj is None:
            return [account, token]
        token = (_("Access token"), {"fields": ("token_display", "access_token")})
        state = (
            _("Connection"),
            {
                "fields": (
                    "status_display",
                    ("paused_until", "pause_reason"),
                    ("auth_error", "auth_error_at"),
                    "last_success_at",
                    ("last_error_at", "last_error"),
                    "links",
                    ("created_at", "updated_at"),
                )
            },
        )
        return [account, token, state]

    @admin.display(description=_("token"))
    def token_display(self, obj: AdAccount) -> str:
        return obj.token_hint or "—"

    @admin.display(description=_("status"))
    def status_display(self, obj: AdAccount) -> SafeString:
        kind, words = account_status(obj)
        return badge("account", kind, words)

    @admin.display(description=_("last error"), ordering="last_error_at")
    def last_error_display(self, obj: AdAccount) -> str:
        if not obj.last_error_at:
            return "—"
        when = date_format(timezone.localtime(obj.last_error_at), "SHORT_DATETIME_FORMAT")
        return f"{when}: {short(obj.last_error, 60)}" if obj.last_error else when

    @admin.display(description=_("records"))
    def links(self, obj: AdAccount) -> SafeString:
        events = reverse("admin:pinterest_capi_outboxevent_changelist")
        attempts = reverse("admin:pinterest_capi_deliveryattempt_changelist")
        return format_html(
            '<a href="{}?account__id__exact={}">{}</a> · <a href="{}?account__id__exact={}">{}</a>',
            events,
            obj.pk,
            _("outbox events"),
            attempts,
            obj.pk,
            _("delivery attempts"),
        )

    @admin.action(description=_("Clear pause"), permissions=["change"])
    def clear_pause(self, request: HttpRequest, queryset: QuerySet[AdAccount]) -> None:
        # Per object, so each change is in the admin history with who did it.
        paused = list(queryset.exclude(paused_until__isnull=True, pause_reason=""))
        for account in paused:
            account.paused_until = None
            account.pause_reason = ""
            account.save(update_fields=["paused_until", "pause_reason", "updated_at"])
            self.log_change(request, account, [{"changed": {"fields": ["paused until"]}}])
        if paused:
            self.message_user(
                request,
                ngettext(
                    "Pause cleared on %(count)d account; it is sent to at the next flush.",
                    "Pause cleared on %(count)d accounts; they are sent to at the next flush.",
                    len(paused),
                )
                % {"count": len(paused)},
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request, _("None of the selected accounts was paused."), messages.INFO
            )
