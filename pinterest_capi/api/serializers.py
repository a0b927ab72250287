"""Request and response shapes of the REST API (validation of the envelope, and the schema).

The events inside ``POST events/`` are judged by :mod:`.ingest` (the app's event builder),
not here: this module checks the envelope (``data``, ``test``) and shapes answers.  No
serializer here has a token field, and payloads are shown with the plain user_data fields
(IP address, user agent, click and partner ids) redacted: hashed fields are hashes already.
"""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..events import PLAIN_USER_FIELDS
from ..models import AdAccount, AttemptEvent, EventStatus, OutboxEvent
from .event_schema import event_schema
from .ingest import MAX_EVENTS, STATUSES, printable

REDACTED = "[redacted]"
ACCOUNT_STATES = ("ok", "paused", "auth", "inactive")  # stats.health.account_state


# --- POST events/ ------------------------------------------------------------------------


@extend_schema_field(event_schema())
class EventField(serializers.JSONField):
    """One event, any JSON: judged per index by :mod:`.ingest`, so one bad event is reported
    with its index instead of failing the call."""


class IngestRequestSerializer(serializers.Serializer):
    data = serializers.ListField(
        child=EventField(),
        min_length=1,
        max_length=MAX_EVENTS,
        help_text=f"1 to {MAX_EVENTS} events in Pinterest's shape.",
        error_messages={
            "max_length": f"Send at most {MAX_EVENTS} events per call (got more).",
            "min_length": "Send at least one event.",
            "empty": "Send at least one event.",
        },
    )
    test = serializers.BooleanField(
        default=False,
        help_text="true: judge every event and answer as usual, but record nothing.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {
                    printable(key): "Unknown field: the body has only data and test."
                    for key in unknown
                }
            )
        return attrs


class EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in data.")
    status = serializers.ChoiceField(choices=STATUSES)
    event_name = serializers.CharField(allow_null=True)
    event_id = serializers.CharField(allow_null=True)
    field = serializers.CharField(allow_null=True, help_text="invalid: the field at fault.")
    reason = serializers.CharField(allow_null=True, help_text="invalid: what is wrong with it.")
    duplicate_of = serializers.IntegerField(
        allow_null=True, help_text="duplicate of an earlier index of the same call."
    )


class IngestCountsSerializer(serializers.Serializer):
    recorded = serializers.IntegerField()
    valid = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    invalid = serializers.IntegerField()


class IngestResponseSerializer(serializers.Serializer):
    test = serializers.BooleanField()
    num_events_received = serializers.IntegerField()
    counts = IngestCountsSerializer()
    events = EventResultSerializer(many=True)


# --- ops/ --------------------------------------------------------------------------------


class AccountRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = AdAccount
        fields = ["id", "tenant", "name", "ad_account_id"]


