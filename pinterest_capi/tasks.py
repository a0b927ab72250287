"""Thin django-q2 entry points: a nudged flush, and the periodic sweep.

Recording nudges a flush once the shop's transaction commits.  At most one nudged flush is
pending or running at a time: a cache key (:data:`NUDGE_KEY`) is set by the nudge that
enqueues it and cleared by that flush when it has found nothing more to send, so the shop's
commits while it is queued or running enqueue nothing (an enqueue is a write to django-q2's
queue on the shop's request).  Every event still leaves promptly: the flush runs until nothing
is due, then clears the key and, :data:`NUDGE_MEMO_SECONDS` later, looks once more and nudges
again if an event committed meanwhile.  A process that saw the key set trusts that for
:data:`NUDGE_MEMO_SECONDS` without reading the cache again (busy shops commit many times a
second); the flush's second look comes after that, so nothing committed in between waits.
The sweep schedule catches anything a nudge missed (a flush killed while holding the key, which
then lapses after its timeout).  Tasks return a summary dict and never raise for an API
failure; the retry policy lives in the outbox.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError

from .conf import app_settings

logger = logging.getLogger(__name__)

NUDGE_KEY = "pinterest_capi:flush-nudge"
FLUSH_TASK = "pinterest_capi.tasks.flush_task"
SWEEP_TASK = "pinterest_capi.tasks.sweep_task"
SCHEDULE_NAME = "pinterest_capi: sweep the outbox"

#: How long a process that found a nudged flush pending or running trusts that without reading
#: the cache again; the flush waits as long after clearing the key before its last look.
NUDGE_MEMO_SECONDS = 0.25

# time.monotonic() until which this process need not read NUDGE_KEY (it saw it set).
_pending_seen_until = 0.0


def forget_seen_nudge() -> None:
    """Read the cache at the next nudge (tests: each starts with no nudge pending)."""
    global _pending_seen_until
    _pending_seen_until = 0.0


def _time_budget() -> float:
    """Seconds a task may keep flushing: inside django-q2's timeout with room for one request."""
    q_timeout = getattr(settings, "Q_CLUSTER", {}).get("timeout") or 60
    return max(5.0, float(q_timeout) - float(app_settings.REQUEST_DEADLINE) - 5.0)


def nudge_flush() -> None:
    """Ask for a flush soon (called on commit after recording). Never raises.

    With ``NUDGE = "async"`` it costs the shop's request one cache ``add`` at most: nothing
    while this process saw a nudged flush pending or running less than
    :data:`NUDGE_MEMO_SECONDS` ago, a django-q2 enqueue only when none is.
    """
    global _pending_seen_until
    mode = app_settings.NUDGE
    try:
        if mode == "off":
            return
        if mode == "sync":
            _flush_within_budget()
            return
        now = time.monotonic()
        if now < _pending_seen_until:
            return  # a nudged flush was pending or running a moment ago: it will see the rows
        guard = max(5, int(app_settings.LEASE_SECONDS))
        if not cache.add(NUDGE_KEY, 1, timeout=guard):
            _pending_seen_until = now + NUDGE_MEMO_SECONDS
            return  # a nudge is already pending
        from django_q.tasks import async_task

        options: dict[str, Any] = {"task_name": "pinterest_capi flush"}
        if app_settings.Q_CLUSTER:
            options["cluster"] = app_settings.Q_CLUSTER
        async_task(FLUSH_TASK, **{"q_options": options})
    except Exception:  # a Pinterest or queue problem never breaks the shop
        logger.exception("Could not nudge a Pinterest flush; the sweep will pick the events up.")


def flush_task() -> dict[str, Any]:
    """The nudged flush: until nothing is due, then clear the guard and look once more.

    The guard stays set while this runs, so the shop's commits meanwhile enqueue nothing: the
    flush claims their rows in its next round.  A row committed after its last claim, while
    the guard was still set (or trusted set by a process's memo), is found by the second look,
    :data:`NUDGE_MEMO_SECONDS` after the guard is cleared, which nudges a new flush.  A
    stalled flush (the database failed, or every row it claimed was handed back) does not
    look again, which could spin: the sweep takes over, as it did for those rows before.
    """
    try:
        result, stalled = _flush()
    finally:
        cache.delete(NUDGE_KEY)
    if not stalled:
        time.sleep(NUDGE_MEMO_SECONDS)
        if _more_due():
            nudge_flush()
    return result


def sweep_task() -> dict[str, Any]:
    """The periodic schedule's entry point: same work as a nudged flush."""
    return _flush_within_budget()


def _flush() -> tuple[dict[str, Any], bool]:
    """Flush until nothing is due or the budget is spent: (summary, stalled).

    Stalled means that looking again now would not help: the database failed, or every row
    the flush claimed was handed back (an account paused), so nudging again would spin.
    """
    from . import delivery

    try:
        summary = delivery.flush(until_empty=True, time_budget=_time_budget())
    except DatabaseError as exc:
        # The database went away (restart, lock): the next cycle reconnects and retries.
        logger.warning("Pinterest flush stopped by a database error: %s", exc)
        return {"error": f"database error: {exc}"}, True
    progress = summary.sent + summary.failed + summary.retrying
    return summary.as_dict(), bool(summary.claimed and not progress)


