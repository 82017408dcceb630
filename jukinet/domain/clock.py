"""Time, passed in where it matters, so that tests move it instead of sleeping (as pyca's
``PolicyBuilder.time()``). Wall-clock time stamps records, sessions and log entries; monotonic time
measures durations (challenge lifetimes, back-off) and never jumps."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time, Unix milliseconds."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations)."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()


def today(clock: Clock) -> datetime.date:
    """The clock's local calendar date (what "in the future" is judged against)."""
    return datetime.date.fromtimestamp(clock.now_ms() / 1000)


class ManualClock:
    """A clock that moves only when told to (tests, simulations); it starts at ``now_ms`` (default: the
    system's time now, so that certificates issued just before are valid)."""

    def __init__(self, now_ms: int | None = None) -> None:
        self._now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        self._mono = 1_000.0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now_ms

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now_ms += round(seconds * 1000)
            self._mono += seconds
