"""Fault injection: knobs that make the sandbox misbehave as Pinterest (or the network) can.

Every failure in ``reliability.md`` needs a real server that answers 429, 503, drips bytes, drops
the connection or reports per-event failures on demand.  A :class:`Fault` describes one such
behaviour; a :class:`FaultSet` holds them in order and hands the first matching one to each
``POST …/events`` request.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields
from typing import Any

# Pinterest's error bodies per HTTP status: (code, message).  Codes for 401/403/429/503/400 are
# Pinterest's documented ones; 404/500/502 have no documented code, so the status is reused.
ERROR_BODIES: dict[int, tuple[int, str]] = {
    400: (4196, "Invalid request: the request body does not match the expected schema."),
    401: (2, "Authentication failed."),
    403: (29, "You are not permitted to access that resource."),
    404: (404, "Ad account not found."),
    413: (4196, "Request body too large."),
    429: (8, "This request exceeded a rate limit. Please retry after some time."),
    500: (500, "Internal server error."),
    502: (502, "Bad gateway."),
    503: (4197, "The endpoint has been ramped down and is currently not accepting any traffic."),
}

EVENT_STATUSES = frozenset({"processed", "failed"})

# Fields a JSON client (``POST /_sandbox/faults``) may set; ``hold`` needs a threading.Event.
JSON_FIELDS = frozenset(
    {
        "status",
        "times",
        "rate",
        "seed",
        "retry_after",
        "latency",
        "drip",
        "drop",
        "event_status",
        "message",
        "as_422",
        "ad_account_id",
        "body",
        "content_type",
    }
)


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """Pinterest's whole-request error body for ``status`` (``{"code", "message"}``)."""
    code, default = ERROR_BODIES.get(status, (status, "Error."))
    return {"code": code, "message": message or default}


@dataclass(eq=False)
class Fault:
    """One injected misbehaviour for ``POST /v5/ad_accounts/{id}/events``.

    Effects combine: ``latency``/``hold`` delay whatever is answered, ``status`` replaces the answer
    with a whole-request error (events are then NOT recorded), ``event_status`` overrides per-event
    results, ``drip`` slows the body, ``drop`` closes the connection after reading the request
    (events ARE recorded: "sent, but the answer was lost").  ``times`` limits how many matching
    requests the fault applies to (``None`` = forever); ``rate`` applies it to a random share,
    reproducibly with ``seed``.  ``message`` overrides the error message (whole-request error or
    the per-event ``error_message`` of forced failures).
    """

    status: int | None = None
    times: int | None = None
    rate: float | None = None
    seed: int | None = None
    retry_after: str | None = None
    latency: float | None = None
    drip: float | None = None
    drop: bool = False
    hold: threading.Event | None = None
    event_status: dict[int, str] | None = None
    message: str | None = None
    as_422: bool = False
    ad_account_id: str | None = None
    body: str | None = None
    content_type: str = "application/json"
    fired: int = field(default=0, init=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.status is not None and not (400 <= int(self.status) <= 599):
            raise ValueError(f"status must be an HTTP error status (400-599), not {self.status}")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")
        if self.rate is not None and not (0.0 <= self.rate <= 1.0):
            raise ValueError("rate must be between 0 and 1")
        for name in ("latency", "drip"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.retry_after is not None:
            self.retry_after = str(self.retry_after)
        if self.ad_account_id is not None:
            self.ad_account_id = str(self.ad_account_id)
        if self.event_status is not None:
            statuses = {int(k): v for k, v in self.event_status.items()}  # JSON keys are strings
            bad = {v for v in statuses.values() if v not in EVENT_STATUSES}
            if bad:
                raise ValueError(f"event_status values must be 'processed' or 'failed', not {bad}")
            self.event_status = statuses
        self._rng = random.Random(self.seed)

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Build a fault from the JSON body of ``POST /_sandbox/faults`` (rejects unknown keys)."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        unknown = set(data) - JSON_FIELDS
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def describe(self) -> str:
        """A short label for the ledger and logs, e.g. ``"status=503"`` or ``"drip=0.7"``."""
        parts = []
        for f in fields(self):
            if f.name in ("fired", "_rng", "times", "seed", "content_type", "message"):
                continue
            value = getattr(self, f.name)
            if value is None or value is False:
                continue
            if f.name == "hold":
                parts.append("hold")
            elif value is True:
                parts.append(f.name)
            else:
                parts.append(f"{f.name}={value}")
        return ",".join(parts) or "noop"

    def to_json(self) -> dict[str, Any]:
        """The JSON-able fields and how often the fault fired (for ``GET /_sandbox/faults``)."""
        out = {name: getattr(self, name) for name in sorted(JSON_FIELDS)}
        out["hold"] = self.hold is not None
        out["fired"] = self.fired
        return out


class FaultSet:
    """The ordered, thread-safe list of active faults; the first matching one wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Append ``fault`` (checked after the ones already added) and return it."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> int:
        """Remove every fault; returns how many there were."""
        with self._lock:
            count = len(self._faults)
            self._faults = []
        return count

    def list(self) -> list[Fault]:
        """The faults in matching order (used-up ones included)."""
        with self._lock:
            return list(self._faults)

    def match(self, ad_account_id: str | None) -> Fault | None:
        """Pick and use up the fault for one events request, or ``None`` to answer normally."""
        if not self._faults:  # lock-free fast path: the common, fault-free case
            return None
        with self._lock:
            for fault in self._faults:
                if fault.ad_account_id is not None and fault.ad_account_id != ad_account_id:
                    continue
                if fault.times is not None and fault.fired >= fault.times:
                    continue
                if fault.rate is not None and fault._rng.random() >= fault.rate:
                    continue
                fault.fired += 1
                return fault
        return None

    def __len__(self) -> int:
        return len(self._faults)
