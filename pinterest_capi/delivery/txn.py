"""The flush's own short transactions (claim, results), and how durable their commit is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, transaction

from ..conf import app_settings


@contextmanager
def bookkeeping(db: str, *, claim: bool = False) -> Iterator[None]:
    """``transaction.atomic`` for delivery bookkeeping, committed without waiting for fsync.

    On PostgreSQL, unless ``SYNCHRONOUS_BOOKKEEPING`` is True, the transaction runs with
    ``synchronous_commit`` off: its commit returns before the WAL reaches disk, instead of
    every 1,000-event batch waiting for a flush of its megabyte of WAL. A database *crash* can
    then forget the last few hundred milliseconds of bookkeeping (never data: the database
    stays consistent). A forgotten claim or result means the rows are sent again with the
    same event_ids, which Pinterest deduplicates — the same outcome as a worker killed before
    it saved its results.

    It also pins the plans (:func:`planner_settings`). All of these are ``SET LOCAL``
    (``set_config(…, true)``): they end with the transaction, and they are only issued when
    this block is the outermost one, so a shop's own transaction (or a caller's) never gets
    them. One statement sets them all: one round trip per transaction.
    """
    connection = connections[db]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=db):
        if outermost and connection.vendor == "postgresql":
            settings = planner_settings(claim=claim)
            if not app_settings.SYNCHRONOUS_BOOKKEEPING:
                settings["synchronous_commit"] = "off"
            calls = ", ".join("set_config(%s, %s, true)" for _ in settings)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {calls}", [part for item in settings.items() for part in item]
                )
        yield


def planner_settings(*, claim: bool = False) -> dict[str, str]:
    """The PostgreSQL planner settings of the flush's transactions.

    Every statement in them reads rows by key (arrays of up to a few thousand primary keys)
    or, in a claim, the queue's index in order. Left to its estimates the planner sometimes
    reads a whole table instead: the claim's queue update scanned all 100,000 queue rows on
    every claim of a 100,000-event backlog (2.5 s of a 5-s flush, auto_explain), and the
    queue delete chose a sequential scan on a table of 20,000. ``enable_seqscan = off`` makes
    that plan the last resort rather than forbidden. A claim also turns sorting off: with
    stale statistics (right after a burst) the planner sorted every due row instead of reading
    the queue's index in order and stopping after ``n`` rows (400 ms instead of 20 for a claim
    of 2,000 from 100,000).
    """
    settings = {"enable_seqscan": "off"}
    if claim:
        settings["enable_sort"] = "off"
    return settings
