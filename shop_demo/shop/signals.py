"""The shop's own business events.

The shop sends these inside the ``transaction.atomic()`` block that makes the change, so a
listener that writes to the database (for example an outbox) commits or rolls back with it.
Who listens is decided by settings, not by the shop.

- ``order_placed``: ``sender=Order, order=..., lines=..., request=...`` after the order's lines
  exist; ``lines`` is the list of its OrderLine objects (so a listener need not query them).
- ``cart_item_added``: ``sender=CartLine, product=..., quantity=..., cart=..., line=...,
  request=...``; ``quantity`` is how many were added now, ``line.quantity`` the new total.
- ``customer_signed_up``: ``sender=User, user=..., request=...``.
"""

from django.dispatch import Signal

order_placed = Signal()
cart_item_added = Signal()
customer_signed_up = Signal()
