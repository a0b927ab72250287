"""``POST events/``: record a batch of events for the API key's tenant."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ...conf import app_settings
from ...exceptions import NoActiveAccountError
from .. import ingest
from ..serializers import IngestRequestSerializer, IngestResponseSerializer
from .base import ApiKeyViewMixin

_DETAIL = inline_serializer("ErrorDetail", {"detail": serializers.CharField()})

_EXAMPLE_REQUEST = {
    "data": [
        {
            "event_name": "checkout",
            "action_source": "web",
            "event_time": 1767225600,
            "event_id": "checkout-1001",
            "user_data": {"em": ["buyer@example.com"], "client_ip_address": "203.0.113.7"},
            "custom_data": {"currency": "USD", "value": "72.39", "order_id": "1001"},
        }
    ],
    "test": False,
}


@extend_schema(
    summary="Record events (API key)",
    description=(
        "Up to 1,000 events in Pinterest's shape. Each event is judged alone: valid "
        "ones are recorded (once per active ad account of the key's tenant, in one "
        "transaction) even when others are invalid. An event whose (event_name, "
        "event_id) the tenant already has is a `duplicate` and writes nothing, so a "
        "lost answer can be retried safely. `test: true` judges everything and records "
        "nothing (`valid` instead of `recorded`)."
    ),
    request=IngestRequestSerializer,
    responses={
        200: IngestResponseSerializer,
        400: OpenApiResponse(description="Malformed body; the field is named."),
        401: OpenApiResponse(_DETAIL, description="Missing, invalid or revoked API key."),
        403: OpenApiResponse(_DETAIL, description="Not authenticated by an API key."),
        409: OpenApiResponse(_DETAIL, description="The tenant has no active ad account."),
        429: OpenApiResponse(_DETAIL, description="Too many requests with this key."),
        503: OpenApiResponse(_DETAIL, description="Recording is switched off (ENABLED)."),
    },
    examples=[OpenApiExample("one checkout", value=_EXAMPLE_REQUEST, request_only=True)],
    tags=["events"],
)
class EventIngestView(ApiKeyViewMixin, APIView):
    """Record events for the key's tenant: one result per index, never all-or-nothing."""

    def post(self, request: Request) -> Response:
        envelope = IngestRequestSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        if not app_settings.ENABLED:
            return Response(
                {"detail": _("Recording is switched off (PINTEREST_CAPI['ENABLED'] is False).")},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        try:
            outcome = ingest.ingest(
                envelope.validated_data["data"],
                tenant=request.auth.tenant,
                test=envelope.validated_data["test"],
            )
        except NoActiveAccountError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        body = {
            "test": outcome.test,
            "num_events_received": len(outcome.results),
            "counts": {name: outcome.count(name) for name in ingest.STATUSES},
            "events": [vars(result) for result in outcome.results],
        }
        return Response(IngestResponseSerializer(body).data)
