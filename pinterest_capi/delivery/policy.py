"""What an answer from Pinterest means: per-event results, outcome classes, waits."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from ..client import SendResult
from ..conf import app_settings
from ..models import AttemptOutcome
from .claim import Claimed

AUTH_REASONS = {
    401: "Pinterest rejected the access token (401)",
    403: "The token has no access to this ad account (403)",
    404: "Pinterest does not know this ad account (404)",
}


def backoff_seconds(attempts: int) -> float:
    """Jittered exponential backoff after ``attempts`` failed sends (half to full delay)."""
    base = float(app_settings.BACKOFF_BASE_SECONDS)
    cap = float(app_settings.BACKOFF_MAX_SECONDS)
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay * (0.5 + random.random() / 2)


def rate_limit_pause(result: SendResult) -> float:
    """Seconds to pause an account after a 429: Retry-After, else a jittered default; capped."""
    pause = result.retry_after
    if pause is None:
        pause = float(app_settings.RATE_LIMIT_PAUSE_SECONDS) * (0.5 + random.random() / 2)
    return min(pause, float(app_settings.BACKOFF_MAX_SECONDS))


def retry_outcome(result: SendResult) -> str:
    """The attempt outcome of an answer that is retried as it is (5xx, timeouts, …)."""
    if result.error in ("read_timeout", "deadline"):
        return AttemptOutcome.TIMEOUT
    if result.error:
        return AttemptOutcome.CONNECTION_ERROR
    if result.status_code is not None and result.status_code >= 500:
        return AttemptOutcome.SERVER_ERROR
    return AttemptOutcome.UNEXPECTED


def batches(rows: Sequence[Claimed], size: int) -> Iterable[list[Claimed]]:
    for start in range(0, len(rows), size):
        yield list(rows[start : start + size])


def request_body(rows: Sequence[Claimed]) -> bytes:
    """``{"data": [...]}`` joined from the stored JSON text: no decode, no re-encode."""
    return b'{"data":[' + ",".join(row.payload for row in rows).encode() + b"]}"


def per_event_results(result: SendResult, expected: int) -> list[tuple[str, str, str]] | None:
    """Pinterest's per-event answers ``(status, error, warning)`` from a 200 or 422 body.

    None when there are none to apply (another status, a body of another
    shape, or a count that does not match the batch: then nothing is assumed).
    """
    if result.status_code not in (200, 422) or not isinstance(result.body, dict):
        return None
    body: Any = result.body
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


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
