"""Provision of identity information to agencies, under the legal tables of the network directory (the
lookups both tiers serve; each tier's builder is :mod:`jukinet.server.national.provision` and
:mod:`jukinet.server.prefecture.provision`).

The national server provides under 別表第1; each prefecture server under its own prefectures' 別表第5 and
別表第6, from the records it holds for their municipalities.
Order of work on every lookup: who is calling (agency certificate), the tables of the directory held
when the call starts (the whole call decides with them), is (agency, business) a row of them, is the
query well formed, may the row's business ask this way (by My Number only where the row permits
``my_number``; by agency identifier only where the row names residents so), is there a record (within
the row's prefecture, at a prefecture server); then the provision is written durably to the provision
log and the audit log (one transaction, group commit), and only then does the answer (holding only the
row's permitted fields, and the agency identifier instead of the numbers where the row says so) leave.
Refusals are audited (counted, for agencies: :mod:`jukinet.server.refusals`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import lmdb

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.codes import MyNumber, ResidentCode
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.legal import NATIONAL_TABLE, LegalTables, TableRow, agency_identifier_problem
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.quoting import quoted
from jukinet.server.audit import Auditor
from jukinet.server.national.agency_identifiers import AgencyIdentifiers
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import Kinds
from jukinet.storage import NodeStorage
from jukinet.v1 import admin_pb2, audit_pb2, identity_pb2, provision_pb2, provision_pb2_grpc

Q = admin_pb2


@dataclass(frozen=True)
class Provided:
    record: identity_pb2.IdentityRecord  # redacted to the row's fields
    provision_id: int
    agency_identifier: str = ""  # where the row names residents by agency identifier


class Scope:
    """Which rows a server provides under, and which records each row reaches: the national server's."""

    tables = NATIONAL_TABLE

    def rows(self, tables: LegalTables, agency: NodeId, business: str) -> list[TableRow]:
        row = tables.national(agency.corporate_number, business)
        return [row] if row is not None else []

    def row_for(self, rows: Sequence[TableRow], record: identity_pb2.IdentityRecord) -> TableRow | None:
        return rows[0] if rows else None


class Provision:
    def __init__(
        self,
        storage: NodeStorage,
        tables: Callable[[], LegalTables],
        auditor: Auditor,
        clock: Clock = SYSTEM_CLOCK,
        scope: Scope | None = None,
        identifiers: AgencyIdentifiers | None = None,
    ) -> None:
        self._storage = storage
        self._tables = tables
        self._auditor = auditor
        self._clock = clock
        self._scope = scope or Scope()
        self._identifiers = identifiers

    def by_resident_code(self, agency: NodeId, business: str, resident_code: str) -> Provided:
        rows = self._rows(agency, business)
        code = ResidentCode.parse(resident_code)
        rows = [r for r in rows if r.permits("resident_code")]
        if not rows:  # else a code would be an oracle: does it exist, which My Number or identifier is it
            raise Rejected(
                Problem.DENIED,
                f"{agency} may not look residents up by 住民票コード for business {quoted(business)}: its row of the "
                f"legal table ({self._scope.tables}) does not permit resident_code (a row naming residents by "
                "agency identifier asks by that identifier, or by four items)",
            )
        record = self._storage.records.get(str(code))
        row = self._scope.row_for(rows, record) if record is not None else None
        if record is None or row is None:
            raise Rejected(Problem.NOT_FOUND, f"no resident with resident_code {code}")
        return self._provide(agency, row, record, Q.QUERY_KIND_RESIDENT_CODE)

    def by_my_number(self, agency: NodeId, business: str, my_number: str) -> Provided:
        rows = self._rows(agency, business)
        number = MyNumber.parse(my_number)
        rows = [r for r in rows if r.permits("my_number")]
        if not rows:
            raise Rejected(
                Problem.DENIED,
                f"{agency} may not look residents up by My Number for business {quoted(business)}: its row of "
                f"the legal table ({self._scope.tables}) does not permit my_number",
            )
        record = self._storage.records.find_by_my_number(str(number))
        row = self._scope.row_for(rows, record) if record is not None else None
        if record is None or row is None:
            raise Rejected(Problem.NOT_FOUND, "no resident with my_number (withheld)")
        return self._provide(agency, row, record, Q.QUERY_KIND_MY_NUMBER)

    def by_agency_identifier(self, agency: NodeId, business: str, identifier: str) -> Provided:
        rows = self._rows(agency, business)
        problem = agency_identifier_problem(identifier)
        if problem:
            raise Rejected(Problem.INVALID, problem)
        rows = [r for r in rows if r.pseudonymous]
        if not rows or self._identifiers is None:
            raise Rejected(
                Problem.DENIED,
                f"{agency}'s business {quoted(business)} does not name residents by agency identifier "
                f"(its row of the legal table, {self._scope.tables}, names them by resident_code)",
            )
        code = self._identifiers.resolve(agency, identifier)
        record = self._storage.records.get(code) if code is not None else None
        row = self._scope.row_for(rows, record) if record is not None else None
        if record is None or row is None:  # another agency's identifier answers as a made-up one does
            raise Rejected(Problem.NOT_FOUND, f"no resident with agency_identifier {identifier} for {agency}")
        return self._provide(agency, row, record, Q.QUERY_KIND_AGENCY_IDENTIFIER, identifier)

    def row(self, agency: NodeId, business: str) -> TableRow:
        """The one row (agency, business) provides under here, or DENIED: the first check of the four-item
        search, the batch stream and subscriptions (national tier: one row per agency and business)."""
        return self._rows(agency, business)[0]

    def _rows(self, agency: NodeId, business: str) -> list[TableRow]:
        rows = self._scope.rows(self._tables(), agency, business)
        if not rows:
            raise Rejected(
                Problem.DENIED,
                f"{agency} has no row in the legal table ({self._scope.tables}) for business {quoted(business)}",
            )
        return rows

    def _provide(
        self, agency: NodeId, row: TableRow, record: identity_pb2.IdentityRecord, kind: int, identifier: str = ""
    ) -> Provided:
        if row.pseudonymous and not identifier:
            if self._identifiers is None:  # Directory.from_message refuses such rows outside 別表第1
                raise Rejected(Problem.BROKEN, f"{row.table} row of {row.business} names no agency identifiers here")
            identifier = self._identifiers.for_codes(agency, [record.resident_code])[record.resident_code]
        redacted = row.redact(record)
        return Provided(redacted, self._log(agency, row, record, kind), identifier if row.pseudonymous else "")

    def _log(self, agency: NodeId, row: TableRow, record: identity_pb2.IdentityRecord, kind: int) -> int:
        """Commit the provision entry and its audit entry durably (group commit); returns the provision id."""
        entry = admin_pb2.ProvisionEntry(
            agency=str(agency),
            business_code=row.business,
            resident_code=record.resident_code,
            query_kind=kind,
            items=row.items(),
        )
        entry.provided_at.FromMilliseconds(self._clock.now_ms())
        how = admin_pb2.QueryKind.Name(kind).removeprefix("QUERY_KIND_").lower()
        whose = f" ({row.table} of {row.prefecture})" if row.prefecture else ""

        detail = f"{row.business}{whose} by {how}"
        return self._storage.env.submit(
            lambda txn: log_provision(self._storage, self._auditor, txn, entry, detail)
        ).result()


