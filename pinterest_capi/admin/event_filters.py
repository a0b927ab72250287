"""Sidebar filters of the outbox event changelist (also used for links from attempts).

The event name and attempt filters avoid a ``SELECT DISTINCT`` over the outbox to build their
choices: the event names come from Pinterest's fixed list, the attempt filter only shows the
attempt already selected.  The status filter starts from the queue table (pending, in flight)
or the partial index of failed rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..models import QUEUED_STATUSES, EventStatus

# Pinterest's standard event names (contract.md).  A fixed list instead of a
# SELECT DISTINCT over the whole outbox on every changelist view.
STANDARD_EVENT_NAMES = (
    "checkout",
    "add_to_cart",
    "page_visit",
    "signup",
    "lead",
    "search",
    "view_category",
    "watch_video",
    "custom",
    "add_payment_info",
    "add_to_wishlist",
    "initiate_checkout",
    "subscribe",
    "view_content",
    "app_install",
)


class StatusFilter(admin.ChoicesFieldListFilter):
    """The status filter, led by the queue table or the index of failed rows.

    No index reads ``status`` itself (the flush's claim and delivery would then rewrite every
    index: see ``QueuedEvent``).  Pending and in-flight rows are the rows of the queue (a join
    the database starts from), failed ones those of ``pcapi_event_failed_idx`` (``failed``):
    adding that condition selects the same rows and lets the database find a rare status
    without reading the sent ones.
    """

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = super().queryset(request, queryset)
        value = self.lookup_val[-1] if isinstance(self.lookup_val, list) else self.lookup_val
        if value in QUEUED_STATUSES:
            return queryset.filter(queue_entry__isnull=False)
        if value == EventStatus.FAILED:
            return queryset.filter(failed=True)
        return queryset


class EventNameFilter(admin.SimpleListFilter):
    """Standard event names, plus an advertiser-defined one when it is the one selected."""

    title = _("event name")
    parameter_name = "event_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = list(STANDARD_EVENT_NAMES)
        current = self.value()
        if current and current not in names:
            names.append(current)
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(event_name=self.value())
        return queryset


class DeliveryAttemptFilter(admin.SimpleListFilter):
    """The events of one delivery attempt (the link on an attempt's page).

    Only shown while in use: listing every attempt in the sidebar would be
    unbounded.  The parameter name matches the ORM lookup so hand-written
    links ``?delivery_attempts__id__exact=<pk>`` work.
    """

    title = _("delivery attempt")
    parameter_name = "delivery_attempts__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        if value:
            return [(value, _("attempt #%(pk)s") % {"pk": value})]
        return []

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            # The admin's usual answer to a bad filter value: back to the list with ?e=1.
            raise IncorrectLookupParameters(f"delivery attempt id {value!r} is not a number")
        return queryset.filter(results__attempt_id=int(value))
