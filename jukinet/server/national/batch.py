"""Batch queries (定期照会) at the national server: one bidirectional stream, chunks of codes in, one answer
per chunk out, in order.

Per stream: the agency's legal-table row for the business named by the first chunk is checked
(PERMISSION_DENIED before any answer otherwise), and again at every chunk against the tables held then (a
row withdrawn by a new directory version ends the stream; a narrowed one narrows its answers); a later
chunk naming another business ends the stream (INVALID_ARGUMENT). Codes are asked by 住民票コード only under
a row that permits resident_code, by My Number only under one that permits my_number.

Per chunk (at most ``MAX_BATCH_CHUNK_CODES`` codes, all resident codes or all My
Numbers): one read transaction, each code's record redacted to the row's fields, then ONE write job through
the node's group commit holding a provision entry for every record provided (and one audit entry for the
chunk); the answer leaves only once that job is durable. A malformed code is answered INVALID in its place
(the rest of the chunk is answered); a malformed message ends the stream.

Pipeline and bounds: the next chunk is read and prepared while the previous ones commit, but at most
``MAX_BATCH_IN_FLIGHT`` chunks are read and not yet answered; the stream reads nothing more until the oldest
answer has been handed to gRPC, whose flow control holds a client that does not read its answers (the server
buffers at most that many chunks of it). At most ``MAX_BATCH_STREAMS_PER_AGENCY`` streams per agency and
``MAX_BATCH_STREAMS`` in all (RESOURCE_EXHAUSTED beyond); chunks are prepared on the node's bulk workers, so
unary lookups and people's calls keep their own pool.

Cost per record is what bounds the speed (docs/ARCHITECTURE.md, "Batch queries"): stored bytes are read
once; a record is parsed once as a view that leaves its sub-messages encoded (its status), cleared of what the
row does not permit and serialized again; answers carry the records as ``repeated bytes``; the chunk's
provision entries are appended with ``ProvisionLog.append_provided`` (one template, the codes), encoded
without a message per record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import grpc
import lmdb

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.legal import FIELD_GROUPS, LegalTables, TableRow
from jukinet.domain.limits import (
    BATCH_IDLE_SECONDS,
    MAX_BATCH_CHUNK_CODES,
    MAX_BATCH_IN_FLIGHT,
    MAX_BATCH_STREAMS,
    MAX_BATCH_STREAMS_PER_AGENCY,
)
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.quoting import quoted
from jukinet.server.audit import Auditor
from jukinet.server.legal_tables import DirectoryTables
from jukinet.server.national.batch_readers import ChunkRead, read_chunk_for, read_identified_chunk_for
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import Kinds
from jukinet.server.runtime.readers import ReaderPool
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.storage import NodeStorage
from jukinet.v1 import admin_pb2, audit_pb2, identity_pb2, provision_pb2, provision_pb2_grpc

log = logging.getLogger(__name__)
Stalled = Callable[[str], Awaitable[None]]  # ends a call whose answers are not taken, with a status saying why


class BatchSlots:
    """How many batch streams each agency, and all together, hold open (RESOURCE_EXHAUSTED beyond)."""

    def __init__(self, per_agency: int = MAX_BATCH_STREAMS_PER_AGENCY, overall: int = MAX_BATCH_STREAMS) -> None:
        self._per_agency = per_agency
        self._overall = overall
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, agency: NodeId) -> Iterator[None]:
        key = str(agency)
        with self._lock:
            if self._open[key] >= self._per_agency:
                raise Rejected(
                    Problem.EXHAUSTED,
                    f"{agency} already has {self._open[key]} batch streams open; at most {self._per_agency}",
                )
            if self._open.total() >= self._overall:
                raise Rejected(
                    Problem.EXHAUSTED, f"the national server serves {self._overall} batch streams now; retry later"
                )
            self._open[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._open[key] -= 1
                if self._open[key] <= 0:
                    del self._open[key]

    def open(self) -> int:
        with self._lock:
            return self._open.total()


def permitted_fields(row: TableRow) -> frozenset[str]:
    """The IdentityRecord fields the row lets through (what its redaction keeps)."""
    return frozenset(name for group in row.fields if row.permits(group) for name in FIELD_GROUPS[group])


@dataclass(frozen=True)
class AskedChunk:
    """A chunk that passed the stream's checks: what is to be read."""

    chunk_id: int
    codes: list[str]  # as asked: 住民票コード, My Numbers or agency identifiers
    by_my_number: bool
    row: TableRow  # the row as it was when the chunk was checked: its read and answer follow it
    permitted: frozenset[str]
    by_identifier: bool = False


