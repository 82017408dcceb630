"""The follower that keeps the provision log's Merkle tree and its resident index (see
:mod:`jukinet.storage.provisions`).

One background thread per node, in bounded steps, each one transaction through the node's writer:

- **Integration** first, always: provisions are appended as leaves only (the answer that provides them
  waits for nothing more), and the follower hashes them into the Merkle tree soon after — Trillian's
  sequencing and integration, with a merge delay of a fraction of a second — so the signed tree heads
  (sealed once a second over the tree) follow the log. A long run is hashed in a reader process of its
  own (:mod:`jukinet.server.runtime.readers`), out of the node's interpreter and never in the way of a
  batch chunk's read; only the subtree hashes come back to be written.
- **The resident index** when the log is quiet: indexing costs the node's one writer (and its one
  interpreter) microseconds a provision, which a batch stream of a hundred thousand provisions a second
  cannot spare; the index is never behind what a lookup answers (lookups scan the not-yet-indexed
  tail), so the follower only keeps that tail short. While provisions keep arriving it waits, unless
  the tail reaches :data:`BACKLOG` (then it indexes a segment at a time until it is below again, so a
  disclosure's scan of the tail stays bounded). A new segment's keys (the leaves' codes, sorted) are
  worked out in the same reader process; the writer only appends them.
"""

from __future__ import annotations

import logging
import threading
import time

from jukinet.server.runtime.readers import ReaderPool
from jukinet.storage import NodeStorage, ProvisionLog
from jukinet.storage.merkle_log import Node
from jukinet.storage.provisions import INDEX_STEP, MAX_TAIL_SCAN, IndexStep

log = logging.getLogger(__name__)
IDLE_SECONDS = 0.1
"""How long the follower sleeps when there is nothing it may do."""
QUIET_SECONDS = 1.0
"""The log is quiet when it has not grown for this long: then the follower indexes and merges."""
BACKLOG = MAX_TAIL_SCAN - 4 * INDEX_STEP
"""Leaves not yet indexed at which the follower indexes even while provisions keep arriving."""
INTEGRATE_STEP = 16_384
"""At most this many leaves hashed into the tree per step."""
IN_PROCESS = 4096
"""Runs shorter than this are hashed in the follower's own thread (a reader process is not worth it)."""


def provision_subtree_hashes(storage: NodeStorage, start: int, end: int) -> list[Node]:
    """What a reader process computes for :meth:`MerkleLog.integrate`."""
    return storage.provisions.log.subtree_hashes(start, end)


def provision_segment_keys(storage: NodeStorage, start: int, end: int) -> list[bytes]:
    """What a reader process computes for :meth:`ProvisionLog.index_step`."""
    return storage.provisions.segment_keys(start, end)


class ProvisionIndexer:
    def __init__(
        self,
        provisions: ProvisionLog,
        readers: ReaderPool | None = None,
        idle: float = IDLE_SECONDS,
        quiet: float = QUIET_SECONDS,
    ) -> None:
        self._provisions = provisions
        self._readers = readers
        self._idle = idle
        self._quiet = quiet
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="provision-index", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop following; the leaves appended so far are integrated before this returns (the node's last
        tree head covers every provision)."""
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            while self._provisions.log.integrate(INTEGRATE_STEP):
                pass
        except Exception:  # integrated at the next start
            log.exception("integrating the provision log at stop failed")

    def integrate(self) -> int:
        """One integration step; how many leaves it brought into the tree."""

        def compute(start: int, end: int) -> list[Node]:
            if self._remote(start, end):
                assert self._readers is not None
                return self._readers.call(provision_subtree_hashes, start, end)
            return self._provisions.log.subtree_hashes(start, end)

        return self._provisions.log.integrate(INTEGRATE_STEP, compute)

    def index_step(self) -> IndexStep:
        def compute(start: int, end: int) -> list[bytes]:
            if self._remote(start, end):
                assert self._readers is not None
                return self._readers.call(provision_segment_keys, start, end)
            return self._provisions.segment_keys(start, end)

        return self._provisions.index_step(compute)

    def _remote(self, start: int, end: int) -> bool:
        return self._readers is not None and self._readers.processes > 0 and end - start >= IN_PROCESS

    def _run(self) -> None:
        last_size, grew_at = -1, time.monotonic()
        while not self._stop.is_set():
            try:
                if self.integrate():
                    continue
                size, behind = self._provisions.index_state()
                now = time.monotonic()
                if size != last_size:
                    last_size, grew_at = size, now
                if behind < BACKLOG and now - grew_at < self._quiet:
                    self._stop.wait(self._idle)
                    continue
                step = self.index_step()
            except Exception:  # the log is intact; the tree and the index catch up on a later step
                log.exception("following the provision log failed")
                self._stop.wait(self._idle)
                continue
            if step.indexed == 0 and step.merged == 0:
                self._stop.wait(self._idle)
