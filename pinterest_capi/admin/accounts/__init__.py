"""Admin of ad accounts: health at a glance, a write-only token, verify, pause and resume.

The changelist shows each account's health (last success, last error, pending
and failed events with links) from one annotated query.  The change page and
the changelist actions verify the connection (through
:mod:`pinterest_capi.verification`, behind the ``verify_adaccount``
permission), pause sending (a manual pause: events are still recorded, the
worker's claim skips the account until someone resumes) and resume it; those
operations live in :mod:`.operations`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters

from ...forms import AdAccountForm
from ...models import AdAccount, EventStatus
from ...permissions import request_tenants
from ..common import ADMIN_CSS, badge, short
from ..tenancy import TenantCheckedFormMixin, TenantListFilter, TenantScopedAdminMixin
from .operations import (
    MANUAL_PAUSE_UNTIL,
    OPERATIONS_HELP,
    VERIFY_PERMISSION,
    AccountOperationsMixin,
    is_manually_paused,
)

__all__ = [
    "MANUAL_PAUSE_UNTIL",
    "VERIFY_PERMISSION",
    "AdAccountAdmin",
    "account_status",
    "is_manually_paused",
]


def account_status(account: AdAccount) -> tuple[str, str]:
    """(kind, words) for an account: ``inactive``, ``auth``, ``paused`` or ``ok``.

    A refused token wins over a pause: it will not heal by waiting.
    """
    if not account.active:
        return "inactive", _("inactive: events are neither recorded nor sent")
    if account.auth_error:
        return "auth", _("token refused: %(reason)s") % {"reason": account.auth_error}
    if account.paused_until and account.paused_until > timezone.now():
        return "paused", _("paused %(until)s") % {"until": pause_words(account)}
    return "ok", _("OK")


def pause_words(account: AdAccount) -> str:
    """ "until resumed: Paused by ann" or "until <time>: <reason>" (no "paused" prefix)."""
    if is_manually_paused(account):
        until = str(_("until resumed"))
    else:
        when = date_format(timezone.localtime(account.paused_until), "DATETIME_FORMAT")
        until = str(_("until %(when)s") % {"when": when})
    return f"{until}: {account.pause_reason}" if account.pause_reason else until


class TenantCheckedAdAccountForm(TenantCheckedFormMixin, AdAccountForm):
    """The account form for a user limited to some tenants: any other tenant is refused.

    Without it a staff user of shop A could create an account under shop B,
    or move one of A's accounts there, and so write into B's data.
    """


class HealthChangeList(ChangeList):
    """The changelist with per-account event counts, from one grouped query.

    Only the listing is annotated (actions, change and delete views get the plain
    queryset), and before filtering and ordering so the count columns can sort.
    """

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        if not getattr(self, "_health_annotated", False):
            self.root_queryset = self.root_queryset.annotate(
                pending_count=Count("events", filter=Q(events__status=EventStatus.PENDING)),
                failed_count=Count("events", filter=Q(events__status=EventStatus.FAILED)),
            )
            self._health_annotated = True
        return super().get_queryset(request, exclude_parameters)


@admin.register(AdAccount)
class AdAccountAdmin(TenantScopedAdminMixin, AccountOperationsMixin, admin.ModelAdmin):
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
        "pending_display",
        "failed_display",
        "paused_display",
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
    actions = ["verify_connection", "pause_sending", "clear_pause"]
    change_form_template = "admin/pinterest_capi/adaccount/change_form.html"

    class Media:
        css = ADMIN_CSS

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return HealthChangeList

    def get_form(
        self,
        request: HttpRequest,
        obj: AdAccount | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[AdAccountForm]:
        if obj is not None and not self.has_change_permission(request, obj):
            # View only: every field is read-only, so no token field and nothing to check
            # (AdAccountForm expects its editable fields to be there).
            return super().get_form(request, obj, change, form=forms.ModelForm, **kwargs)
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
        account = (
            None,
            {"fields": ("tenant", "name", "ad_account_id", "tag_id", "active", "test_mode")},
        )
        token = (_("Access token"), {"fields": ("access_token",)})
        if obj is None:
            return [account, token]
        token_fields = ("token_display", "access_token")
        if not self.has_change_permission(request, obj):
            token_fields = ("token_display",)  # view only: no form field to show
        token = (_("Access token"), {"fields": token_fields})
        state = (
            _("Connection"),
            {
                "description": OPERATIONS_HELP,
                "fields": (
                    "status_display",
                    ("paused_until", "pause_reason"),
                    ("auth_error", "auth_error_at"),
                    "last_success_at",
                    ("last_error_at", "last_error"),
                    "links",
                    ("created_at", "updated_at"),
                ),
            },
        )
        return [account, token, state]

    # --- columns ----------------------------------------------------------------------------

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

    def _events_link(self, obj: AdAccount, status: str, count: int | None) -> SafeString | str:
        if count is None:  # not annotated (never on the changelist)
            return "—"
        events = reverse("admin:pinterest_capi_outboxevent_changelist")
        return format_html(
            '<a href="{}?account__id__exact={}&amp;status__exact={}">{}</a>',
            events,
            obj.pk,
            status,
            count,
        )

    @admin.display(description=_("pending"), ordering="pending_count")
    def pending_display(self, obj: AdAccount) -> SafeString | str:
        return self._events_link(obj, EventStatus.PENDING, getattr(obj, "pending_count", None))

    @admin.display(description=_("failed"), ordering="failed_count")
    def failed_display(self, obj: AdAccount) -> SafeString | str:
        return self._events_link(obj, EventStatus.FAILED, getattr(obj, "failed_count", None))

    @admin.display(description=_("paused"), ordering="paused_until")
    def paused_display(self, obj: AdAccount) -> str:
        if obj.paused_until and obj.paused_until > timezone.now():
            return pause_words(obj)
        return "—"

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
