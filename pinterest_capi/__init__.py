"""django-pinterest-capi: server-side Pinterest Conversions API for Django shops.

The public API is :func:`track`; everything else is reached through settings,
signals, the admin and the management commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "track"]

if TYPE_CHECKING:  # pragma: no cover
    from .models import OutboxEvent


def track(event_name: str, **kwargs: Any) -> list[OutboxEvent]:
    """Record one conversion for every active ad account of a tenant.

    Imported lazily so ``import pinterest_capi`` works before Django's app
    registry is ready (settings files, ``AppConfig`` modules).  See
    :func:`pinterest_capi.tracking.track` for the arguments.
    """
    from .tracking import track as _track

    return _track(event_name, **kwargs)