class EventListSerializer(serializers.ModelSerializer):
    account = AccountRefSerializer(read_only=True)

    class Meta:
        model = OutboxEvent
        fields = [
            "id",
            "account",
            "event_name",
            "event_id",
            "event_time",
            "order_id",
            "status",
            "attempts",
            "created_at",
            "next_attempt_at",
            "sent_at",
            "last_error",
            "warning",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    """One request this event was part of, and Pinterest's answer for it."""

    attempt_id = serializers.IntegerField(source="attempt.id")
    started_at = serializers.DateTimeField(source="attempt.started_at")
    duration_ms = serializers.IntegerField(source="attempt.duration_ms")
    http_status = serializers.IntegerField(source="attempt.http_status", allow_null=True)
    outcome = serializers.CharField(source="attempt.outcome")
    test_mode = serializers.BooleanField(source="attempt.test_mode")
    attempt_error = serializers.CharField(source="attempt.error")
    response_excerpt = serializers.CharField(source="attempt.response_excerpt")

    class Meta:
        model = AttemptEvent
        fields = [
            "attempt_id",
            "started_at",
            "duration_ms",
            "http_status",
            "outcome",
            "test_mode",
            "result",
            "message",
            "attempt_error",
            "response_excerpt",
        ]


def redacted_payload(payload: str) -> dict[str, Any]:
    """The stored event with its plain (unhashed) user_data values replaced by a marker."""
    try:
        event = json.loads(payload)
    except ValueError:
        return {}
    user_data = event.get("user_data") if isinstance(event, dict) else None
    if isinstance(user_data, dict):
        for key in PLAIN_USER_FIELDS:
            if key in user_data:
                user_data[key] = REDACTED
    return event if isinstance(event, dict) else {}


class EventDetailSerializer(EventListSerializer):
    payload = serializers.SerializerMethodField(
        help_text="The event as sent to Pinterest; hashed fields as hashes, plain user_data "
        "fields (IP address, user agent, click and partner ids) redacted."
    )
    deliveries = serializers.SerializerMethodField()

    class Meta(EventListSerializer.Meta):
        fields = [*EventListSerializer.Meta.fields, "updated_at", "payload", "deliveries"]

    @extend_schema_field({"type": "object", "additionalProperties": True})
    def get_payload(self, obj: OutboxEvent) -> dict[str, Any]:
        return redacted_payload(obj.payload)

    @extend_schema_field(DeliverySerializer(many=True))
    def get_deliveries(self, obj: OutboxEvent) -> list[dict[str, Any]]:
        results = obj.results.select_related("attempt").order_by(
            "-attempt__started_at", "-attempt_id"
        )
        return DeliverySerializer(results, many=True).data


class EventFilterSerializer(serializers.Serializer):
    """Filters of the event list and of "resend matching" (query string or body)."""

    status = serializers.ChoiceField(choices=EventStatus.choices, required=False)
    event_name = serializers.CharField(max_length=64, required=False)
    event_id = serializers.CharField(max_length=255, required=False)
    account = serializers.IntegerField(min_value=1, required=False, help_text="Ad account id.")
    tenant = serializers.CharField(max_length=100, required=False)
    since = serializers.DateTimeField(
        required=False, help_text="Recorded at or after (ISO 8601 date or date-time)."
    )
    until = serializers.DateTimeField(
        required=False, help_text="Recorded before (ISO 8601 date or date-time)."
    )


class ResendMatchingRequestSerializer(EventFilterSerializer):
    status = None  # only failed events are resent
    event_id = None
    dry_run = serializers.BooleanField(
        default=False, help_text="true: count the failed events that match, requeue nothing."
    )


class ResendMatchingResponseSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    matched = serializers.IntegerField(help_text="Failed events matching the filter.")
    requeued = serializers.IntegerField()


class ResendOneResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    requeued = serializers.BooleanField(help_text="false: the event was not failed.")
    status = serializers.ChoiceField(choices=EventStatus.choices)


class AccountHealthSerializer(serializers.Serializer):
    """An account's queue and state (never its token, not even the last characters)."""

    id = serializers.IntegerField(source="account.pk")
    tenant = serializers.CharField(source="account.tenant")
    name = serializers.CharField(source="account.name")
    ad_account_id = serializers.CharField(source="account.ad_account_id")
    active = serializers.BooleanField(source="account.active")
    test_mode = serializers.BooleanField(source="account.test_mode")
    state = serializers.ChoiceField(choices=ACCOUNT_STATES)
    pending = serializers.IntegerField()
    in_flight = serializers.IntegerField()
    failed = serializers.IntegerField()
    oldest_pending_at = serializers.DateTimeField(allow_null=True)
    paused_until = serializers.DateTimeField(source="account.paused_until", allow_null=True)
    pause_reason = serializers.CharField(source="account.pause_reason")
    auth_error = serializers.CharField(source="account.auth_error")
    auth_error_at = serializers.DateTimeField(source="account.auth_error_at", allow_null=True)
    last_success_at = serializers.DateTimeField(source="account.last_success_at", allow_null=True)
    last_error_at = serializers.DateTimeField(source="account.last_error_at", allow_null=True)
    last_error = serializers.CharField(source="account.last_error")


class AccountFilterSerializer(serializers.Serializer):
    tenant = serializers.CharField(max_length=100, required=False)
