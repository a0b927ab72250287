"""Send side of the outbox: claim due events, send them in batches, apply the results.

The shape follows three rules (see the design notes):

* **Claim short.**  A short transaction marks due rows ``in_flight`` with a
  lease owner and an expiry computed by the *database* clock, using
  ``SELECT … FOR UPDATE SKIP LOCKED`` where the backend has it and a
  conditional UPDATE everywhere, so two workers never hold the same row.
* **Send outside.**  No transaction is open while a request is on the wire.
* **Finalize fenced.**  Results are applied only to rows whose lease is still
  ours; if we lost it (a slow worker, a restart) another worker resends the
  same event_ids and Pinterest deduplicates them.

The retry policy lives in the outbox's own columns (attempts,
next_attempt_at), not in django-q2's redelivery.  Nothing here raises for an
API failure: a flush returns a :class:`FlushSummary`.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connections, router, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Now
from django.views.decorators.debug import sensitive_variables

from . import client
from .conf import app_settings
from .exceptions import TokenDecryptionError
from .models import (
    AdAccount,
    AttemptEvent,
    AttemptOutcome,
    DeliveryAttempt,
    EventStatus,
    OutboxEvent,
)

logger = logging.getLogger(__name__)


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


@dataclass
class FlushSummary:
    """What one flush did; returned by the task (and stored by django-q2) instead of raising."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    released: int = 0
    requests: int = 0
    cycles: int = 0
    paused_accounts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: FlushSummary) -> None:
        for name in ("claimed", "sent", "failed", "retrying", "released", "requests", "cycles"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.paused_accounts.extend(
            a for a in other.paused_accounts if a not in self.paused_accounts
        )
        self.errors.extend(other.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "failed": self.failed,
            "retrying": self.retrying,
            "released": self.released,
            "requests": self.requests,
            "cycles": self.cycles,
            "paused_accounts": list(self.paused_accounts),
            "errors": list(self.errors),
        }


# --------------------------------------------------------------------------- claim


def _sendable_due_rows():
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
        candidates = _sendable_due_rows().using(db).order_by("next_attempt_at", "pk")
        if connections[db].features.has_select_for_update_skip_locked:
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


# --------------------------------------------------------------------------- policy


def backoff_seconds(attempts: int) -> float:
    """Jittered exponential backoff after ``attempts`` failed sends (half to full delay)."""
    base = float(app_settings.BACKOFF_BASE_SECONDS)
    cap = float(app_settings.BACKOFF_MAX_SECONDS)
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay * (0.5 + random.random() / 2)


def _batches(rows: Sequence[Claimed], size: int) -> Iterable[list[Claimed]]:
    for start in range(0, len(rows), size):
        yield list(rows[start : start + size])


def _body(rows: Sequence[Claimed]) -> bytes:
    """``{"data": [...]}`` joined from the stored JSON text: no decode, no re-encode."""
    return b'{"data":[' + ",".join(row.payload for row in rows).encode() + b"]}"


# --------------------------------------------------------------------------- the flush


class _Flush:
    """One flush cycle: the rows one owner claimed, sent account by account."""

    def __init__(self, owner: str, rows: list[Claimed]) -> None:
        self.owner = owner
        self.rows = rows
        self.summary = FlushSummary(claimed=len(rows), cycles=1)
        self.claimed_at = time.monotonic()
        self.db = router.db_for_write(OutboxEvent)

    def run(self) -> FlushSummary:
        by_account: dict[int, list[Claimed]] = defaultdict(list)
        for row in self.rows:
            by_account[row.account_id].append(row)
        accounts = AdAccount.objects.using(self.db).in_bulk(list(by_account))
        for account_id, rows in by_account.items():
            account = accounts.get(account_id)
            if account is None:  # deleted meanwhile: its rows went with it
                continue
            self._send_account(account, rows)
        return self.summary

    def _lease_margin_left(self) -> bool:
        """True while a new request can still finish inside the lease we hold."""
        elapsed = time.monotonic() - self.claimed_at
        return elapsed + float(app_settings.REQUEST_DEADLINE) + 5 < float(
            app_settings.LEASE_SECONDS
        )

    @sensitive_variables("token")
    def _send_account(self, account: AdAccount, rows: list[Claimed]) -> None:
        try:
            token = account.get_token()
        except TokenDecryptionError as exc:
            self._account_problem(account, rows, f"Token cannot be decrypted: {exc}.")
            return
        pending = list(_batches(rows, int(app_settings.BATCH_SIZE)))
        while pending:
            batch = pending.pop(0)
            if not self._lease_margin_left():
                self._release(batch + [r for b in pending for r in b])
                return
            verdict = self._send_batch(account, token, batch)
            if verdict == "stop_account":
                self._release([r for b in pending for r in b])
                return
            if isinstance(verdict, list):  # a 400: split and send the halves first
                pending[:0] = verdict

    @sensitive_variables("token")
    def _send_batch(self, account: AdAccount, token: str, batch: list[Claimed]) -> Any:
        started = _db_now(self.db)
        result = client.post_events(
            account.ad_account_id, token, _body(batch), test_mode=account.test_mode
        )
        self.summary.requests += 1
        try:
            return self._apply(account, batch, result, started)
        except DatabaseError as exc:
            # Results could not be saved: the lease lapses and the same ids are resent.
            logger.warning("Could not save delivery results (%s); the lease will retry them.", exc)
            self.summary.errors.append(f"database error while saving results: {exc}")
            return "stop_account"

    # ----------------------------------------------------------------- results

    def _apply(
        self, account: AdAccount, batch: list[Claimed], result: client.SendResult, started
    ) -> Any:
        status = result.status_code
        per_event = _per_event_results(result, len(batch))
        if per_event is not None:
            return self._apply_per_event(account, batch, result, per_event, started)
        if status == 400:
            if len(batch) > 1:
                # Keep the lease: the halves are sent right away, in this cycle.
                self._record(account, batch, result, started, AttemptOutcome.REJECTED, "split")
                middle = len(batch) // 2
                return [batch[:middle], batch[middle:]]
            message = result.message or "rejected by Pinterest (400)"
            with transaction.atomic(using=self.db):
                self._record(account, batch, result, started, AttemptOutcome.REJECTED, "failed")
                self._finish(batch, EventStatus.FAILED, error=message, count_attempt=True)
                self._account_error(account, message)
            self.summary.failed += len(batch)
            return None
        if status in (401, 403, 404):
            reason = {
                401: "Pinterest rejected the access token (401)",
                403: "The token has no access to this ad account (403)",
                404: "Pinterest does not know this ad account (404)",
            }[status]
            detail = result.message
            self._account_problem(
                account, batch, f"{reason}: {detail}" if detail else reason, result, started
            )
            return "stop_account"
        if status == 429:
            pause = result.retry_after
            if pause is None:
                pause = float(app_settings.RATE_LIMIT_PAUSE_SECONDS) * (0.5 + random.random() / 2)
            pause = min(pause, float(app_settings.BACKOFF_MAX_SECONDS))
            with transaction.atomic(using=self.db):
                self._record(account, batch, result, started, AttemptOutcome.RATE_LIMITED, "retry")
                self._release(batch)
                AdAccount.objects.using(self.db).filter(pk=account.pk).update(
                    paused_until=db_now_plus(pause),
                    pause_reason=f"Rate limited by Pinterest (429); waiting {pause:.0f} s.",
                    last_error_at=Now(),
                    last_error="rate limited (429)",
                )
            self.summary.paused_accounts.append(account.ad_account_id)
            return "stop_account"
        # 5xx, timeouts, connection trouble, anything unexpected: back off, same event_ids.
        if result.error in ("read_timeout", "deadline"):
            outcome = AttemptOutcome.TIMEOUT
        elif result.error:
            outcome = AttemptOutcome.CONNECTION_ERROR
        elif status is not None and status >= 500:
            outcome = AttemptOutcome.SERVER_ERROR
        else:
            outcome = AttemptOutcome.UNEXPECTED
        message = result.message or f"HTTP {status}"
        with transaction.atomic(using=self.db):
            self._record(account, batch, result, started, outcome, "retry")
            self._retry_or_fail(batch, message)
            self._account_error(account, message)
        return None

    def _apply_per_event(self, account, batch, result, per_event, started) -> None:
        processed: list[Claimed] = []
        failed: dict[str, list[Claimed]] = defaultdict(list)
        warned: dict[str, list[Claimed]] = defaultdict(list)
        results: list[tuple[Claimed, str, str]] = []
        for row, answer in zip(batch, per_event, strict=True):
            status, error, warning = answer
            if status == "processed":
                (warned[warning] if warning else processed).append(row)
                results.append((row, "processed", warning))
            else:
                failed[error or "failed without a message"].append(row)
                results.append((row, "failed", error))
        n_failed = sum(len(v) for v in failed.values())
        outcome = AttemptOutcome.SUCCESS if not n_failed else AttemptOutcome.PARTIAL
        with transaction.atomic(using=self.db):
            self._record(account, batch, result, started, outcome, None, results)
            if processed:
                self._finish(processed, EventStatus.SENT, count_attempt=True)
            for warning, rows in warned.items():
                self._finish(rows, EventStatus.SENT, warning=warning, count_attempt=True)
            for error, rows in failed.items():
                self._finish(rows, EventStatus.FAILED, error=error, count_attempt=True)
            updates: dict[str, Any] = {}
            if len(batch) > n_failed:
                updates["last_success_at"] = Now()
            if n_failed:
                updates.update(last_error_at=Now(), last_error=next(iter(failed))[:500])
            if updates:
                AdAccount.objects.using(self.db).filter(pk=account.pk).update(**updates)
        self.summary.sent += len(batch) - n_failed
        self.summary.failed += n_failed
        return None

    def _record(
        self,
        account: AdAccount,
        batch: list[Claimed],
        result: client.SendResult,
        started,
        outcome: str,
        result_label: str | None,
        per_event: list[tuple[Claimed, str, str]] | None = None,
    ) -> DeliveryAttempt:
        body = result.body if isinstance(result.body, dict) else {}
        counts = body.get("details") if isinstance(body.get("details"), dict) else body
        n_failed = sum(1 for _, status, _ in per_event or [] if status == "failed")
        attempt = DeliveryAttempt.objects.using(self.db).create(
            account=account,
            started_at=started,
            duration_ms=result.duration_ms,
            http_status=result.status_code,
            outcome=outcome,
            test_mode=account.test_mode,
            num_events=len(batch),
            num_received=_int_or_none(counts.get("num_events_received")),
            num_processed=_int_or_none(counts.get("num_events_processed")),
            num_failed=n_failed if per_event is not None else 0,
            error=("" if outcome == AttemptOutcome.SUCCESS else result.message)[:500],
            response_excerpt=result.excerpt,
        )
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        if per_event is None:
            label, text = result_label or outcome, result.message[:1000]
            groups[(label, text)] = [row.pk for row in batch]
        else:
            for row, label, text in per_event:
                groups[(label, text)].append(row.pk)
        for (label, text), pks in groups.items():
            _link_events(self.db, attempt.pk, pks, label, text)
        return attempt

    def _mine(self, rows: Iterable[Claimed]):
        return OutboxEvent.objects.using(self.db).filter(
            pk__in=[r.pk for r in rows], lease_owner=self.owner, status=EventStatus.IN_FLIGHT
        )

    def _finish(
        self,
        rows: list[Claimed],
        status: str,
        *,
        error: str = "",
        warning: str = "",
        count_attempt: bool,
    ) -> int:
        updates: dict[str, Any] = {
            "status": status,
            "lease_owner": "",
            "lease_expires_at": None,
            "last_error": error,
            "warning": warning,
        }
        if status == EventStatus.SENT:
            updates["sent_at"] = Now()
        if count_attempt:
            updates["attempts"] = F("attempts") + 1
        return self._mine(rows).update(**updates)

    def _release(self, rows: list[Claimed]) -> int:
        """Hand rows back as pending and due, without using up an attempt."""
        if not rows:
            return 0
        count = self._mine(rows).update(
            status=EventStatus.PENDING, lease_owner="", lease_expires_at=None
        )
        self.summary.released += count
        return count

    def _retry_or_fail(self, batch: list[Claimed], message: str) -> None:
        max_attempts = int(app_settings.MAX_ATTEMPTS)
        by_attempts: dict[int, list[Claimed]] = defaultdict(list)
        for row in batch:
            by_attempts[row.attempts + 1].append(row)
        for attempts, rows in by_attempts.items():
            if attempts >= max_attempts:
                self._finish(
                    rows,
                    EventStatus.FAILED,
                    error=f"Gave up after {attempts} attempts: {message}",
                    count_attempt=True,
                )
                self.summary.failed += len(rows)
            else:
                self._mine(rows).update(
                    status=EventStatus.PENDING,
                    lease_owner="",
                    lease_expires_at=None,
                    attempts=F("attempts") + 1,
                    last_error=message,
                    next_attempt_at=db_now_plus(backoff_seconds(attempts)),
                )
                self.summary.retrying += len(rows)

    def _account_error(self, account: AdAccount, message: str) -> None:
        AdAccount.objects.using(self.db).filter(pk=account.pk).update(
            last_error_at=Now(), last_error=message[:500]
        )

    def _account_problem(
        self,
        account: AdAccount,
        rows: list[Claimed],
        reason: str,
        result: client.SendResult | None = None,
        started=None,
    ) -> None:
        """Stop sending for this account until someone fixes it; its events stay pending."""
        logger.warning("Ad account %s paused: %s", account.ad_account_id, reason)
        with transaction.atomic(using=self.db):
            if result is not None:
                self._record(account, rows, result, started, AttemptOutcome.AUTH_ERROR, "retry")
            else:
                DeliveryAttempt.objects.using(self.db).create(
                    account=account,
                    started_at=_db_now(self.db),
                    outcome=AttemptOutcome.CONFIG_ERROR,
                    test_mode=account.test_mode,
                    num_events=len(rows),
                    error=reason[:500],
                )
            self._release(rows)
            AdAccount.objects.using(self.db).filter(pk=account.pk).update(
                auth_error=reason[:500],
                auth_error_at=Now(),
                last_error_at=Now(),
                last_error=reason[:500],
            )
        self.summary.paused_accounts.append(account.ad_account_id)


def _link_events(db: str, attempt_pk: int, event_pks: list[int], result: str, message: str) -> None:
    """Insert the attempt↔event rows of one outcome with one set-based statement per 1,000.

    ``INSERT … SELECT`` avoids building a model instance per event: on a batch of
    1,000 that bookkeeping cost more than the HTTP request itself.
    """
    connection = connections[db]
    qn = connection.ops.quote_name
    link = AttemptEvent._meta
    outbox_table = qn(OutboxEvent._meta.db_table)
    columns = ", ".join(
        qn(link.get_field(name).column) for name in ("attempt", "event", "result", "message")
    )
    with connection.cursor() as cursor:
        for start in range(0, len(event_pks), 1000):
            chunk = event_pks[start : start + 1000]
            placeholders = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {qn(link.db_table)} ({columns}) "
                f"SELECT %s, {qn(OutboxEvent._meta.pk.column)}, %s, %s FROM {outbox_table} "
                f"WHERE {qn(OutboxEvent._meta.pk.column)} IN ({placeholders})",
                [attempt_pk, result, message, *chunk],
            )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _db_now(db: str):
    from django.utils import timezone

    # Attempt timestamps are for display; lease and backoff use NOW() in SQL.
    return timezone.now()


