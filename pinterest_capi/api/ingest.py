"""``POST events/``: judge each event of a call, then record the good ones in one go.

Each event is judged on its own by the app's own builder
(:func:`pinterest_capi.events.build_event`: raw user_data normalised and hashed, 64-hex
values passed through, Pinterest's field rules, the event_time window), so a bad event
never stops the good ones of the same call.  The outcome is one result per index:

* ``recorded`` — new; written once per active ad account of the key's tenant;
* ``valid`` — would be recorded (only when the call has ``test: true``, which writes nothing);
* ``duplicate`` — the tenant already has this ``(event_name, event_id)`` (or an earlier
  index of the same call has it): nothing new is written, so a caller may retry a call
  whose answer it lost;
* ``invalid`` — with the ``field`` and the ``reason`` (never the value).

All new events of a call are written by :func:`pinterest_capi.outbox.record_many` in one
transaction (all of them or, on a database error, none), and the flush is nudged on commit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import events, outbox
from ..conf import app_settings
from ..exceptions import InvalidEventError, NoActiveAccountError
from ..models import AdAccount, OutboxEvent

RECORDED = "recorded"
VALID = "valid"
DUPLICATE = "duplicate"
INVALID = "invalid"
STATUSES = (RECORDED, VALID, DUPLICATE, INVALID)

MAX_EVENTS = 1000  # Pinterest's own limit per request; the same here
_NAMED_FIELDS = ("event_name", "action_source", "event_time", "event_id", "user_data")


@dataclass
class EventResult:
    """The answer for one index of the call."""

    index: int
    status: str
    event_name: str | None = None
    event_id: str | None = None
    field: str | None = None
    reason: str | None = None
    duplicate_of: int | None = None


@dataclass
class Outcome:
    test: bool
    results: list[EventResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.status == status)


def _is_bad(text: str) -> bool:
    return "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text)


def printable(name: str) -> str:
    """A field name safe to put in a JSON answer (an unpaired surrogate cannot be encoded)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _bad_text(value: Any, where: str) -> Iterator[str]:
    """Paths of strings a database cannot store: NUL characters, unpaired surrogates.

    A bad key is reported at its parent's path: the key itself is not fit to echo.
    """
    if isinstance(value, str):
        if _is_bad(value):
            yield where
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if _is_bad(str(key)):
                yield where
                continue
            yield from _bad_text(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _bad_text(item, f"{where}[{i}]")


def build_api_event(raw: Any, *, now: float) -> dict[str, Any]:
    """The complete API event for one event of a call; InvalidEventError naming the field.

    Checks what ``build_event`` takes for granted from Python callers (JSON types of the
    required fields, no NUL characters, the outbox's column sizes), then lets it do the rest.
    """
    if not isinstance(raw, Mapping):
        raise InvalidEventError("event", "must be an object")
    for where in _bad_text(raw, ""):
        raise InvalidEventError(where or "event", "must not contain NUL or surrogate characters")
    for name in _NAMED_FIELDS:
        if name not in raw:
            raise InvalidEventError(name, "is required")
    for name in ("event_name", "action_source", "event_id"):
        if not isinstance(raw[name], str):
            raise InvalidEventError(name, "must be a string")
    if type(raw["event_time"]) is not int:
        raise InvalidEventError("event_time", "must be an integer (Unix seconds)")
    if not isinstance(raw["user_data"], Mapping):
        raise InvalidEventError("user_data", "must be an object")
    extra = {key: value for key, value in raw.items() if key not in _NAMED_FIELDS}
    return events.build_event(
        raw["event_name"],
        user_data=raw["user_data"],
        custom_data=extra.pop("custom_data", None),
        event_id=raw["event_id"],
        event_time=raw["event_time"],
        action_source=raw["action_source"],
        event_source_url=extra.pop("event_source_url", None),
        default_phone_region=app_settings.DEFAULT_PHONE_REGION,
        now=now,
        **extra,
    )


def _already_recorded(tenant: str, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (event_name, event_id) pairs of ``keys`` the tenant's outbox already holds."""
    found: set[tuple[str, str]] = set()
    ids = sorted({event_id for _name, event_id in keys})
    for start in range(0, len(ids), 500):
        rows = (
            OutboxEvent.objects.filter(
                account__tenant=tenant, event_id__in=ids[start : start + 500]
            )
            .values_list("event_name", "event_id")
            .distinct()
        )
        found.update(pair for pair in rows if pair in keys)
    return found


def ingest(raw_events: Sequence[Any], *, tenant: str, test: bool = False) -> Outcome:
    """Judge ``raw_events`` and record the new valid ones for ``tenant`` (unless ``test``).

    Raises :class:`NoActiveAccountError` (nothing written) when there is something new to
    record and the tenant has no active ad account to record it for.
    """
    now = time.time()
    outcome = Outcome(test=test)
    built: list[tuple[int, dict[str, Any]]] = []
    for index, raw in enumerate(raw_events):
        try:
            event = build_api_event(raw, now=now)
        except InvalidEventError as exc:
            outcome.results.append(EventResult(index, INVALID, field=exc.field, reason=exc.message))
            continue
        outcome.results.append(
            EventResult(index, VALID, event_name=event["event_name"], event_id=event["event_id"])
        )
        built.append((index, event))
    keys = {(event["event_name"], event["event_id"]) for _i, event in built}
    recorded_before = _already_recorded(tenant, keys) if keys else set()
    first_index: dict[tuple[str, str], int] = {}
    new_events: list[dict[str, Any]] = []
    for index, event in built:
        key = (event["event_name"], event["event_id"])
        result = outcome.results[index]
        if key in recorded_before:
            result.status = DUPLICATE
        elif key in first_index:
            result.status, result.duplicate_of = DUPLICATE, first_index[key]
        else:
            first_index[key] = index
            new_events.append(event)
    if not new_events:
        return outcome
    accounts = list(AdAccount.objects.for_tenant(tenant).active())
    if not accounts:
        raise NoActiveAccountError(
            f"tenant {tenant!r} has no active ad account: nothing was recorded"
        )
    if test:
        return outcome
    outbox.record_many(new_events, accounts=accounts)
    for index in first_index.values():
        outcome.results[index].status = RECORDED
    return outcome
