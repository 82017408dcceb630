"""Outbound links: one per destination, each handing its durable queue over against signed receipts.

A :class:`Link` connects to the address the node's network directory lists for its destination (looked
up again for every connection; a new directory version that moves the destination makes it reconnect
there, and an expired one stops it with that reason), expecting the destination's own TLS name (a
server whose certificate names anyone else fails the handshake), opens one ``Deliver`` stream and
sends batches of its queue in order, up to ``window`` batches in flight. Every receipt must be signed
by a key certified for the destination — by the very certificate the directory lists for it, once the
node has a directory — and must name exactly the batch sent (range and digest); only
then is it stored and the batch dropped from the queue, in one transaction. When the link breaks it
backs off (doubling, with jitter, up to a limit) and resends everything not yet receipted; the
receiver's marks make re-delivery harmless. An item the destination refuses for good (the refusal
names its position) goes to the queue's quarantine and the link reconnects at once without it: one
poison item never stops a link. All of this runs on the node's event loop; queue reads, sealing (the
token) and settling run in the blocking pool.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jukinet.clients.transport import DEFAULT_KEEPALIVE, Keepalive, channel_options
from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.directory import PeerDirectory, StaticPeers
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import LINK_BATCH_BYTES, LINK_WINDOW, MAX_BATCH_ITEMS
from jukinet.domain.node_ids import NodeId
from jukinet.pki import Signer, TrustStore, open_certified, seal_payload
from jukinet.server.runtime.batches import BATCH_FRAMING, BATCH_TYPE, batch_digest, describe_item, encode_link_batch
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.status import REFUSED_ITEM_KEY
from jukinet.storage import NodeStorage
from jukinet.storage.layout import WITHDRAWN
from jukinet.v1 import admin_pb2, envelope_pb2, link_pb2, link_pb2_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkSettings:
    window: int = LINK_WINDOW  # batches in flight per link
    max_items: int = MAX_BATCH_ITEMS  # queue positions per batch
    # Bytes of queue entries per batch, with room for the batch's framing: a batch of a node's own items
    # stays within LINK_BATCH_BYTES (below MAX_ORIGIN_BATCH_BYTES), so it can be relayed; one larger entry (a
    # relayed batch) goes alone.
    max_bytes: int = LINK_BATCH_BYTES - BATCH_FRAMING
    backoff_start: float = 0.2
    backoff_max: float = 5.0
    connect_timeout: float = 10.0
    keepalive: Keepalive = DEFAULT_KEEPALIVE


@dataclass(frozen=True)
class LinkContext:
    """What every link of a node shares."""

    sender: NodeId  # the id this node sends as
    signer: Signer
    certificate_der: bytes  # the signing key's certificate, carried in every batch
    trust: TrustStore
    storage: NodeStorage
    credentials: grpc.ChannelCredentials
    blocking: Blocking
    settings: LinkSettings = field(default_factory=LinkSettings)
    clock: Clock = SYSTEM_CLOCK


@dataclass
class _InFlight:
    first: int
    last: int
    digest: bytes


class Link:
    def __init__(self, ctx: LinkContext, destination: NodeId, directory: PeerDirectory) -> None:
        self.ctx = ctx
        self.destination = destination
        self.directory = directory
        self.address: str | None = None
        self.state = admin_pb2.LINK_STATE_CONNECTING
        self.connects = 0
        self.consecutive_failures = 0
        self.batches_delivered = 0
        self.last_error = ""
        self._retry_at: float | None = None
        self._wake = asyncio.Event()
        self._wake_backoff = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[None] | None = None

    # -- control (event loop) -------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"link→{self.destination}")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self.state = admin_pb2.LINK_STATE_STOPPED
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def status(self) -> admin_pb2.LinkStatus:
        queue = self.ctx.storage.queues.state(str(self.destination))
        retry_in = 0
        if self._retry_at is not None and self.state == admin_pb2.LINK_STATE_BACKING_OFF:
            retry_in = max(0, round((self._retry_at - self.ctx.clock.monotonic()) * 1000))
        return admin_pb2.LinkStatus(
            destination=str(self.destination),
            address=self.address or "",
            state=self.state,
            pending=queue.pending,
            last_receipted_sequence=queue.last_receipted,
            last_enqueued_sequence=queue.last_enqueued,
            batches_delivered=self.batches_delivered,
            connects=self.connects,
            consecutive_failures=self.consecutive_failures,
            last_error=self.last_error,
            retry_in_ms=retry_in,
            quarantined=self.ctx.storage.queues.quarantined_count(str(self.destination)),
        )

    # -- the loop ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        settings = self.ctx.settings
        backoff = settings.backoff_start
        while True:
            self.state = admin_pb2.LINK_STATE_CONNECTING
            delivered_before = self.batches_delivered
            try:
                self.address = self.directory.address(self.destination)  # the directory's, as of now
                await self._attempt()
            except asyncio.CancelledError:
                raise
            except _Readdressed:
                backoff = settings.backoff_start
                continue  # the directory moved the destination: connect to the new address at once
            except grpc.aio.AioRpcError as exc:
                self._failed(f"{exc.code().name}: {exc.details()}")
                if await self._quarantine_refused(exc):
                    backoff = settings.backoff_start
                    continue  # the rest of the queue goes at once
            except Rejected as exc:
                self._failed(f"{exc.problem.value}: {exc}")
            except (TimeoutError, OSError) as exc:
                self._failed(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # keep the link alive whatever went wrong; the queue is intact
                log.exception("link to %s failed", self.destination)
                self._failed(f"{type(exc).__name__}: {exc}")
            if self.batches_delivered > delivered_before:
                backoff = settings.backoff_start
            delay = backoff * random.uniform(0.8, 1.2)
            self.state = admin_pb2.LINK_STATE_BACKING_OFF
            self._retry_at = self.ctx.clock.monotonic() + delay
            self._wake_backoff.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_backoff.wait(), delay)
            backoff = min(backoff * 2, settings.backoff_max)

    async def _attempt(self) -> None:
        """One connection, as a task of its own: :meth:`readdress` ends it when the destination moves."""
        self._connecting = asyncio.ensure_future(self._connection())
        try:
            await asyncio.wait({self._connecting})
        except asyncio.CancelledError:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connecting
            raise
        finally:
            connection, self._connecting = self._connecting, None
        if connection.cancelled():
            raise _Readdressed
        connection.result()

    def readdress(self) -> None:
        """On the event loop, after a new directory version: follow the destination if it moved (a link
        backing off tries the new address at once; a connected one reconnects there)."""
        try:
            address = self.directory.address(self.destination)
        except Rejected:
            address = None  # expired or unlisted: the next attempt says why
        if address == self.address:
            return
        if self._connecting is not None:
            self._connecting.cancel()
        self._wake_backoff.set()

    async def _quarantine_refused(self, exc: grpc.aio.AioRpcError) -> bool:
        """If the destination refused one item for good, set it aside; True if one was."""
        named = [v for k, v in (exc.trailing_metadata() or ()) if k == REFUSED_ITEM_KEY]
        if not named or not str(named[0]).isdigit():
            return False
        position = int(named[0])
        state = await self.ctx.blocking(self.ctx.storage.queues.state, str(self.destination))
        if not state.last_receipted < position <= state.last_enqueued:
            return False
        return await self.ctx.blocking(self._withdraw, position, exc.code().name.lower(), exc.details() or "")

    def _withdraw(self, position: int, problem: str, reason: str) -> bool:
        queues, destination = self.ctx.storage.queues, str(self.destination)

        def why(item: bytes) -> admin_pb2.QuarantinedItem:
            kind, summary = describe_item(item)
            kept = admin_pb2.QuarantinedItem(kind=kind, summary=summary, problem=problem, reason=reason[:2000])
            kept.quarantined_at.FromMilliseconds(self.ctx.clock.now_ms())
            return kept

        done = self.ctx.storage.env.submit(lambda txn: queues.withdraw(txn, destination, position, why)).result()
        if done:
            log.warning("link to %s: item #%d refused for good, quarantined: %s", destination, position, reason)
        return done

    def _failed(self, why: str) -> None:
        self.consecutive_failures += 1
        self.last_error = why
        log.warning("link to %s at %s broken: %s", self.destination, self.address, why)

    async def _connection(self) -> None:
        ctx = self.ctx
        options = channel_options(self.destination, ctx.settings.keepalive)
        async with grpc.aio.secure_channel(self.address or "", ctx.credentials, options=options) as channel:
            await asyncio.wait_for(self._connect(channel), ctx.settings.connect_timeout)
            self.connects += 1
            self.state = admin_pb2.LINK_STATE_UP
            call = link_pb2_grpc.LinkServiceStub(channel).Deliver()
            in_flight: collections.deque[_InFlight] = collections.deque()
            window = asyncio.Semaphore(ctx.settings.window)
            halves = {
                asyncio.create_task(self._send(call, in_flight, window)),
                asyncio.create_task(self._receive(call, in_flight, window)),
            }
            try:
                done, _ = await asyncio.wait(halves, return_when=asyncio.FIRST_COMPLETED)
            finally:  # either half ending ends the connection (also when this task is cancelled)
                call.cancel()
                for half in halves:
                    half.cancel()
                await asyncio.gather(*halves, return_exceptions=True)
            for half in done:
                if not half.cancelled() and half.exception() is not None:
                    raise half.exception()  # type: ignore[misc]
            raise Rejected(Problem.UNAVAILABLE, f"{self.destination} closed the link")

    async def _connect(self, channel: grpc.aio.Channel) -> None:
        """Wait until the connection is up; if the handshake fails (the server is not who we expect, or
        no server), raise at once with gRPC's reason rather than waiting out the timeout."""
        connectivity = grpc.ChannelConnectivity
        state = channel.get_state(try_to_connect=True)
        while state not in (connectivity.READY, connectivity.TRANSIENT_FAILURE, connectivity.SHUTDOWN):
            await channel.wait_for_state_change(state)
            state = channel.get_state(try_to_connect=True)
        if state is not connectivity.READY:  # a call that fails at once carries the handshake's reason
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            raise Rejected(Problem.UNAVAILABLE, f"cannot connect to {self.destination} at {self.address}")

    async def _send(
        self, call: grpc.aio.StreamStreamCall, in_flight: collections.deque[_InFlight], window: asyncio.Semaphore
    ) -> None:
        ctx = self.ctx
        destination = str(self.destination)
        sent = (await ctx.blocking(ctx.storage.queues.state, destination)).last_receipted
        while True:
            await window.acquire()
            self._wake.clear()  # before reading: an enqueue after this read sets it again
            entries = await ctx.blocking(
                ctx.storage.queues.pending, destination, sent, ctx.settings.max_items, ctx.settings.max_bytes
            )
            while entries and entries[-1][1] == WITHDRAWN:  # a batch ends with an item: these go with the next
                entries.pop()
            if not entries:
                window.release()
                await self._wake.wait()
                continue
            envelope, digest = await ctx.blocking(self._seal, entries)
            in_flight.append(_InFlight(entries[0][0], entries[-1][0], digest))
            await call.write(link_pb2.DeliverRequest(batch=envelope))
            sent = entries[-1][0]

    def _seal(self, entries: list[tuple[int, bytes]]) -> tuple[envelope_pb2.Signed, bytes]:
        ctx = self.ctx
        payload = encode_link_batch(str(ctx.sender), str(self.destination), entries, ctx.clock.now_ms())
        return seal_payload(ctx.signer, BATCH_TYPE, payload, ctx.certificate_der), batch_digest(payload)

    async def _receive(
        self, call: grpc.aio.StreamStreamCall, in_flight: collections.deque[_InFlight], window: asyncio.Semaphore
    ) -> None:
        async for response in call:
            if not in_flight:
                raise Rejected(Problem.BROKEN, f"{self.destination} sent a receipt for no batch in flight")
            batch = in_flight.popleft()
            await self.ctx.blocking(self._settle, response.receipt, batch)
            self.batches_delivered += 1
            self.consecutive_failures = 0
            self.last_error = ""
            window.release()

    def _settle(self, envelope: envelope_pb2.Signed, batch: _InFlight) -> None:
        """Accept a receipt only from the destination's key and only for the batch sent; then drop the batch."""
        ctx = self.ctx
        receipt, signer = open_certified(envelope, link_pb2.Receipt, ctx.trust, self.destination)
        expected = (str(self.destination), str(ctx.sender), batch.first, batch.last, batch.digest)
        got = (receipt.receiver, receipt.sender, receipt.first_sequence, receipt.last_sequence, receipt.batch_sha256)
        if got != expected:
            raise Rejected(
                Problem.DENIED,
                f"receipt from {self.destination} names {got[1]} → {got[0]} #{got[2]}..{got[3]}, "
                f"not the batch sent (#{batch.first}..{batch.last}); nothing dropped",
            )
        listed = self.directory.fingerprints(self.destination)  # None until the node has a directory
        if listed is not None and signer.fingerprint != listed.signing:
            raise Rejected(
                Problem.DENIED,
                f"receipt from {self.destination} is signed by certificate sha256:{signer.fingerprint.hex()[:16]}…, "
                f"not the one network directory version {self.directory.version} lists for it "
                f"(sha256:{listed.signing.hex()[:16]}…); nothing dropped",
            )
        raw = envelope.SerializeToString()
        ctx.storage.env.submit(
            lambda txn: ctx.storage.queues.settle(txn, str(self.destination), batch.last, raw)
        ).result()


