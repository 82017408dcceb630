"""Provision of identity information to agencies at the national server (別表第1).

Order of work on every lookup: who is calling (agency certificate), is (agency, business) a row of
the legal table, is the query well formed, is there a record; then the provision is written durably
to the provision log and the audit log (one transaction, group commit), and only then does the
answer (holding only the row's permitted fields) leave.
"""

from __future__ import annotations

import grpc

from jukinet.domain.codes import my_number_problem, resident_code_problem
from jukinet.domain.node_ids import NodeKind
from jukinet.node.audit import audit_entry
from jukinet.node.security import AnyOf, Caller, PeerAuthenticator, guarded
from jukinet.server.legal_table import LegalTable, TableRow
from jukinet.storage.node_store import NodeStore
from jukinet.v1 import admin_pb2, audit_pb2, identity_pb2, provision_pb2, provision_pb2_grpc

AGENCIES = AnyOf({NodeKind.AGENCY})
_PROVIDE = audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY
_SUCCESS = audit_pb2.AUDIT_OUTCOME_SUCCESS


class IdentityProvisionService(provision_pb2_grpc.IdentityProvisionServiceServicer):
    def __init__(self, authenticator: PeerAuthenticator, store: NodeStore, table: LegalTable) -> None:
        self.authenticator = authenticator
        self._store = store
        self._table = table
        self._queries = {
            "resident_code": (resident_code_problem, store.get_record),
            "my_number": (my_number_problem, store.find_by_my_number),
        }

    def _row(self, caller: Caller, business: str, context: grpc.ServicerContext) -> TableRow:
        agency = caller.of_kind(NodeKind.AGENCY)[0]
        row = self._table.row(agency.code, business)
        if row is None:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{agency} has no row in the legal table (別表第1) for business {business!r}",
            )
        return row

    def _provide(
        self,
        caller: Caller,
        row: TableRow,
        record: identity_pb2.IdentityRecord | None,
        query_kind: str,
        query: str,
        context: grpc.ServicerContext,
    ) -> tuple[identity_pb2.IdentityRecord, int]:
        if record is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no resident with {query_kind} {query}")
        entry = admin_pb2.ProvisionEntry(
            agency=str(caller.of_kind(NodeKind.AGENCY)[0]),
            business_code=row.business,
            resident_code=record.resident_code,
            query_kind=query_kind,
        )
        entry.provided_at.GetCurrentTime()

        def audit(provision_id: int) -> bytes:
            detail = f"provision #{provision_id}: {row.business} by {query_kind}"
            return audit_entry(_PROVIDE, _SUCCESS, entry.agency, entry.agency, record.resident_code, detail)

        provision_id = self._store.log_provision_durably(entry, audit)
        return row.redact(record), provision_id

    def _lookup(
        self,
        caller: Caller,
        business_code: str,
        query_kind: str,
        value: str,
        context: grpc.ServicerContext,
    ) -> tuple[identity_pb2.IdentityRecord, int]:
        row = self._row(caller, business_code, context)
        problem_of, find = self._queries[query_kind]
        problem = problem_of(value)
        if problem:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        shown = value if query_kind == "resident_code" else "(withheld)"
        return self._provide(caller, row, find(value), query_kind, shown, context)

    @guarded(AGENCIES)
    def LookupByResidentCode(
        self,
        request: provision_pb2.LookupByResidentCodeRequest,
        context: grpc.ServicerContext,
        caller: Caller,
    ) -> provision_pb2.LookupByResidentCodeResponse:
        record, pid = self._lookup(caller, request.business_code, "resident_code", request.resident_code, context)
        return provision_pb2.LookupByResidentCodeResponse(record=record, provision_id=pid)

    @guarded(AGENCIES)
    def LookupByMyNumber(
        self,
        request: provision_pb2.LookupByMyNumberRequest,
        context: grpc.ServicerContext,
        caller: Caller,
    ) -> provision_pb2.LookupByMyNumberResponse:
        record, pid = self._lookup(caller, request.business_code, "my_number", request.my_number, context)
        return provision_pb2.LookupByMyNumberResponse(record=record, provision_id=pid)
