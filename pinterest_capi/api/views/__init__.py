"""The API's views, one module per audience: ingestion, operations on events and accounts."""

from .accounts import AccountHealthView
from .events import EventDetailView, EventListView, ResendEventView, ResendMatchingView
from .ingest import EventIngestView
from .schema import SchemaView

__all__ = [
    "AccountHealthView",
    "EventDetailView",
    "EventIngestView",
    "EventListView",
    "ResendEventView",
    "ResendMatchingView",
    "SchemaView",
]
