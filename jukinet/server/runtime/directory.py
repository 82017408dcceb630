"""The node's network directory at run time: the :class:`PeerDirectory` every link and tier service asks,
the background refresh that fetches newer versions, and ``DirectoryService.GetDirectory``.

**Bootstrap.** Until a node holds a verified directory it takes peers' addresses from ``[peers]`` in
its node.toml (which keeps at least its upstream's, so that it can fetch the first directory) and
pins no fingerprints. From the first verified directory on, node.toml's peers are used only to reach a
directory source again.

**Expiry.** A node whose directory has expired refuses to act on it: every question for a peer
raises UNAVAILABLE ("network directory version N expired at …; fetching"), so links back off with
that error and calls that need a peer's address fail with it, until a newer version arrives.

**Refresh.** Every ``refresh_s`` (with jitter) a node asks its upstream, then the national server, for
anything newer than what it holds (``GetDirectory(known_version)``; "not modified" costs a few bytes).
Once half the held directory's validity has passed, "not modified" from the upstream is not enough:
the national server is asked too, so a prefecture cannot freeze its CS nodes' directory until it expires.
A fetched directory is believed only after :class:`jukinet.pki.directory.DirectoryPolicy` passes it,
and is stored (with its audit entry) before it is used, so a restart starts from it. The national
server does not fetch: it renews its own (see :mod:`jukinet.server.national.directory`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence

import grpc
import lmdb

from jukinet.clients.transport import DEFAULT_KEEPALIVE, Keepalive, channel_options
from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.directory import Directory, DirectoryEntry, Fingerprints, iso_ms, node_id_of
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NODE_KINDS, NodeId, NodeKind
from jukinet.pki.directory import DirectoryPolicy, VerifiedDirectory
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import AnyOf, Kinds, TerminalOf
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, directory_pb2, directory_pb2_grpc, envelope_pb2

log = logging.getLogger(__name__)
PUBLISHED_HERE = "published here"
FETCH_TIMEOUT = 10.0
RETRY_FIRST_S = 1.0  # after a round no source answered; doubles up to the refresh interval


class NodeDirectory:
    """The node's verified network directory (or node.toml's peers until it has one). Safe from any
    thread: a new version replaces the old one whole."""

    def __init__(
        self,
        node_ids: Sequence[NodeId],
        policy: DirectoryPolicy,
        storage: NodeStorage,
        bootstrap_peers: Mapping[str, str],
        audit_entry: Callable[[int, str, str, str, str], bytes],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._node_id = node_ids[0]
        self._policy = policy
        self._storage = storage
        self._bootstrap = dict(bootstrap_peers)
        self._audit_entry = audit_entry  # (action, actor, terminal, target, detail) -> an audit leaf
        self._clock = clock
        self._lock = threading.Lock()  # one acceptance at a time; readers take the current snapshot
        self._current: VerifiedDirectory | None = None
        self._floor = 0  # the version of a cached directory that no longer verifies: nothing older is taken
        self._source = ""
        self._fetched_at_ms = 0
        self.last_error = ""
        self._listeners: list[Callable[[], None]] = []
        self.renewer: Callable[[], None] | None = None  # the national server renews instead of fetching
        self._load()

    def _load(self) -> None:
        cached = self._storage.directory.current()
        if cached is None:
            return
        try:
            self._current = self._policy.verify(cached.envelope, allow_expired=True)
        except Rejected as exc:  # e.g. the national certificate that signed it was revoked since
            self._floor = _raw_version(cached.envelope)
            self.last_error = f"the cached network directory no longer verifies: {exc}"
            log.warning("%s", self.last_error)
            return
        self._source = cached.source
        self._fetched_at_ms = cached.fetched_at.ToMilliseconds()

    # -- PeerDirectory ----------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        current = self._current
        return current.version if current is not None else 0

    def address(self, node_id: NodeId | str) -> str:
        directory = self._usable()
        if directory is None:
            address = self._bootstrap.get(str(node_id))
            if address is None:
                raise Rejected(Problem.NOT_FOUND, f"no network directory yet, and node.toml [peers] has no {node_id}")
            return address
        return self._entry(directory, node_id).address

    def fingerprints(self, node_id: NodeId | str) -> Fingerprints | None:
        directory = self._usable()
        return None if directory is None else self._entry(directory, node_id).fingerprints

    def prefecture_server_of(self, cs: NodeId | str) -> NodeId:
        node = node_id_of(cs)
        if node.kind is not NodeKind.CS:
            raise Rejected(Problem.INVALID, f"{node} is not a CS")
        directory = self._usable()
        if directory is None:
            return NodeId.prefecture(node.prefecture_code)
        prefecture = self._entry(directory, node).prefecture
        assert prefecture is not None  # Directory.from_message gives every CS one
        return prefecture

    def cs_nodes(self) -> tuple[NodeId, ...]:
        directory = self._usable()
        if directory is None:
            return tuple(n for n in map(NodeId.parse, self._bootstrap) if n.kind is NodeKind.CS)
        return directory.cs_nodes()

    def half_expired(self) -> bool:
        """True once half the held directory's validity has passed (or it has expired): a source that
        still says "not modified" then is no longer believed alone (see :meth:`DirectoryRefresher.refresh`)."""
        current = self._current
        if current is None:
            return False
        directory = current.directory
        half = directory.issued_at_ms + (directory.expires_at_ms - directory.issued_at_ms) // 2
        return self._clock.now_ms() >= half

    def _usable(self) -> Directory | None:
        current = self._current
        if current is None:
            return None
        directory = current.directory
        if directory.expired(self._clock.now_ms()):
            raise Rejected(
                Problem.UNAVAILABLE,
                f"network directory version {directory.version} expired at {iso_ms(directory.expires_at_ms)}; "
                "fetching a newer one",
            )
        return directory

    @staticmethod
    def _entry(directory: Directory, node_id: NodeId | str) -> DirectoryEntry:
        entry = directory.entry(node_id)
        if entry is None:
            raise Rejected(Problem.NOT_FOUND, f"{node_id} is not in network directory version {directory.version}")
        return entry

    # -- state ------------------------------------------------------------------------------------------

    @property
    def current(self) -> VerifiedDirectory | None:
        """The verified directory held (expired or not), as signed."""
        return self._current

    @property
    def floor(self) -> int:
        """The lowest version this node may take next time (anything older is a rollback)."""
        return max(self.version, self._floor)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from the accepting thread) after each new version is in use."""
        self._listeners.append(listener)

    def accept(
        self,
        envelope: envelope_pb2.Signed,
        source: str,
        action: int = 0,
        actor: str = "",
        terminal: str = "",
        also: Callable[[lmdb.Transaction], None] | None = None,
    ) -> bool:
        """Verify ``envelope`` against what is held, store it (with an audit entry: by default "accepted",
        by this node) and use it; False if it is the version already held. Rejected (nothing stored) when
        the policy refuses it."""
        with self._lock:
            verified = self._policy.verify(envelope, self._current, floor=self._floor)
            if self._current is not None and verified.version == self._current.version:
                return False
            now = self._clock.now_ms()
            cached = directory_pb2.CachedDirectory(envelope=envelope, source=source)
            cached.fetched_at.FromMilliseconds(now)
            action = action or audit_pb2.AUDIT_ACTION_DIRECTORY_ACCEPTED
            directory = verified.directory
            detail = (
                f"version {directory.version} from {source}: {len(directory.entries)} nodes, "
                f"{len(directory.message.legal_table)} legal-table rows, valid until {iso_ms(directory.expires_at_ms)}"
            )
            me = str(self._node_id)
            target = f"network directory version {directory.version}"
            leaf = self._audit_entry(action, actor or me, terminal or me, target, detail)

            def store(txn: lmdb.Transaction) -> None:
                self._storage.directory.put(txn, cached)
                self._storage.audit.append(txn, leaf)
                if also is not None:
                    also(txn)

            self._storage.env.submit(store).result()
            self._current, self._source, self._fetched_at_ms = verified, source, now
            self.last_error = ""
        log.info("network directory version %d in use (from %s)", verified.version, source)
        for listener in list(self._listeners):
            listener()
        return True

    def status(self) -> directory_pb2.DirectoryStatus:
        current = self._current
        if current is None:
            return directory_pb2.DirectoryStatus(
                state=directory_pb2.DIRECTORY_STATE_BOOTSTRAP, source="node.toml [peers]", last_error=self.last_error
            )
        directory = current.directory
        expired = directory.expired(self._clock.now_ms())
        status = directory_pb2.DirectoryStatus(
            state=directory_pb2.DIRECTORY_STATE_EXPIRED if expired else directory_pb2.DIRECTORY_STATE_CURRENT,
            version=directory.version,
            source=self._source,
            last_error=self.last_error,
        )
        status.issued_at.FromMilliseconds(directory.issued_at_ms)
        status.expires_at.FromMilliseconds(directory.expires_at_ms)
        status.fetched_at.FromMilliseconds(self._fetched_at_ms)
        return status

    # -- serving ----------------------------------------------------------------------------------------

    def answer(self, known_version: int) -> directory_pb2.GetDirectoryResponse:
        current = self._current
        if current is None:
            raise Rejected(Problem.UNAVAILABLE, f"{self._node_id} holds no network directory yet")
        if known_version >= current.version:
            return directory_pb2.GetDirectoryResponse(not_modified=True, version=current.version)
        return directory_pb2.GetDirectoryResponse(version=current.version, directory=current.envelope)

    # -- where to fetch from ----------------------------------------------------------------------------

    def source_addresses(self, source: NodeId) -> list[str]:
        """Addresses to try for a directory source: the held directory's (even an expired one: what comes
        back is verified anyway), then node.toml's."""
        found: list[str] = []
        current = self._current
        if current is not None and (entry := current.directory.entry(source)) is not None:
            found.append(entry.address)
        bootstrap = self._bootstrap.get(str(source))
        if bootstrap and bootstrap not in found:
            found.append(bootstrap)
        return found


