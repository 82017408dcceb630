"""Operator-facing RPCs of the CS: record one change, or register residents in bulk.

The gate for now is the terminal's client certificate (operator CA, site = this municipality);
operator sessions come on top of it later. Each request (each chunk of a bulk registration) is
validated whole and committed in one transaction with its history and outbox entries, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.records import validate_record
from jukinet.domain.transitions import ChangeRejected, check_local_transition
from jukinet.node.security import AnyOf, Caller, PeerAuthenticator, guarded
from jukinet.storage.node_store import AppliedRange, NodeStore
from jukinet.v1 import identity_pb2, registry_pb2, registry_pb2_grpc

MAX_CHUNK_RECORDS = 10_000
_REJECTION_STATUS = {
    "already_exists": grpc.StatusCode.ALREADY_EXISTS,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "failed_precondition": grpc.StatusCode.FAILED_PRECONDITION,
}


class RequestRejected(Exception):
    def __init__(self, status: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.status = status


class ResidentRegistryService(registry_pb2_grpc.ResidentRegistryServiceServicer):
    def __init__(
        self,
        node_id: NodeId,
        authenticator: PeerAuthenticator,
        store: NodeStore,
        on_recorded: Callable[[], None],
    ) -> None:
        self.node_id = node_id
        self.authenticator = authenticator
        self.terminals = AnyOf({NodeKind.TERMINAL}, terminal_sites={node_id.code})
        self._store = store
        self._on_recorded = on_recorded

    def _check(self, records: Sequence[identity_pb2.IdentityRecord], first_index: int = 0) -> None:
        codes: set[str] = set()
        for i, record in enumerate(records, start=first_index):
            problems = validate_record(record)
            if problems:
                raise RequestRejected(grpc.StatusCode.INVALID_ARGUMENT, f"record {i}: {'; '.join(problems)}")
            municipality = record.address.municipality_code
            if municipality != self.node_id.code:
                raise RequestRejected(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"record {i}: this CS ({self.node_id}) records residents of {self.node_id.code} only, "
                    f"not of {municipality}",
                )
            if record.resident_code in codes:
                raise RequestRejected(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"record {i}: resident {record.resident_code} appears twice in one request",
                )
            codes.add(record.resident_code)

    def _commit(self, records: Sequence[identity_pb2.IdentityRecord]) -> AppliedRange:
        now = Timestamp()
        now.GetCurrentTime()
        try:
            applied = self._store.record_local_changes(str(self.node_id), records, now, check_local_transition)
        except ChangeRejected as exc:
            raise RequestRejected(_REJECTION_STATUS[exc.code], str(exc)) from exc
        self._on_recorded()
        return applied

    @guarded("terminals")
    def RecordChange(
        self, request: registry_pb2.RecordChangeRequest, context: grpc.ServicerContext, caller: Caller
    ) -> registry_pb2.RecordChangeResponse:
        record = request.record
        try:
            self._check([record])
            applied = self._commit([record])
        except RequestRejected as exc:
            context.abort(exc.status, str(exc))
        return registry_pb2.RecordChangeResponse(sequence=applied.first_sequence, record=record)

    @guarded("terminals")
    def RegisterResidents(
        self,
        request_iterator: Iterator[registry_pb2.RegisterResidentsRequest],
        context: grpc.ServicerContext,
        caller: Caller,
    ) -> registry_pb2.RegisterResidentsResponse:
        response = registry_pb2.RegisterResidentsResponse()
        for chunk in request_iterator:
            records = chunk.records
            if not records:
                continue
            try:
                if len(records) > MAX_CHUNK_RECORDS:
                    raise RequestRejected(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"{len(records)} records in one chunk; at most {MAX_CHUNK_RECORDS}",
                    )
                self._check(records, first_index=response.records)
                applied = self._commit(records)
            except RequestRejected as exc:
                done = (
                    f"; the {response.chunks} chunk(s) before it ({response.records} records) were committed"
                    if response.chunks
                    else "; nothing was stored"
                )
                context.abort(exc.status, f"chunk {response.chunks}: {exc}{done}")
            if not response.chunks:
                response.first_sequence = applied.first_sequence
            response.last_sequence = applied.last_sequence
            response.records += applied.count
            response.chunks += 1
        return response

    @guarded("terminals")
    def GetResident(
        self, request: registry_pb2.GetResidentRequest, context: grpc.ServicerContext, caller: Caller
    ) -> registry_pb2.GetResidentResponse:
        record = self._store.get_record(request.resident_code)
        if record is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no resident {request.resident_code!r} at {self.node_id}")
        return registry_pb2.GetResidentResponse(record=record)
