"""Savepoints that cost the shop's request as few round trips as possible.

Recording runs inside the shop's transaction, so whatever it sends to the database runs in a
savepoint: on PostgreSQL a failed statement aborts the whole transaction, and the shop's
checkout must go on when recording fails.  Django's ``transaction.atomic()`` pays for that with
two statements of their own (``SAVEPOINT`` before the block, ``RELEASE`` after), each a round
trip to PostgreSQL, around the one statement recording needs (the outbox insert).  Two tools
keep the same protection for less:

- :func:`execute_in_savepoint` runs one statement in a savepoint of its own; on PostgreSQL
  (psycopg 3, client-side binding: Django's default) ``SAVEPOINT …; <statement>; RELEASE …``
  go in one round trip, and only a failure costs a second one (``ROLLBACK TO``).  SQLite
  needs none for one statement: it undoes a failed statement by itself and the transaction
  goes on (its errors that end the transaction, a full disk or an I/O error, end it with a
  savepoint too).
- :class:`DeferredSavepoint` guards a block of code (a signal receiver's mapper and recording)
  whose statements are not known in advance: the savepoint is opened just before the first
  statement the block runs, by an execute wrapper, so a block that runs only Python costs
  nothing and a block whose first statement is the outbox insert folds the savepoint into it
  (:meth:`DeferredSavepoint.execute`).  A failure inside the block rolls back to the savepoint
  (when one was opened) and drops the on-commit callbacks the block registered, as Django's
  ``atomic()`` does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from django.db import DatabaseError, Error, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

_names = itertools.count(1)


def _new_name() -> str:
    """A savepoint name unique in this process (so in any transaction it runs in)."""
    return f"pcapi_sp_{next(_names)}"


def can_fold(connection: BaseDatabaseWrapper) -> bool:
    """Whether several statements can go to the database in one ``execute``.

    PostgreSQL with psycopg 3 and client-side binding (Django's default): the query goes by
    the simple query protocol, which takes several statements.  Server-side binding (the
    extended protocol) does not, nor does psycopg 2 report each statement's result.
    """
    if connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    options = connection.settings_dict.get("OPTIONS") or {}
    return is_psycopg3 and options.get("server_side_binding") is not True


def fetch_rows(cursor: Any, fetch: bool, rows_at: int = 0) -> list[tuple[Any, ...]]:
    """The rows of the ``rows_at``-th statement the cursor ran (0: the first); [] unless fetch."""
    for _ in range(rows_at):
        cursor.nextset()
    return cursor.fetchall() if fetch else []


def execute_in_savepoint(
    connection: BaseDatabaseWrapper,
    sql: str,
    params: Sequence[Any] | Mapping[str, Any],
    *,
    fetch: bool = False,
    name: str | None = None,
    rows_at: int = 0,
) -> list[tuple[Any, ...]]:
    """Run one statement in a savepoint of its own; its rows when ``fetch``.

    On a database error the statement's effects are undone (so the caller's transaction
    stays usable) and the error is raised.  Call it inside a transaction.  ``sql`` may be
    several statements where :func:`can_fold`; ``rows_at`` is then the index of the one whose
    rows are returned.
    """
    ops = connection.ops
    name = name or _new_name()
    create, release = ops.savepoint_create_sql(name), ops.savepoint_commit_sql(name)
    folds = can_fold(connection)
    if rows_at and not folds:
        raise ValueError("several statements in one execute need can_fold(connection)")
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(sql, params)  # statement-level rollback: see the module's docstring
            return fetch_rows(cursor, fetch)
        if folds:
            try:
                cursor.execute(f"{create}; {sql}; {release}", params)
            except DatabaseError:
                # Refused by the server: the savepoint exists and the transaction is aborted.
                # (A query that never left, e.g. a parameter psycopg cannot adapt, made none.)
                if _aborted(connection):
                    _rollback_to(connection, name)
                raise
            cursor.nextset()  # the SAVEPOINT's (empty) result, then the statement's
            return fetch_rows(cursor, fetch, rows_at)
        cursor.execute(create)
        try:
            cursor.execute(sql, params)
            rows = fetch_rows(cursor, fetch)
        except DatabaseError:
            _rollback_to(connection, name)
            raise
        cursor.execute(release)
        return rows


def _aborted(connection: BaseDatabaseWrapper) -> bool:
    """PostgreSQL: the transaction is in the failed state (a statement of it was refused)."""
    from psycopg import pq

    status = connection.connection.info.transaction_status
    return bool(status == pq.TransactionStatus.INERROR)


def _rollback_to(connection: BaseDatabaseWrapper, name: str) -> None:
    """Undo everything since savepoint ``name`` and release it (the transaction goes on)."""
    ops = connection.ops
    rollback, release = ops.savepoint_rollback_sql(name), ops.savepoint_commit_sql(name)
    try:
        with connection.cursor() as cursor:
            if can_fold(connection):
                cursor.execute(f"{rollback}; {release}")
            else:
                cursor.execute(rollback)
                cursor.execute(release)
    except Error:
        # The connection itself is broken: nothing here can save the transaction.
        connection.needs_rollback = True


class DeferredSavepoint:
    """A savepoint around a block, opened only when the block runs its first statement.

    Outside a transaction, or in one already marked for rollback, it is Django's
    ``transaction.atomic()`` (a transaction of its own, as before).  Inside one, every
    statement the block runs is in the savepoint, as with ``atomic()``; the exception (if any)
    propagates, the transaction stays usable.
    """

    def __init__(self, using: str) -> None:
        self.using = using
        self.connection = connections[using]
        self.name: str | None = None  # the savepoint open now, if any
        self._quiet = 0  # > 0 while a statement of this block's own or an outer one's is sent
        self._fallback: Any = None
        self._callbacks = 0
        self._watch: Any = None

    def __enter__(self) -> DeferredSavepoint:
        connection = self.connection
        if not connection.in_atomic_block or connection.needs_rollback:
            self._fallback = transaction.atomic(using=self.using)
            self._fallback.__enter__()
            return self
        self._callbacks = len(connection.run_on_commit)
        self._watch = connection.execute_wrapper(self._before_statement)
        self._watch.__enter__()
        return self

    @property
    def deferred(self) -> bool:
        """True when no savepoint is open yet (a statement run now may fold one in)."""
        return self._fallback is None and self.name is None

    def _before_statement(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if self.name is None and not self._quiet:
            self._open()
        return execute(sql, params, many, context)

    @contextmanager
    def _own_statement(self) -> Iterator[None]:
        """While this block sends a statement of its own (its SAVEPOINT, or one carrying it).

        Neither this block nor one nested in it (a receiver whose mapper sends a signal: its
        wrapper comes later in the connection's list) opens a savepoint on that statement;
        theirs must come after.  A block around this one (earlier in the list) still opens
        its own first.
        """
        wrappers = self.connection.execute_wrappers
        start = wrappers.index(self._before_statement)
        blocks = [
            w.__self__
            for w in wrappers[start:]
            if isinstance(getattr(w, "__self__", None), DeferredSavepoint)
        ]
        for block in blocks:
            block._quiet += 1
        try:
            yield
        finally:
            for block in blocks:
                block._quiet -= 1

    def _open(self) -> None:
        name = _new_name()
        with self._own_statement(), self.connection.cursor() as cursor:
            cursor.execute(self.connection.ops.savepoint_create_sql(name))
        self.name = name

    def execute(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any],
        *,
        fetch: bool = False,
        rows_at: int = 0,
    ) -> list[Any]:
        """Run ``sql`` in the block; with no savepoint open yet, in one of its own.

        That one is folded into the statement (:func:`execute_in_savepoint`: one round trip
        on PostgreSQL) and released with it, so the block's next statement, if any, opens
        another.  With a savepoint open (the block ran a statement before) it runs in it.
        Meant for the block's last statement (the receivers' outbox insert): once it is
        released, an exception the block raises afterwards no longer undoes it.  ``rows_at``
        as in :func:`execute_in_savepoint`.
        """
        if not self.deferred:
            with self.connection.cursor() as cursor:
                cursor.execute(sql, params)
                return fetch_rows(cursor, fetch, rows_at)
        with self._own_statement():
            return execute_in_savepoint(self.connection, sql, params, fetch=fetch, rows_at=rows_at)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fallback is not None:
            self._fallback.__exit__(exc_type, exc, tb)
            return
        self._watch.__exit__(None, None, None)
        connection = self.connection
        if exc_type is None and not connection.needs_rollback:
            if self.name is not None:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(connection.ops.savepoint_commit_sql(self.name))
                except DatabaseError:
                    self._undo()
                    raise
            return
        self._undo()

    def _undo(self) -> None:
        """Roll back to the savepoint, if one was opened, and forget the block's callbacks."""
        connection = self.connection
        # needs_rollback was False on entry: set since, it concerns the block alone, which
        # either ran no statement (nothing to undo) or is undone to its savepoint now.
        connection.needs_rollback = False
        if self.name is not None:
            _rollback_to(connection, self.name)
        del connection.run_on_commit[self._callbacks :]
