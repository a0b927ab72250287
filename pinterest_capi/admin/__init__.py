"""The Django admin of pinterest_capi: accounts, the outbox, delivery attempts.

Importing this package registers the three ModelAdmins with the default site, and the
delivery dashboard (a page behind a proxy model's admin).
"""

from .accounts import AdAccountAdmin
from .attempts import DeliveryAttemptAdmin
from .dashboard import DeliveryDashboardAdmin
from .events import OutboxEventAdmin

__all__ = [
    "AdAccountAdmin",
    "DeliveryAttemptAdmin",
    "DeliveryDashboardAdmin",
    "OutboxEventAdmin",
]
