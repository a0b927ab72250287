"""The value a flush returns (and django-q2 stores) instead of raising."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_COUNTS = ("claimed", "sent", "failed", "retrying", "released", "requests", "cycles")


@dataclass
class FlushSummary:
    """What one or more flush cycles did."""

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
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for account in other.paused_accounts:
            if account not in self.paused_accounts:
                self.paused_accounts.append(account)
        self.errors.extend(other.errors)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in _COUNTS}
        data["paused_accounts"] = list(self.paused_accounts)
        data["errors"] = list(self.errors)
        return data
