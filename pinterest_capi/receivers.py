"""Signal receivers: the shop's signals → mappers → :func:`tracking.track`.

One mechanism serves every integration.  A *signal table* maps a signal's dotted
path to a *mapper*: a callable (or its dotted path) that gets the signal's keyword
arguments and returns the keyword arguments of ``track()`` (``event_name``
included), or None to record nothing.  The table is the defaults of the installed
adapter apps (an AppConfig's ``pinterest_capi_signals``, e.g.
``pinterest_capi.contrib.oscar``) with ``PINTEREST_CAPI["SIGNALS"]`` on top; a
``SIGNALS`` value of None removes an adapter's entry.

A receiver runs inside the shop's transaction, so mapper and recording run in a
savepoint: a failure there (even a failed query on PostgreSQL) is logged and the
shop's own work goes on (``RAISE_RECORD_ERRORS`` re-raises, for tests).  A bad
entry in the table is reported by the system check (``pinterest_capi.E010`` …
``E012``) and left unconnected, never a crash at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import router
from django.dispatch import Signal
from django.utils.module_loading import import_string

from .conf import SETTINGS_NAME, app_settings
from .exceptions import ConfigurationError, MissingIdentifierError
from .savepoints import DeferredSavepoint

logger = logging.getLogger(__name__)

Mapper = Callable[..., Mapping[str, Any] | None]
"""``mapper(sender=..., signal=..., **signal_kwargs) -> dict of track() kwargs | None``."""

ADAPTER_ATTRIBUTE = "pinterest_capi_signals"
"""An AppConfig attribute: the adapter's default ``{signal path: mapper path}`` entries."""

# dispatch_uid → (signal, receiver): what we connected, to disconnect it on a re-connect.
_connected: dict[str, tuple[Signal, Callable[..., None]]] = {}


@dataclass(frozen=True)
class SignalEntry:
    """One row of the signal table; ``source`` says where it was declared (for error messages)."""

    signal_path: str
    mapper: str | Mapper
    source: str

    def describe(self) -> str:
        return f"{self.source} entry {self.signal_path!r}: {mapper_name(self.mapper)!r}"


def mapper_name(mapper: str | Mapper) -> str:
    """A mapper's dotted path, whether given as a path or as the callable itself."""
    if isinstance(mapper, str):
        return mapper
    module = getattr(mapper, "__module__", None) or "?"
    return f"{module}.{getattr(mapper, '__qualname__', repr(mapper))}"


def signal_table() -> list[SignalEntry]:
    """The entries to connect: installed adapters' defaults, then ``SIGNALS`` over them."""
    user_mapping = app_settings.SIGNALS
    if user_mapping is None:
        user_mapping = {}
    if not isinstance(user_mapping, Mapping):
        raise ConfigurationError(
            f"{SETTINGS_NAME}['SIGNALS'] must be a dict mapping a signal's dotted path to a "
            f"mapper (a dotted path or a callable), not {type(user_mapping).__name__}."
        )
    table: dict[str, SignalEntry] = {}
    for config in apps.get_app_configs():
        for signal_path, mapper in (getattr(config, ADAPTER_ATTRIBUTE, None) or {}).items():
            table[signal_path] = SignalEntry(signal_path, mapper, f"app {config.name!r}")
    for signal_path, mapper in user_mapping.items():
        if mapper is None:  # switches an adapter's entry off
            table.pop(signal_path, None)
        else:
            table[signal_path] = SignalEntry(signal_path, mapper, f"{SETTINGS_NAME}['SIGNALS']")
    return list(table.values())


def load_signal(entry: SignalEntry) -> Signal:
    """The entry's Signal, or ConfigurationError naming the entry and what is wrong."""
    if not isinstance(entry.signal_path, str):
        raise ConfigurationError(
            f"{entry.source} key {entry.signal_path!r} must be a signal's dotted path (a string)."
        )
    try:
        signal = import_string(entry.signal_path)
    except ImportError as exc:
        raise ConfigurationError(
            f"{entry.describe()}: the signal cannot be imported ({exc})."
        ) from exc
    if not isinstance(signal, Signal):
        raise ConfigurationError(
            f"{entry.describe()}: {entry.signal_path!r} is a {type(signal).__name__}, "
            "not a django.dispatch.Signal."
        )
    return signal


