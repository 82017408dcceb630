"""The CS's resident registry: record a change, or register residents in bulk, each with its notice.

Callers are operator terminals of this municipality presenting an operator session with the role
'register-residents'. Each request (each chunk of a bulk registration) is validated whole and then
committed in one transaction — records, history, the change notices queued for the prefecture, and the
audit entry — or not at all. :class:`Registry` is the plain object; :class:`RegistryRpc` only moves
messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import grpc
import lmdb

from jukinet.domain.changes import local_change
from jukinet.domain.clock import SYSTEM_CLOCK, Clock, today
from jukinet.domain.codes import ResidentCode
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_RECORDS_PER_CHUNK
from jukinet.domain.node_ids import NodeId
from jukinet.domain.operators import Role
from jukinet.domain.quoting import quoted
from jukinet.domain.records import validate_record
from jukinet.server.audit import Auditor
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.batches import ChangeNoticeEncoder, change_notice_item
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import OperatorWithRole, TerminalOf
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.storage import NodeStorage
from jukinet.storage.layout import Counter
from jukinet.v1 import audit_pb2, identity_pb2, registry_pb2, registry_pb2_grpc

MAX_CHUNK_RECORDS = MAX_RECORDS_PER_CHUNK
A = audit_pb2


class Registry:
    def __init__(
        self,
        node_id: NodeId,
        upstream: NodeId,
        storage: NodeStorage,
        auditor: Auditor,
        clock: Clock = SYSTEM_CLOCK,
        enqueued: Callable[[str], None] = lambda destination: None,
    ) -> None:
        self.node_id = node_id
        self._upstream = str(upstream)  # where change notices go: this CS's prefecture
        self._storage = storage
        self._auditor = auditor
        self._clock = clock
        self._enqueued = enqueued

    def record(
        self, records: Sequence[identity_pb2.IdentityRecord], caller: Caller, action: int, first_index: int = 0
    ) -> range:
        """Store a group of changes with their notices; returns the notices' sequences. Rejected stores nothing."""
        self.check(records, first_index)
        return self.commit(records, caller, action)

    def commit(self, records: Sequence[identity_pb2.IdentityRecord], caller: Caller, action: int) -> range:
        """The second half of :meth:`record`, for records :meth:`check` accepted: one transaction."""
        now_ms = self._clock.now_ms()
        target = records[0].resident_code if len(records) == 1 else f"{len(records)} residents"
        s = self._storage

        encoder = ChangeNoticeEncoder(str(self.node_id), now_ms)

        def apply(txn: lmdb.Transaction) -> range:
            first_seq = s.env.reserve(txn, Counter.CHANGE, len(records))
            first_hist = s.history.reserve(txn, len(records))
            items = []
            for i, record in enumerate(records):
                current = s.records.current(txn, record.resident_code)
                local_change(current, record, s.records.holder_of(txn, record.my_number))
                encoded = record.SerializeToString()
                notice = encoder.encode(first_seq + i, encoded)
                s.records.put(txn, record, current, encoded)
                s.history.append(txn, record.resident_code, notice, first_hist + i)
                items.append(change_notice_item(notice))
            s.queues.enqueue(txn, self._upstream, items)
            sequences = range(first_seq, first_seq + len(records))
            detail = f"notices {self.node_id}#{sequences.start}..{sequences.stop - 1}"
            if len(records) == 1:
                detail += f"; {identity_pb2.ChangeReason.Name(records[0].change_reason)}"
            self._auditor.append(txn, action, A.AUDIT_OUTCOME_SUCCESS, caller, target, detail)
            return sequences

        sequences = s.env.submit(apply).result()  # group commit: shares an fsync with the link's settlements
        self._enqueued(self._upstream)
        return sequences

    def resident(self, resident_code: str, caller: Caller) -> identity_pb2.IdentityRecord:
        record = self._storage.records.get(str(ResidentCode.parse(resident_code)))
        if record is None:
            raise Rejected(Problem.NOT_FOUND, f"no resident {quoted(resident_code)} at {self.node_id}")
        self._auditor.record(A.AUDIT_ACTION_GET_RESIDENT, A.AUDIT_OUTCOME_SUCCESS, caller, resident_code)
        return record

    def check(self, records: Sequence[identity_pb2.IdentityRecord], first_index: int = 0) -> None:
        """What can be checked without the stored state (validity, this municipality, no resident twice)."""
        day = today(self._clock)
        codes: set[str] = set()
        for i, record in enumerate(records, start=first_index):
            problems = validate_record(record, today=day)
            if problems:
                raise Rejected(Problem.INVALID, f"record {i}: {'; '.join(problems)}")
            municipality = record.address.municipality_code
            if municipality != self.node_id.code:
                raise Rejected(
                    Problem.DENIED,
                    f"record {i}: this CS ({self.node_id}) records residents of {self.node_id.code} only, "
                    f"not of {municipality}",
                )
            if record.resident_code in codes:
                raise Rejected(
                    Problem.INVALID, f"record {i}: resident {record.resident_code} appears twice in one request"
                )
            codes.add(record.resident_code)