def _flush_within_budget() -> dict[str, Any]:
    """Flush until nothing is due or the budget is spent; re-nudge if work remains."""
    result, stalled = _flush()
    if not stalled and result.get("claimed") and _more_due():
        nudge_flush()
    return result


def _more_due() -> bool:
    from . import delivery

    try:
        return delivery.due_count() > 0
    except DatabaseError:
        return False


def ensure_schedule() -> tuple[Any, bool]:
    """Create or update the periodic sweep schedule (idempotent); returns (schedule, created)."""
    from django_q.models import Schedule

    minutes = max(1, int(app_settings.SWEEP_INTERVAL_MINUTES))
    defaults: dict[str, Any] = {
        "func": SWEEP_TASK,
        "schedule_type": Schedule.MINUTES,
        "minutes": minutes,
        "repeats": -1,
    }
    if app_settings.Q_CLUSTER:
        defaults["cluster"] = app_settings.Q_CLUSTER
    return Schedule.objects.update_or_create(name=SCHEDULE_NAME, defaults=defaults)


# --- requeue every failed event matching an admin filter, in the background ---------------

REQUEUE_MATCHING_TASK = "pinterest_capi.tasks.requeue_matching_task"
#: Cache key of one background requeue's state (see :func:`requeue_job_state`).
REQUEUE_JOB_KEY = "pinterest_capi:requeue-job:{job_id}"
#: How long the state of a background requeue is kept for the admin to report it.
REQUEUE_JOB_TTL = 7 * 24 * 3600


def _set_requeue_job_state(job_id: str, **state: Any) -> None:
    cache.set(REQUEUE_JOB_KEY.format(job_id=job_id), state, timeout=REQUEUE_JOB_TTL)


def requeue_job_state(job_id: str) -> dict[str, Any] | None:
    """What became of a background requeue: ``{"state": "queued"|"running"|"done"|"error",
    "matched": int, "requeued": int, "error": str}``, or None once forgotten.

    Kept in the cache, which must be shared by web and worker processes (as the
    nudge guard already requires), for :data:`REQUEUE_JOB_TTL` seconds.
    """
    return cache.get(REQUEUE_JOB_KEY.format(job_id=job_id))


def enqueue_requeue_matching(events: Any, *, matched: int) -> str:
    """Queue :func:`requeue_matching_task` for the failed rows of ``events``; returns a job id.

    ``events`` is a QuerySet of OutboxEvent (e.g. the admin changelist's, with
    its tenant scoping, filters and search).  What travels to the worker is
    its ``query`` (Django's documented way to pickle a queryset's filter
    without its rows), so the worker runs the very filter the operator
    confirmed.  ``matched`` is the count the operator was shown.  With
    django-q2 in sync mode (tests) the task has run when this returns.
    """
    import uuid

    from django_q.tasks import async_task

    job_id = uuid.uuid4().hex
    _set_requeue_job_state(job_id, state="queued", matched=matched, requeued=0, error="")
    options: dict[str, Any] = {"task_name": f"pinterest_capi requeue {job_id[:8]}"}
    if app_settings.Q_CLUSTER:
        options["cluster"] = app_settings.Q_CLUSTER
    async_task(REQUEUE_MATCHING_TASK, job_id, events.order_by().query, matched, q_options=options)
    return job_id


def requeue_matching_task(job_id: str, query: Any, matched: int = 0) -> dict[str, Any]:
    """Requeue the failed events of a pickled OutboxEvent query in batches; record the result.

    Progress and the final count go to :func:`requeue_job_state` for the
    admin; the returned dict is django-q2's task result.  A database error
    stops it with what was done so far recorded (every batch committed is a
    requeue done; running it again only finds the rows still failed).
    """
    from . import outbox
    from .models import OutboxEvent

    events = OutboxEvent.objects.all()
    events.query = query
    done = 0

    def progress(total: int) -> None:
        nonlocal done
        done = total
        _set_requeue_job_state(job_id, state="running", matched=matched, requeued=total, error="")

    _set_requeue_job_state(job_id, state="running", matched=matched, requeued=0, error="")
    try:
        requeued = outbox.requeue_matching(events, progress=progress)
    except DatabaseError as exc:
        logger.warning("Background requeue %s stopped by a database error: %s", job_id, exc)
        error = f"database error: {exc}"
        _set_requeue_job_state(job_id, state="error", matched=matched, requeued=done, error=error)
        return {"job": job_id, "matched": matched, "requeued": done, "error": error}
    _set_requeue_job_state(job_id, state="done", matched=matched, requeued=requeued, error="")
    logger.info("Background requeue %s: %d failed events requeued", job_id, requeued)
    return {"job": job_id, "matched": matched, "requeued": requeued}
