"""``ops/events/…``: list, inspect and resend events, as the admin does, for scripts.

Staff only, with the admin's permissions (view, resend) and its tenant scoping: another
tenant's event answers 404 exactly like a missing one, and filters can only narrow the
user's own tenants.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ... import outbox
from ...models import AdAccount, EventStatus, OutboxEvent
from ...permissions import request_tenants, scope_queryset
from ..pagination import EventCursorPagination
from ..serializers import (
    EventDetailSerializer,
    EventFilterSerializer,
    EventListSerializer,
    ResendMatchingRequestSerializer,
    ResendMatchingResponseSerializer,
    ResendOneResponseSerializer,
)
from .base import StaffViewMixin

VIEW_EVENTS = ["pinterest_capi.view_outboxevent"]
RESEND_EVENTS = [*VIEW_EVENTS, "pinterest_capi.resend_outboxevent"]
_DETAIL = inline_serializer("OpsErrorDetail", {"detail": serializers.CharField()})
_DENIED = {
    401: OpenApiResponse(_DETAIL, description="Not authenticated."),
    403: OpenApiResponse(_DETAIL, description="Not staff, or missing the model permission."),
}


def scoped_events(request: Request) -> QuerySet[OutboxEvent]:
    """The events of the user's tenants (all for superusers)."""
    return scope_queryset(
        OutboxEvent.objects.select_related("account"), request_tenants(request), "account__tenant"
    )


def filter_events(request: Request, filters: dict[str, Any]) -> QuerySet[OutboxEvent]:
    """The user's events narrowed by validated ``filters`` (see EventFilterSerializer).

    Tenant and account filters are resolved on the small accounts table first, so the
    outbox query is ``account_id IN (…)`` on its index, not a join per row.
    """
    events = scoped_events(request)
    if "tenant" in filters or "account" in filters:
        accounts = scope_queryset(AdAccount.objects.all(), request_tenants(request))
        if "tenant" in filters:
            accounts = accounts.filter(tenant=filters["tenant"])
        if "account" in filters:
            accounts = accounts.filter(pk=filters["account"])
        events = events.filter(account_id__in=list(accounts.values_list("pk", flat=True)))
    for name in ("status", "event_name", "event_id"):
        if name in filters:
            events = events.filter(**{name: filters[name]})
    if "since" in filters:
        events = events.filter(created_at__gte=filters["since"])
    if "until" in filters:
        events = events.filter(created_at__lt=filters["until"])
    return events


@extend_schema(
    summary="List events (staff)",
    description="Newest first, cursor-paginated (follow `next`); the user's tenants only.",
    parameters=[EventFilterSerializer],
    responses={200: EventListSerializer(many=True), 400: OpenApiResponse(), **_DENIED},
    tags=["operations"],
)
class EventListView(StaffViewMixin, generics.ListAPIView):
    serializer_class = EventListSerializer
    pagination_class = EventCursorPagination
    required_permissions = {"GET": VIEW_EVENTS}

    def get_queryset(self) -> QuerySet[OutboxEvent]:
        filters = EventFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return filter_events(self.request, filters.validated_data)


@extend_schema(
    summary="One event with its delivery history (staff)",
    responses={
        200: EventDetailSerializer,
        404: OpenApiResponse(_DETAIL, description="No such event among the user's."),
        **_DENIED,
    },
    tags=["operations"],
)
class EventDetailView(StaffViewMixin, generics.RetrieveAPIView):
    serializer_class = EventDetailSerializer
    required_permissions = {"GET": VIEW_EVENTS}

    def get_queryset(self) -> QuerySet[OutboxEvent]:
        return scoped_events(self.request)


@extend_schema(
    summary="Resend one failed event (staff, resend permission)",
    description="Requeues the event with the same event_id (Pinterest deduplicates). "
    "An event that is not failed is left as it is (`requeued: false`).",
    request=None,
    responses={
        200: ResendOneResponseSerializer,
        404: OpenApiResponse(_DETAIL, description="No such event among the user's."),
        **_DENIED,
    },
    tags=["operations"],
)
class ResendEventView(StaffViewMixin, APIView):
    required_permissions = {"POST": RESEND_EVENTS}

    def post(self, request: Request, pk: int) -> Response:
        event = get_object_or_404(scoped_events(request), pk=pk)
        with transaction.atomic():
            requeued = outbox.requeue(OutboxEvent.objects.filter(pk=event.pk))
        event.refresh_from_db(fields=["status"])
        return Response(
            ResendOneResponseSerializer(
                {"id": event.pk, "requeued": bool(requeued), "status": event.status}
            ).data
        )


@extend_schema(
    summary="Resend every failed event matching a filter (staff, resend permission)",
    description="Requeued in primary-key batches of 5,000 (outbox.requeue_matching), "
    "same event_ids; only the user's tenants. `dry_run: true` only counts.",
    request=ResendMatchingRequestSerializer,
    responses={200: ResendMatchingResponseSerializer, 400: OpenApiResponse(), **_DENIED},
    tags=["operations"],
)
class ResendMatchingView(StaffViewMixin, APIView):
    required_permissions = {"POST": RESEND_EVENTS}

    def post(self, request: Request) -> Response:
        body = ResendMatchingRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        filters = dict(body.validated_data)
        dry_run = filters.pop("dry_run")
        failed = filter_events(request, filters).filter(status=EventStatus.FAILED)
        matched = failed.order_by().count()
        requeued = 0 if dry_run or not matched else outbox.requeue_matching(failed)
        return Response(
            ResendMatchingResponseSerializer(
                {"dry_run": dry_run, "matched": matched, "requeued": requeued}
            ).data
        )
