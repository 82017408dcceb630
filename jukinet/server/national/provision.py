"""Provision of identity information to agencies at the national server (別表第1).

Order of work on every lookup: who is calling (agency certificate), is (agency, business) a row of
the legal table, is the query well formed, is there a record; then the provision is written durably
to the provision log and the audit log (one transaction, group commit), and only then does the answer
(holding only the row's permitted fields) leave.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import lmdb

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.codes import MyNumber, ResidentCode
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.quoting import quoted
from jukinet.server.audit import Auditor
from jukinet.server.national.batch import BatchLookups
from jukinet.server.national.legal_table import LegalTable, TableRow
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import Kinds
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.storage import NodeStorage
from jukinet.v1 import admin_pb2, audit_pb2, identity_pb2, provision_pb2, provision_pb2_grpc

Q = admin_pb2


@dataclass(frozen=True)
class Provided:
    record: identity_pb2.IdentityRecord  # redacted to the row's fields
    provision_id: int


class Provision:
    def __init__(self, storage: NodeStorage, table: LegalTable, auditor: Auditor, clock: Clock = SYSTEM_CLOCK) -> None:
        self._storage = storage
        self._table = table
        self._auditor = auditor
        self._clock = clock

    def by_resident_code(self, agency: NodeId, business: str, resident_code: str) -> Provided:
        row = self._row(agency, business)
        code = ResidentCode.parse(resident_code)
        record = self._storage.records.get(str(code))
        if record is None:
            raise Rejected(Problem.NOT_FOUND, f"no resident with resident_code {code}")
        return Provided(row.redact(record), self._log(agency, row, record, Q.QUERY_KIND_RESIDENT_CODE))

    def by_my_number(self, agency: NodeId, business: str, my_number: str) -> Provided:
        row = self._row(agency, business)
        number = MyNumber.parse(my_number)
        record = self._storage.records.find_by_my_number(str(number))
        if record is None:
            raise Rejected(Problem.NOT_FOUND, "no resident with my_number (withheld)")
        return Provided(row.redact(record), self._log(agency, row, record, Q.QUERY_KIND_MY_NUMBER))

    def _row(self, agency: NodeId, business: str) -> TableRow:
        row = self._table.row(agency.corporate_number, business)
        if row is None:
            raise Rejected(
                Problem.DENIED, f"{agency} has no row in the legal table (別表第1) for business {quoted(business)}"
            )
        return row

    def _log(self, agency: NodeId, row: TableRow, record: identity_pb2.IdentityRecord, kind: int) -> int:
        """Commit the provision entry and its audit entry durably (group commit); returns the provision id."""
        entry = admin_pb2.ProvisionEntry(
            agency=str(agency),
            business_code=row.business,
            resident_code=record.resident_code,
            query_kind=kind,
            items=sorted(row.fields),
        )
        entry.provided_at.FromMilliseconds(self._clock.now_ms())
        how = admin_pb2.QueryKind.Name(kind).removeprefix("QUERY_KIND_").lower()

        def commit(txn: lmdb.Transaction) -> int:
            provision_id = self._storage.provisions.append(txn, entry)
            leaf = self._auditor.entry(
                audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY,
                audit_pb2.AUDIT_OUTCOME_SUCCESS,
                entry.agency,
                entry.agency,
                record.resident_code,
                f"provision #{provision_id}: {row.business} by {how}",
            )
            self._storage.audit.append(txn, leaf)
            return provision_id

        return self._storage.env.submit(commit).result()


class ProvisionRpc(provision_pb2_grpc.IdentityProvisionServiceServicer):
    def __init__(self, provision: Provision, blocking: Blocking, batches: BatchLookups | None = None) -> None:
        self._provision = provision
        self._batches = batches
        self.blocking = blocking
        self.agencies = Kinds.of(NodeKind.AGENCY)

    @guarded("agencies")
    def LookupByResidentCode(
        self, request: provision_pb2.LookupByResidentCodeRequest, caller: Caller
    ) -> provision_pb2.LookupByResidentCodeResponse:
        agency = caller.of_kind(NodeKind.AGENCY)[0]
        provided = self._provision.by_resident_code(agency, request.business_code, request.resident_code)
        return provision_pb2.LookupByResidentCodeResponse(record=provided.record, provision_id=provided.provision_id)

    @guarded("agencies")
    def LookupByMyNumber(
        self, request: provision_pb2.LookupByMyNumberRequest, caller: Caller
    ) -> provision_pb2.LookupByMyNumberResponse:
        agency = caller.of_kind(NodeKind.AGENCY)[0]
        provided = self._provision.by_my_number(agency, request.business_code, request.my_number)
        return provision_pb2.LookupByMyNumberResponse(record=provided.record, provision_id=provided.provision_id)

    @guarded("agencies")
    async def BatchLookup(
        self,
        request_iterator: AsyncIterator[provision_pb2.BatchLookupRequest],
        context: grpc.aio.ServicerContext,
        caller: Caller,
    ) -> AsyncIterator[provision_pb2.BatchLookupResponse]:
        """Batch queries (定期照会): jukinet.server.national.batch."""
        if self._batches is None:
            raise Rejected(Problem.UNAVAILABLE, "this node serves no batch queries")
        async for answer in self._batches.serve(request_iterator, caller.of_kind(NodeKind.AGENCY)[0]):
            yield answer


def provision_service(parts: NodeParts) -> ServiceBinding:
    """The national tier's agency service (see jukinet.server.assembly.TIERS)."""
    if parts.config.legal_table is None:
        raise Rejected(Problem.BROKEN, "the national server needs a legal table")
    table = LegalTable.load(parts.config.legal_table)
    provision = Provision(parts.storage, table, parts.auditor, parts.clock)
    batches = BatchLookups(parts.storage, table, parts.auditor, parts.bulk, parts.clock)
    return bind(ProvisionRpc(provision, parts.blocking, batches))
