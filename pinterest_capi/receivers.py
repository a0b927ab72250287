"""Signal receivers: the shop's signals → mappers → :func:`tracking.track`.

``PINTEREST_CAPI["SIGNALS"]`` maps a signal's dotted path to a mapper's dotted
path.  A receiver runs inside the shop's transaction; recording goes through a
savepoint, so a failure here is logged and the shop's own work goes on
(``RAISE_RECORD_ERRORS`` re-raises, for tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.dispatch import Signal
from django.utils.module_loading import import_string

from .conf import SETTINGS_NAME, app_settings
from .exceptions import ConfigurationError, MissingIdentifierError

logger = logging.getLogger(__name__)

_connected: dict[str, Callable[..., None]] = {}


def make_receiver(mapper_path: str) -> Callable[..., None]:
    """A receiver that maps the signal's kwargs with the mapper and records the event."""

    def receiver(sender: Any, **kwargs: Any) -> None:
        record_from_signal(mapper_path, sender=sender, **kwargs)

    receiver.__name__ = f"pinterest_capi_receiver_{mapper_path.rsplit('.', 1)[-1]}"
    return receiver


def record_from_signal(mapper_path: str, **kwargs: Any) -> None:
    """Run the mapper and ``track()``; never lets an error reach the shop (unless configured)."""
    try:
        from .tracking import track

        mapper = import_string(mapper_path)
        spec = mapper(**kwargs)
        if spec:
            spec = dict(spec)
            track(spec.pop("event_name"), **spec)
    except MissingIdentifierError:
        logger.info(
            "Pinterest event skipped (mapper %s): no email, MAIDs, or IP address and user agent.",
            mapper_path,
        )
    except Exception:
        if app_settings.RAISE_RECORD_ERRORS:
            raise
        logger.exception(
            "Pinterest event not recorded (mapper %s); the shop's transaction goes on.",
            mapper_path,
        )


def connect_configured_signals() -> None:
    """Connect every ``SIGNALS`` entry (called from ``AppConfig.ready``; idempotent)."""
    mapping = app_settings.SIGNALS or {}
    if not isinstance(mapping, dict):
        raise ConfigurationError(f"{SETTINGS_NAME}['SIGNALS'] must be a dict of dotted paths.")
    for signal_path, mapper_path in mapping.items():
        try:
            signal = import_string(signal_path)
        except ImportError as exc:
            raise ConfigurationError(
                f"{SETTINGS_NAME}['SIGNALS'] names {signal_path!r}, which cannot be imported: {exc}"
            ) from exc
        if not isinstance(signal, Signal):
            raise ConfigurationError(
                f"{SETTINGS_NAME}['SIGNALS'] key {signal_path!r} is not a django Signal."
            )
        uid = f"pinterest_capi:{signal_path}"
        receiver = make_receiver(mapper_path)
        _connected[uid] = receiver  # keep a strong reference
        signal.connect(receiver, weak=False, dispatch_uid=uid)