def _per_event_results(
    result: client.SendResult, expected: int
) -> list[tuple[str, str, str]] | None:
    """Pinterest's per-event answers from a 200 or a 422 body, or None if there are none."""
    if result.status_code not in (200, 422) or not isinstance(result.body, dict):
        return None
    body = result.body
    if result.status_code == 422:
        body = body.get("details")
        if not isinstance(body, dict):
            return None
    events = body.get("events")
    if not isinstance(events, list) or len(events) != expected:
        return None
    answers = []
    for item in events:
        if not isinstance(item, dict):
            return None
        status = "processed" if item.get("status") == "processed" else "failed"
        answers.append(
            (status, str(item.get("error_message") or ""), str(item.get("warning_message") or ""))
        )
    return answers


# --------------------------------------------------------------------------- entry points


def flush_once(*, limit: int | None = None) -> FlushSummary:
    """Claim one round of due rows and send them; never raises for API trouble."""
    owner, rows = claim(int(limit or app_settings.CLAIM_SIZE))
    if not rows:
        return FlushSummary()
    return _Flush(owner, rows).run()


def flush(*, until_empty: bool = False, time_budget: float | None = None) -> FlushSummary:
    """Run flush cycles: one, or until nothing is due (or the time budget is spent)."""
    total = FlushSummary()
    started = time.monotonic()
    while True:
        summary = flush_once()
        total.add(summary)
        if not until_empty or summary.claimed == 0:
            break
        if summary.sent + summary.failed + summary.retrying == 0:
            break  # only released or paused rows: nothing more to do now
        if time_budget is not None and time.monotonic() - started > time_budget:
            break
    return total


def due_count() -> int:
    """How many rows a flush could claim right now."""
    return _sendable_due_rows().count()
