"""Offline conversions from a CSV file: parse and validate every row, then record them.

Used by ``manage.py pinterest_capi_backfill``.  Each row goes through the app's own event
builder (:func:`pinterest_capi.events.build_event`, ``action_source="offline"``) and the
tenant's consent hook, so a backfilled event obeys exactly the rules of ``track()``: the
same normalisation and hashing, the same field checks, the same 7-day event_time window
(Pinterest fails older events, so they are reported here instead of failing later).

Validation is a separate pass over the whole file that keeps the built events: nothing is
written until every row has been judged, so a file with a typo in row 90,000 cannot leave
half of itself in the outbox.  The built events wait in an :class:`EventSpool` (compact JSON
lines, on disk past a few megabytes), so memory stays flat whatever the file's size.  Errors
name the line, the CSV column and the rule, never the value (an email address or phone number
must not end up in a terminal log).
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from django.utils import timezone

from . import consent, events
from .exceptions import InvalidEventError, MissingIdentifierError
from .outbox import encode_payload

ACTION_SOURCE = "offline"
DEFAULT_EVENT_NAME = "checkout"
# CSV column -> where build_event takes it.  The README documents the same table.
USER_COLUMNS: dict[str, str] = {
    "email": "em",
    "phone": "ph",
    "first_name": "fn",
    "last_name": "ln",
    "city": "ct",
    "state": "st",
    "zip": "zp",
    "country": "country",
    "external_id": "external_id",
}
CUSTOM_COLUMNS: tuple[str, ...] = ("order_id", "value", "currency", "content_ids", "num_items")
EVENT_COLUMNS: tuple[str, ...] = ("event_name", "event_time", "event_id")
COLUMNS: tuple[str, ...] = EVENT_COLUMNS + CUSTOM_COLUMNS + tuple(USER_COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = ("event_time", "email")
# The builder's field names -> the CSV column an operator must fix.
_COLUMN_OF_FIELD: dict[str, str] = {
    **{f"user_data.{key}": column for column, key in USER_COLUMNS.items()},
    **{f"custom_data.{column}": column for column in CUSTOM_COLUMNS},
    "user_data": "email",  # the identifier rule: email is the CSV's only identifier
}
_MISSING_EMAIL = "is required (Pinterest matches an offline conversion by its email)"


class BadFileError(ValueError):
    """The file as a whole cannot be read (header, encoding): no row is judged."""


@dataclass(frozen=True)
class RowError:
    """One invalid row: its line in the file, the CSV column to fix, and why."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.reason}"


class EventSpool:
    """Built events waiting for the writing pass: compact JSON lines in a temporary file.

    Kept in memory up to :attr:`IN_MEMORY` bytes, on disk past that (a file with no name,
    gone when closed or when the process ends): a million rows held as dicts took some
    3 GB.  The events are what the outbox stores (personal data already hashed).
    """

    IN_MEMORY = 8 * 1024 * 1024

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=self.IN_MEMORY, mode="w+b")
        self._count = 0

    def append(self, event: Mapping[str, Any]) -> None:
        self._file.write(encode_payload(event).encode() + b"\n")
        self._count += 1

    def __len__(self) -> int:
        return self._count

    @property
    def on_disk(self) -> bool:
        """Whether the events outgrew :attr:`IN_MEMORY` and went to the temporary file."""
        return bool(self._file._rolled)  # type: ignore[attr-defined]

    def batches(self, size: int) -> Iterator[list[dict[str, Any]]]:
        """The events in file order, ``size`` at a time."""
        self._file.seek(0)
        batch: list[dict[str, Any]] = []
        for line in self._file:
            batch.append(json.loads(line))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def close(self) -> None:
        self._file.close()


@dataclass
class Validation:
    """Everything the validation pass learnt; ``events`` are ready for the outbox."""

    rows: int = 0
    events: EventSpool = field(default_factory=EventSpool)
    errors: list[RowError] = field(default_factory=list)
    refused: int = 0  # rows the consent hook refused (CONSENT_DENIED = "skip")


def _column_of(error_field: str) -> str:
    if error_field in _COLUMN_OF_FIELD:
        return _COLUMN_OF_FIELD[error_field]
    return _COLUMN_OF_FIELD.get(error_field.split("[", 1)[0], error_field)


