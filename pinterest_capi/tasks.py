"""Thin django-q2 entry points: a nudged flush, and the periodic sweep.

Recording nudges a flush once the shop's transaction commits.  Under load at
most one nudge is pending at a time (a cache key guards it; the task clears
the key when it starts, so events recorded during a flush nudge again).  The
sweep schedule catches anything a nudge missed.  Tasks return a summary dict
and never raise for an API failure; the retry policy lives in the outbox.
"""

from __future__ import annotations

import logging
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


def _time_budget() -> float:
    """Seconds a task may keep flushing: inside django-q2's timeout with room for one request."""
    q_timeout = getattr(settings, "Q_CLUSTER", {}).get("timeout") or 60
    return max(5.0, float(q_timeout) - float(app_settings.REQUEST_DEADLINE) - 5.0)


def nudge_flush() -> None:
    """Ask for a flush soon (called on commit after recording). Never raises."""
    mode = app_settings.NUDGE
    try:
        if mode == "off":
            return
        if mode == "sync":
            flush_task()
            return
        guard = max(5, int(app_settings.LEASE_SECONDS))
        if not cache.add(NUDGE_KEY, 1, timeout=guard):
            return  # a nudge is already pending
        from django_q.tasks import async_task

        options: dict[str, Any] = {"task_name": "pinterest_capi flush"}
        if app_settings.Q_CLUSTER:
            options["cluster"] = app_settings.Q_CLUSTER
        async_task(FLUSH_TASK, **{"q_options": options})
    except Exception:  # a Pinterest or queue problem never breaks the shop
        logger.exception("Could not nudge a Pinterest flush; the sweep will pick the events up.")


def flush_task() -> dict[str, Any]:
    """Flush until nothing is due or the time budget is spent; re-nudge if work remains."""
    cache.delete(NUDGE_KEY)
    return _flush_within_budget()


def sweep_task() -> dict[str, Any]:
    """The periodic schedule's entry point: same work as a nudged flush."""
    return _flush_within_budget()


def _flush_within_budget() -> dict[str, Any]:
    from . import delivery

    try:
        summary = delivery.flush(until_empty=True, time_budget=_time_budget())
    except DatabaseError as exc:
        # The database went away (restart, lock): the next cycle reconnects and retries.
        logger.warning("Pinterest flush stopped by a database error: %s", exc)
        return {"error": f"database error: {exc}"}
    result = summary.as_dict()
    if summary.claimed and summary.sent + summary.failed + summary.retrying and _more_due():
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
