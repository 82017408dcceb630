"""Numbers at the CS: a reserve of 住民票コード designated by the national server, and My Numbers asked
for online.

- **Reserve.** The CS keeps designated, unused codes in its store (``code_reserve``). A background thread
  refills it from the national server (``DesignateCodes``) when it falls below the low-water mark, so a
  birth is registered while the national server is unreachable as long as the reserve lasts. Each block
  is verified (sealed by the national token, for this CS) and, in ONE transaction, put in the reserve and
  queued to the prefecture as a ``code_block`` link item — so the prefecture learns the designation
  before any notice that uses one of its codes. A request that needs more codes than the reserve holds
  fetches them online; with the reserve empty and the national server down it is UNAVAILABLE.
- **Claims.** Codes handed to a request in progress are claimed in memory until its transaction has
  taken them from the reserve (or given them back), so two requests never get the same code.
- **My Numbers.** Asked for with ``AssignMyNumbers`` (one call for a whole chunk) before the change is
  stored, with a short deadline; when the national server does not answer in time the record is stored
  without a number and the background thread asks again later, recording the answer as a 個人番号指定
  change (:meth:`jukinet.cs_node.registry.Registry.designate_numbers`).
- **住民票コード変更.** :meth:`CodeSupply.change_code` asks ``ChangeResidentCode`` for a fresh code that
  replaces a resident's; the answer's signed one-code block is queued to the prefecture before the change
  notice (:mod:`jukinet.cs_node.registry` stores the change). Such a code never enters the reserve.
- **Where the national server is.** The node's network directory (:class:`PeerDirectory`; node.toml's
  ``[peers]`` until the first directory arrives), asked on every call: the channel is opened again when
  the directory moves the national server.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from jukinet.clients.transport import channel_options
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.numbers import MAX_CODES_PER_BLOCK, MAX_NUMBERS_PER_REQUEST
from jukinet.pki import TrustStore
from jukinet.server.code_blocks import verify_block
from jukinet.storage import NodeStorage
from jukinet.v1 import envelope_pb2, link_pb2, numbers_pb2, numbers_pb2_grpc

log = logging.getLogger(__name__)

RESERVE_TARGET = 5000
"""Codes a CS keeps in reserve: refilled to this (in blocks of 1,000) when it falls below ``RESERVE_LOW``. A bulk
registration takes 1,000-row chunks at a few thousand rows a second, while a designation under the national
server's full ingest load takes a second or two: the refill starts with three chunks still in reserve, so
the national server's designation stays off the registration's path."""
RESERVE_LOW = 3000
ONLINE_TIMEOUT_S = 2.0
"""How long a request waits for the national server before storing a birth without its My Number."""
FETCH_TIMEOUT_S = 10.0
"""How long a registration waits for codes fetched online (the reserve ran short; without codes there is
no offline path, so a longer wait beats a refusal)."""
REFILL_TIMEOUT_S = 30.0
"""How long the background refill waits for a designation (nobody waits on it but the reserve)."""
RETRY_INTERVAL_S = 5.0
CHANGE_TIMEOUT_S = 10.0
"""How long a 住民票コード変更 waits for the national server (an operator waits; there is no offline path)."""
CODE_CHANGE_REQUEST = "code-change/"
"""Request id prefix of a 住民票コード変更 (followed by the old code)."""


@dataclass(frozen=True)
class CodeChange:
    """The national server's answer to a 住民票コード変更, verified: the new code, the ``code_block`` link
    item to queue before the change notice, and the My Number held under the new code ("" if none)."""

    old: str
    new: str
    block_item: bytes
    my_number: str


class NationalNumbers:
    """The CS's client of the national NumberService (its node certificate is the credential).
    ``address`` answers where the national server is now (the network directory); Rejected if unknown."""

    def __init__(
        self, address: Callable[[], str], credentials: grpc.ChannelCredentials, timeout: float = ONLINE_TIMEOUT_S
    ) -> None:
        self._address = address
        self._credentials = credentials
        self._lock = threading.Lock()
        self._opened: tuple[str, grpc.Channel, numbers_pb2_grpc.NumberServiceStub] | None = None
        self.timeout = timeout

    @property
    def _stub(self) -> numbers_pb2_grpc.NumberServiceStub:
        """The stub of a channel to the national server's current address (opened again when it moves)."""
        address = self._address()
        with self._lock:
            if self._opened is None or self._opened[0] != address:
                if self._opened is not None:
                    self._opened[1].close()
                options = channel_options(NodeId.national())
                channel = grpc.secure_channel(address, self._credentials, options=options)
                self._opened = (address, channel, numbers_pb2_grpc.NumberServiceStub(channel))
            return self._opened[2]

    def _call(self, rpc: Callable, request: object, timeout: float | None) -> object:
        try:
            return rpc(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            problem = _PROBLEMS.get(code, Problem.UNAVAILABLE)
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise Rejected(problem, f"the national server's NumberService: {details}") from None

    def designate(self, request_id: str, count: int, timeout: float | None = None) -> envelope_pb2.Signed:
        request = numbers_pb2.DesignateCodesRequest(request_id=request_id, count=count)
        return self._call(self._stub.DesignateCodes, request, timeout).block  # type: ignore[attr-defined]

    def assign(self, codes: Sequence[str], timeout: float | None = None) -> dict[str, str]:
        request = numbers_pb2.AssignMyNumbersRequest(resident_codes=list(codes))
        answer = self._call(self._stub.AssignMyNumbers, request, timeout)
        return {a.resident_code: a.my_number for a in answer.numbers}  # type: ignore[attr-defined]

    def change_my_number(self, code: str, number: str, timeout: float | None = None) -> str:
        request = numbers_pb2.ChangeMyNumberRequest(resident_code=code, my_number=number)
        return self._call(self._stub.ChangeMyNumber, request, timeout).assigned.my_number  # type: ignore[attr-defined]

    def change_resident_code(
        self, code: str, request_id: str, timeout: float | None = None
    ) -> tuple[envelope_pb2.Signed, str]:
        """(the Signed CodeBlock of the new code, the My Number now held under it)."""
        request = numbers_pb2.ChangeResidentCodeRequest(resident_code=code, request_id=request_id)
        answer = self._call(self._stub.ChangeResidentCode, request, timeout)
        return answer.block, answer.my_number  # type: ignore[attr-defined]

    def close(self) -> None:
        with self._lock:
            if self._opened is not None:
                self._opened[1].close()
                self._opened = None


_PROBLEMS = {
    grpc.StatusCode.INVALID_ARGUMENT: Problem.INVALID,
    grpc.StatusCode.PERMISSION_DENIED: Problem.DENIED,
    grpc.StatusCode.UNAUTHENTICATED: Problem.DENIED,
    grpc.StatusCode.FAILED_PRECONDITION: Problem.CONFLICT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Problem.EXHAUSTED,
}


class CodeSupply:
    """The reserve, its claims and its refill (thread-safe)."""

    def __init__(
        self,
        node_id: NodeId,
        upstream: NodeId,
        storage: NodeStorage,
        trust: TrustStore,
        national: NationalNumbers,
        enqueued: Callable[[str], None] = lambda destination: None,
        target: int = RESERVE_TARGET,
        low: int = RESERVE_LOW,
    ) -> None:
        self.node_id = node_id
        self._upstream = str(upstream)
        self._storage = storage
        self._trust = trust
        self.national = national
        self._enqueued = enqueued
        self._target, self._low = target, low
        self._claimed: set[str] = set()
        self._lock = threading.Lock()
        self._fetching = threading.Lock()
        self._asking: str | None = None  # the designation request in progress (kept until its block is stored)
        self.low_water: Callable[[], None] = lambda: None  # set by Background: wake the refill

    # -- codes ----------------------------------------------------------------------------------------

    def claim(self, count: int) -> list[str]:
        """``count`` reserved codes for one request (fetched online if the reserve is short)."""
        if count <= 0:
            return []
        codes = self._claim(count)
        if self._storage.reserve.size() - len(self._claimed) < self._low:
            self.low_water()  # the background refills while this request goes on
        while len(codes) < count:
            try:
                wanted = min(MAX_CODES_PER_BLOCK, max(count - len(codes), self._target - self._storage.reserve.size()))
                if not self.fetch(wanted, FETCH_TIMEOUT_S):  # a block already held: asking on would never end
                    raise Rejected(Problem.UNAVAILABLE, "the designation brought no code not already held")
            except Rejected as exc:
                self.release(codes)
                raise Rejected(
                    Problem.UNAVAILABLE,
                    f"the reserve of 住民票コード is empty and the national server cannot designate more now ({exc})",
                ) from None
            codes += self._claim(count - len(codes))
        return codes

    def _claim(self, count: int) -> list[str]:
        with self._lock:
            codes = self._storage.reserve.first(count, frozenset(self._claimed))
            self._claimed.update(codes)
            return codes

    def release(self, codes: Sequence[str]) -> None:
        """Claims end (the request's transaction took the codes it used from the reserve, or failed)."""
        with self._lock:
            self._claimed.difference_update(codes)

    def fetch(self, count: int, timeout: float = FETCH_TIMEOUT_S) -> int:
        """Designate ``count`` codes online and store them (reserve + code_block item) in one transaction."""
        with self._fetching:
            return self._fetch(count, timeout)

    def _fetch(self, count: int, timeout: float) -> int:
        """One designation. A request the national server did not answer in time is asked again with the
        same id (it answers a known id with the same block), so a slow answer never strands a block of
        codes designated to this CS, counted against its quota, that it never received."""
        if self._asking is None:
            self._asking = f"{self.node_id}/{uuid.uuid4()}"
        try:
            signed = self.national.designate(self._asking, max(1, min(count, MAX_CODES_PER_BLOCK)), timeout)
        except Rejected as exc:
            if exc.problem is not Problem.UNAVAILABLE:
                self._asking = None  # refused: that request designated nothing
            raise
        self._asking = None  # answered: stored now, or refused for good (asking again gets the same block)
        return self.store(signed)

    def store(self, signed: envelope_pb2.Signed) -> int:
        """Keep a verified block: its codes in the reserve and the signed block queued for the prefecture."""
        block = verify_block(signed, self._trust, self.node_id)
        if block.replaces:
            raise Rejected(Problem.BROKEN, f"code block #{block.block} serves a 住民票コード変更, not the reserve")
        item = link_pb2.LinkItem(code_block=signed).SerializeToString()
        s = self._storage

        def keep(txn: object) -> int:
            added = s.reserve.add(txn, block.codes, block.block)  # type: ignore[arg-type]
            if added:
                s.queues.enqueue(txn, self._upstream, [item])  # type: ignore[arg-type]
            return added

        added = s.env.submit(keep).result()
        if added:
            self._enqueued(self._upstream)
        return added

    def refill(self) -> None:
        """Top the reserve up if it is below the low-water mark (background). The size is read under the
        fetch lock, so a request that fetched online meanwhile is counted and no second block is asked for."""
        with self._fetching:
            size = self._storage.reserve.size()
            if size >= self._low:
                return
            while size < self._target:
                if not self._fetch(self._target - size, REFILL_TIMEOUT_S):
                    break  # nothing new came: try again at the next round
                size = self._storage.reserve.size()

    def change_code(self, old: str) -> CodeChange:
        """住民票コード変更 at the national server: a fresh code designated to this CS to replace ``old``.
        The request id is derived from the code (a code is replaced once), so a retry after any failure —
        the answer lost, the CS's transaction refused — gets the same new code."""
        signed, number = self.national.change_resident_code(old, f"{CODE_CHANGE_REQUEST}{old}", CHANGE_TIMEOUT_S)
        block = verify_block(signed, self._trust, self.node_id)
        if block.replaces != old or len(block.codes) != 1:
            raise Rejected(Problem.BROKEN, f"the national server answered the 住民票コード変更 of {old} with block "
                           f"#{block.block}, which replaces {block.replaces or 'nothing'}")  # fmt: skip
        return CodeChange(old, block.codes[0], link_pb2.LinkItem(code_block=signed).SerializeToString(), number)

    # -- My Numbers -----------------------------------------------------------------------------------

    def numbers(self, codes: Sequence[str], timeout: float | None = None) -> dict[str, str]:
        """The national server's numbers for ``codes`` (one call per 1,000); {} when it does not answer."""
        out: dict[str, str] = {}
        try:
            for i in range(0, len(codes), MAX_NUMBERS_PER_REQUEST):
                out.update(self.national.assign(codes[i : i + MAX_NUMBERS_PER_REQUEST], timeout))
        except Rejected as exc:
            if exc.problem is not Problem.UNAVAILABLE:
                log.warning("%s: My Numbers refused: %s", self.node_id, exc)
            else:
                log.info("%s: My Numbers not assigned now (retried in the background): %s", self.node_id, exc)
        return out


class Background:
    """The CS's number upkeep thread: refill the reserve, then number the records still waiting."""

    def __init__(self, supply: CodeSupply, designate: Callable[[], int], interval: float = RETRY_INTERVAL_S) -> None:
        self._supply = supply
        self._designate = designate
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cs-numbers", daemon=True)
        supply.low_water = self.wake

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._supply.refill()
                self._designate()
            except Rejected as exc:
                log.info("number upkeep: %s (retrying in %.0f s)", exc, self._interval)
            except Exception:  # a bug must not end the upkeep for good
                log.exception("number upkeep failed")
            self._wake.wait(self._interval)
            self._wake.clear()
