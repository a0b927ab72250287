"""Write side of the outbox: record events, requeue (resend) them, purge old ones.

Recording runs inside the caller's transaction: if the shop's transaction
rolls back, nothing was recorded and nothing will be sent.  The flush is only
nudged once the transaction commits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Now

from .models import AdAccount, EventStatus, OutboxEvent

logger = logging.getLogger(__name__)


def encode_payload(event: Mapping[str, Any]) -> str:
    """The event as compact JSON text, exactly as it will go on the wire."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def new_row(
    event: Mapping[str, Any], account: AdAccount, *, payload: str | None = None
) -> OutboxEvent:
    """An unsaved outbox row for ``event`` (an API event dict) and one account."""
    return OutboxEvent(
        account=account,
        event_id=event["event_id"],
        event_name=event["event_name"],
        event_time=event["event_time"],
        order_id=str((event.get("custom_data") or {}).get("order_id") or ""),
        payload=payload if payload is not None else encode_payload(event),
    )


def record(
    event: Mapping[str, Any], *, accounts: Iterable[AdAccount], using: str | None = None
) -> list[OutboxEvent]:
    """Insert ``event`` once per account; an event already recorded is not written again.

    Returns the rows (new or existing) for those accounts.  Must be called in
    the shop's transaction (it is atomic on its own otherwise).
    """
    accounts = list(accounts)
    if not accounts:
        return []
    payload = encode_payload(event)
    rows = [new_row(event, account, payload=payload) for account in accounts]
    db = using or OutboxEvent.objects.db
    with transaction.atomic(using=db):
        OutboxEvent.objects.using(db).bulk_create(rows, ignore_conflicts=True)
        transaction.on_commit(_nudge, using=db)
    return list(
        OutboxEvent.objects.using(db).filter(
            account__in=accounts, event_name=event["event_name"], event_id=event["event_id"]
        )
    )


def _nudge() -> None:
    from . import tasks

    tasks.nudge_flush()


def requeue(events: QuerySet[OutboxEvent]) -> int:
    """Put failed events back in the queue, due now, with a fresh attempt budget.

    The event_id does not change, so Pinterest deduplicates a resend of an
    event it had in fact recorded.  Only ``failed`` rows are touched; the count
    of requeued rows is returned.
    """
    count = events.filter(status=EventStatus.FAILED).update(
        status=EventStatus.PENDING,
        attempts=0,
        next_attempt_at=Now(),
        lease_owner="",
        lease_expires_at=None,
    )
    if count:
        transaction.on_commit(_nudge)
    return count


def purge_sent(older_than_days: int, *, batch_size: int = 5000) -> int:
    """Delete ``sent`` rows older than the window in batches; other states are kept."""
    cutoff = Now() - timedelta(days=older_than_days)
    total = 0
    while True:
        ids = list(
            OutboxEvent.objects.filter(
                Q(status=EventStatus.SENT), Q(sent_at__lt=cutoff)
            ).values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return total
        deleted, _ = OutboxEvent.objects.filter(pk__in=ids).delete()
        total += len(ids)
