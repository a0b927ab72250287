"""Writing down what happened: attempt rows, event states, account states.

Every write to an outbox row is fenced by the lease: it touches only rows
still ``in_flight`` under this cycle's owner token, so a worker that lost its
lease (too slow, restarted) cannot overwrite what another worker did.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any

from django.db import connections, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Now
from django.db.models.sql import Query

from .. import signals
from ..client import SendResult
from ..conf import app_settings
from ..models import (
    AdAccount,
    AttemptEvent,
    DeliveryAttempt,
    EventStatus,
    OutboxEvent,
    QueuedEvent,
)
from .claim import Claimed, db_now_plus
from .keys import keys_table, pk_in
from .policy import backoff_seconds, int_or_none
from .summary import FlushSummary
from .txn import bookkeeping

logger = logging.getLogger("pinterest_capi.delivery")

PerEvent = list[tuple[Claimed, str, str]]

_FINISH_COLUMNS = (
    "id",
    "status",
    "lease_owner",
    "lease_expires_at",
    "last_error",
    "warning",
    "sent_at",
    "attempts",
)


class Bookkeeper:
    """The writes of one flush cycle (one lease owner) on one database."""

    def __init__(self, db: str, owner: str, summary: FlushSummary) -> None:
        self.db = db
        self.owner = owner
        self.summary = summary
        # (status, reason) -> pks finished inside the current results() block, for the signals.
        self._outcomes: dict[tuple[str, str], list[int]] | None = None

    @contextmanager
    def results(self, account: AdAccount) -> Iterator[None]:
        """One transaction applying one batch's results; the integrator signals follow it.

        :meth:`finish` notes the rows that reached sent/failed; once the block succeeded,
        one ``on_commit`` callback per (status, reason) is registered *inside* the
        transaction, so a rollback discards the signals along with the writes, and receivers
        hear about a batch once, after its commit (see :mod:`pinterest_capi.signals`).
        """
        self._outcomes = defaultdict(list)
        try:
            with bookkeeping(self.db):
                yield
                for (status, reason), pks in self._outcomes.items():
                    transaction.on_commit(
                        partial(signals.announce, status, account, pks, reason),
                        using=self.db,
                        robust=True,
                    )
        finally:
            self._outcomes = None

    # ----------------------------------------------------------------- attempts

    def record_attempt(
        self,
        account: AdAccount,
        batch: list[Claimed],
        result: SendResult | None,
        started: datetime,
        outcome: str,
        *,
        label: str | None = None,
        per_event: PerEvent | None = None,
        error: str = "",
    ) -> DeliveryAttempt:
        """One DeliveryAttempt for the request, linked to each event with its result."""
        body = result.body if result is not None and isinstance(result.body, dict) else {}
        counts = body.get("details") if isinstance(body.get("details"), dict) else body
        message = error or (result.message if result is not None else "")
        attempt = DeliveryAttempt.objects.using(self.db).create(
            account=account,
            started_at=started,
            duration_ms=result.duration_ms if result is not None else 0,
            http_status=result.status_code if result is not None else None,
            outcome=outcome,
            test_mode=account.test_mode,
            num_events=len(batch),
            num_received=int_or_none(counts.get("num_events_received")),
            num_processed=int_or_none(counts.get("num_events_processed")),
            num_failed=sum(1 for _, s, _ in per_event or [] if s == "failed"),
            error=("" if per_event is not None and not message else message)[:500],
            response_excerpt=result.excerpt if result is not None else "",
        )
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        if per_event is None:
            groups[(label or outcome, message[:1000])] = [row.pk for row in batch]
        else:
            for row, status, text in per_event:
                groups[(status, text)].append(row.pk)
        for (status, text), pks in groups.items():
            self._link_events(attempt.pk, pks, status, text)
        return attempt

    def _link_events(
        self, attempt_pk: int, event_pks: list[int], result: str, message: str
    ) -> None:
        """Attempt↔event rows of one result with one set-based statement per 1,000.

        ``INSERT … SELECT`` avoids building a model instance per event: on a batch of 1,000
        that bookkeeping cost more than the HTTP request itself.  The keys come from the
        parameter itself (:func:`keys_table`), not from reading the outbox rows back.
        """
        connection = connections[self.db]
        qn = connection.ops.quote_name
        link = AttemptEvent._meta
        columns = ", ".join(
            qn(link.get_field(name).column) for name in ("attempt", "event", "result", "message")
        )
        with connection.cursor() as cursor:
            for start in range(0, len(event_pks), 1000):
                keys_sql, keys_params = keys_table(connection, event_pks[start : start + 1000])
                cursor.execute(
                    f"INSERT INTO {qn(link.db_table)} ({columns}) "
                    f"SELECT %s, keys.pk, %s, %s FROM {keys_sql}",
                    [attempt_pk, result, message, *keys_params],
                )

    # ----------------------------------------------------------------- events

    def mine(self, rows: Iterable[Claimed]) -> QuerySet[OutboxEvent]:
        return OutboxEvent.objects.using(self.db).filter(
            pk__in=[r.pk for r in rows], lease_owner=self.owner, status=EventStatus.IN_FLIGHT
        )

    def finish(
        self, rows: list[Claimed], status: str, *, error: str = "", warning: str = ""
    ) -> int:
        """Final state (sent or failed) after a send: the attempt counts.

        One ``UPDATE … WHERE pk IN <one array parameter> AND still ours RETURNING pk``:
        RETURNING names exactly the rows this update changed (not ones another worker took
        over when our lease lapsed) for the integrator signals inside :meth:`results`, so no
        locking SELECT precedes it; the keys travel as one array (PostgreSQL) or one JSON
        text (SQLite) instead of 1,000 placeholders that the driver and planner each parse.
        """
        connection = connections[self.db]
        if not connection.features.can_return_columns_from_insert:
            return self._finish_orm(rows, status, error=error, warning=warning)
        qn = connection.ops.quote_name
        meta = OutboxEvent._meta
        col = {name: qn(meta.get_field(name).column) for name in _FINISH_COLUMNS}
        query = Query(OutboxEvent)
        now_sql, now_params = query.get_compiler(self.db).compile(Now())
        sent_at = f"{col['sent_at']} = {now_sql}, " if status == EventStatus.SENT else ""
        in_sql, in_params = pk_in(connection, col["id"], [row.pk for row in rows])
        sql = (
            f"UPDATE {qn(meta.db_table)} SET {col['status']} = %s, {col['lease_owner']} = '', "
            f"{col['lease_expires_at']} = NULL, {col['last_error']} = %s, "
            f"{col['warning']} = %s, {sent_at}{col['attempts']} = {col['attempts']} + 1 "
            f"WHERE {in_sql} AND {col['lease_owner']} = %s AND {col['status']} = %s "
            f"RETURNING {col['id']}"
        )
        params = [
            status,
            error,
            warning,
            *(now_params if sent_at else ()),
            *in_params,
            self.owner,
            EventStatus.IN_FLIGHT,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            changed = [pk for (pk,) in cursor.fetchall()]
        self._leave_queue(changed)
        if changed and self._outcomes is not None and signals.wanted(status):
            self._outcomes[(status, error if status == EventStatus.FAILED else "")].extend(changed)
        return len(changed)

    def _leave_queue(self, pks: list[int]) -> None:
        """Delete the queue entries of rows this cycle finished (sent or failed).

        The flush's own step, one statement per batch: the queue's triggers leave the
        in flight -> sent/failed transition to it (see ``QueuedEvent``).
        """
        if not pks:
            return
        connection = connections[self.db]
        qn = connection.ops.quote_name
        meta = QueuedEvent._meta
        in_sql, in_params = pk_in(connection, qn(meta.pk.column), pks)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {qn(meta.db_table)} WHERE {in_sql}", in_params)

    def _finish_orm(self, rows: list[Claimed], status: str, *, error: str, warning: str) -> int:
        """:meth:`finish` for backends without RETURNING: lock and note, then update."""
        mine = self.mine(rows)
        noted = list(mine.select_for_update().values_list("pk", flat=True))
        updates: dict[str, Any] = {
            "status": status,
            "lease_owner": "",
            "lease_expires_at": None,
            "last_error": error,
            "warning": warning,
            "attempts": F("attempts") + 1,
        }
        if status == EventStatus.SENT:
            updates["sent_at"] = Now()
        count = mine.update(**updates)
        self._leave_queue(noted)
        if noted and self._outcomes is not None and signals.wanted(status):
            self._outcomes[(status, error if status == EventStatus.FAILED else "")].extend(noted)
        return count

    def release(self, rows: list[Claimed]) -> int:
        """Hand rows back as pending and due, without using up an attempt."""
        if not rows:
            return 0
        count = self.mine(rows).update(
            status=EventStatus.PENDING, lease_owner="", lease_expires_at=None
        )
        self.summary.released += count
        return count

    def retry_or_fail(self, batch: list[Claimed], message: str) -> None:
        """After a retryable failure: back off (DB clock), or fail once the budget is spent."""
        max_attempts = int(app_settings.MAX_ATTEMPTS)
        by_attempts: dict[int, list[Claimed]] = defaultdict(list)
        for row in batch:
            by_attempts[row.attempts + 1].append(row)
        for attempts, rows in by_attempts.items():
            if attempts >= max_attempts:
                self.finish(
                    rows, EventStatus.FAILED, error=f"Gave up after {attempts} attempts: {message}"
                )
                self.summary.failed += len(rows)
            else:
                self.mine(rows).update(
                    status=EventStatus.PENDING,
                    lease_owner="",
                    lease_expires_at=None,
                    attempts=F("attempts") + 1,
                    last_error=message,
                    next_attempt_at=db_now_plus(backoff_seconds(attempts)),
                )
                self.summary.retrying += len(rows)

    # ----------------------------------------------------------------- accounts

    def _account(self, account: AdAccount) -> QuerySet[AdAccount]:
        return AdAccount.objects.using(self.db).filter(pk=account.pk)

    def note_result(self, account: AdAccount, *, success: bool, error: str = "") -> None:
        updates: dict[str, Any] = {}
        if success:
            updates["last_success_at"] = Now()
        if error:
            updates.update(last_error_at=Now(), last_error=error[:500])
        if updates:
            self._account(account).update(**updates)

    def pause(self, account: AdAccount, seconds: float, reason: str) -> None:
        """Pause one account (rate limits): its rows wait, other accounts go on.

        A pause only ever moves later: a longer pause already in place (an
        operator's manual pause, a longer Retry-After) is kept with its reason.
        """
        until = db_now_plus(seconds)
        self._account(account).filter(
            Q(paused_until__isnull=True) | Q(paused_until__lt=until)
        ).update(paused_until=until, pause_reason=reason[:500])
        self._account(account).update(last_error_at=Now(), last_error=reason[:500])
        if account.ad_account_id not in self.summary.paused_accounts:
            self.summary.paused_accounts.append(account.ad_account_id)

    def flag_auth_problem(self, account: AdAccount, reason: str) -> None:
        """Stop the account until someone fixes it (a new token clears the flag)."""
        logger.warning("Ad account %s paused: %s", account.ad_account_id, reason)
        self._account(account).update(
            auth_error=reason[:500],
            auth_error_at=Now(),
            last_error_at=Now(),
            last_error=reason[:500],
        )
        if account.ad_account_id not in self.summary.paused_accounts:
            self.summary.paused_accounts.append(account.ad_account_id)
