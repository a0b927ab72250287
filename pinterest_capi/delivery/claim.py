"""Claiming due rows under a lease computed by the database clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Q, QuerySet
from django.db.models.functions import Now

from ..conf import app_settings
from ..models import EventStatus, OutboxEvent


def db_now_plus(seconds: float) -> ExpressionWrapper:
    """``NOW() + seconds`` evaluated by the database, so host clocks never matter."""
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


@dataclass
class Claimed:
    """A row this worker holds a lease on, with what is needed to send it."""

    pk: int
    account_id: int
    payload: str
    attempts: int


def sendable_due_rows() -> QuerySet[OutboxEvent]:
    """Due rows of accounts that may send now (active, no auth problem, not paused)."""
    return OutboxEvent.objects.due().filter(
        Q(account__active=True, account__auth_error=""),
        Q(account__paused_until__isnull=True) | Q(account__paused_until__lte=Now()),
    )


def claim(limit: int, *, owner: str | None = None) -> tuple[str, list[Claimed]]:
    """Lease up to ``limit`` due rows to a new owner token; return (owner, rows)."""
    owner = owner or uuid.uuid4().hex
    db = router.db_for_write(OutboxEvent)
    lease = float(app_settings.LEASE_SECONDS)
    with transaction.atomic(using=db):
        candidates = sendable_due_rows().using(db).order_by("next_attempt_at", "pk")
        if connections[db].features.has_select_for_update_skip_locked:
            # OF self: lock outbox rows only, never the joined account rows.
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        ids = list(candidates.values_list("pk", flat=True)[:limit])
        if not ids:
            return owner, []
        # Conditional UPDATE: re-checks "due" so a row another worker took meanwhile is skipped.
        OutboxEvent.objects.using(db).filter(pk__in=ids).due().update(
            status=EventStatus.IN_FLIGHT,
            lease_owner=owner,
            lease_expires_at=db_now_plus(lease),
        )
    rows = [
        Claimed(pk=pk, account_id=account_id, payload=payload, attempts=attempts)
        for pk, account_id, payload, attempts in OutboxEvent.objects.using(db)
        .filter(lease_owner=owner, status=EventStatus.IN_FLIGHT)
        .order_by("pk")
        .values_list("pk", "account_id", "payload", "attempts")
    ]
    return owner, rows
