"""Refusals of callers without an operator session: counted, not written one by one.

Anyone holding a certificate can be refused as often as they can call, and each refusal used to be an
fsync'd audit entry. Now, per caller, the first refusal of each (action, problem) in an interval is
written in full before it is answered; the rest of that interval are only counted, and when the interval
ends they become one entry: "terminal:13:x refused 1000 times for EXHAUSTED between t0 and t1". So a key
costs at most two entries per interval however fast its caller calls; a caller may use at most
``keys_per_caller`` keys (more fold into one "other" key per caller), and at most ``max_callers`` callers
are tracked at once (more fold into one shared key). Accountable callers — an operator with a valid
session — are not counted here: their refusals are written one by one, like their actions.

A plain object on a :class:`~jukinet.domain.clock.Clock`; the :class:`~jukinet.server.audit.Auditor`
writes what it decides. Counts not yet flushed are lost if the process dies (a clean stop flushes them).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from jukinet.domain.clock import Clock
from jukinet.domain.errors import Problem
from jukinet.domain.quoting import AUDIT_DETAIL_CHARS, AUDIT_FIELD_CHARS, bounded

REFUSAL_INTERVAL_SECONDS = 60
KEYS_PER_CALLER = 8
MAX_CALLERS = 10_000
OTHER_CALLERS = "(other callers)"
_OTHER = (0, None)  # AUDIT_ACTION_UNSPECIFIED, any problem


@dataclass
class Aggregate:
    """The refusals of one caller for one (action, problem) in one interval."""

    caller: str
    action: int
    problem: Problem | None
    count: int
    first_ms: int
    last_ms: int
    opened: float  # monotonic
    first_index: int | None = None  # the entry holding the first in full, once written
    last_message: str = ""
    last_target: str = ""


Key = tuple[str, int, "Problem | None"]


class RefusalTally:
    def __init__(
        self,
        clock: Clock,
        interval: float = REFUSAL_INTERVAL_SECONDS,
        keys_per_caller: int = KEYS_PER_CALLER,
        max_callers: int = MAX_CALLERS,
    ) -> None:
        if interval <= 0 or keys_per_caller < 1 or max_callers < 1:
            raise ValueError("interval, keys_per_caller and max_callers must be positive")
        self.interval = interval
        self._clock = clock
        self._keys_per_caller = keys_per_caller
        self._max_callers = max_callers
        self._open: dict[Key, Aggregate] = {}
        self._keys_of: dict[str, int] = {}
        self._lock = threading.Lock()

    def note(self, caller: str, action: int, problem: Problem, message: str, target: str = "") -> Key | None:
        """Count one refusal. Returns its key when it is the first of its interval (write it in full, then
        call :meth:`written`); None when it was only counted."""
        now_ms, now = self._clock.now_ms(), self._clock.monotonic()
        with self._lock:
            key: Key = (caller, action, problem)
            if key not in self._open:
                if caller not in self._keys_of and len(self._keys_of) >= self._max_callers:
                    key = (OTHER_CALLERS, *_OTHER)
                elif self._keys_of.get(caller, 0) >= self._keys_per_caller:
                    key = (caller, *_OTHER)
            found = self._open.get(key)
            if found is None:
                self._open[key] = Aggregate(key[0], key[1], key[2], 1, now_ms, now_ms, now,
                                            last_message=bounded(message, AUDIT_DETAIL_CHARS),
                                            last_target=bounded(target, AUDIT_FIELD_CHARS))  # fmt: skip
                self._keys_of[key[0]] = self._keys_of.get(key[0], 0) + 1
                return key
            found.count += 1
            found.last_ms = now_ms
            found.last_message = bounded(message, AUDIT_DETAIL_CHARS)
            found.last_target = bounded(target, AUDIT_FIELD_CHARS)
            return None

    def written(self, key: Key, index: int) -> None:
        """The first refusal of ``key``'s interval is entry ``index``."""
        with self._lock:
            found = self._open.get(key)
            if found is not None and found.first_index is None:
                found.first_index = index

    def due(self, everything: bool = False) -> list[Aggregate]:
        """Close the intervals that have ended (all, with ``everything``); returns those that counted more
        than the one written in full — each is to become one entry."""
        now = self._clock.monotonic()
        with self._lock:
            ended = [k for k, a in self._open.items() if everything or now - a.opened >= self.interval]
            closed = [self._open.pop(k) for k in ended]
            for aggregate in closed:
                left = self._keys_of[aggregate.caller] - 1
                if left:
                    self._keys_of[aggregate.caller] = left
                else:
                    del self._keys_of[aggregate.caller]
        return [a for a in closed if a.count > 1]

    def pending(self) -> int:
        """Keys with an open interval (for tests and status)."""
        with self._lock:
            return len(self._open)
