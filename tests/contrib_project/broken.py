"""A mapper with a bug that also spoils its database connection (the worst case for a shop)."""

from __future__ import annotations

from typing import Any

from django.db import connection


def mapper(**kwargs: Any) -> dict[str, Any]:
    """Runs a failing query (on PostgreSQL this aborts the transaction it runs in), then raises."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM pinterest_capi_no_such_table")
    raise AssertionError("unreachable: the query above fails")
