"""The follower that keeps the provision log's resident index (see :mod:`jukinet.storage.provisions`).

One background thread per node: it indexes new provisions and merges index segments in bounded steps,
each one transaction through the node's writer. The index is never behind what a lookup answers
(lookups scan the not-yet-indexed tail), so the follower only keeps that tail short — and it does so
when the log is quiet: indexing costs the node's one writer (and its one interpreter) several
microseconds a provision, which a batch stream of a hundred thousand provisions a second cannot spare.
While provisions keep arriving it waits, unless the tail reaches :data:`BACKLOG` (then it indexes a
segment at a time until it is below again, so a disclosure's scan of the tail stays bounded).
"""

from __future__ import annotations

import logging
import threading
import time

from jukinet.storage import ProvisionLog
from jukinet.storage.provisions import INDEX_STEP, MAX_TAIL_SCAN

log = logging.getLogger(__name__)
IDLE_SECONDS = 0.5
"""How long the follower sleeps when there is nothing it may do."""
QUIET_SECONDS = 1.0
"""The log is quiet when it has not grown for this long: then the follower indexes and merges."""
BACKLOG = MAX_TAIL_SCAN - 4 * INDEX_STEP
"""Leaves not yet indexed at which the follower indexes even while provisions keep arriving."""


class ProvisionIndexer:
    def __init__(self, provisions: ProvisionLog, idle: float = IDLE_SECONDS, quiet: float = QUIET_SECONDS) -> None:
        self._provisions = provisions
        self._idle = idle
        self._quiet = quiet
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="provision-index", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        last_size, grew_at = -1, time.monotonic()
        while not self._stop.is_set():
            try:
                size, behind = self._provisions.index_state()
                now = time.monotonic()
                if size != last_size:
                    last_size, grew_at = size, now
                if behind < BACKLOG and now - grew_at < self._quiet:
                    self._stop.wait(min(self._idle, self._quiet))
                    continue
                step = self._provisions.index_step()
            except Exception:  # the log is intact; the index catches up on a later step
                log.exception("indexing the provision log failed")
                self._stop.wait(self._idle)
                continue
            if step.indexed == 0 and step.merged == 0:
                self._stop.wait(self._idle)
