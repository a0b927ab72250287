"""A changelist paginator that never counts a whole table.

Django's admin asks ``paginator.count`` on every changelist load, and the
default paginator answers with ``SELECT COUNT(*)`` over every matching row:
on PostgreSQL that reads the whole outbox (a million rows: a few hundred
milliseconds, on every page view, growing with the table).  Operators need
"about how many", not the exact figure, so this paginator:

* unfiltered view on PostgreSQL: the planner's own row estimate
  (``pg_class.reltuples``, kept fresh by autovacuum/ANALYZE) when it is above
  the cap: shown as "about 1,000,000";
* anything else (filters, search, tenant scoping, SQLite): a capped count,
  ``SELECT COUNT(*) FROM (SELECT … LIMIT cap + 1)``: exact up to the cap,
  otherwise shown as "more than 10,000".

Either way the cost is bounded by the cap, not by the table.  Pages past an
inexact count are still served (they are just empty if nothing is there).
"""

from __future__ import annotations

import enum
from functools import cached_property
from typing import Any

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import DatabaseError, connections
from django.db.models import QuerySet
from django.utils.formats import number_format
from django.utils.translation import gettext as _

#: Rows counted at most before the count is shown as "more than N".
DEFAULT_COUNT_CAP = 10_000


class CountKind(enum.Enum):
    EXACT = "exact"
    ESTIMATE = "estimate"  # the planner's estimate of the whole table
    AT_LEAST = "at_least"  # the cap was reached: there are more than ``cap`` rows


def planner_row_estimate(queryset: QuerySet) -> int | None:
    """PostgreSQL's estimate of the rows of an *unfiltered* queryset's table, else None.

    None when the backend is not PostgreSQL, when the queryset filters,
    slices, or combines anything (the table estimate would not apply), or
    when the table has never been analysed (``reltuples`` is -1).
    """
    query = queryset.query
    if query.where or query.distinct or query.combinator or query.is_sliced:
        return None
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    table = connection.ops.quote_name(queryset.model._meta.db_table)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table]
            )
            row = cursor.fetchone()
    except DatabaseError:
        return None
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


class CappedCountPaginator(Paginator):
    """Paginator whose ``count`` costs at most ``cap + 1`` rows (see the module docstring).

    ``count_kind`` says what ``count`` is (exact, an estimate, or a lower
    bound) and ``count_display`` is the words for the changelist.
    """

    cap: int = DEFAULT_COUNT_CAP

    def __init__(
        self,
        object_list: Any,
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
        *,
        cap: int | None = None,
    ) -> None:
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        if cap is not None:
            self.cap = cap

    @cached_property
    def _counted(self) -> tuple[int, CountKind]:
        object_list = self.object_list
        if not isinstance(object_list, QuerySet):
            return len(object_list), CountKind.EXACT
        estimate = planner_row_estimate(object_list)
        if estimate is not None and estimate > self.cap:
            return estimate, CountKind.ESTIMATE
        # Django turns a sliced count into COUNT(*) over a LIMITed subquery.
        capped = object_list.order_by()[: self.cap + 1].count()
        if capped > self.cap:
            return capped, CountKind.AT_LEAST
        return capped, CountKind.EXACT

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return self._counted[0]

    @property
    def count_kind(self) -> CountKind:
        return self._counted[1]

    @property
    def count_is_exact(self) -> bool:
        return self.count_kind is CountKind.EXACT

    @property
    def count_display(self) -> str:
        """The count in words: "1,234", "about 1,000,000" or "more than 10,000"."""
        count, kind = self._counted
        if kind is CountKind.ESTIMATE:
            return _("about %(count)s") % {"count": number_format(count, force_grouping=True)}
        if kind is CountKind.AT_LEAST:
            return _("more than %(count)s") % {
                "count": number_format(self.cap, force_grouping=True)
            }
        return number_format(count, force_grouping=True)

    def validate_number(self, number: Any) -> int:
        """Like Django's, but a page past an inexact count is allowed (it may hold rows)."""
        if self.count_is_exact:
            return super().validate_number(number)
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from exc
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return number

    def page(self, number: Any) -> Page:
        """Like Django's, without cutting the slice at an inexact count."""
        if self.count_is_exact:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return self._get_page(self.object_list[bottom : bottom + self.per_page], number, self)
