"""The "Delivery dashboard" admin page: charts and tables of the outbox, per tenant and account.

It hangs off a proxy model (:class:`~pinterest_capi.models.DeliveryDashboard`)
so it needs no change to any AdminSite or to another ModelAdmin: the proxy's
admin gives the sidebar entry, the URL and the permission check, and its
changelist view renders the dashboard instead of a list.  The figures come
from :mod:`pinterest_capi.stats` over the accounts the user may manage
(:func:`~pinterest_capi.admin.tenancy.scoped_accounts`), narrowed to one
tenant or account when the operator picks one.

The charts are inline SVG laid out here, on the server: no JavaScript, no
CDN, and every number is also in a table under its chart.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import stats
from ..models import AdAccount, DeliveryDashboard, EventStatus
from .tenancy import scoped_accounts

#: Who may open the dashboard: its own permission, or anyone who may view the events anyway.
VIEW_PERMISSIONS = ("pinterest_capi.view_deliverydashboard", "pinterest_capi.view_outboxevent")

#: Bar colours (colour-blind-safe enough: they also differ in lightness), bottom first.
COLOURS = {
    EventStatus.SENT: "#2e7d32",
    EventStatus.IN_FLIGHT: "#1565c0",
    EventStatus.PENDING: "#e0a000",
    EventStatus.FAILED: "#c62828",
}

# Chart geometry, in SVG user units (the SVG scales to the page width).
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 30


@admin.register(DeliveryDashboard)
class DeliveryDashboardAdmin(admin.ModelAdmin):
    """A read-only page, not a list: one URL (the changelist's), no objects, no forms."""

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return obj is None and any(user.has_perm(perm) for perm in VIEW_PERMISSIONS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        allowed = scoped_accounts(request)
        scope = request.GET.get("scope", "")
        accounts = self.selected_accounts(allowed, scope)
        if accounts is None:
            # Another tenant's account looks exactly like a missing one: no figures at all.
            self.message_user(
                request, _("That tenant or ad account was not found."), messages.ERROR
            )
            accounts = allowed.none()
        figures = stats.dashboard(accounts)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Delivery dashboard"),
            "subtitle": None,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "has_view_permission": True,
            "scope": scope,
            "scope_choices": scope_choices(allowed),
            "figures": figures,
            "charts": [chart(series) for series in figures.series],
            "latency": [latency_row(row) for row in figures.latency],
            "failures": [failure_row(reason) for reason in figures.failures],
            "coverage_columns": [label for _key, label in stats.IDENTIFIERS],
            "coverage": [coverage_row(row) for row in figures.coverage],
            "coverage_sample": stats.COVERAGE_SAMPLE,
            "latency_sample": stats.LATENCY_SAMPLE,
            "health": [health_row(row) for row in figures.health],
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/pinterest_capi/dashboard/dashboard.html", context)

    @staticmethod
    def selected_accounts(allowed: QuerySet[AdAccount], scope: str) -> QuerySet[AdAccount] | None:
        """``allowed`` narrowed by ``?scope=tenant:<key>`` or ``account:<pk>``; None: not found."""
        if not scope:
            return allowed
        kind, _sep, value = scope.partition(":")
        if kind == "tenant" and value:
            narrowed = allowed.filter(tenant=value)
        elif kind == "account" and value.isdigit():
            narrowed = allowed.filter(pk=int(value))
        else:
            return None
        return narrowed if narrowed.exists() else None


def scope_choices(allowed: QuerySet[AdAccount]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(value, label, accounts) per tenant for the picker: the tenant, then its accounts."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for account in allowed.only("pk", "tenant", "name", "ad_account_id"):
        label = account.name or account.ad_account_id
        if account.name:
            label = f"{account.name} ({account.ad_account_id})"
        groups.setdefault(account.tenant, []).append((f"account:{account.pk}", label))
    return [
        (f"tenant:{tenant}", _("All of %(tenant)s") % {"tenant": tenant}, rows)
        for tenant, rows in groups.items()
    ]


def failed_events_url(account: AdAccount) -> str:
    """The event changelist filtered to this account's failed events.

    Not by error text: the event admin searches event and order ids only
    (an index-friendly search), so ``?q=<error>`` would find nothing.
    """
    query = urlencode({"status__exact": EventStatus.FAILED, "account__id__exact": account.pk})
    return f"{reverse('admin:pinterest_capi_outboxevent_changelist')}?{query}"


# --- rows for the template -------------------------------------------------------------------


def chart(series: stats.Series) -> dict[str, Any]:
    """The geometry of one stacked bar chart, plus its words (title, description, legend)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = nice_ceiling(series.peak)
    slot = plot_w / len(series.buckets)
    bar_w = round(slot * 0.72, 2)
    baseline = TOP + plot_h
    hourly = series.unit == "hour"
    bars = []
    for index, bucket in enumerate(series.buckets):
        local = timezone.localtime(bucket.start)
        label = date_format(local, "H:i") if hourly else date_format(local, "D j M")
        y = float(baseline)
        segments = []
        for status in stats.STATUSES:
            count = bucket.counts[status]
            if not count:
                continue
            height = count / top_value * plot_h
            y -= height
            segments.append(
                {
                    "status": status,
                    "count": count,
                    "y": round(y, 2),
                    "height": round(height, 2),
                    "colour": COLOURS[status],
                }
            )
        x = LEFT + index * slot + (slot - bar_w) / 2
        words = ", ".join(f"{s['count']} {EventStatus(s['status']).label}" for s in segments)
        bars.append(
            {
                "x": round(x, 2),
                "width": bar_w,
                "label": label,
                "show_label": not hourly or index % 3 == 0,
                "label_x": round(x + bar_w / 2, 2),
                "title": f"{label}: {words or _('no events')} ({bucket.total})",
                "total": bucket.total,
                "counts": [bucket.counts[status] for status in stats.STATUSES],
                "segments": segments,
            }
        )
    ticks = [
        {"value": value, "y": round(baseline - value / top_value * plot_h, 2)}
        for value in sorted({round(top_value * i / 4) for i in range(5)})
    ]
    totals = series.totals
    if hourly:
        title = _("Events recorded per hour, last 24 hours, by status")
    else:
        title = _("Events recorded per day, last 7 days, by status")
    summary = ", ".join(f"{totals[s]} {EventStatus(s).label}" for s in stats.STATUSES)
    desc = _(
        "Stacked bars, one per %(unit)s, coloured by the events' current status. "
        "In all: %(total)d events (%(summary)s); the busiest %(unit)s had %(peak)d."
    ) % {"unit": series.unit, "total": series.total, "summary": summary, "peak": series.peak}
    return {
        "id": f"pcapi-chart-{series.key}",
        "key": series.key,
        "title": title,
        "desc": desc,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "baseline": baseline,
        "label_y": baseline + 18,
        "bars": bars,
        "ticks": ticks,
        "legend": [(EventStatus(s).label, COLOURS[s], s) for s in stats.STATUSES],
        "statuses": [EventStatus(s).label for s in stats.STATUSES],
        "totals": [totals[s] for s in stats.STATUSES],
        "total": series.total,
        "unit_label": _("hour") if hourly else _("day"),
    }


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2, 4, 5 or 10 × 10ⁿ at or above ``value`` (at least 4: even ticks)."""
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 4, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def latency_row(row: stats.Latency) -> dict[str, Any]:
    windows = {"24h": gettext_lazy("last 24 hours"), "7d": gettext_lazy("last 7 days")}
    if row.exact:
        note = _("all %(count)d sent events") % {"count": row.count}
    else:
        note = _("the %(sample)d most recent of %(count)d sent events") % {
            "sample": row.sample_size,
            "count": row.count,
        }
    return {
        "key": row.key,
        "window": windows.get(row.key, row.key),
        "count": row.count,
        "median": row.median,
        "p95": row.p95,
        "median_text": stats.format_duration(row.median),
        "p95_text": stats.format_duration(row.p95),
        "note": note,
    }


def failure_row(reason: stats.FailureReason) -> dict[str, Any]:
    return {
        "error": reason.error or _("(no error text)"),
        "count": reason.count,
        "accounts": [
            {"account": account, "count": count, "url": failed_events_url(account)}
            for account, count in reason.accounts
        ],
    }


def coverage_row(row: stats.Coverage) -> dict[str, Any]:
    return {
        "event_name": row.event_name,
        "total": row.total,
        "sampled": row.sampled,
        "cells": [
            {
                "key": key,
                "count": row.counts[key],
                "percent": f"{row.share(key) * 100:.1f}",
            }
            for key, _label in stats.IDENTIFIERS
        ],
    }


def health_row(row: stats.AccountHealth) -> dict[str, Any]:
    age = row.oldest_pending_age
    return {
        "account": row.account,
        "state": row.state,
        "pending": row.pending,
        "in_flight": row.in_flight,
        "failed": row.failed,
        "failed_url": failed_events_url(row.account),
        "oldest_age": stats.format_duration(age.total_seconds() if age is not None else None),
        "last_success": row.account.last_success_at,
        "reason": row.account.auth_error or row.account.pause_reason,
    }
