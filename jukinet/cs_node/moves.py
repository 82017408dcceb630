"""Moves between municipalities at a CS: 転出, the 転出証明書情報 to the new CS, 転入 / 特例転入 there, and
the 転入通知 back that closes the move (転出確定).

::

    old CS (中野区)                                     new CS (横浜市)
    MoveOut ── one transaction: each member's 除票 (転出, planned date) + history + notice ▲ prefecture,
              the Signed MoveOutGrant, the Signed MoveOutCertificate queued ──────────▶ verified end to end
                                                                                     (origin's node certificate),
                                                                                     stored once, pending
                                                          MoveIn ── one transaction: each member's record
                                                                    (転入 / 特例転入, same numbers) + history +
                                                                    notice ▲ carrying the grant, local items,
              verified end to end, ◀───────────────────────────── the Signed MoveInNotice queued; member used
    転出確定: each 除票 again, reason 転入通知受理
    (still removed) + notice ▲; member closed

Both CS-to-CS items travel on the ordinary links (store-and-forward with receipts: the other CS may be
down; nothing is lost; each is applied once). :class:`Moves` is the plain object behind
:class:`MoveRpc` (the counter's RPCs, here); the intake of the two items from other CS nodes is
:mod:`jukinet.cs_node.move_intake`.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import lmdb
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.domain.card_lifecycle import presentable_problem
from jukinet.domain.changes import local_change
from jukinet.domain.clock import SYSTEM_CLOCK, Clock, today
from jukinet.domain.errors import FieldRejected, Problem, Rejected
from jukinet.domain.limits import MAX_MOVE_CERTIFICATE_BYTES, text_problem
from jukinet.domain.moves import (
    CLOCK_SKEW_DAYS,
    check_destination,
    check_members,
    check_move_in_dates,
    check_planned_date,
    date_of,
    grant_open,
    last_move_in_day,
    moved_in_record,
    removal_record,
)
from jukinet.domain.node_ids import NodeId
from jukinet.domain.operators import Role
from jukinet.domain.records import validate_record
from jukinet.pki import Signer, seal
from jukinet.pki.card_presence import CardPresenceVerifier
from jukinet.server.audit import Auditor
from jukinet.server.grants import grant_id_problem
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import OperatorWithRole, TerminalOf
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.storage import NodeStorage
from jukinet.storage.layout import Counter
from jukinet.v1 import (
    audit_pb2,
    copies_pb2,
    envelope_pb2,
    identity_pb2,
    link_pb2,
    local_pb2,
    moves_pb2,
    moves_pb2_grpc,
    notice_pb2,
)

A = audit_pb2
R = identity_pb2
Change = tuple[identity_pb2.IdentityRecord, identity_pb2.IdentityRecord | None, envelope_pb2.Signed | None]
"""(new record, the record it follows or None, the grant to attach to its notice or None)."""


def write_changes(
    txn: lmdb.Transaction, storage: NodeStorage, origin: NodeId, upstream: str, changes: Sequence[Change], now_ms: int
) -> range:
    """Store each change at this CS with its history entry and its notice queued for the prefecture (a
    move's changes are few: the notices are built as messages, not from pre-encoded bytes)."""
    if not changes:
        return range(0)
    first = storage.env.reserve(txn, Counter.CHANGE, len(changes))
    position = storage.history.reserve(txn, len(changes))
    items = []
    for i, (record, current, grant) in enumerate(changes):
        notice = notice_pb2.ChangeNotice(origin=str(origin), sequence=first + i, record=record)
        notice.recorded_at.FromMilliseconds(now_ms)
        if grant is not None:
            notice.move_out_grant.CopyFrom(grant)
        encoded = notice.SerializeToString()
        storage.records.put(txn, record, current)
        storage.history.append(txn, record.resident_code, encoded, position + i)
        items.append(link_pb2.LinkItem(change_notice=notice).SerializeToString())
    storage.queues.enqueue(txn, upstream, items)
    return range(first, first + len(changes))


def _checked(
    record: identity_pb2.IdentityRecord,
    current: identity_pb2.IdentityRecord | None,
    day: datetime.date,
    holder: str | None,
) -> None:
    """The record is valid and may follow ``current`` here (Rejected naming the member otherwise)."""
    problems = validate_record(record, today=day)
    if problems:
        raise Rejected(Problem.INVALID, f"member {record.resident_code}: " + "; ".join(problems))
    try:
        local_change(current, record, holder)
    except FieldRejected as exc:
        raise Rejected(exc.problem, f"member {record.resident_code}: {exc}") from None


@dataclass
class Moves:
    """転出 and 転入 at one CS (plain object: the RPC in front of it only moves messages)."""

    node_id: NodeId
    upstream: str  # this CS's prefecture: where change notices go
    storage: NodeStorage
    signer: Signer
    certificate_der: bytes  # the signing key's node certificate, carried in every envelope signed here
    auditor: Auditor
    address_of: Callable[[str], str | None]  # the one place addresses are looked up (LinkSet.address_of)
    wake: Callable[[str], None] = lambda destination: None
    clock: Clock = SYSTEM_CLOCK
    # The My Number cards of a resident here that may be presented: (card serial, hex SHA-256 of its
    # authentication certificate), from the CS's card register.
    card_serials: Callable[[lmdb.Transaction, str], list[tuple[str, str]]] = field(default=lambda txn, code: [])
    cards: CardPresenceVerifier | None = None  # 特例転入: verifies the card presented at the counter

    # -- 転出 -------------------------------------------------------------------------------------------

    def move_out(self, request: moves_pb2.MoveOutRequest, caller: Caller) -> moves_pb2.MoveOutResponse:
        """Each member's 除票, the grant and the 転出証明書情報 for the destination, in one transaction."""
        members = check_members(list(request.resident_codes))
        code = request.destination_municipality_code
        check_destination(code, self.node_id.code)
        try:
            destination = NodeId.cs(code)
        except Rejected as exc:
            raise Rejected(Problem.INVALID, f"destination_municipality_code: {exc}") from None
        if self.address_of(str(destination)) is None:
            raise Rejected(Problem.NOT_FOUND, f"no CS of municipality {code} is known on this network ({destination})")
        day = today(self.clock)
        planned = date_of(request.planned_date, "planned_date")
        check_planned_date(planned, day)
        if request.new_address_text:
            problem = text_problem("address.text", request.new_address_text)
            if problem:
                raise Rejected(Problem.INVALID, f"new_{problem}")
        s, origin = self.storage, str(self.node_id)

        def apply(txn: lmdb.Transaction) -> moves_pb2.MoveOutResponse:
            changes: list[Change] = []
            for member in members:
                current = s.records.current(txn, member)
                if current is None:
                    raise Rejected(Problem.NOT_FOUND, f"member {member}: no resident {member} at {self.node_id}")
                if date_of(current.change_date, "change_date") > planned:
                    raise Rejected(
                        Problem.CONFLICT,
                        f"member {member}: planned date {planned.isoformat()} is before the last change recorded "
                        f"({date_of(current.change_date, 'change_date').isoformat()})",
                    )
                record = removal_record(current, planned)
                _checked(record, current, day, s.records.holder_of(txn, record.my_number))
                self._not_moving(txn, member, day)
                changes.append((record, current, None))
            now_ms = self.clock.now_ms()
            grant_id = f"{origin}/{s.env.reserve(txn, Counter.MOVE_OUT)}"
            grant = moves_pb2.MoveOutGrant(
                grant_id=grant_id, origin=origin, destination=str(destination), resident_codes=members
            )
            grant.planned_date.CopyFrom(request.planned_date)
            grant.issued_at.FromMilliseconds(now_ms)
            signed_grant = seal(self.signer, grant, self.certificate_der)
            certificate = moves_pb2.MoveOutCertificate(grant=signed_grant, new_address_text=request.new_address_text)
            certificate.planned_date.CopyFrom(request.planned_date)
            certificate.issued_at.FromMilliseconds(now_ms)
            for record, _, _ in changes:
                local = s.local.current(txn, record.resident_code) or local_pb2.LocalResidentData()
                cards = self.card_serials(txn, record.resident_code)
                certificate.members.add(
                    record=record,
                    local=local,
                    card_serials=[serial for serial, _ in cards],
                    card_auth_sha256=[fingerprint for _, fingerprint in cards],
                    dv_measures=s.dv_measures.of(txn, record.resident_code),  # the new CS keeps refusing
                )
            signed_certificate = seal(self.signer, certificate, self.certificate_der)
            size = signed_certificate.ByteSize()
            if size > MAX_MOVE_CERTIFICATE_BYTES:  # the bounds of its parts make this unreachable; stay sure
                raise Rejected(Problem.EXHAUSTED, f"転出証明書情報 {size} bytes; at most {MAX_MOVE_CERTIFICATE_BYTES}")
            sequences = write_changes(txn, s, self.node_id, self.upstream, changes, now_ms)
            s.moves.put_move_out(txn, grant_id, moves_pb2.MoveOutState(grant=signed_grant))
            for member in members:
                s.moves.set_last_grant(txn, member, grant_id)
            item = link_pb2.LinkItem(move_out_certificate=signed_certificate).SerializeToString()
            s.queues.enqueue(txn, str(destination), [item])
            detail = (
                f"{len(members)} member(s) to {destination}, planned {planned.isoformat()}; "
                f"notices {origin}#{sequences.start}..{sequences.stop - 1}"
            )
            self.auditor.append(txn, A.AUDIT_ACTION_MOVE_OUT, A.AUDIT_OUTCOME_SUCCESS, caller, grant_id, detail)
            return moves_pb2.MoveOutResponse(
                grant_id=grant_id,
                first_sequence=sequences.start,
                last_sequence=sequences.stop - 1,
                grant=signed_grant,
            )

        response = s.env.submit(apply).result()
        self.wake(self.upstream)
        self.wake(str(destination))
        return response

    def _not_moving(self, txn: lmdb.Transaction, member: str, day: datetime.date) -> None:
        """A resident is moved out by one open grant at a time: while an earlier 転出's certificate can still
        serve a 転入 at its destination (its 転入通知 not yet here), a second 転出 (after the 除票 was
        re-entered, e.g. by 職権記載) would let them move in at two municipalities (CONFLICT)."""
        last = self.storage.moves.last_grant_of(txn, member)
        state = self.storage.moves.move_out(txn, last) if last is not None else None
        if state is None or member in state.closed:
            return
        granted = moves_pb2.MoveOutGrant.FromString(state.grant.payload)
        planned = date_of(granted.planned_date, "planned_date")
        if grant_open(planned, day):
            until = last_move_in_day(planned) + datetime.timedelta(days=CLOCK_SKEW_DAYS)
            raise Rejected(
                Problem.CONFLICT,
                f"member {member}: 転出 {last} to {granted.destination} (planned {planned.isoformat()}) is open "
                f"until {until.isoformat()}: its 転出証明書情報 can still serve a 転入 there",
            )

    # -- 転入 / 特例転入 --------------------------------------------------------------------------------

    def move_in(self, request: moves_pb2.MoveInRequest, caller: Caller) -> moves_pb2.MoveInResponse:
        """Register members of a received 転出証明書情報 here, and queue the 転入通知 for the old CS.

        With a card presented it is a 特例転入 of exactly one member: the presentation must verify (card
        CA, authentication key, not revoked, signed within ±120 s for "special-move-in" at this CS over
        this request, never seen before) and the card must be one the certificate lists for the member."""
        grant_id = request.grant_id
        problem = grant_id_problem(grant_id)
        if problem:
            raise Rejected(Problem.INVALID, problem)
        wanted = check_members(list(request.resident_codes)) if request.resident_codes else []
        reason, card_serial, card_fingerprint = R.CHANGE_REASON_MOVE_IN, None, ""
        if request.HasField("card"):
            if len(wanted) != 1:
                raise Rejected(Problem.INVALID, "resident_codes: a 特例転入 names the one member whose card it is")
            if self.cards is None:
                raise Rejected(Problem.UNAVAILABLE, f"{self.node_id} cannot verify cards")
            unbound = moves_pb2.MoveInRequest()
            unbound.CopyFrom(request)
            unbound.ClearField("card")
            binding = unbound.SerializeToString(deterministic=True)
            presented = self.cards.verify(request.card, SPECIAL_MOVE_IN, str(self.node_id), binding)
            card_serial = presented.card_serial
            card_fingerprint = hashlib.sha256(presented.certificate.public_bytes(Encoding.DER)).hexdigest()
            reason = R.CHANGE_REASON_SPECIAL_MOVE_IN
        move_in = date_of(request.move_in_date, "move_in_date")
        address = text_problem("address.text", request.address_text)
        if address:
            raise Rejected(Problem.INVALID, address)
        day = today(self.clock)
        s, here = self.storage, str(self.node_id)
        action = A.AUDIT_ACTION_SPECIAL_MOVE_IN if reason == R.CHANGE_REASON_SPECIAL_MOVE_IN else A.AUDIT_ACTION_MOVE_IN

        def apply(txn: lmdb.Transaction) -> tuple[moves_pb2.MoveInResponse, str]:
            received = s.moves.received(txn, grant_id)
            if received is None:
                raise Rejected(Problem.NOT_FOUND, f"no 転出証明書情報 {grant_id} has been received at {here}")
            certificate = moves_pb2.MoveOutCertificate.FromString(received.certificate.payload)  # verified on arrival
            grant = moves_pb2.MoveOutGrant.FromString(certificate.grant.payload)
            members = {m.record.resident_code: m for m in certificate.members}
            moved = set(received.moved_in)
            codes = wanted or [c for c in grant.resident_codes if c not in moved]
            if not codes:
                raise Rejected(Problem.ALREADY_EXISTS, f"every member of {grant_id} has moved in already")
            for code in codes:
                if code not in members:
                    raise Rejected(Problem.NOT_FOUND, f"member {code} is not named in {grant_id}")
                if code in moved:
                    raise Rejected(Problem.ALREADY_EXISTS, f"member {code} has moved in under {grant_id} already")
            if card_serial is not None:
                listed = members[codes[0]]
                if card_serial not in listed.card_serials:
                    raise Rejected(
                        Problem.DENIED,
                        f"card {card_serial} is not member {codes[0]}'s card per 転出証明書情報 {grant_id}",
                    )
                fingerprints = list(listed.card_auth_sha256)
                index = list(listed.card_serials).index(card_serial)
                if len(fingerprints) != len(listed.card_serials) or fingerprints[index] != card_fingerprint:
                    raise Rejected(
                        Problem.DENIED,
                        f"the certificate presented for card {card_serial} is not the one 転出証明書情報 {grant_id} "
                        "lists for it",
                    )
            check_move_in_dates(move_in, date_of(grant.planned_date, "planned_date"), day)
            changes: list[Change] = []
            for code in codes:
                left = members[code].record
                record = moved_in_record(left, self.node_id.code, request.address_text, reason, move_in)
                current = s.records.current(txn, code)
                _checked(record, current, day, s.records.holder_of(txn, record.my_number))
                changes.append((record, current, certificate.grant))
            now_ms = self.clock.now_ms()
            sequences = write_changes(txn, s, self.node_id, self.upstream, changes, now_ms)
            for code in codes:
                local = members[code].local
                if local.ByteSize():
                    s.local.put(txn, code, local)
                self._carry_dv_measures(txn, code, members[code].dv_measures, grant, caller)
            received.moved_in.extend(codes)
            s.moves.put_received(txn, grant_id, received)
            notice = moves_pb2.MoveInNotice(
                grant_id=grant_id, origin=here, destination=grant.origin, resident_codes=codes, reason=reason
            )
            notice.move_in_date.CopyFrom(request.move_in_date)
            notice.recorded_at.FromMilliseconds(now_ms)
            signed = seal(self.signer, notice, self.certificate_der)
            s.queues.enqueue(txn, grant.origin, [link_pb2.LinkItem(move_in_notice=signed).SerializeToString()])
            detail = (
                f"{len(codes)} member(s) from {grant.origin}, moved in {move_in.isoformat()}; "
                f"notices {here}#{sequences.start}..{sequences.stop - 1}"
            )
            self.auditor.append(txn, action, A.AUDIT_OUTCOME_SUCCESS, caller, grant_id, detail)
            response = moves_pb2.MoveInResponse(
                first_sequence=sequences.start, last_sequence=sequences.stop - 1, records=[c[0] for c in changes]
            )
            return response, grant.origin

        response, old = s.env.submit(apply).result()
        self.wake(self.upstream)
        self.wake(old)
        return response

    def _carry_dv_measures(
        self,
        txn: lmdb.Transaction,
        code: str,
        measures: Sequence[copies_pb2.DvMeasure],
        grant: moves_pb2.MoveOutGrant,
        caller: Caller,
    ) -> None:
        """Register here, in the 転入's transaction, the DV support measures the 転出証明書情報 carries for
        a member (checked on arrival), each audited; one this CS holds already (same scope and
        municipalities, e.g. from an earlier stay) is not registered twice."""
        held = {(m.scope, tuple(m.municipalities)) for m in self.storage.dv_measures.of(txn, code)}
        for carried in measures:
            if (carried.scope, tuple(carried.municipalities)) in held:
                continue
            measure = copies_pb2.DvMeasure(
                resident_code=code,
                scope=carried.scope,
                municipalities=carried.municipalities,
                registered_at=carried.registered_at,
                registered_by=carried.registered_by,
            )
            self.storage.dv_measures.add(txn, measure)
            held.add((measure.scope, tuple(measure.municipalities)))
            detail = (
                f"measure #{measure.measure_id}, carried from {grant.origin} (its #{carried.measure_id}) by "
                f"転出証明書情報 {grant.grant_id}"
            )
            self.auditor.append(txn, A.AUDIT_ACTION_DV_MEASURE_REGISTER, A.AUDIT_OUTCOME_SUCCESS, caller, code, detail)


class MoveRpc(moves_pb2_grpc.MoveServiceServicer):
    def __init__(self, moves: Moves, auditor: Auditor, blocking: Blocking) -> None:
        self._moves = moves
        self.auditor = auditor
        self.blocking = blocking
        self.registrars = OperatorWithRole(TerminalOf.of_nodes([moves.node_id]), Role.REGISTER_RESIDENTS)

    @guarded("registrars", audit=A.AUDIT_ACTION_MOVE_OUT)
    def MoveOut(self, request: moves_pb2.MoveOutRequest, caller: Caller) -> moves_pb2.MoveOutResponse:
        return self._moves.move_out(request, caller)

    @guarded("registrars", audit=A.AUDIT_ACTION_MOVE_IN)
    def MoveIn(self, request: moves_pb2.MoveInRequest, caller: Caller) -> moves_pb2.MoveInResponse:
        return self._moves.move_in(request, caller)


SPECIAL_MOVE_IN = "special-move-in"
"""The purpose a resident's card is presented for at a 特例転入 (jukinet.domain.cards.presentation_input)."""


# -- the CS tier's builders (jukinet.server.assembly.TIERS) -------------------------------------------


def _moves(parts: NodeParts) -> Moves:
    if parts.config.upstream is None:
        raise Rejected(Problem.BROKEN, "a CS needs an upstream prefecture for its change notices")
    return Moves(
        parts.config.node_id,
        str(parts.config.upstream),
        parts.storage,
        parts.signer,
        parts.certificate.public_bytes(Encoding.DER),
        parts.auditor,
        parts.links.address_of,
        parts.links.wake,
        parts.clock,
        cards=CardPresenceVerifier(parts.trust, parts.clock),
        card_serials=_presentable_cards(parts.storage),
    )


def _presentable_cards(storage: NodeStorage) -> Callable[[lmdb.Transaction, str], list[tuple[str, str]]]:
    """A member's cards that may be presented (issued, not suspended or revoked), each with the SHA-256 of
    its stored authentication certificate: what the 転出証明書情報 lists, so the new CS accepts exactly
    that card (not another certificate for its serial) for a 特例転入."""

    def serials(txn: lmdb.Transaction, resident_code: str) -> list[tuple[str, str]]:
        cards = storage.cards.of_resident(txn, resident_code)
        return [
            (c.card_serial, hashlib.sha256(c.auth_certificate).hexdigest())
            for c in cards
            if presentable_problem(c, c.card_serial) is None
        ]

    return serials


def move_service(parts: NodeParts) -> ServiceBinding:
    """The CS tier's MoveService."""
    return bind(MoveRpc(_moves(parts), parts.auditor, parts.blocking))
