"""The follower that keeps the provision log's resident index (see :mod:`jukinet.storage.provisions`).

One background thread per node: it indexes new provisions and merges index segments in bounded steps,
each one transaction through the node's writer, and sleeps when there is nothing to do. The index is
never behind what a lookup answers (lookups scan the not-yet-indexed tail), so this thread only keeps
that tail short.
"""

from __future__ import annotations

import logging
import threading

from jukinet.storage import ProvisionLog

log = logging.getLogger(__name__)
IDLE_SECONDS = 0.5
"""How long the follower sleeps when the index is caught up and no merge is pending."""


class ProvisionIndexer:
    def __init__(self, provisions: ProvisionLog, idle: float = IDLE_SECONDS) -> None:
        self._provisions = provisions
        self._idle = idle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="provision-index", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                step = self._provisions.index_step()
            except Exception:  # the log is intact; the index catches up on a later step
                log.exception("indexing the provision log failed")
                self._stop.wait(self._idle)
                continue
            if step.indexed == 0 and step.merged == 0:
                self._stop.wait(self._idle)
