"""A progress display for long CLI commands: records, records/s and ETA.

On a terminal it is one line redrawn in place, with messages printed above it; otherwise (a pipe, a log
file) it is a plain line every ``interval`` seconds, so logs stay readable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24


class Progress:
    def __init__(
        self,
        out: TextIO,
        total_bytes: int | None,
        tty: bool | None = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._total = total_bytes or None
        self._tty = out.isatty() if tty is None else tty
        self._interval = interval if not self._tty else 0.1
        self._clock = clock
        self._start = clock()
        self._last_shown = -float("inf")
        self._records = 0
        self._done_bytes = 0
        self._drawn = False
        self._shown: tuple[int, int] | None = None  # the figures last shown

    def update(self, records: int, done_bytes: int) -> None:
        """``records`` answered so far, covering the file up to ``done_bytes``."""
        self._records, self._done_bytes = records, done_bytes
        now = self._clock()
        if now - self._last_shown >= self._interval:
            self._last_shown = now
            self._show()

    def say(self, line: str) -> None:
        """Print a message line (above the bar on a terminal)."""
        if self._drawn:
            self._out.write("\r\x1b[K")
            self._drawn = False
        self._out.write(line + "\n")
        if self._tty:
            self._show()

    def finish(self) -> None:
        if self._tty or self._shown != (self._records, self._done_bytes):
            self._show()
        if self._tty:
            self._out.write("\n")
            self._drawn = False
        self._out.flush()

    def line(self) -> str:
        """The current figures: ``12,000 records, 5,230 records/s, 45%, ETA 0:00:11``."""
        elapsed = max(self._clock() - self._start, 1e-9)
        parts = [f"{self._records:,} records", f"{self._records / elapsed:,.0f} records/s"]
        if self._total:
            fraction = min(self._done_bytes / self._total, 1.0)
            parts.append(f"{fraction:.0%}")
            if fraction >= 1.0:
                parts.append("ETA 0:00:00")
            elif fraction > 0:
                parts.append(f"ETA {_clock_time(elapsed * (1 - fraction) / fraction)}")
            else:
                parts.append("ETA --:--:--")
        return ", ".join(parts)

    def _show(self) -> None:
        self._shown = (self._records, self._done_bytes)
        if self._tty:
            bar = ""
            if self._total:
                filled = int(BAR_WIDTH * min(self._done_bytes / self._total, 1.0))
                bar = "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "] "
            self._out.write("\r\x1b[K" + bar + self.line())
            self._drawn = True
        else:
            self._out.write("progress: " + self.line() + "\n")
        self._out.flush()


def _clock_time(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