@dataclass
class PreparedChunk:
    answer: provision_pb2.BatchLookupResponse  # everything but first_provision_id
    template: admin_pb2.ProvisionEntry  # the chunk's provision entries but for their resident
    provided: Sequence[str]  # one code per record provided, in the answer's order


class BatchStream:
    """One agency's stream for one business (a plain object: no gRPC; tests drive it directly). Per chunk:
    :meth:`check` (cheap, in order), :meth:`read` (the costly part; chunks may be read concurrently),
    :meth:`answer`, then :meth:`commit_job`; :meth:`prepare` is the first three at once."""

    def __init__(
        self,
        storage: NodeStorage,
        tables: Callable[[], LegalTables],
        auditor: Auditor,
        agency: NodeId,
        clock: Clock = SYSTEM_CLOCK,
        stream_id: str | None = None,
        readers: ReaderPool | None = None,
    ) -> None:
        self._storage = storage
        self._tables = tables
        self._auditor = auditor
        self._clock = clock
        self._readers = readers or ReaderPool(storage, processes=0)
        self.agency = agency
        self.stream_id = stream_id or f"batch:{secrets.token_hex(8)}"
        self.row: TableRow | None = None
        self._permitted: frozenset[str] = frozenset()
        self._chunks = 0

    def _admit(self, business: str) -> TableRow:
        """The stream's row as the legal tables hold it now: every chunk is decided by the current tables
        (a row withdrawn or narrowed by a new directory version ends or narrows a stream already open)."""
        if self.row is not None:
            if business and business != self.row.business:
                raise Rejected(
                    Problem.INVALID,
                    f"chunk {self._chunks} names business {quoted(business)}; this stream serves "
                    f"{quoted(self.row.business)} only (open one stream per business)",
                )
            business = self.row.business
        elif not business:
            raise Rejected(Problem.INVALID, "the first chunk of a batch stream must name its business_code")
        row = self._tables().national(self.agency.corporate_number, business)
        if row is None:
            raise Rejected(
                Problem.DENIED, f"{self.agency} has no row in the legal table (別表第1) for business {quoted(business)}"
            )
        if row != self.row:
            self.row, self._permitted = row, permitted_fields(row)
        return row

    def check(self, request: provision_pb2.BatchLookupRequest) -> AskedChunk:
        """The stream's checks of one chunk, in the order chunks arrive; nothing is read or written."""
        row = self._admit(request.business_code)
        codes, numbers, identifiers = request.resident_codes, request.my_numbers, request.agency_identifiers
        if sum(map(bool, (codes, numbers, identifiers))) > 1:
            raise Rejected(
                Problem.INVALID,
                f"chunk {request.chunk_id}: resident_codes, my_numbers and agency_identifiers together; a chunk "
                "holds one kind",
            )
        asked = codes or numbers or identifiers
        if bool(identifiers) != row.pseudonymous and asked:  # each row names residents one way only
            named = "agency identifier" if row.pseudonymous else "resident_code or my_number"
            raise Rejected(
                Problem.DENIED,
                f"{self.agency}'s business {quoted(row.business)} names residents by {named} (its row of the "
                "legal table, 別表第1); a chunk asks by that",
            )
        if codes and not row.permits("resident_code"):  # else a code would be an oracle, as for lookups
            raise Rejected(
                Problem.DENIED,
                f"{self.agency} may not look residents up by 住民票コード for business {quoted(row.business)}: its "
                "row of the legal table (別表第1) does not permit resident_code",
            )
        if numbers and not row.permits("my_number"):
            raise Rejected(
                Problem.DENIED,
                f"{self.agency} may not look residents up by My Number for business {quoted(row.business)}: its "
                "row of the legal table (別表第1) does not permit my_number",
            )
        if len(asked) > MAX_BATCH_CHUNK_CODES:
            raise Rejected(
                Problem.EXHAUSTED,
                f"chunk {request.chunk_id}: {len(asked)} codes; at most {MAX_BATCH_CHUNK_CODES} in one chunk",
            )
        self._chunks += 1
        return AskedChunk(request.chunk_id, list(asked), bool(numbers), row, self._permitted, bool(identifiers))

    def _reader(self, asked: AskedChunk) -> tuple[Callable[..., ChunkRead], tuple[object, ...]]:
        if asked.by_identifier:
            return read_identified_chunk_for, (asked.permitted, str(self.agency.corporate_number), asked.codes)
        return read_chunk_for, (asked.permitted, asked.codes, asked.by_my_number)

    def read(self, asked: AskedChunk) -> ChunkRead:
        """Blocking: the chunk's records found and redacted (in a reader process, if the node has them)."""
        fn, args = self._reader(asked)
        return self._readers.call(fn, *args)

    def reading(self, asked: AskedChunk) -> Future[ChunkRead]:
        """The read in a reader process, not waited for (the node has reader processes)."""
        fn, args = self._reader(asked)
        return self._readers.submit(fn, *args)

    def answer(self, asked: AskedChunk, read: ChunkRead) -> PreparedChunk:
        row = asked.row
        template = admin_pb2.ProvisionEntry(
            agency=str(self.agency),
            business_code=row.business,
            query_kind=admin_pb2.QUERY_KIND_BATCH,
            items=row.items(),
            reference=self.stream_id,
        )
        template.provided_at.FromMilliseconds(self._clock.now_ms())
        date = identity_pb2.Date.FromString
        removals = [provision_pb2.BatchRemoval(reason=reason, date=date(day)) for reason, day in read.removals]
        answer = provision_pb2.BatchLookupResponse(
            chunk_id=asked.chunk_id, statuses=list(read.statuses), removals=removals, stream_id=self.stream_id
        )
        answer.MergeFromString(read.framed)  # the records, framed already
        return PreparedChunk(answer, template, read.provided(asked.codes))

    def prepare(self, request: provision_pb2.BatchLookupRequest) -> PreparedChunk:
        """Check the chunk, read its records and build its answer; nothing is written."""
        asked = self.check(request)
        return self.answer(asked, self.read(asked))

    def commit_job(self, chunk: PreparedChunk) -> Callable[[lmdb.Transaction], range]:
        """The chunk's write (for the node's group commit): its provision entries and one audit entry."""
        storage, auditor, agency, stream_id = self._storage, self._auditor, str(self.agency), self.stream_id
        business = self.row.business if self.row is not None else ""
        chunk_id = chunk.answer.chunk_id

        def write(txn: lmdb.Transaction) -> range:
            ids = storage.provisions.append_provided(txn, chunk.template, chunk.provided)
            leaf = auditor.entry(
                audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY,
                audit_pb2.AUDIT_OUTCOME_SUCCESS,
                agency,
                agency,
                stream_id,
                f"provisions #{ids.start}..#{ids.stop - 1}: {business} by batch, chunk {chunk_id}, {len(ids)} records",
            )
            storage.audit.append(txn, leaf)
            return ids

        return write


