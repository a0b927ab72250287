"""Per-account queue health: the status command's figures and the dashboard's account table.

Apart from the charts because it is all ``pinterest_capi_status`` needs, and
that command may run every minute from monitoring: it costs two GROUP BYs, one over
the queue (the pending and in-flight rows) and one over the index of failed rows,
whatever the size of the outbox, and the sent rows are never read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, QuerySet
from django.utils import timezone

from ..models import AdAccount, EventStatus, OutboxEvent, QueuedEvent


@dataclass(frozen=True)
class AccountHealth:
    """The state of one account's queue, for the status command and the dashboard's summary."""

    account: AdAccount
    pending: int
    in_flight: int
    failed: int
    oldest_pending_at: datetime | None  # oldest pending or in-flight event
    state: str  # ok, paused, auth, inactive
    now: datetime

    @property
    def oldest_pending_age(self) -> timedelta | None:
        if self.oldest_pending_at is None:
            return None
        return max(self.now - self.oldest_pending_at, timedelta(0))

    def is_stuck(self, stuck_after: timedelta) -> bool:
        """Undelivered events older than ``stuck_after`` (inactive accounts never count)."""
        age = self.oldest_pending_age
        return self.state != "inactive" and age is not None and age > stuck_after

    @property
    def auth_paused(self) -> bool:
        return self.state == "auth"


def account_health(
    accounts: QuerySet[AdAccount] | Iterable[AdAccount], *, now: datetime | None = None
) -> list[AccountHealth]:
    """Queue counts and state per account: a GROUP BY over the queue, one over the failed rows."""
    now = now or timezone.now()
    accounts = list(accounts)
    waiting = (EventStatus.PENDING, EventStatus.IN_FLIGHT)
    pks = [a.pk for a in accounts]
    counts: dict[int, dict[str, Any]] = {a.pk: {} for a in accounts}
    queued = (
        QueuedEvent.objects.filter(account__in=pks)
        .values_list("account_id", "event__status")
        .annotate(n=Count("pk"), oldest=Min("event__created_at"))
        .order_by()
    )
    failed = (
        OutboxEvent.objects.filter(account__in=pks, failed=True)  # pcapi_event_failed_idx
        .values_list("account_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for account_id, status, n, oldest in queued:
        counts[account_id][status] = (n, oldest)
    for account_id, n in failed:
        counts[account_id][EventStatus.FAILED] = (n, None)
    health = []
    for a in accounts:
        mine = counts[a.pk]
        oldest = [mine[s][1] for s in waiting if s in mine and mine[s][1] is not None]
        health.append(
            AccountHealth(
                account=a,
                pending=mine.get(EventStatus.PENDING, (0, None))[0],
                in_flight=mine.get(EventStatus.IN_FLIGHT, (0, None))[0],
                failed=mine.get(EventStatus.FAILED, (0, None))[0],
                oldest_pending_at=min(oldest) if oldest else None,
                state=account_state(a, now),
                now=now,
            )
        )
    return health


def account_state(account: AdAccount, now: datetime) -> str:
    """``inactive``, ``auth`` (token refused), ``paused`` (backing off) or ``ok``."""
    if not account.active:
        return "inactive"
    if account.auth_error:
        return "auth"
    if account.paused_until and account.paused_until > now:
        return "paused"
    return "ok"


def format_duration(seconds: float | None) -> str:
    """A duration for people: ``4.2 s``, ``12 min 5 s``, ``3 h 20 min``, ``2 d 4 h``; ``—``."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return "{} min {} s".format(*divmod(whole, 60))
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"
