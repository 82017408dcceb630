"""Back-off for logins from a terminal that does not prove it holds the operator's card.

A login failure says something about the operator only once the card has signed the challenge (the card
and its PIN are the operator's): then a biometric mismatch counts towards the operator's lockout. Before
that — a certificate that is not the enrolled card's, a signature that does not verify — it says only
that *this terminal* does not hold the card. Counting those against the operator let any terminal of a
site lock any operator with five zero signatures. So they are kept per (operator, terminal) instead:
after the n-th consecutive one, that terminal waits ``first * 2**(n-1)`` seconds (at most ``cap``) before
it may try that operator again, and is refused with EXHAUSTED and the time to retry meanwhile. The
operator, at the terminal holding their card, is not held up at all; a success there clears nothing
elsewhere, a success from the same terminal clears its record.

A plain object on a :class:`~jukinet.domain.clock.Clock`, in memory (a restart forgets the waits; it
cannot be caused from outside). At most ``max_tracked`` pairs are kept; a record is forgotten ``forget``
seconds after its last failure, or, when the table is full, the oldest is.
"""

from __future__ import annotations

import datetime
import math
import threading
from dataclasses import dataclass, replace

from jukinet.domain.clock import Clock
from jukinet.domain.quoting import AUDIT_DETAIL_CHARS, bounded

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 900.0
FORGET_SECONDS = 24 * 3600.0
MAX_TRACKED = 10_000


@dataclass(frozen=True)
class CardFailures:
    """Consecutive card failures of one operator from one terminal."""

    operator_id: str
    terminal: str
    failures: int
    last_failure_ms: int
    retry_at_ms: int
    last_reason: str
    last_failure: float  # monotonic
    retry_after: float  # monotonic


class CardBackoff:
    def __init__(
        self,
        clock: Clock,
        first: float = BACKOFF_FIRST_SECONDS,
        cap: float = BACKOFF_CAP_SECONDS,
        forget: float = FORGET_SECONDS,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        if not 0 < first <= cap or forget < cap or max_tracked < 1:
            raise ValueError("need 0 < first <= cap <= forget and max_tracked >= 1")
        self._clock = clock
        self._first, self._cap, self._forget, self._max = first, cap, forget, max_tracked
        self._pairs: dict[tuple[str, str], CardFailures] = {}  # insertion order: least recently failed first
        self._lock = threading.Lock()

    def delay(self, failures: int) -> float:
        """Seconds a terminal waits after its ``failures``-th consecutive failure."""
        return min(self._cap, self._first * 2 ** min(failures - 1, 62))

    def wait(self, operator_id: str, terminal: str) -> str | None:
        """Why ``terminal`` may not try ``operator_id`` now (saying when it may), or None."""
        now = self._clock.monotonic()
        with self._lock:
            found = self._pairs.get((operator_id, terminal))
        if found is None or now >= found.retry_after:
            return None
        seconds = max(1, math.ceil(found.retry_after - now))
        return (
            f"{found.failures} consecutive failed logins of {operator_id} from {terminal} without the operator's "
            f"card; this terminal may try again in {seconds} s (at {_iso(found.retry_at_ms)})"
        )

    def failed(self, operator_id: str, terminal: str, reason: str) -> float:
        """Count a card failure; returns the seconds the terminal now waits."""
        now, now_ms = self._clock.monotonic(), self._clock.now_ms()
        with self._lock:
            self._expire(now)
            key = (operator_id, terminal)
            previous = self._pairs.pop(key, None)
            failures = (previous.failures if previous else 0) + 1
            delay = self.delay(failures)
            self._pairs[key] = CardFailures(
                operator_id, terminal, failures, now_ms, now_ms + round(delay * 1000),
                bounded(reason, AUDIT_DETAIL_CHARS), now, now + delay,
            )  # fmt: skip
            while len(self._pairs) > self._max:
                del self._pairs[next(iter(self._pairs))]
        return delay

    def succeeded(self, operator_id: str, terminal: str) -> None:
        with self._lock:
            self._pairs.pop((operator_id, terminal), None)

    def listing(self, operator_id: str = "") -> list[CardFailures]:
        """Records (of one operator, or all), most recent failure first."""
        with self._lock:
            self._expire(self._clock.monotonic())
            found = [replace(f) for f in self._pairs.values() if not operator_id or f.operator_id == operator_id]
        return found[::-1]

    def _expire(self, now: float) -> None:
        while self._pairs:
            key = next(iter(self._pairs))
            if now - self._pairs[key].last_failure < self._forget:
                return
            del self._pairs[key]


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat(timespec="seconds")
