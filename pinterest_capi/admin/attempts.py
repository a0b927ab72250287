"""Admin of delivery attempts: one row per request to Pinterest, read-only."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import DeliveryAttempt
from .common import ADMIN_CSS, ReadOnlyAdminMixin, badge, pre, short
from .event_filters import DeliveryAttemptFilter
from .paginator import CappedCountPaginator
from .tenancy import AccountListFilter, TenantScopedAdminMixin


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(TenantScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "started_at",
        "account",
        "outcome_display",
        "http_status",
        "num_events",
        "num_processed",
        "num_failed",
        "duration_ms",
        "short_error",
    )
    list_filter = (
        "outcome",
        ("account", AccountListFilter),
        ("started_at", admin.DateFieldListFilter),
        "test_mode",
    )
    list_select_related = ("account",)
    # Attempts grow with the outbox (one per request): no COUNT(*) of them per page view.
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    fields = (
        "account_link",
        ("started_at", "duration_ms"),
        ("outcome_display", "http_status", "test_mode"),
        ("num_events", "num_received", "num_processed", "num_failed"),
        "events_link",
        "error",
        "response_display",
    )
    readonly_fields = (
        "account_link",
        "started_at",
        "duration_ms",
        "outcome_display",
        "http_status",
        "test_mode",
        "num_events",
        "num_received",
        "num_processed",
        "num_failed",
        "events_link",
        "error",
        "response_display",
    )

    class Media:
        css = ADMIN_CSS

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeliveryAttempt]:
        return super().get_queryset(request).select_related("account")

    @admin.display(description=_("outcome"), ordering="outcome")
    def outcome_display(self, obj: DeliveryAttempt) -> SafeString:
        return badge("outcome", obj.outcome, obj.get_outcome_display())

    @admin.display(description=_("error"))
    def short_error(self, obj: DeliveryAttempt) -> str:
        return short(obj.error)

    @admin.display(description=_("ad account"))
    def account_link(self, obj: DeliveryAttempt) -> SafeString:
        url = reverse("admin:pinterest_capi_adaccount_change", args=[obj.account_id])
        return format_html('<a href="{}">{}</a>', url, obj.account)

    @admin.display(description=_("events"))
    def events_link(self, obj: DeliveryAttempt) -> SafeString:
        # num_events is stored on the row: no COUNT over the outbox to draw this link.
        url = reverse("admin:pinterest_capi_outboxevent_changelist")
        label = ngettext(
            "the %(count)d event of this request",
            "the %(count)d events of this request",
            obj.num_events,
        ) % {"count": obj.num_events}
        return format_html(
            '<a href="{}?{}={}">{}</a>', url, DeliveryAttemptFilter.parameter_name, obj.pk, label
        )

    @admin.display(description=_("response excerpt"))
    def response_display(self, obj: DeliveryAttempt) -> SafeString:
        return pre(obj.response_excerpt) if obj.response_excerpt else "—"