class _Readdressed(Exception):
    """The connection was ended because the destination's address changed."""


class LinkSet:
    """The node's outbound links, one per destination, created when a destination first has work.
    Addresses and the destination's expected signing certificate come from the node's
    :class:`~jukinet.domain.directory.PeerDirectory`."""

    def __init__(
        self, ctx: LinkContext, directory: PeerDirectory | Mapping[str, str], always: tuple[NodeId, ...] = ()
    ) -> None:
        self.ctx = ctx
        self.directory: PeerDirectory = StaticPeers(directory) if isinstance(directory, Mapping) else directory
        self._always = always  # destinations linked from the start (a CS's prefecture, a prefecture's national)
        self._links: dict[str, Link] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """On the event loop: link the fixed destinations and every destination with queued work."""
        self._loop = asyncio.get_running_loop()
        for node_id in self._always:
            self._ensure(str(node_id))
        for state in self.ctx.storage.queues.states():
            if state.pending:
                self._ensure(state.destination)

    def address_of(self, destination: str) -> str | None:
        """Where ``destination`` listens, or None if this node knows no address for it: the one place a
        node looks addresses up (the signed network directory; node.toml peers until the first one).
        Rejected (UNAVAILABLE) while the directory has expired."""
        try:
            return self.directory.address(destination)
        except Rejected as exc:
            if exc.problem is Problem.NOT_FOUND:
                return None
            raise

    def wake(self, destination: str) -> None:
        """From any thread: ``destination``'s queue has new entries."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake, destination)

    def wake_queued(self) -> None:
        """From any thread: some queues may have new entries (a relay, say); wake every link with work."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_queued)

    def _wake_queued(self) -> None:
        for state in self.ctx.storage.queues.states():
            if state.pending:
                self._ensure(state.destination).wake()

    def _wake(self, destination: str) -> None:
        self._ensure(destination).wake()

    def _ensure(self, destination: str) -> Link:
        link = self._links.get(destination)
        if link is None:
            link = Link(self.ctx, NodeId.parse(destination), self.directory)
            self._links[destination] = link
            link.start()
        return link

    def directory_changed(self) -> None:
        """From any thread: a new directory version is in use; links follow moved destinations."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._readdress)

    def _readdress(self) -> None:
        for link in list(self._links.values()):
            link.readdress()

    def statuses(self) -> list[admin_pb2.LinkStatus]:
        return [link.status() for link in list(self._links.values())]

    async def stop(self) -> None:
        await asyncio.gather(*(link.stop() for link in self._links.values()))
