"""Cursor pagination of the event list: cheap on a large outbox.

Newest first by primary key, so each page is a range read of the primary key (or of the
``(status, id)``, ``(event_name, id)``, ``(account, id)`` indexes the admin added for the
same filters), whatever the page: no ``COUNT(*)`` and no ``OFFSET``.
"""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class EventCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
