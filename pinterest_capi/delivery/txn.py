"""The flush's own short transactions (claim, results), and how durable their commit is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, transaction

from ..conf import app_settings


@contextmanager
def bookkeeping(db: str) -> Iterator[None]:
    """``transaction.atomic`` for delivery bookkeeping, committed without waiting for fsync.

    On PostgreSQL, unless ``SYNCHRONOUS_BOOKKEEPING`` is True, the transaction runs with
    ``SET LOCAL synchronous_commit TO off``: its commit returns before the WAL reaches
    disk, instead of every 1,000-event batch waiting for a flush of its megabyte of WAL.
    A database *crash* can then forget the last few hundred milliseconds of bookkeeping
    (never data: the database stays consistent). A forgotten claim or result means the
    rows are sent again with the same event_ids, which Pinterest deduplicates — the same
    outcome as a worker killed before it saved its results. ``SET LOCAL`` ends with the
    transaction, and it is only issued when this block is the outermost one, so a shop's
    own transaction (or a caller's) never gets it.
    """
    connection = connections[db]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=db):
        if (
            outermost
            and connection.vendor == "postgresql"
            and not app_settings.SYNCHRONOUS_BOOKKEEPING
        ):
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO off")
        yield
