"""住民票の写しの広域交付 at a CS: both ends of a copy, and the DV support measures that refuse one.

At the counter of any CS (the requesting CS), an operator with the role 'issue-copies' sends the request
the terminal encoded and the resident's card presentation over it (:class:`CopyCounter`). The requesting
CS calls the resident's home CS directly over mutual TLS (``CopyExchangeService.IssueCopy``, served by
every CS to the other CS nodes only), verifies the signed copy it gets back — signed by a node certificate
naming the home CS (chain, validity, revocation), answering exactly this request, a record of the home
CS's municipality, holding 住民票コード or 個人番号 only if asked — and only then answers the terminal.

At the home CS (:class:`CopyIssuer`): the caller is another CS and names itself as the requesting CS; the
request is fresh; the card presentation verifies and the card belongs to the resident, who is a current
resident of this CS; no DV support measure refuses the requesting CS; the request was not answered
before. Then, in ONE transaction, the copy's serial, the issuance log entry and the audit entry; then the
token signs the copy. A DV refusal is answered PERMISSION_DENIED with a message that says nothing of the
person or the measure, and audited here in full.

DV support measures (:class:`DvMeasures`, role 'manage-dv-measures', every call audited) are registered,
listed and removed by an operator at the home CS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import grpc
import lmdb
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.clients.transport import Keepalive, channel_options
from jukinet.cs_node.copy_cards import resident_cards
from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.codes import resident_code_problem
from jukinet.domain.copies import (
    MAX_DV_MEASURES_PER_RESIDENT,
    REQUEST_FRESH_MS,
    certified_copy,
    check_fresh,
    copy_problem,
    dv_measure,
    parse_request,
    refusing_measure,
    request_digest,
)
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_CERTIFIED_COPY_BYTES
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.operators import Role
from jukinet.pki import Signer, TrustStore, open_certified, seal
from jukinet.server.audit import Auditor
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import AlreadyAudited, guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import OperatorWithRole, OtherNodes, TerminalOf
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, cards_pb2, copies_pb2, copies_pb2_grpc, envelope_pb2, identity_pb2

A = audit_pb2
C = copies_pb2
SUCCESS = A.AUDIT_OUTCOME_SUCCESS
EXCHANGE_TIMEOUT_S = 10.0
MAX_ISSUANCES_PER_PAGE = 1000
DV_REFUSAL = (
    "no copy of this record is issued by 広域交付; the resident may apply at the counter of their home municipality"
)
"""What a DV refusal says: nothing of the person, the measure, or whom it protects against."""


class ResidentCards(Protocol):
    """What the home CS needs of resident cards (the cards part: presentation check and holder store)."""

    def presented(self, card: cards_pb2.CardPresentation, home: NodeId, request: bytes) -> str:
        """The serial of the card that signed ``request`` for ``home`` (fresh, once); Rejected
        (UNAUTHENTICATED) otherwise."""
        ...

    def holder(self, txn: lmdb.Transaction, card_serial: str) -> str | None:
        """The 住民票コード of the card's holder if the card may be presented here now (issued, not
        suspended or revoked), else None."""
        ...


def _items(request: C.CopyRequest) -> str:
    asked = [name for name, on in (("住民票コード", request.include_resident_code),
                                    ("個人番号", request.include_my_number)) if on]  # fmt: skip
    return "identity items, 世帯主, 続柄" + "".join(f", {a}" for a in asked)


# -- the home CS ----------------------------------------------------------------------------------------


class CopyIssuer:
    """Issues copies of this CS's residents to other CS nodes (see the module docstring)."""

    def __init__(
        self,
        node_id: NodeId,
        storage: NodeStorage,
        auditor: Auditor,
        signer: Signer,
        certificate_der: bytes,
        cards: ResidentCards,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.node_id = node_id
        self._storage = storage
        self._auditor = auditor
        self._signer = signer
        self._certificate_der = certificate_der
        self._cards = cards
        self._clock = clock

    def issue(self, raw: bytes, card: cards_pb2.CardPresentation, caller: Caller) -> envelope_pb2.Signed:
        """The signed copy answering ``raw`` (a CopyRequest), logged before it is returned."""
        request = parse_request(raw)
        if request.home_cs != str(self.node_id):
            raise Rejected(Problem.INVALID, f"home_cs: the request is for {request.home_cs}; this is {self.node_id}")
        requesting = NodeId.parse(request.requesting_cs)
        if requesting not in caller.node_ids:
            raise Rejected(
                Problem.DENIED, f"the request names {requesting} as the requesting CS, but {caller.identity} sent it"
            )
        check_fresh(request, self._clock.now_ms())
        card_serial = self._cards.presented(card, self.node_id, raw)
        digest = request_digest(raw)
        s = self._storage

        def issue(txn: lmdb.Transaction) -> C.CertifiedCopy:
            resident = self._resident(txn, request, card_serial)
            now = self._clock.now_ms()
            if s.copies.answered(txn, resident.resident_code, digest, now - 2 * REQUEST_FRESH_MS):
                raise Rejected(Problem.ALREADY_EXISTS, "this request was answered already; a new request is needed")
            measure = refusing_measure(s.dv_measures.of(txn, resident.resident_code), requesting)
            if measure is not None:
                raise _DvRefused(measure, resident.resident_code)
            serial = s.copies.next_serial(txn)
            copy = certified_copy(resident, s.local.current(txn, resident.resident_code), request, digest, serial, now)
            issuance = C.CopyIssuance(
                serial=serial,
                resident_code=resident.resident_code,
                requesting_cs=request.requesting_cs,
                resident_code_included=bool(copy.resident_code),
                my_number_included=bool(copy.my_number),
                request_sha256=digest,
            )
            issuance.issued_at.CopyFrom(copy.issued_at)
            s.copies.append(txn, issuance)
            detail = f"copy {self.node_id}#{serial} to {requesting}: {_items(request)}"
            self._auditor.append(txn, A.AUDIT_ACTION_COPY_ISSUE, SUCCESS, caller, resident.resident_code, detail)
            return copy

        try:
            copy = s.env.submit(issue).result()
        except _DvRefused as refused:
            detail = f"refused by DV support measure #{refused.measure.measure_id} to {requesting}"
            outcome = A.AUDIT_OUTCOME_DENIED
            self._auditor.record(A.AUDIT_ACTION_COPY_ISSUE, outcome, caller, refused.resident_code, detail)
            raise AlreadyAudited(Problem.DENIED, DV_REFUSAL) from None
        return seal(self._signer, copy, self._certificate_der)  # after the log: never a copy that is not logged

    def _resident(self, txn: lmdb.Transaction, request: C.CopyRequest, card_serial: str) -> identity_pb2.IdentityRecord:
        holder = self._cards.holder(txn, card_serial)
        if holder is None:
            raise Rejected(
                Problem.UNAUTHENTICATED,
                f"the card presented is not a card of a resident of {self.node_id} that may be presented now",
            )
        if request.resident_code and request.resident_code != holder:
            raise Rejected(Problem.DENIED, "the card presented is not the card of the resident whose copy is asked")
        record = self._storage.records.current(txn, holder)
        if record is None:
            raise Rejected(Problem.NOT_FOUND, f"no resident {holder} at {self.node_id}")
        here = record.address.municipality_code == self.node_id.code
        if not (here and record.status == identity_pb2.RECORD_STATUS_ACTIVE):
            raise Rejected(
                Problem.CONFLICT,
                f"{holder} is not a current resident of {self.node_id} (a 除票): a copy of a 除票 is issued "
                "at the counter of the municipality that keeps it, not by 広域交付",
            )
        return record


class IssuanceDisclosure:
    """A resident's copies issued by this CS: when, and to which CS (for the resident's disclosure request)."""

    def __init__(self, node_id: NodeId, storage: NodeStorage, auditor: Auditor) -> None:
        self.node_id = node_id
        self._storage = storage
        self._auditor = auditor

    def issuances(self, resident_code: str, after_serial: int, limit: int, caller: Caller) -> list[C.CopyIssuance]:
        """A resident's copies issued (disclosure: when, and to which CS); the read is audited."""
        code = _resident_code(resident_code)
        limit = limit or 100
        if limit > MAX_ISSUANCES_PER_PAGE:
            raise Rejected(Problem.INVALID, f"limit: {limit} is over {MAX_ISSUANCES_PER_PAGE}")
        page = self._storage.copies.page(code, after_serial, limit)
        detail = f"{len(page)} copies issued after #{after_serial}"
        self._auditor.record(A.AUDIT_ACTION_COPY_ISSUANCES_LIST, SUCCESS, caller, code, detail)
        return page


class _DvRefused(Exception):
    def __init__(self, measure: C.DvMeasure, resident_code: str) -> None:
        super().__init__("refused by a DV support measure")
        self.measure = measure
        self.resident_code = resident_code


def _resident_code(text: str) -> str:
    problem = resident_code_problem(text)
    if problem is not None:
        raise Rejected(Problem.INVALID, f"resident_code: {problem}")
    return text


# -- the requesting CS ----------------------------------------------------------------------------------

Exchange = Callable[[NodeId, C.IssueCopyRequest], Awaitable[C.IssueCopyResponse]]
"""Calls IssueCopy at a home CS (raises grpc.aio.AioRpcError as the call does)."""


Addresses = Callable[[NodeId], str]
"""Where a node listens, or Rejected (the shape of the network directory's PeerDirectory.address)."""


def exchange_over(addresses: Addresses, credentials: grpc.ChannelCredentials, keepalive: Keepalive) -> Exchange:
    """IssueCopy over mutual TLS, to the address ``addresses`` gives, expecting the home CS's own TLS name
    (a server whose certificate names anyone else fails the handshake). One channel per copy: a counter
    asks at human speed."""

    async def call(home: NodeId, request: C.IssueCopyRequest) -> C.IssueCopyResponse:
        address = addresses(home)
        async with grpc.aio.secure_channel(address, credentials, options=channel_options(home, keepalive)) as ch:
            stub = copies_pb2_grpc.CopyExchangeServiceStub(ch)
            return await stub.IssueCopy(request, timeout=EXCHANGE_TIMEOUT_S)

    return call


_FROM_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: Problem.INVALID,
    grpc.StatusCode.UNAUTHENTICATED: Problem.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED: Problem.DENIED,
    grpc.StatusCode.NOT_FOUND: Problem.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: Problem.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION: Problem.CONFLICT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Problem.EXHAUSTED,
}
"""The home CS's refusal, passed on to the terminal as the same status; anything else: UNAVAILABLE."""