def log_provision(
    storage: NodeStorage, auditor: Auditor, txn: lmdb.Transaction, entry: admin_pb2.ProvisionEntry, detail: str
) -> int:
    """Append ``entry`` to the provision log and its audit entry ("provision #<id>: ``detail``"), both inside
    ``txn`` (the answer leaves after it commits); returns the provision id. Lookups and searches log each
    record so; the bulk paths (batch, push) append a chunk at once (``ProvisionLog.append_provided``)."""
    provision_id = storage.provisions.append(txn, entry)
    leaf = auditor.entry(
        audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY,
        audit_pb2.AUDIT_OUTCOME_SUCCESS,
        entry.agency,
        entry.agency,
        entry.resident_code,
        f"provision #{provision_id}: {detail}",
    )
    storage.audit.append(txn, leaf)
    return provision_id


class ProvisionRpc(provision_pb2_grpc.IdentityProvisionServiceServicer):
    def __init__(self, provision: Provision, auditor: Auditor, blocking: Blocking) -> None:
        self._provision = provision
        self.auditor = auditor
        self.blocking = blocking
        self.agencies = Kinds.of(NodeKind.AGENCY)

    @guarded("agencies", audit=audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY)
    def LookupByResidentCode(
        self, request: provision_pb2.LookupByResidentCodeRequest, caller: Caller
    ) -> provision_pb2.LookupByResidentCodeResponse:
        agency = caller.of_kind(NodeKind.AGENCY)[0]
        provided = self._provision.by_resident_code(agency, request.business_code, request.resident_code)
        return provision_pb2.LookupByResidentCodeResponse(
            record=provided.record, provision_id=provided.provision_id, agency_identifier=provided.agency_identifier
        )

    @guarded("agencies", audit=audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY)
    def LookupByMyNumber(
        self, request: provision_pb2.LookupByMyNumberRequest, caller: Caller
    ) -> provision_pb2.LookupByMyNumberResponse:
        agency = caller.of_kind(NodeKind.AGENCY)[0]
        provided = self._provision.by_my_number(agency, request.business_code, request.my_number)
        return provision_pb2.LookupByMyNumberResponse(record=provided.record, provision_id=provided.provision_id)

    @guarded("agencies", audit=audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY)
    def LookupByAgencyIdentifier(
        self, request: provision_pb2.LookupByAgencyIdentifierRequest, caller: Caller
    ) -> provision_pb2.LookupByAgencyIdentifierResponse:
        agency = caller.of_kind(NodeKind.AGENCY)[0]
        provided = self._provision.by_agency_identifier(agency, request.business_code, request.agency_identifier)
        return provision_pb2.LookupByAgencyIdentifierResponse(
            record=provided.record, provision_id=provided.provision_id, agency_identifier=provided.agency_identifier
        )