def _raw_version(envelope: envelope_pb2.Signed) -> int:
    try:
        return directory_pb2.NetworkDirectory.FromString(envelope.payload).version
    except Exception:  # a damaged store entry: nothing to keep from it
        return 0


class DirectoryRefresher:
    """Fetches newer directory versions in the background (on the node's event loop)."""

    def __init__(
        self,
        directory: NodeDirectory,
        sources: Sequence[NodeId],
        credentials: grpc.ChannelCredentials,
        blocking: Blocking,
        interval: float,
        keepalive: Keepalive = DEFAULT_KEEPALIVE,
    ) -> None:
        self._directory = directory
        self._sources = tuple(sources)
        self._credentials = credentials
        self._blocking = blocking
        self._interval = interval
        self._keepalive = keepalive
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="directory-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        retry = RETRY_FIRST_S
        while True:
            answered = False
            try:
                answered = await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep refreshing whatever went wrong once
                log.exception("network directory refresh failed")
            # A round no source answered is tried again soon (1 s doubling up to the interval): a node that
            # started before its sources gets its first directory as soon as they serve, not an interval later.
            wait, retry = (self._interval, RETRY_FIRST_S) if answered else (min(retry, self._interval), retry * 2)
            await asyncio.sleep(wait * random.uniform(0.8, 1.0))

    async def refresh(self) -> bool:
        """One round: renew (national) or ask each source in turn until one answers acceptably. True if a
        source answered (with a newer directory, or "not modified")."""
        directory = self._directory
        if directory.renewer is not None:
            await self._blocking(directory.renewer)
            return True
        errors: list[str] = []
        answered = False
        for index, source in enumerate(self._sources):
            for address in directory.source_addresses(source):
                try:
                    reply = await self._fetch(source, address, directory.version)
                    if not reply.not_modified:
                        await self._blocking(directory.accept, reply.directory, str(source))
                    elif directory.half_expired() and index + 1 < len(self._sources):
                        # A source (a compromised prefecture) could say "not modified" forever and let the
                        # directory expire: once half its validity has passed, the next source (the national
                        # server) is asked too, whatever this one says.
                        answered = True
                        errors.append(f"{source} at {address}: not modified although half the validity has passed")
                        break
                    directory.last_error = "; ".join(errors)[:2000]  # what failed before this source answered
                    return True
                except grpc.aio.AioRpcError as exc:
                    errors.append(f"{source} at {address}: {exc.code().name}: {exc.details()}")
                except Rejected as exc:
                    errors.append(f"{source} at {address}: {exc}")
                    log.warning("network directory from %s refused: %s", source, exc)
                    break  # this source answered; its directory is not acceptable: try the next source
        if errors:
            directory.last_error = "; ".join(errors)[:2000]
        return answered

    async def _fetch(self, source: NodeId, address: str, known: int) -> directory_pb2.GetDirectoryResponse:
        options = channel_options(source, self._keepalive)
        async with grpc.aio.secure_channel(address, self._credentials, options=options) as channel:
            stub = directory_pb2_grpc.DirectoryServiceStub(channel)
            request = directory_pb2.GetDirectoryRequest(known_version=known)
            return await stub.GetDirectory(request, timeout=FETCH_TIMEOUT)


def directory_sources(node_id: NodeId, upstream: NodeId | None) -> list[NodeId]:
    """Where a node fetches the directory: its upstream first (over its link's path), then the national
    server (when the upstream is down, or moved); the national server fetches from nobody."""
    sources = [upstream] if upstream is not None else []
    if node_id.kind is not NodeKind.NATIONAL and NodeId.national() not in sources:
        sources.append(NodeId.national())
    return sources


class DirectoryRpc(directory_pb2_grpc.DirectoryServiceServicer):
    """``GetDirectory`` at every node: any node identity (a CS from its prefecture, a prefecture from the
    national server), and terminals of the node's site (``jukinet directory show``)."""

    def __init__(self, node_ids: Sequence[NodeId], directory: NodeDirectory, blocking: Blocking) -> None:
        self._directory = directory
        self.blocking = blocking
        self.readers = AnyOf((Kinds(NODE_KINDS), TerminalOf.of_nodes(node_ids)))

    @guarded("readers")
    def GetDirectory(
        self, request: directory_pb2.GetDirectoryRequest, caller: Caller
    ) -> directory_pb2.GetDirectoryResponse:
        return self._directory.answer(request.known_version)