@dataclass(frozen=True)
class Verified:
    signed: envelope_pb2.Signed
    copy: C.CertifiedCopy


class CopyCounter:
    """Asks home CS nodes for copies and verifies them before the terminal sees them."""

    def __init__(
        self,
        node_id: NodeId,
        trust: TrustStore,
        auditor: Auditor,
        blocking: Blocking,
        exchange: Exchange,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.node_id = node_id
        self._trust = trust
        self._auditor = auditor
        self._blocking = blocking
        self._exchange = exchange
        self._clock = clock

    async def request(self, raw: bytes, card: cards_pb2.CardPresentation, caller: Caller) -> Verified:
        request = parse_request(raw)
        if request.requesting_cs != str(self.node_id):
            raise Rejected(
                Problem.INVALID, f"requesting_cs: the request names {request.requesting_cs}; this is {self.node_id}"
            )
        check_fresh(request, self._clock.now_ms())
        home = NodeId.parse(request.home_cs)
        try:
            answer = await self._exchange(home, C.IssueCopyRequest(request=raw, card=card))
        except grpc.aio.AioRpcError as exc:
            problem = _FROM_STATUS.get(exc.code(), Problem.UNAVAILABLE)
            raise Rejected(problem, f"{home} refused the copy: {exc.details()}") from None
        verified = await self._blocking(self.verify, answer.copy, request, raw)
        target = request.resident_code or "the card's holder"
        detail = f"copy {home}#{verified.copy.serial} verified: {_items(request)}"
        await self._blocking(self._auditor.record, A.AUDIT_ACTION_COPY_REQUEST, SUCCESS, caller, target, detail)
        return verified

    def verify(self, signed: envelope_pb2.Signed, request: C.CopyRequest, raw: bytes) -> Verified:
        """The copy, if it is the home CS's signed answer to exactly this request; Rejected
        (UNAUTHENTICATED, "not printed") otherwise."""
        home = NodeId.parse(request.home_cs)

        def refused(why: str) -> Rejected:
            return Rejected(Problem.UNAUTHENTICATED, f"the copy from {home} does not verify: {why}; it was not printed")

        if len(signed.payload) > MAX_CERTIFIED_COPY_BYTES:
            raise refused(f"it is {len(signed.payload)} bytes; at most {MAX_CERTIFIED_COPY_BYTES}")
        try:
            copy, _ = open_certified(signed, C.CertifiedCopy, self._trust, home)
        except Rejected as exc:
            raise refused(str(exc)) from None
        problem = copy_problem(copy, request, request_digest(raw), len(signed.payload))
        if problem is not None:
            raise refused(problem)
        return Verified(signed, copy)


# -- DV support measures ---------------------------------------------------------------------------------


class DvMeasures:
    """DV support measures of this CS's residents: registered, listed and removed by an operator, audited."""

    def __init__(self, node_id: NodeId, storage: NodeStorage, auditor: Auditor, clock: Clock = SYSTEM_CLOCK) -> None:
        self.node_id = node_id
        self._storage = storage
        self._auditor = auditor
        self._clock = clock

    def register(self, request: C.RegisterDvMeasureRequest, caller: Caller) -> C.DvMeasure:
        scope, municipalities = dv_measure(request.resident_code, request.scope, request.municipalities)
        s = self._storage

        def register(txn: lmdb.Transaction) -> C.DvMeasure:
            record = s.records.current(txn, request.resident_code)
            if record is None or record.address.municipality_code != self.node_id.code:
                raise Rejected(Problem.NOT_FOUND, f"no resident {request.resident_code} at {self.node_id}")
            if len(s.dv_measures.of(txn, request.resident_code)) >= MAX_DV_MEASURES_PER_RESIDENT:
                raise Rejected(
                    Problem.EXHAUSTED,
                    f"{request.resident_code} has {MAX_DV_MEASURES_PER_RESIDENT} measures already; remove one first",
                )
            measure = C.DvMeasure(
                resident_code=request.resident_code,
                scope=scope,  # type: ignore[arg-type]
                municipalities=municipalities,
                registered_by=caller.actor,
            )
            measure.registered_at.FromMilliseconds(self._clock.now_ms())
            s.dv_measures.add(txn, measure)
            detail = f"measure #{measure.measure_id}: {_scope(measure)}"
            self._auditor.append(
                txn, A.AUDIT_ACTION_DV_MEASURE_REGISTER, SUCCESS, caller, request.resident_code, detail
            )
            return measure

        return s.env.submit(register).result()

    def list(self, resident_code: str, caller: Caller) -> list[C.DvMeasure]:
        code = _resident_code(resident_code)
        measures = self._storage.dv_measures.get(code)
        self._auditor.record(A.AUDIT_ACTION_DV_MEASURE_LIST, SUCCESS, caller, code, f"{len(measures)} measures")
        return measures

    def remove(self, resident_code: str, measure_id: int, caller: Caller) -> C.DvMeasure:
        code = _resident_code(resident_code)
        s = self._storage

        def remove(txn: lmdb.Transaction) -> C.DvMeasure:
            measure = s.dv_measures.remove(txn, code, measure_id)
            if measure is None:
                raise Rejected(Problem.NOT_FOUND, f"{code} has no DV support measure #{measure_id}")
            detail = f"measure #{measure_id} removed: {_scope(measure)}"
            self._auditor.append(txn, A.AUDIT_ACTION_DV_MEASURE_REMOVE, SUCCESS, caller, code, detail)
            return measure

        return s.env.submit(remove).result()


def _scope(measure: C.DvMeasure) -> str:
    if measure.scope == C.DV_SCOPE_ALL_REQUESTS:
        return "all 広域交付 requests"
    return "requests from " + ", ".join(measure.municipalities)


# -- the RPC edge ---------------------------------------------------------------------------------------


class CertifiedCopyRpc(copies_pb2_grpc.CertifiedCopyServiceServicer):
    def __init__(
        self, counter: CopyCounter, disclosure: IssuanceDisclosure, auditor: Auditor, blocking: Blocking
    ) -> None:
        self._counter = counter
        self._disclosure = disclosure
        self.auditor = auditor
        self.blocking = blocking
        terminals = TerminalOf.of_nodes([counter.node_id])
        self.clerks = OperatorWithRole(terminals, Role.ISSUE_COPIES)
        self.disclosure = OperatorWithRole(terminals, Role.ANSWER_DISCLOSURE)

    @guarded("clerks", audit=A.AUDIT_ACTION_COPY_REQUEST)
    async def RequestCopy(
        self, request: C.RequestCopyRequest, context: grpc.aio.ServicerContext, caller: Caller
    ) -> C.RequestCopyResponse:
        verified = await self._counter.request(request.request, request.card, caller)
        return C.RequestCopyResponse(copy=verified.signed, certified_copy=verified.copy)

    @guarded("disclosure", audit=A.AUDIT_ACTION_COPY_ISSUANCES_LIST)
    def ListCopyIssuances(self, request: C.ListCopyIssuancesRequest, caller: Caller) -> C.ListCopyIssuancesResponse:
        page = self._disclosure.issuances(request.resident_code, request.after_serial, request.limit, caller)
        return C.ListCopyIssuancesResponse(issuances=page)


class CopyExchangeRpc(copies_pb2_grpc.CopyExchangeServiceServicer):
    def __init__(self, issuer: CopyIssuer, auditor: Auditor, blocking: Blocking) -> None:
        self._issuer = issuer
        self.auditor = auditor
        self.blocking = blocking
        self.other_cs = OtherNodes(NodeKind.CS, frozenset({issuer.node_id}))

    @guarded("other_cs", audit=A.AUDIT_ACTION_COPY_ISSUE)
    def IssueCopy(self, request: C.IssueCopyRequest, caller: Caller) -> C.IssueCopyResponse:
        return C.IssueCopyResponse(copy=self._issuer.issue(request.request, request.card, caller))


class DvMeasureRpc(copies_pb2_grpc.DvMeasureServiceServicer):
    def __init__(self, measures: DvMeasures, auditor: Auditor, blocking: Blocking) -> None:
        self._measures = measures
        self.auditor = auditor
        self.blocking = blocking
        self.managers = OperatorWithRole(TerminalOf.of_nodes([measures.node_id]), Role.MANAGE_DV_MEASURES)

    @guarded("managers", audit=A.AUDIT_ACTION_DV_MEASURE_REGISTER)
    def RegisterDvMeasure(self, request: C.RegisterDvMeasureRequest, caller: Caller) -> C.RegisterDvMeasureResponse:
        return C.RegisterDvMeasureResponse(measure=self._measures.register(request, caller))

    @guarded("managers", audit=A.AUDIT_ACTION_DV_MEASURE_LIST)
    def ListDvMeasures(self, request: C.ListDvMeasuresRequest, caller: Caller) -> C.ListDvMeasuresResponse:
        return C.ListDvMeasuresResponse(measures=self._measures.list(request.resident_code, caller))

    @guarded("managers", audit=A.AUDIT_ACTION_DV_MEASURE_REMOVE)
    def RemoveDvMeasure(self, request: C.RemoveDvMeasureRequest, caller: Caller) -> C.RemoveDvMeasureResponse:
        measure = self._measures.remove(request.resident_code, request.measure_id, caller)
        return C.RemoveDvMeasureResponse(measure=measure)


# -- the CS tier's builders (jukinet.server.assembly.TIERS) ---------------------------------------------


def copy_exchange_service(parts: NodeParts) -> ServiceBinding:
    """CopyExchangeService: copies issued to other CS nodes."""
    certificate_der = parts.certificate.public_bytes(Encoding.DER)
    issuer = CopyIssuer(
        parts.config.node_id, parts.storage, parts.auditor, parts.signer, certificate_der, resident_cards(parts),
        parts.clock,
    )  # fmt: skip
    return bind(CopyExchangeRpc(issuer, parts.auditor, parts.blocking))


def _peers(parts: NodeParts) -> Addresses:
    """The one lookup of another CS's address: the node's network directory, as the links use (node.toml's
    [peers] until the first directory arrives; UNAVAILABLE while it has expired, NOT_FOUND if not listed)."""
    return parts.directory.address


def copy_service(parts: NodeParts) -> ServiceBinding:
    """CertifiedCopyService: the counter (requesting CS) and the issuance log (home CS)."""
    exchange = exchange_over(_peers(parts), parts.links.ctx.credentials, parts.config.keepalive)
    counter = CopyCounter(parts.config.node_id, parts.trust, parts.auditor, parts.blocking, exchange, parts.clock)
    disclosure = IssuanceDisclosure(parts.config.node_id, parts.storage, parts.auditor)
    return bind(CertifiedCopyRpc(counter, disclosure, parts.auditor, parts.blocking))


def dv_measure_service(parts: NodeParts) -> ServiceBinding:
    """DvMeasureService: DV support measures of this CS's residents."""
    measures = DvMeasures(parts.config.node_id, parts.storage, parts.auditor, parts.clock)
    return bind(DvMeasureRpc(measures, parts.auditor, parts.blocking))
