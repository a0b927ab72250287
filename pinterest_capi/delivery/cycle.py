"""One flush cycle: the rows one owner claimed, sent account by account, batch by batch."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Literal

from django.db import DatabaseError, router
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import client
from ..conf import app_settings
from ..exceptions import TokenDecryptionError
from ..models import AdAccount, AttemptOutcome, EventStatus, OutboxEvent
from . import ratelimit
from .bookkeeping import Bookkeeper
from .claim import Claimed
from .policy import (
    AUTH_REASONS,
    batches,
    per_event_results,
    rate_limit_pause,
    request_body,
    retry_outcome,
)
from .summary import FlushSummary
from .txn import bookkeeping

logger = logging.getLogger("pinterest_capi.delivery")

STOP_ACCOUNT = "stop_account"
Verdict = Literal["stop_account"] | list[list[Claimed]] | None


class FlushCycle:
    """Sends what one claim leased; never raises for an API problem."""

    def __init__(
        self,
        owner: str,
        rows: list[Claimed],
        *,
        claimed_at: float | None = None,
        recheck_accounts: bool = False,
    ) -> None:
        self.rows = rows
        self.recheck_accounts = recheck_accounts
        self.summary = FlushSummary(claimed=len(rows), cycles=1)
        # time.monotonic() when the claim began (the lease runs from then)
        self.claimed_at = time.monotonic() if claimed_at is None else claimed_at
        self.db = router.db_for_write(OutboxEvent)
        self.books = Bookkeeper(self.db, owner, self.summary)

    def run(self) -> FlushSummary:
        by_account: dict[int, list[Claimed]] = defaultdict(list)
        for row in self.rows:
            by_account[row.account_id].append(row)
        accounts = AdAccount.objects.using(self.db)
        if self.recheck_accounts:
            # Rows claimed ahead (during the previous cycle): a pause or an auth problem
            # written since (by that cycle, another worker, an operator) holds.
            accounts = accounts.sendable()
        accounts = accounts.in_bulk(list(by_account))
        for account_id, rows in by_account.items():
            account = accounts.get(account_id)
            if account is None:  # deleted meanwhile (its rows went with it), or paused
                self.books.release(rows)
            else:
                self._send_account(account, rows)
        return self.summary

    def _lease_margin_left(self) -> bool:
        """True while a new request can still finish inside the lease we hold."""
        elapsed = time.monotonic() - self.claimed_at
        deadline = float(app_settings.REQUEST_DEADLINE)
        return elapsed + deadline + 5 < float(app_settings.LEASE_SECONDS)

    @sensitive_variables("token")
    def _send_account(self, account: AdAccount, rows: list[Claimed]) -> None:
        try:
            token = account.get_token()
        except TokenDecryptionError as exc:
            reason = f"Token cannot be decrypted: {exc}."
            with bookkeeping(self.db):
                self.books.record_attempt(
                    account, rows, None, timezone.now(), AttemptOutcome.CONFIG_ERROR, error=reason
                )
                self.books.release(rows)
                self.books.flag_auth_problem(account, reason)
            return
        pending = list(batches(rows, int(app_settings.BATCH_SIZE)))
        while pending:
            batch = pending.pop(0)
            rest = [row for later in pending for row in later]
            if not self._lease_margin_left():
                self.books.release(batch + rest)
                return
            wait = ratelimit.acquire(account, db=self.db)
            if wait is not None:
                self.books.release(batch + rest)
                self.books.pause(
                    account,
                    wait,
                    f"Holding to {ratelimit.limit_per_minute()} requests a minute "
                    f"(Pinterest allows 5,000); resuming in {wait:.0f} s.",
                )
                return
            verdict = self._send_batch(account, token, batch)
            if verdict == STOP_ACCOUNT:
                self.books.release(rest)
                return
            if isinstance(verdict, list):  # a 400: send the halves first
                pending[:0] = verdict

    @sensitive_variables("token")
    def _send_batch(self, account: AdAccount, token: str, batch: list[Claimed]) -> Verdict:
        started = timezone.now()  # for display; leases and backoff use the DB clock
        result = client.post_events(
            account.ad_account_id, token, request_body(batch), test_mode=account.test_mode
        )
        self.summary.requests += 1
        try:
            return self._apply(account, batch, result, started)
        except DatabaseError as exc:
            # Results could not be saved: the lease lapses and the same ids are resent.
            logger.warning("Could not save delivery results (%s); the lease will retry them.", exc)
            self.summary.errors.append(f"database error while saving results: {exc}")
            return STOP_ACCOUNT

    def _apply(self, account, batch, result: client.SendResult, started) -> Verdict:
        books = self.books
        per_event = per_event_results(result, len(batch))
        if per_event is not None:
            self._apply_per_event(account, batch, result, per_event, started)
            return None
        status = result.status_code
        if status == 400 and len(batch) > 1:
            # Isolate the bad event(s): keep the lease, split, send both halves now.
            books.record_attempt(
                account, batch, result, started, AttemptOutcome.REJECTED, label="split"
            )
            middle = len(batch) // 2
            return [batch[:middle], batch[middle:]]
        if status == 400:
            message = result.message or "rejected by Pinterest (400)"
            with books.results(account):
                books.record_attempt(
                    account, batch, result, started, AttemptOutcome.REJECTED, label="failed"
                )
                books.finish(batch, EventStatus.FAILED, error=message)
                books.note_result(account, success=False, error=message)
            self.summary.failed += len(batch)
            return None
        if status in AUTH_REASONS:
            detail = result.message
            reason = f"{AUTH_REASONS[status]}: {detail}" if detail else AUTH_REASONS[status]
            with bookkeeping(self.db):
                books.record_attempt(
                    account, batch, result, started, AttemptOutcome.AUTH_ERROR, label="retry"
                )
                books.release(batch)
                books.flag_auth_problem(account, reason)
            return STOP_ACCOUNT
        if status == 429:
            pause = rate_limit_pause(result)
            with bookkeeping(self.db):
                books.record_attempt(
                    account, batch, result, started, AttemptOutcome.RATE_LIMITED, label="retry"
                )
                books.release(batch)
                books.pause(
                    account, pause, f"Rate limited by Pinterest (429); waiting {pause:.0f} s."
                )
            return STOP_ACCOUNT
        # 5xx, timeouts, connection trouble, anything unexpected: back off, same event_ids.
        message = result.message or f"HTTP {status}"
        with books.results(account):
            books.record_attempt(
                account, batch, result, started, retry_outcome(result), label="retry"
            )
            books.retry_or_fail(batch, message)
            books.note_result(account, success=False, error=message)
        return None

    def _apply_per_event(self, account, batch, result, per_event, started) -> None:
        sent: dict[str, list[Claimed]] = defaultdict(list)  # by warning ("" for none)
        failed: dict[str, list[Claimed]] = defaultdict(list)  # by error message
        results: list[tuple[Claimed, str, str]] = []
        for row, (status, error, warning) in zip(batch, per_event, strict=True):
            if status == "processed":
                sent[warning].append(row)
                results.append((row, "processed", warning))
            else:
                failed[error or "failed without a message"].append(row)
                results.append((row, "failed", error))
        n_failed = sum(len(rows) for rows in failed.values())
        outcome = AttemptOutcome.PARTIAL if n_failed else AttemptOutcome.SUCCESS
        with self.books.results(account):  # also sends the integrator signals after commit
            self.books.record_attempt(account, batch, result, started, outcome, per_event=results)
            for warning, rows in sent.items():
                self.books.finish(rows, EventStatus.SENT, warning=warning)
            for error, rows in failed.items():
                self.books.finish(rows, EventStatus.FAILED, error=error)
            self.books.note_result(
                account, success=len(batch) > n_failed, error=next(iter(failed), "")
            )
        self.summary.sent += len(batch) - n_failed
        self.summary.failed += n_failed
