"""Streams a node's outbox upstream as signed batches; deletes only what the receiver acknowledged.

One bidirectional ``Deliver`` stream per upstream link: batches go up in outbox order, with up to
``window`` batches in flight; the receiver acknowledges each after its durable commit, in order.
When the link breaks, the forwarder reconnects with back-off and resends everything still in the
outbox from the oldest entry; the receiver's per-origin high-water mark makes re-delivery harmless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import grpc

from jukinet.node.batches import BatchSigner
from jukinet.storage.node_store import NodeStore
from jukinet.v1 import notice_pb2, notice_pb2_grpc

log = logging.getLogger(__name__)

BATCH_MAX_NOTICES = 1000
BATCH_MAX_BYTES = 4 << 20
WINDOW = 4
_BACKOFF_START, _BACKOFF_MAX = 0.2, 3.0


class Forwarder:
    """Background thread owning one upstream link."""

    def __init__(
        self,
        store: NodeStore,
        signer: BatchSigner,
        connect: Callable[[], grpc.Channel],
        upstream: str,
        *,
        batch_max: int = BATCH_MAX_NOTICES,
        window: int = WINDOW,
    ) -> None:
        self._store = store
        self._signer = signer
        self._connect = connect
        self.upstream = upstream
        self._batch_max = batch_max
        self._window = window
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._call: grpc.Future | None = None
        self._thread = threading.Thread(target=self._run, name="forwarder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Called after new outbox entries are committed, so they leave without waiting for a poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        call = self._call
        if call is not None:
            call.cancel()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        backoff = _BACKOFF_START
        while not self._stop.is_set():
            channel = self._connect()
            try:
                if self._stream(channel):
                    backoff = _BACKOFF_START
            except grpc.RpcError as exc:
                if not self._stop.is_set():
                    log.warning("link to %s broken: %s: %s", self.upstream, exc.code().name, exc.details())
            except Exception:  # keep forwarding whatever went wrong; the outbox is intact
                log.exception("forwarder to %s failed", self.upstream)
            finally:
                self._call = None
                channel.close()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def _stream(self, channel: grpc.Channel) -> bool:
        """Runs one connection until it breaks; returns True if anything was acknowledged."""
        in_flight = threading.Semaphore(self._window)
        closed = threading.Event()
        stub = notice_pb2_grpc.NoticeServiceStub(channel)

        def requests() -> Iterator[notice_pb2.DeliverRequest]:
            after = 0  # a new connection resends everything not yet acknowledged
            while not (self._stop.is_set() or closed.is_set()):
                if not in_flight.acquire(timeout=0.5):
                    continue
                self._wake.clear()
                entries = self._store.outbox_after(after, self._batch_max, BATCH_MAX_BYTES)
                if not entries:
                    in_flight.release()
                    self._wake.wait(0.5)
                    continue
                after = entries[-1][0]
                yield notice_pb2.DeliverRequest(batch=self._signer.sign(entries))

        call = stub.Deliver(requests())
        self._call = call
        progressed = False
        try:
            for ack in call:
                self._store.acknowledge_outbox(ack.last_sequence)
                progressed = True
                in_flight.release()
        finally:
            closed.set()
        return progressed
