"""The Django admin of pinterest_capi: accounts, the outbox, delivery attempts.

Importing this package registers the ModelAdmins (accounts, API keys, events, attempts)
with the default site, and the delivery dashboard (a page behind a proxy model's admin).
"""

from .accounts import AdAccountAdmin
from .apikeys import ApiKeyAdmin
from .attempts import DeliveryAttemptAdmin
from .dashboard import DeliveryDashboardAdmin
from .events import OutboxEventAdmin

__all__ = [
    "AdAccountAdmin",
    "ApiKeyAdmin",
    "DeliveryAttemptAdmin",
    "DeliveryDashboardAdmin",
    "OutboxEventAdmin",
]
