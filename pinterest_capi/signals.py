"""Signals for integrators: learn what happened to recorded events without polling the outbox.

* ``event_delivered(sender=OutboxEvent, events=[pk, ...], account=AdAccount)``: Pinterest
  processed these events (their rows are now ``sent``).
* ``event_failed(sender=OutboxEvent, events=[pk, ...], account=AdAccount, reason=str)``: these
  events are now ``failed`` for ``reason`` (Pinterest's per-event error, a rejected request,
  or the attempt budget spent); they wait for a resend.

Both are sent once per batch of results (one ``event_failed`` per distinct reason), never per
row: a flush applies up to 1,000 results at a time, and a call per row would cost more than the
request.  They are sent only after the transaction that changed the rows has committed
(``transaction.on_commit``), so a receiver never sees a state that was rolled back and may
read the rows freely.  A receiver that raises is logged and ignored: an integrator's bug must
never stop deliveries (the rows are already written; nothing is retried for it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.dispatch import Signal

from .models import AdAccount, EventStatus, OutboxEvent

logger = logging.getLogger("pinterest_capi.signals")

event_delivered = Signal()
event_failed = Signal()

_BY_STATUS: dict[str, Signal] = {
    EventStatus.SENT: event_delivered,
    EventStatus.FAILED: event_failed,
}


def wanted(status: str) -> bool:
    """True when someone listens for rows reaching ``status`` (else the flush skips the work)."""
    signal = _BY_STATUS.get(status)
    return signal is not None and signal.has_listeners(OutboxEvent)


def announce(status: str, account: AdAccount, pks: Sequence[int], reason: str = "") -> None:
    """Send the signal for ``pks`` reaching ``status``; never raises.

    Called from an ``on_commit`` callback: an exception here would escape into the flush.
    """
    signal = _BY_STATUS.get(status)
    if signal is None or not pks:
        return
    kwargs: dict[str, object] = {"events": list(pks), "account": account}
    if signal is event_failed:
        kwargs["reason"] = reason
    try:
        responses = signal.send_robust(sender=OutboxEvent, **kwargs)
    except Exception:  # send_robust only fails on a broken signal itself; still never raise
        logger.exception("pinterest_capi signal for %d %s events failed.", len(pks), status)
        return
    for receiver, result in responses:
        if isinstance(result, Exception):
            logger.error(
                "A receiver of pinterest_capi's %s signal raised (ignored; %d events of ad "
                "account %s): %r",
                "event_delivered" if signal is event_delivered else "event_failed",
                len(pks),
                account.ad_account_id,
                receiver,
                exc_info=result,
            )
