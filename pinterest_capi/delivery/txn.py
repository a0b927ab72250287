"""The flush's own short transactions (claim, results), and how durable their commit is."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from ..conf import app_settings

# Raw (driver) connections configured by configure_session, with the settings they were given.
# Keyed by the driver's connection, not Django's wrapper: a reconnect gives a new, bare one.
_configured: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


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
    them. One statement sets them all: one round trip per transaction, and none on a
    connection that :func:`configure_session` gave them for its whole session.
    """
    connection = connections[db]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=db):
        if outermost and connection.vendor == "postgresql":
            missing = _missing(connection, claim=claim)
            if missing:
                _set(connection, missing, local=True)
        yield


@contextmanager
def one_statement(db: str) -> Iterator[None]:
    """A bookkeeping write of a single statement, in the cheapest way that keeps its terms.

    On a connection :func:`configure_session` set up (a flush lane's own), outside any
    transaction, the statement runs on its own in autocommit: the session already has the
    flush's settings, so its commit is as durable as a :func:`bookkeeping` one, and it costs
    one round trip instead of four (BEGIN, the settings, the statement, COMMIT). Anywhere
    else this is :func:`bookkeeping`.
    """
    if configured(db) and not connections[db].in_atomic_block:
        yield
    else:
        with bookkeeping(db):
            yield


def configured(db: str) -> bool:
    """True if ``db``'s current connection has the flush's settings for its whole session."""
    connection = connections[db]
    return connection.connection is not None and not _missing(connection)


def _missing(connection: BaseDatabaseWrapper, *, claim: bool = False) -> dict[str, str]:
    """The flush's settings (:func:`flush_settings`) that the connection's session lacks."""
    session = _configured.get(connection.connection, {})
    return {
        name: value
        for name, value in flush_settings(claim=claim).items()
        if session.get(name) != value
    }


def configure_session(db: str, *, claim: bool = False) -> None:
    """Give a connection that only the flush uses the flush's settings for its whole session.

    For the connections of a flush lane's own thread (and of its claim helper's), closed when
    the thread ends: their transactions then need no ``SET LOCAL`` statement each, and a
    write of one statement needs no transaction at all (:func:`one_statement`). Never for a
    connection the flush shares with its caller (the main thread's: a shop's, a worker's):
    session settings would outlive the flush there. PostgreSQL only; no-op inside a
    transaction, and it sets only what the session lacks.
    """
    connection = connections[db]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    connection.ensure_connection()
    missing = _missing(connection, claim=claim)
    if missing:
        _set(connection, missing, local=False)
        _configured[connection.connection] = _configured.get(connection.connection, {}) | missing


def _set(connection: BaseDatabaseWrapper, settings: dict[str, str], *, local: bool) -> None:
    """One statement setting them all (``set_config``: values travel as parameters)."""
    scope = "true" if local else "false"
    calls = ", ".join(f"set_config(%s, %s, {scope})" for _ in settings)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {calls}", [part for item in settings.items() for part in item])


def flush_settings(*, claim: bool = False) -> dict[str, str]:
    """What a flush transaction runs with on PostgreSQL: the plans, and the commit's durability."""
    settings = planner_settings(claim=claim)
    if not app_settings.SYNCHRONOUS_BOOKKEEPING:
        settings["synchronous_commit"] = "off"
    return settings


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
