"""The figures of the delivery dashboard and of ``pinterest_capi_status``.

One service computes them so the admin page and the terminal command can
never disagree.  Callers pass the accounts the reader may see (the admin
scopes them with :mod:`pinterest_capi.permissions` first); every figure is
computed over the events of those accounts only.

Every query is bounded, because the dashboard is loaded by people while the
worker writes: the charts, the failure reasons and the event names are
aggregates over a window of ``created_at`` (an indexed column); the account
health uses the status index; the two things that need rows rather than
aggregates read at most a fixed number of recent rows:

* time to delivery: on PostgreSQL the median and 95th percentile are exact,
  ``PERCENTILE_CONT`` in SQL over every sent event of the window.  Other
  databases (SQLite) have no percentile aggregate, so the percentiles are
  taken in Python over the ``LATENCY_SAMPLE`` most recent sent events of the
  window, with the same interpolation as ``PERCENTILE_CONT``; the result says
  so (``exact=False`` and the sample size).
* match coverage: the payload is JSON text, so the share of events carrying
  each identifier is counted in Python over the ``COVERAGE_SAMPLE`` most
  recent events of each event name in the window.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, QuerySet
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from ..models import AdAccount, EventStatus, OutboxEvent
from .health import AccountHealth, account_health, account_state, format_duration

__all__ = [
    "AccountHealth",
    "Coverage",
    "Dashboard",
    "FailureReason",
    "Latency",
    "Series",
    "account_health",
    "account_state",
    "dashboard",
    "format_duration",
    "match_coverage",
    "percentile",
]

#: Sent events read, at most, per window for the percentiles where SQL cannot take them.
LATENCY_SAMPLE = 10_000
#: Events read, at most, per event name for the match coverage.
COVERAGE_SAMPLE = 5_000
#: How many distinct failure reasons are listed.
TOP_FAILURES = 10

#: Statuses in the order they are stacked (bottom first) and listed.
STATUSES: tuple[str, ...] = (
    EventStatus.SENT,
    EventStatus.IN_FLIGHT,
    EventStatus.PENDING,
    EventStatus.FAILED,
)

#: (key, label) of the identifiers whose presence the coverage reports.
IDENTIFIERS: tuple[tuple[str, str], ...] = (
    ("em", "email"),
    ("ph", "phone"),
    ("click_id", "click id"),
    ("ip_ua", "IP + user agent"),
    ("external_id", "external id"),
)


# --- result values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """One bar: the events recorded in [start, start + width), by their current status."""

    start: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Series:
    """A window cut into equal buckets (24 hours, or 7 days)."""

    key: str  # "24h" or "7d"
    unit: str  # "hour" or "day"
    start: datetime
    buckets: list[Bucket]

    @property
    def totals(self) -> dict[str, int]:
        return {s: sum(b.counts[s] for b in self.buckets) for s in STATUSES}

    @property
    def total(self) -> int:
        return sum(b.total for b in self.buckets)

    @property
    def peak(self) -> int:
        return max((b.total for b in self.buckets), default=0)


@dataclass(frozen=True)
class Latency:
    """Seconds from recording to delivery over the sent events of a window."""

    key: str
    count: int  # sent events in the window
    median: float | None
    p95: float | None
    exact: bool  # False: taken over the `sample_size` most recent only
    sample_size: int


@dataclass(frozen=True)
class FailureReason:
    """One distinct ``last_error`` text of failed events, and where those events are."""

    error: str
    count: int
    accounts: list[tuple[AdAccount, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Coverage:
    """For one event name: how many events were read, and the share carrying each identifier."""

    event_name: str
    total: int  # events of this name in the window
    sampled: int  # of which read (the most recent, at most COVERAGE_SAMPLE)
    counts: dict[str, int]

    def share(self, key: str) -> float:
        return self.counts[key] / self.sampled if self.sampled else 0.0


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    series: list[Series]
    latency: list[Latency]
    failures: list[FailureReason]
    coverage: list[Coverage]
    health: list[AccountHealth]


# --- the service -----------------------------------------------------------------------------


def events_of(accounts: QuerySet[AdAccount]) -> QuerySet[OutboxEvent]:
    """The outbox rows of ``accounts`` (a subquery: no account list is materialised)."""
    return OutboxEvent.objects.filter(account__in=accounts.values("pk")).order_by()


def dashboard(accounts: QuerySet[AdAccount], *, now: datetime | None = None) -> Dashboard:
    """Every figure of the dashboard for ``accounts``, as of ``now``."""
    now = now or timezone.now()
    events = events_of(accounts)
    hourly = hourly_series(events, now)
    daily = daily_series(events, now)
    return Dashboard(
        now=now,
        series=[hourly, daily],
        latency=[
            latency(events, hourly.key, hourly.start),
            latency(events, daily.key, daily.start),
        ],
        failures=failure_reasons(events, accounts, daily.start),
        coverage=match_coverage(events, daily.start),
        health=account_health(accounts, now=now),
    )


def hourly_series(events: QuerySet[OutboxEvent], now: datetime) -> Series:
    """The last 24 hours, one bucket per hour; the last one is the current (partial) hour."""
    this_hour = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    start = this_hour.astimezone(UTC) - timedelta(hours=23)  # real hours across a DST change
    starts = [start + timedelta(hours=n) for n in range(24)]
    rows = _counts(events, start, TruncHour("created_at"))
    counts = [_zero() for _ in starts]
    for bucket, status, n in rows:
        index = int((bucket - start).total_seconds() // 3600)
        if 0 <= index < len(counts) and status in counts[index]:
            counts[index][status] += n
    return Series("24h", "hour", start, [Bucket(s, c) for s, c in zip(starts, counts, strict=True)])


def daily_series(events: QuerySet[OutboxEvent], now: datetime) -> Series:
    """The last 7 days (in the current time zone), one bucket per day; today is the last."""
    today = timezone.localtime(now).date()
    days = [today - timedelta(days=n) for n in range(6, -1, -1)]
    starts = [_midnight(day) for day in days]
    rows = _counts(events, starts[0], TruncDay("created_at"))
    by_day: dict[date, dict[str, int]] = {day: _zero() for day in days}
    for bucket, status, n in rows:
        day = timezone.localtime(bucket).date() if timezone.is_aware(bucket) else bucket.date()
        if day in by_day and status in by_day[day]:
            by_day[day][status] += n
    buckets = [Bucket(s, by_day[d]) for s, d in zip(starts, days, strict=True)]
    return Series("7d", "day", starts[0], buckets)


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def _zero() -> dict[str, int]:
    return {status: 0 for status in STATUSES}


def _counts(events: QuerySet[OutboxEvent], since: datetime, trunc: Func) -> list[tuple]:
    """(bucket, status, count) rows: one GROUP BY over the window of the created_at index."""
    return list(
        events.filter(created_at__gte=since)
        .annotate(bucket=trunc)
        .values_list("bucket", "status")
        .annotate(n=Count("id"))
        .order_by()
    )


class _PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate ``percentile_cont(f) WITHIN GROUP (ORDER BY x)``."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        # A float we choose, never user input: formatted into the SQL as a literal.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def _seconds_to_deliver() -> Func:
    return Func(
        F("sent_at") - F("created_at"),
        template="EXTRACT(EPOCH FROM %(expressions)s)::double precision",
        output_field=FloatField(),
    )


def latency(events: QuerySet[OutboxEvent], key: str, since: datetime) -> Latency:
    """Median and 95th percentile of sent_at - created_at over sent events recorded since."""
    sent = events.filter(
        created_at__gte=since, status=EventStatus.SENT, sent_at__isnull=False
    ).order_by()
    if connection.vendor == "postgresql":
        row = sent.aggregate(
            n=Count("id"),
            p50=_PercentileCont(_seconds_to_deliver(), 0.5),
            p95=_PercentileCont(_seconds_to_deliver(), 0.95),
        )
        return Latency(key, row["n"], row["p50"], row["p95"], True, row["n"])
    count = sent.count()
    recent = sent.order_by("-created_at").values_list("created_at", "sent_at")[:LATENCY_SAMPLE]
    seconds = sorted(max((s - c).total_seconds(), 0.0) for c, s in recent)
    return Latency(
        key,
        count,
        percentile(seconds, 0.5),
        percentile(seconds, 0.95),
        len(seconds) == count,
        len(seconds),
    )


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """``PERCENTILE_CONT`` of sorted values: linear interpolation between the closest ranks."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def failure_reasons(
    events: QuerySet[OutboxEvent], accounts: QuerySet[AdAccount], since: datetime
) -> list[FailureReason]:
    """The TOP_FAILURES most frequent errors of failed events recorded since, with accounts."""
    failed = events.filter(status=EventStatus.FAILED, created_at__gte=since).order_by()
    top = list(
        failed.values_list("last_error")
        .annotate(n=Count("id"))
        .order_by("-n", "last_error")[:TOP_FAILURES]
    )
    if not top:
        return []
    errors = [error for error, _n in top]
    per_account = (
        failed.filter(last_error__in=errors)
        .values_list("last_error", "account_id")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    breakdown: dict[str, list[tuple[int, int]]] = {error: [] for error in errors}
    for error, account_id, n in per_account:
        breakdown[error].append((account_id, n))
    known = accounts.in_bulk({a for rows in breakdown.values() for a, _n in rows})
    return [
        FailureReason(
            error,
            n,
            [(known[a], an) for a, an in breakdown[error] if a in known],
        )
        for error, n in top
    ]


def match_coverage(events: QuerySet[OutboxEvent], since: datetime) -> list[Coverage]:
    """Per event name recorded since: the share of recent events carrying each identifier."""
    window = events.filter(created_at__gte=since)
    names = list(
        window.values_list("event_name").annotate(n=Count("id")).order_by("-n", "event_name")
    )
    result = []
    for name, total in names:
        payloads = (
            window.filter(event_name=name)
            .order_by("-created_at", "-id")
            .values_list("payload", flat=True)[:COVERAGE_SAMPLE]
        )
        counts = {key: 0 for key, _label in IDENTIFIERS}
        sampled = 0
        for payload in payloads:
            sampled += 1
            for key in identifiers_in(payload):
                counts[key] += 1
        result.append(Coverage(name, total, sampled, counts))
    return result


def identifiers_in(payload: str) -> set[str]:
    """The IDENTIFIERS keys an API event (JSON text) carries with a non-empty value."""
    try:
        user_data = json.loads(payload).get("user_data") or {}
    except (TypeError, ValueError, AttributeError):
        return set()
    if not isinstance(user_data, dict):
        return set()
    present = {key for key, value in user_data.items() if value not in (None, "", [], {})}
    found = present & {"em", "ph", "click_id", "external_id"}
    if {"client_ip_address", "client_user_agent"} <= present:
        found.add("ip_ua")
    return found