def _event_time(text: str) -> datetime | float:
    """Unix seconds (digits) or ISO 8601; a naive time is read in the current time zone."""
    if not text:
        raise InvalidEventError("event_time", "is required")
    try:
        return float(Decimal(text))
    except InvalidOperation:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEventError(
            "event_time", "must be ISO 8601 (2025-03-01T14:30:00+01:00) or Unix seconds"
        ) from None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def _num_items(text: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidEventError("num_items", "must be a whole number") from None


class RowBuilder:
    """Turns CSV rows into API events with the tenant's consent rules, one row at a time."""

    def __init__(
        self, *, tenant: str, default_phone_region: str | None, now: float | None = None
    ) -> None:
        self.tenant = tenant
        self.default_phone_region = default_phone_region
        self.now = time.time() if now is None else now
        self._consent: dict[str, consent.Consent] = {}

    def _decision(self, event_name: str) -> consent.Consent:
        """The hook's answer for this event name; asked once per name (there is no visitor
        or request in an import, so the answer cannot vary from row to row)."""
        if event_name not in self._consent:
            self._consent[event_name] = consent.ask_consent(
                request=None, event_name=event_name, tenant=self.tenant
            )
        return self._consent[event_name]

    def build(self, row: Mapping[str, str]) -> dict[str, Any] | None:
        """The API event of one row; None when consent refuses it; InvalidEventError if bad."""
        event_name = row.get("event_name") or DEFAULT_EVENT_NAME
        order_id = row.get("order_id", "")
        event_id = row.get("event_id") or None
        if event_id is None:
            if not order_id:
                raise InvalidEventError(
                    "event_id", "give event_id or order_id (a re-run must not record it twice)"
                )
            event_id = events.make_event_id(event_name, order_id)
        user_data = {key: row[column] for column, key in USER_COLUMNS.items() if row.get(column)}
        if not user_data.get("em"):
            raise MissingIdentifierError("email", _MISSING_EMAIL)
        custom_data: dict[str, Any] = {
            "order_id": order_id or None,
            "value": row.get("value") or None,
            "currency": row.get("currency") or None,
            "num_items": _num_items(row.get("num_items", "")),
            "content_ids": [i.strip() for i in row.get("content_ids", "").split(";") if i.strip()]
            or None,
        }
        fields: dict[str, Any] = {}
        decision = self._decision(event_name)
        if not decision.allowed:
            if consent.denied_action() == consent.DENIED_SKIP:
                return None
            fields["opt_out"] = True
        custom = consent.apply_limited_data_processing(
            decision, user_data, {k: v for k, v in custom_data.items() if v is not None}
        )
        return events.build_event(
            event_name,
            user_data=user_data,
            custom_data=custom,
            event_id=event_id,
            event_time=_event_time(row.get("event_time", "")),
            action_source=ACTION_SOURCE,
            default_phone_region=self.default_phone_region,
            now=self.now,
            **fields,
        )


def _rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(line number, values) of each non-blank record; the line is where the record ends."""
    for values in reader:
        if any(v.strip() for v in values):  # blank lines (a trailing newline) are not rows
            yield reader.line_num, values


def validate_csv(
    stream: TextIO, *, tenant: str, default_phone_region: str | None, now: float | None = None
) -> Validation:
    """Judge every row of the file; return the built events and every row's errors.

    Raises :class:`BadFileError` for a file that cannot be read as a whole (no header, an
    unknown column: a typo in a header would otherwise silently drop a field of every row).
    """
    reader = csv.reader(stream)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise BadFileError("the file is empty: it needs a header line") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise BadFileError(f"cannot read the header: {exc}") from None
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise BadFileError(
            f"unknown column(s) {', '.join(unknown)}; the columns are {', '.join(COLUMNS)}"
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if not {"event_id", "order_id"} & set(header):
        missing.append("event_id or order_id")
    if missing:
        raise BadFileError(f"missing column(s): {', '.join(missing)}")
    builder = RowBuilder(tenant=tenant, default_phone_region=default_phone_region, now=now)
    result = Validation()
    first_line: dict[tuple[str, str], int] = {}
    try:
        for line, values in _rows(reader):
            result.rows += 1
            if len(values) != len(header):
                reason = f"has {len(values)} fields, the header {len(header)} (quote commas)"
                result.errors.append(RowError(line, "row", reason))
                continue
            try:
                event = builder.build(
                    {name: value.strip() for name, value in zip(header, values, strict=True)}
                )
            except InvalidEventError as exc:
                result.errors.append(RowError(line, _column_of(exc.field), exc.message))
                continue
            if event is None:
                result.refused += 1
                continue
            key = (event["event_name"], event["event_id"])
            if key in first_line:
                result.errors.append(
                    RowError(line, "event_id", f"repeats the conversion of line {first_line[key]}")
                )
                continue
            first_line[key] = line
            result.events.append(event)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise BadFileError(f"cannot read the file after line {reader.line_num}: {exc}") from None
    return result
