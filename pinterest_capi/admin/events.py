"""Admin of outbox events: read-only records with their delivery history and a resend.

Resending goes through :func:`pinterest_capi.outbox.requeue` (never an edit of
the row), needs the ``pinterest_capi.resend_outboxevent`` permission, and only
touches failed events; the event_id is kept, so Pinterest deduplicates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from .. import outbox
from ..models import AttemptEvent, EventStatus, OutboxEvent
from .common import ADMIN_CSS, ReadOnlyAdminMixin, ReadOnlyInlineMixin, badge, pretty_json, short
from .event_filters import (
    STANDARD_EVENT_NAMES,
    DeliveryAttemptFilter,
    EventNameFilter,
    StatusFilter,
)
from .paginator import CappedCountPaginator
from .resend_matching import ResendMatchingMixin
from .tenancy import AccountListFilter, TenantScopedAdminMixin

RESEND_PERMISSION = "pinterest_capi.resend_outboxevent"

# The filters moved to event_filters.py; still importable from here.
__all__ = [
    "STANDARD_EVENT_NAMES",
    "AttemptEventInline",
    "DeliveryAttemptFilter",
    "EventNameFilter",
    "OutboxEventAdmin",
]


def _posted_count(request: HttpRequest) -> int:
    """How many distinct rows an action was asked to act on (0 for "select all")."""
    if request.POST.get("select_across") == "1":
        return 0
    return len(set(request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)))


def _skipped_note(skipped: int) -> str:
    """A sentence for selected rows that were not found (deleted, or not the user's)."""
    if skipped <= 0:
        return ""
    return " " + ngettext(
        "%(count)d selected event was not found and was skipped.",
        "%(count)d selected events were not found and were skipped.",
        skipped,
    ) % {"count": skipped}


class AttemptEventInline(ReadOnlyInlineMixin, admin.TabularInline):
    """Each request this event was part of, newest first, with Pinterest's answer for it."""

    model = AttemptEvent
    fk_name = "event"
    verbose_name = _("delivery")
    verbose_name_plural = _("delivery history")
    fields = (
        "attempt_link",
        "attempt_started",
        "attempt_status",
        "attempt_outcome",
        "result",
        "message",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[AttemptEvent]:
        return (
            super()
            .get_queryset(request)
            .select_related("attempt")
            .order_by("-attempt__started_at", "-attempt_id")
        )

    @admin.display(description=_("attempt"))
    def attempt_link(self, obj: AttemptEvent) -> SafeString:
        url = reverse("admin:pinterest_capi_deliveryattempt_change", args=[obj.attempt_id])
        return format_html('<a href="{}">#{}</a>', url, obj.attempt_id)

    @admin.display(description=_("started at"))
    def attempt_started(self, obj: AttemptEvent) -> Any:
        return obj.attempt.started_at

    @admin.display(description=_("HTTP status"))
    def attempt_status(self, obj: AttemptEvent) -> Any:
        return obj.attempt.http_status or "—"

    @admin.display(description=_("outcome"))
    def attempt_outcome(self, obj: AttemptEvent) -> SafeString:
        return badge("outcome", obj.attempt.outcome, obj.attempt.get_outcome_display())


@admin.register(OutboxEvent)
class OutboxEventAdmin(
    TenantScopedAdminMixin, ResendMatchingMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    list_display = (
        "id",
        "event_name",
        "event_id",
        "account",
        "status_display",
        "attempts",
        "created_at",
        "sent_at",
        "next_attempt_at",
        "problem",
    )
    list_display_links = ("id", "event_name")
    list_filter = (
        ("status", StatusFilter),
        EventNameFilter,
        ("account", AccountListFilter),
        ("created_at", admin.DateFieldListFilter),
        DeliveryAttemptFilter,
    )
    list_select_related = ("account",)
    search_fields = ("event_id", "order_id")
    search_help_text = _("An event id (exact or its beginning), or an order id (exact).")
    # No COUNT(*) over the outbox per page view: a capped count or the planner's estimate.
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    actions = ["resend_failed"]
    inlines = [AttemptEventInline]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "account_link",
                    ("event_name", "event_id"),
                    ("event_time", "event_time_display"),
                    "order_id",
                )
            },
        ),
        (
            _("Delivery"),
            {
                "fields": (
                    "status_display",
                    "attempts",
                    "next_attempt_at",
                    ("lease_owner", "lease_expires_at"),
                    ("created_at", "sent_at", "updated_at"),
                    "last_error",
                    "warning",
                )
            },
        ),
        (_("Payload (as sent; personal data already hashed)"), {"fields": ("payload_display",)}),
    )
    readonly_fields = (
        "account_link",
        "event_name",
        "event_id",
        "event_time",
        "event_time_display",
        "order_id",
        "status_display",
        "attempts",
        "next_attempt_at",
        "lease_owner",
        "lease_expires_at",
        "created_at",
        "sent_at",
        "updated_at",
        "last_error",
        "warning",
        "payload_display",
    )

    class Media:
        css = ADMIN_CSS

    # --- search: index-friendly, case-sensitive matches -----------------------------------

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        """Allow the attempt filter's parameter, an ORM-style path across a reverse relation.

        Django 5.2.20 (installed here; earlier 5.2 releases let it through) allows such a path
        only when it names a relation exactly; a ``SimpleListFilter``'s own parameter
        (``…__id__exact``, which it validates itself) is one of ours, not a lookup an operator
        could misuse.
        """
        if lookup == DeliveryAttemptFilter.parameter_name:
            return True
        return super().lookup_allowed(lookup, value, request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Event ids and order ids are opaque keys: match exactly or by prefix, no icontains.

        The default search would run ``icontains`` over the whole outbox, which
        no index serves; these lookups use the event_id and order_id indexes.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        return (
            queryset.filter(Q(event_id__startswith=term) | Q(order_id=term)),
            False,
        )

    # --- columns and fields ---------------------------------------------------------------

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj: OutboxEvent) -> SafeString:
        return badge("status", obj.status, obj.get_status_display())

    @admin.display(description=_("last error / warning"))
    def problem(self, obj: OutboxEvent) -> str:
        if obj.last_error:
            return short(obj.last_error)
        if obj.warning:
            return _("warning: %(text)s") % {"text": short(obj.warning, 70)}
        return ""

    @admin.display(description=_("ad account"))
    def account_link(self, obj: OutboxEvent) -> SafeString:
        url = reverse("admin:pinterest_capi_adaccount_change", args=[obj.account_id])
        return format_html('<a href="{}">{}</a>', url, obj.account)

    @admin.display(description=_("event time"))
    def event_time_display(self, obj: OutboxEvent) -> str:
        try:
            when = datetime.fromtimestamp(obj.event_time, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return "—"
        return date_format(when, "Y-m-d H:i:s") + " UTC"

    @admin.display(description=_("payload"))
    def payload_display(self, obj: OutboxEvent) -> SafeString:
        return pretty_json(obj.payload)

    # --- resend ---------------------------------------------------------------------------

    def has_resend_permission(self, request: HttpRequest, obj: OutboxEvent | None = None) -> bool:
        return request.user.has_perm(RESEND_PERMISSION) and self.may_manage_object(request, obj)

    @admin.action(description=_("Resend selected failed events"), permissions=["resend"])
    def resend_failed(
        self, request: HttpRequest, queryset: QuerySet[OutboxEvent]
    ) -> HttpResponse | None:
        if request.POST.get("select_across") == "1":
            # "All N events" across pages may be 100,000 rows: confirm, then requeue them in
            # the background in batches (resend_matching.py), not in one UPDATE here.
            return HttpResponseRedirect(self.resend_matching_url(request.GET))
        # The queryset is already cut to the user's tenants: another tenant's ids
        # posted here are simply not in it, and are reported like missing rows.
        selected = queryset.count()
        skipped = _posted_count(request) - selected
        if not selected:
            self.message_user(
                request,
                _("None of the selected events was found; nothing was requeued."),
                messages.WARNING,
            )
            return None
        requeued = outbox.requeue(queryset)
        left = selected - requeued
        if not requeued:
            self.message_user(
                request,
                ngettext(
                    "The selected event was not failed; nothing was requeued.",
                    "None of the %(count)d selected events was failed; nothing was requeued.",
                    selected,
                )
                % {"count": selected}
                + _skipped_note(skipped),
                messages.WARNING,
            )
            return None
        text = ngettext(
            "%(count)d failed event requeued", "%(count)d failed events requeued", requeued
        ) % {"count": requeued}
        if left:
            text += "; " + ngettext(
                "%(count)d selected event was not failed and was left as it is.",
                "%(count)d selected events were not failed and were left as they are.",
                left,
            ) % {"count": left}
        else:
            text += "."
        self.message_user(request, text + _skipped_note(skipped), messages.SUCCESS)
        return None

    def get_urls(self) -> list[URLPattern]:
        opts = self.opts
        custom = [
            path(
                "<path:object_id>/resend/",
                self.admin_site.admin_view(self.resend_view),
                name=f"{opts.app_label}_{opts.model_name}_resend",
            )
        ]
        return custom + super().get_urls()

    def resend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST-only resend of one event from its change page (CSRF via admin_view)."""
        return require_POST(self._resend_one)(request, object_id)

    def _resend_one(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not (self.has_resend_permission(request) and self.has_view_permission(request)):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))  # None for another tenant's event
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not (
            self.has_resend_permission(request, obj) and self.has_view_permission(request, obj)
        ):
            raise PermissionDenied
        change_url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk]
        )
        if outbox.requeue(OutboxEvent.objects.filter(pk=obj.pk)):
            self.message_user(
                request,
                _("Event “%(event)s” requeued; it is sent again at the next flush.")
                % {"event": obj},
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                _("Event “%(event)s” is %(status)s, not failed; it was left as it is.")
                % {"event": obj, "status": obj.get_status_display()},
                messages.WARNING,
            )
        return HttpResponseRedirect(change_url)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: OutboxEvent | None = None,
    ) -> TemplateResponse:
        context["pcapi_can_resend"] = bool(
            obj is not None
            and obj.status == EventStatus.FAILED
            and self.has_resend_permission(request, obj)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)
