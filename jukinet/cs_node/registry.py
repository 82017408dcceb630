"""Operator-facing RPCs of the CS: record one change, or register residents in bulk.

Callers are operator terminals of this municipality presenting an operator session with the role
'register-residents'. Each request (each chunk of a bulk registration) is validated whole and
committed in one transaction with its history, outbox and audit entries, or not at all; a refusal
is audited too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from jukinet.domain.node_ids import NodeId
from jukinet.domain.records import validate_record
from jukinet.domain.transitions import ChangeRejected, check_local_transition
from jukinet.node.audit import Auditor, audit_entry
from jukinet.node.security import Caller, OperatorWithRole, PeerAuthenticator, Refusal, guarded
from jukinet.storage.node_store import AppliedRange, NodeStore
from jukinet.v1 import audit_pb2, identity_pb2, registry_pb2, registry_pb2_grpc

MAX_CHUNK_RECORDS = 10_000
_RECORD_CHANGE = audit_pb2.AUDIT_ACTION_RECORD_CHANGE
_REGISTER = audit_pb2.AUDIT_ACTION_REGISTER_RESIDENTS
_GET_RESIDENT = audit_pb2.AUDIT_ACTION_GET_RESIDENT
_SUCCESS = audit_pb2.AUDIT_OUTCOME_SUCCESS
_REJECTION_STATUS = {
    "already_exists": grpc.StatusCode.ALREADY_EXISTS,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "failed_precondition": grpc.StatusCode.FAILED_PRECONDITION,
}


class RequestRejected(Refusal):
    """A registration request (or chunk) that stores nothing."""


class ResidentRegistryService(registry_pb2_grpc.ResidentRegistryServiceServicer):
    def __init__(
        self,
        node_id: NodeId,
        authenticator: PeerAuthenticator,
        store: NodeStore,
        auditor: Auditor,
        on_recorded: Callable[[], None],
    ) -> None:
        self.node_id = node_id
        self.authenticator = authenticator
        self.auditor = auditor
        self.registrars = OperatorWithRole("register-residents", {node_id.code})
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

    def _commit(self, records: Sequence[identity_pb2.IdentityRecord], caller: Caller, action: int) -> AppliedRange:
        now = Timestamp()
        now.GetCurrentTime()
        target = records[0].resident_code if len(records) == 1 else f"{len(records)} residents"

        def audit(applied: AppliedRange) -> bytes:
            detail = f"notices {self.node_id}#{applied.first_sequence}..{applied.last_sequence}"
            if len(records) == 1:
                detail += f"; {identity_pb2.ChangeReason.Name(records[0].change_reason)}"
            return audit_entry(action, _SUCCESS, caller.actor, str(caller.primary), target, detail)

        try:
            applied = self._store.record_local_changes(
                str(self.node_id), records, now, check_local_transition, audit_leaf=audit
            )
        except ChangeRejected as exc:
            raise RequestRejected(_REJECTION_STATUS[exc.code], str(exc)) from exc
        self._on_recorded()
        return applied

    def _reject(self, context, caller: Caller, action: int, target: str, exc: RequestRejected, message: str) -> None:
        self.auditor.record(action, audit_pb2.AUDIT_OUTCOME_FAILED, caller, target, f"{exc.status.name}: {message}")
        context.abort(exc.status, message)

    @guarded("registrars", audit=_RECORD_CHANGE)
    def RecordChange(
        self, request: registry_pb2.RecordChangeRequest, context: grpc.ServicerContext, caller: Caller
    ) -> registry_pb2.RecordChangeResponse:
        record = request.record
        try:
            self._check([record])
            applied = self._commit([record], caller, _RECORD_CHANGE)
        except RequestRejected as exc:
            self._reject(context, caller, _RECORD_CHANGE, record.resident_code, exc, str(exc))
        return registry_pb2.RecordChangeResponse(sequence=applied.first_sequence, record=record)

    @guarded("registrars", audit=_REGISTER)
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
                applied = self._commit(records, caller, _REGISTER)
            except RequestRejected as exc:
                done = (
                    f"; the {response.chunks} chunk(s) before it ({response.records} records) were committed"
                    if response.chunks
                    else "; nothing was stored"
                )
                self._reject(
                    context, caller, _REGISTER, f"chunk {response.chunks}", exc, f"chunk {response.chunks}: {exc}{done}"
                )
            if not response.chunks:
                response.first_sequence = applied.first_sequence
            response.last_sequence = applied.last_sequence
            response.records += applied.count
            response.chunks += 1
        return response

    @guarded("registrars", audit=_GET_RESIDENT)
    def GetResident(
        self, request: registry_pb2.GetResidentRequest, context: grpc.ServicerContext, caller: Caller
    ) -> registry_pb2.GetResidentResponse:
        record = self._store.get_record(request.resident_code)
        if record is None:
            message = f"no resident {request.resident_code!r} at {self.node_id}"
            self._reject(context, caller, _GET_RESIDENT, request.resident_code,
                         RequestRejected(grpc.StatusCode.NOT_FOUND, message), message)  # fmt: skip
        self.auditor.record(_GET_RESIDENT, _SUCCESS, caller, request.resident_code)
        return registry_pb2.GetResidentResponse(record=record)