def load_mapper(mapper: str | Mapper, *, entry: SignalEntry | None = None) -> Mapper:
    """The mapper callable; ConfigurationError naming the entry when it cannot be had."""
    where = entry.describe() if entry is not None else f"mapper {mapper_name(mapper)!r}"
    if isinstance(mapper, str):
        try:
            mapper = import_string(mapper)
        except ImportError as exc:
            raise ConfigurationError(f"{where}: the mapper cannot be imported ({exc}).") from exc
    if not callable(mapper):
        raise ConfigurationError(f"{where}: the mapper is a {type(mapper).__name__}, not callable.")
    return mapper


def make_receiver(mapper: str | Mapper) -> Callable[..., None]:
    """A receiver that maps the signal's kwargs with ``mapper`` and records the event."""

    def receiver(sender: Any, **kwargs: Any) -> None:
        record_from_signal(mapper, sender=sender, **kwargs)

    receiver.__name__ = f"pinterest_capi_receiver_{mapper_name(mapper).rsplit('.', 1)[-1]}"
    return receiver


def record_from_signal(mapper: str | Mapper, **kwargs: Any) -> list[Any]:
    """Run the mapper and ``track()`` in a savepoint; an error never reaches the shop.

    Returns the outbox rows written (``[]`` when the mapper skipped, consent was
    refused, or something failed and was logged).
    """
    from .models import OutboxEvent
    from .tracking import record_event

    name = mapper_name(mapper)
    try:
        # Every statement of the mapper and the recording runs in this savepoint; it is opened
        # by the first one (usually the outbox insert, in the same round trip on PostgreSQL).
        with DeferredSavepoint(router.db_for_write(OutboxEvent)) as savepoint:
            spec = load_mapper(mapper)(**kwargs)
            if not spec:
                return []
            if not isinstance(spec, Mapping) or not spec.get("event_name"):
                raise ConfigurationError(
                    f"mapper {name!r} returned a {type(spec).__name__} without 'event_name': "
                    "a mapper returns None or a dict of track() arguments with 'event_name'."
                )
            spec = dict(spec)
            return record_event(spec.pop("event_name"), savepoint=savepoint, **spec)
    except MissingIdentifierError:
        logger.info(
            "Pinterest event skipped (mapper %s): no email, MAIDs, or IP address and user agent.",
            name,
        )
    except Exception:
        if app_settings.RAISE_RECORD_ERRORS:
            raise
        logger.exception(
            "Pinterest event not recorded (mapper %s); the shop's transaction goes on.", name
        )
    return []


def connect_configured_signals() -> list[str]:
    """Connect every valid entry of the signal table (from ``AppConfig.ready``; idempotent).

    Returns the signal paths connected.  Entries connected before but no longer in
    the table are disconnected, so calling it again after a settings change applies it.
    Invalid entries are logged and skipped here; ``manage.py check`` reports them.
    """
    try:
        entries = signal_table()
    except ConfigurationError as exc:
        logger.error("Pinterest signal mapping not connected: %s", exc)
        entries = []
    for uid, (signal, _receiver) in list(_connected.items()):
        signal.disconnect(dispatch_uid=uid)
        del _connected[uid]
    connected = []
    for entry in entries:
        try:
            signal = load_signal(entry)
            load_mapper(entry.mapper, entry=entry)
        except ConfigurationError as exc:
            logger.error("Pinterest signal mapping skipped: %s", exc)
            continue
        uid = f"pinterest_capi:{entry.signal_path}"
        receiver = make_receiver(entry.mapper)
        _connected[uid] = (signal, receiver)
        signal.connect(receiver, weak=False, dispatch_uid=uid)
        connected.append(entry.signal_path)
    return connected
