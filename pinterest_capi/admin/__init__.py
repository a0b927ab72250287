"""The Django admin of pinterest_capi: accounts, the outbox, delivery attempts.

Importing this package registers the three ModelAdmins with the default site.
"""

from .accounts import AdAccountAdmin
from .attempts import DeliveryAttemptAdmin
from .events import OutboxEventAdmin

__all__ = ["AdAccountAdmin", "DeliveryAttemptAdmin", "OutboxEventAdmin"]