class RegistryRpc(registry_pb2_grpc.ResidentRegistryServiceServicer):
    def __init__(self, registry: Registry, auditor: Auditor, blocking: Blocking, bulk: Blocking | None = None) -> None:
        self._registry = registry
        self.auditor = auditor
        self.blocking = blocking
        self._bulk = bulk or blocking  # chunks of a bulk registration
        self.registrars = OperatorWithRole(TerminalOf.of_nodes([registry.node_id]), Role.REGISTER_RESIDENTS)

    @guarded("registrars", audit=A.AUDIT_ACTION_RECORD_CHANGE)
    def RecordChange(
        self, request: registry_pb2.RecordChangeRequest, caller: Caller
    ) -> registry_pb2.RecordChangeResponse:
        sequences = self._registry.record([request.record], caller, A.AUDIT_ACTION_RECORD_CHANGE)
        return registry_pb2.RecordChangeResponse(sequence=sequences.start, record=request.record)

    @guarded("registrars", audit=A.AUDIT_ACTION_REGISTER_RESIDENTS)
    async def RegisterResidents(
        self,
        request_iterator: AsyncIterator[registry_pb2.RegisterResidentsRequest],
        context: grpc.aio.ServicerContext,
        caller: Caller,
    ) -> registry_pb2.RegisterResidentsResponse:
        """Chunks in order, each committed whole; the next chunk is checked while the previous one commits."""
        response = registry_pb2.RegisterResidentsResponse()
        committing: asyncio.Task[range] | None = None
        received = 0

        async def settle() -> None:
            nonlocal committing
            if committing is None:
                return
            task, committing = committing, None
            sequences = await task
            if not response.chunks:
                response.first_sequence = sequences.start
            response.last_sequence = sequences.stop - 1
            response.records += len(sequences)
            response.chunks += 1

        try:
            async for chunk in request_iterator:
                if not chunk.records:
                    continue
                if len(chunk.records) > MAX_CHUNK_RECORDS:
                    raise Rejected(
                        Problem.EXHAUSTED, f"{len(chunk.records)} records in one chunk; at most {MAX_CHUNK_RECORDS}"
                    )
                check = self._bulk(self._registry.check, chunk.records, received)
                try:
                    await check
                finally:
                    await settle()  # the previous chunk is committed (or refused) before this one counts
                received += len(chunk.records)
                committing = asyncio.ensure_future(
                    self._bulk(self._registry.commit, chunk.records, caller, A.AUDIT_ACTION_REGISTER_RESIDENTS)
                )
            await settle()
        except Rejected as exc:
            if committing is not None:
                await asyncio.gather(committing, return_exceptions=True)
            done = (
                f"; the {response.chunks} chunk(s) before it ({response.records} records) were committed"
                if response.chunks
                else "; nothing was stored"
            )
            raise Rejected(exc.problem, f"chunk {response.chunks}: {exc}{done}") from None
        return response

    @guarded("registrars", audit=A.AUDIT_ACTION_GET_RESIDENT)
    def GetResident(self, request: registry_pb2.GetResidentRequest, caller: Caller) -> registry_pb2.GetResidentResponse:
        return registry_pb2.GetResidentResponse(record=self._registry.resident(request.resident_code, caller))


def registry_service(parts: NodeParts) -> ServiceBinding:
    """The CS tier's service (see jukinet.server.assembly.TIERS)."""
    if parts.config.upstream is None:
        raise Rejected(Problem.BROKEN, "a CS needs an upstream prefecture for its change notices")
    registry = Registry(
        parts.config.node_id, parts.config.upstream, parts.storage, parts.auditor, parts.clock, parts.links.wake
    )
    return bind(RegistryRpc(registry, parts.auditor, parts.blocking, parts.bulk))
