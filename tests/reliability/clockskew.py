"""Shift this process's wall clock by N seconds, for real, before Django is imported.

``time.time``, ``time.time_ns`` and ``datetime.datetime.now/utcnow/today`` (which Django's
``timezone.now()`` calls) return the skewed time; the monotonic clocks stay true (they are
not wall clocks).  The database's clock is untouched: PostgreSQL is another process, and
SQLite's ``'now'`` is read by its C code from the operating system.

Run a command under a skewed clock::

    python -m tests.reliability.clockskew 300 manage.py pinterest_capi_flush --until-empty
"""

from __future__ import annotations

import datetime as _datetime
import os
import runpy
import sys
import time

ENV_VAR = "PCAPI_TEST_CLOCK_SKEW"

_real_datetime = _datetime.datetime


def install(seconds: float) -> None:
    """Shift the wall clock of this process by ``seconds`` (idempotent per process)."""
    if getattr(time, "_pcapi_skew", None) is not None:
        return
    real_time, real_time_ns = time.time, time.time_ns
    shift = _datetime.timedelta(seconds=seconds)
    shift_ns = int(seconds * 1_000_000_000)

    def skewed_time() -> float:
        return real_time() + seconds

    def skewed_time_ns() -> int:
        return real_time_ns() + shift_ns

    class _Meta(type):
        # Values made by C code (database drivers) are plain datetimes: still "datetimes".
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, _real_datetime)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, _real_datetime)

    class SkewedDatetime(_real_datetime, metaclass=_Meta):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206 - stdlib signature
            return _real_datetime.now(tz) + shift

        @classmethod
        def utcnow(cls):  # noqa: ANN206
            return _real_datetime.now(_datetime.UTC).replace(tzinfo=None) + shift

        @classmethod
        def today(cls):  # noqa: ANN206
            return _real_datetime.now() + shift

    time.time = skewed_time
    time.time_ns = skewed_time_ns
    _datetime.datetime = SkewedDatetime
    time._pcapi_skew = seconds  # type: ignore[attr-defined]


def install_from_env() -> float:
    """Install the skew named by ``PCAPI_TEST_CLOCK_SKEW`` (seconds), if set; return it."""
    seconds = float(os.environ.get(ENV_VAR) or 0)
    if seconds:
        install(seconds)
    return seconds


if __name__ == "__main__":
    install(float(sys.argv[1]))
    script = sys.argv[2]
    sys.argv = sys.argv[2:]
    runpy.run_path(script, run_name="__main__")