class BatchLookups:
    """The national server's batch streams: slots, the pipeline, the order of answers."""

    def __init__(
        self,
        storage: NodeStorage,
        tables: Callable[[], LegalTables],
        auditor: Auditor,
        bulk: Blocking,
        clock: Clock = SYSTEM_CLOCK,
        slots: BatchSlots | None = None,
        in_flight: int = MAX_BATCH_IN_FLIGHT,
        idle_seconds: float = BATCH_IDLE_SECONDS,
        readers: ReaderPool | None = None,
    ) -> None:
        self._storage = storage
        self._tables = tables
        self._auditor = auditor
        self._bulk = bulk
        self._clock = clock
        self.slots = slots or BatchSlots()
        self._in_flight = in_flight
        self._idle_seconds = idle_seconds
        self._readers = readers

    async def _watch(
        self, handing: list[float], consumer: asyncio.Task[object] | None, stalled: Stalled | None
    ) -> None:
        """Once an answer has waited ``idle_seconds`` to be taken: end the call with a status (``stalled``,
        which the gRPC side gives), then cancel ``consumer`` (the call's task, held at that answer)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self._idle_seconds / 4))
            if handing and loop.time() - handing[0] > self._idle_seconds and consumer is not None:
                why = f"no answer of this batch stream was taken for {self._idle_seconds:g} s; the stream ends"
                log.warning("%s", why)
                if stalled is not None:  # not awaited: sending the status waits for the reader too
                    ending = asyncio.ensure_future(stalled(why))
                    _ENDING.add(ending)  # held until done (the loop keeps only a weak reference)
                    ending.add_done_callback(_ENDING.discard)
                    ending.add_done_callback(_forget)  # gRPC raises AbortError once the status is sent
                consumer.cancel()
                return

    async def serve(
        self,
        requests: AsyncIterator[provision_pb2.BatchLookupRequest],
        agency: NodeId,
        stalled: Stalled | None = None,
    ) -> AsyncIterator[provision_pb2.BatchLookupResponse]:
        """Answers in order, each once its provisions are durable. A reader task takes a chunk only when fewer
        than ``in_flight`` are taken and not yet answered, checks it, and starts its read and commit (so up to
        ``in_flight`` chunks are read at once, in reader processes); this generator answers them in order as
        their commits end (a client that waits for each answer before sending more is answered too). A
        refusal of the stream (a chunk that is too large, another business, a malformed chunk) is found
        before anything of that chunk or after it is read, and still answers the chunks before it."""
        with self.slots.hold(agency):
            stream = BatchStream(self._storage, self._tables, self._auditor, agency, self._clock, readers=self._readers)
            room = asyncio.Semaphore(self._in_flight)
            pending: asyncio.Queue[asyncio.Future[provision_pb2.BatchLookupResponse] | BaseException | None] = (
                asyncio.Queue()
            )
            started: set[asyncio.Future[provision_pb2.BatchLookupResponse]] = set()  # taken, not yet answered

            loop = asyncio.get_running_loop()

            async def read_records(asked: AskedChunk) -> ChunkRead:
                if self._readers is not None and self._readers.processes:
                    return await asyncio.wrap_future(stream.reading(asked))  # no thread waits for it
                return await self._bulk(stream.read, asked)

            turn: asyncio.Future[None] = loop.create_future()
            turn.set_result(None)

            async def process(
                asked: AskedChunk, mine: asyncio.Future[None], after: asyncio.Future[None]
            ) -> provision_pb2.BatchLookupResponse:
                """Read (concurrently with other chunks), then commit in chunk order: provision ids ascend
                with the chunks."""
                try:
                    chunk = stream.answer(asked, await read_records(asked))
                    await after
                    committing = None
                    if chunk.provided:
                        committing = asyncio.wrap_future(self._storage.env.submit(stream.commit_job(chunk)))
                finally:
                    mine.set_result(None)
                if committing is not None:
                    chunk.answer.first_provision_id = (await committing).start
                return chunk.answer

            async def read() -> None:
                nonlocal turn
                try:
                    while True:
                        await room.acquire()
                        try:
                            async with asyncio.timeout(self._idle_seconds):  # an idle stream gives its slot back
                                request = await anext(requests, None)
                        except TimeoutError:
                            raise Rejected(
                                Problem.INVALID,
                                f"no chunk arrived within {self._idle_seconds:g} s; the batch stream ends",
                            ) from None
                        if request is None:
                            break
                        asked, after, turn = stream.check(request), turn, loop.create_future()
                        task = asyncio.ensure_future(process(asked, turn, after))
                        started.add(task)
                        pending.put_nowait(task)
                except Exception as exc:  # the stream's refusal, answered after what came before it
                    pending.put_nowait(exc)
                    return
                pending.put_nowait(None)

            reader = asyncio.ensure_future(read())
            # An agency that stops reading its answers holds the stream at `yield` (gRPC's flow control), and
            # its slot with it: the watchdog ends a stream whose answer is not taken within idle_seconds.
            handing: list[float] = []  # when the answer being handed to gRPC was offered
            watchdog = asyncio.ensure_future(self._watch(handing, asyncio.current_task(), stalled))
            try:
                while (item := await pending.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    answer = await item
                    started.discard(item)  # the stream holds only the answers not yet handed to gRPC
                    handing.append(loop.time())
                    yield answer
                    handing.clear()
                    room.release()
            finally:
                watchdog.cancel()
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                for task in started:  # never cancelled: a commit under way ends; its outcome is not wanted
                    task.add_done_callback(_forget)


_ENDING: set[asyncio.Future[None]] = set()  # the statuses of stalled calls being sent


def _forget(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class BatchLookupRpc(provision_pb2_grpc.BatchLookupServiceServicer):
    """Agencies only; the legal-table row is checked at the stream's first chunk."""

    def __init__(self, batches: BatchLookups, auditor: Auditor, blocking: Blocking) -> None:
        self._batches = batches
        self.auditor = auditor  # refusals are audited (counted, for agencies) as the lookups' are
        self.blocking = blocking
        self.agencies = Kinds.of(NodeKind.AGENCY)

    @guarded("agencies", audit=audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY)
    async def BatchLookup(
        self,
        request_iterator: AsyncIterator[provision_pb2.BatchLookupRequest],
        context: grpc.aio.ServicerContext,
        caller: Caller,
    ) -> AsyncIterator[provision_pb2.BatchLookupResponse]:
        async def stalled(why: str) -> None:  # the agency stopped reading: its call ends with a status it can read
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, why)

        agency = caller.of_kind(NodeKind.AGENCY)[0]
        async for answer in self._batches.serve(request_iterator, agency, stalled):
            yield answer


def batch_service(parts: NodeParts) -> ServiceBinding:
    """The national tier's batch queries (see jukinet.server.assembly.TIERS): 別表第1 of the directory."""
    tables = DirectoryTables(parts.directory, parts.clock)
    batches = BatchLookups(parts.storage, tables.current, parts.auditor, parts.bulk, parts.clock, readers=parts.readers)
    return bind(BatchLookupRpc(batches, parts.auditor, parts.blocking))
