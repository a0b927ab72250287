"""Per-ad-account request budget, shared by every worker through the database.

Pinterest allows 5,000 calls a minute per ad account.  Each request takes a
slot in a 10-second window row (a conditional UPDATE, so concurrent workers on
any host count against the same budget).  A window holds a sixth of
``RATE_LIMIT_PER_MINUTE``; any 60-second span overlaps at most seven windows,
so it sees at most 7/6 of the setting: the default 4,200 stays under 5,000.
Windows are numbered by the database clock, so host clock skew cannot split
the count.
"""

from __future__ import annotations

from django.db.models import F
from django.db.models.functions import Now

from ..conf import app_settings
from ..models import AdAccount, RequestWindow
from .txn import bookkeeping

WINDOW_SECONDS = 10


def limit_per_minute() -> int:
    return int(app_settings.RATE_LIMIT_PER_MINUTE or 0)


def _db_now_seconds(account: AdAccount, db: str) -> float:
    """The database's clock, read through the account's own row (one tiny query)."""
    return (
        AdAccount.objects.using(db)
        .filter(pk=account.pk)
        .annotate(db_now=Now())
        .values_list("db_now", flat=True)
        .get()
        .timestamp()
    )


def acquire(account: AdAccount, *, db: str) -> float | None:
    """Take one request slot for ``account``: None to go now, else seconds to wait."""
    limit = limit_per_minute()
    if limit <= 0:
        return None
    per_window = max(1, limit * WINDOW_SECONDS // 60)
    now = _db_now_seconds(account, db)
    window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
    windows = RequestWindow.objects.using(db)
    # Committed like the rest of the flush's bookkeeping (no wait for the WAL flush): lanes and
    # workers of one account take turns on this row, and each waited for the other's fsync.
    # A database crash can forget the last moments of counting: a few requests more in one
    # window, still under Pinterest's 5,000 a minute with the default 4,200.
    slot = windows.filter(account=account, window=window, count__lt=per_window)
    with bookkeeping(db):
        taken = slot.update(count=F("count") + 1)
        if not taken:
            # No slot: the window is full, or its row did not exist when that UPDATE began.
            # Make the row if it is missing, then try again whatever the check said: another
            # lane or worker may have made and committed it after our UPDATE began (it was then
            # invisible to it), and a lane that saw the row at the check but did not try again
            # paused the account for the rest of the window.
            if not windows.filter(account=account, window=window).exists():
                windows.bulk_create(
                    [RequestWindow(account=account, window=window, count=0)],
                    ignore_conflicts=True,
                )
                windows.filter(account=account, window__lt=window - 600).delete()  # old ones
            taken = slot.update(count=F("count") + 1)
    if taken:
        return None
    return max(0.5, window + WINDOW_SECONDS - now)
