"""Many primary keys as one SQL parameter: what the flush's set-based statements pass.

One string parameter instead of a list: the driver adapting and quoting 1,000 integers cost the
flush more CPU per batch than everything else it does in Python, and the planner parses one
array instead of 1,000 placeholders.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper


def bigint_array(pks: Iterable[int]) -> str:
    """PostgreSQL's text form of an integer array, ``{1,2,3}`` (cast with ``::bigint[]``)."""
    return "{" + ",".join(str(int(pk)) for pk in pks) + "}"


def pk_in(connection: BaseDatabaseWrapper, column: str, pks: list[int]) -> tuple[str, list[Any]]:
    """``column IN <pks>`` as SQL with one parameter where the backend allows it.

    PostgreSQL: ``= ANY(%s::bigint[])`` with the array as its text literal ``{1,2,…}``;
    SQLite: ``IN (SELECT value FROM json_each(%s))``; others: one placeholder per key.
    """
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [bigint_array(pks)]
    if connection.vendor == "sqlite" and connection.features.supports_json_field:
        return f"{column} IN (SELECT value FROM json_each(%s))", [json.dumps(list(pks))]
    return f"{column} IN ({', '.join(['%s'] * len(pks))})", list(pks)


def keys_table(connection: BaseDatabaseWrapper, pks: list[int]) -> tuple[str, list[Any]]:
    """A FROM item ``keys`` with one column ``pk``: the given keys, as one parameter if possible.

    PostgreSQL: ``unnest(%s::bigint[])``; SQLite: ``json_each(%s)``; others: a UNION ALL.
    """
    if connection.vendor == "postgresql":
        return "unnest(%s::bigint[]) AS keys(pk)", [bigint_array(pks)]
    if connection.vendor == "sqlite" and connection.features.supports_json_field:
        return "(SELECT value AS pk FROM json_each(%s)) AS keys", [json.dumps(list(pks))]
    union = " UNION ALL ".join(["SELECT %s AS pk"] * len(pks))
    return f"({union}) AS keys", list(pks)
