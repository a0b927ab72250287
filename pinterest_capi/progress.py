"""A small progress bar for the management commands (resend, purge, backfill, rotate_keys).

Long operator commands should show they are alive without polluting what scripts read: the bar
goes to the command's **stderr** by default, so stdout keeps only the report.  On a terminal it
is one line redrawn with a carriage return (at most ten times a second); anywhere else (a pipe,
a log file, cron, ``call_command`` in tests) it prints a plain line each time another step is
done (every tenth of the total by default), since carriage returns make a mess of log files.
No dependency: the whole job is a few lines, and ``tqdm`` would be one more thing to install.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from django.core.management.base import OutputWrapper

BAR_WIDTH = 24
REDRAW_SECONDS = 0.1


def _plain(text: str) -> str:
    """No styling: a command's stderr is styled as an error (red) on a terminal."""
    return text


class Progress:
    """Progress of ``total`` units of work, reported on ``stream``.

    ``every`` sets how many units separate two plain lines (default: a tenth of the total);
    ``enabled=False`` (``--verbosity 0``) turns it into a no-op so callers need no ``if``.
    Use it as a context manager, or call :meth:`finish` yourself.
    """

    def __init__(
        self,
        total: int,
        *,
        stream: OutputWrapper | TextIO,
        label: str = "items",
        every: int | None = None,
        enabled: bool = True,
    ) -> None:
        self.total = max(0, int(total))
        self.label = label
        self.done = 0
        self.note = ""
        self.enabled = enabled and self.total > 0
        self.stream = stream if isinstance(stream, OutputWrapper) else OutputWrapper(stream)
        self.tty = bool(self.stream.isatty())
        self.every = max(1, int(every) if every else -(-self.total // 10))
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_line = 0
        self._finished = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.finish()

    def advance(self, count: int = 1, *, note: str = "") -> None:
        """Count ``count`` more units as done; ``note`` is shown after the numbers."""
        self.update(self.done + count, note=note)

    def update(self, done: int, *, note: str = "") -> None:
        """Set the units done so far (for callbacks that report a running total)."""
        before, self.done = self.done, max(0, min(self.total, done))
        self.note = note or self.note
        if not self.enabled:
            return
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= REDRAW_SECONDS or self.done == self.total:
                self._last_draw = now
                self._draw()
        elif self.done // self.every > before // self.every:
            self._line()

    def finish(self, *, note: str = "") -> None:
        """Show the final state once (a newline ends the terminal bar)."""
        if self._finished:
            return
        self._finished = True
        self.note = note or self.note
        if not self.enabled:
            return
        if self.tty:
            self._draw()
            self.stream.write("", style_func=_plain, ending="\n")
        elif self._last_line != self.done:
            self._line()

    def _status(self) -> str:
        text = f"{self.done:,}/{self.total:,} {self.label}"
        if self.note:
            text += f", {self.note}"
        return f"{text}  {time.monotonic() - self.started:.1f} s"

    def _draw(self) -> None:
        filled = BAR_WIDTH * self.done // self.total
        percent = 100 * self.done // self.total
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stream.write(f"\r[{bar}] {percent:3d}% {self._status()}", style_func=_plain, ending="")
        self.stream.flush()

    def _line(self) -> None:
        self._last_line = self.done
        self.stream.write(f"  {self._status()}", style_func=_plain)
