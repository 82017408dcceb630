"""The CS tier's intake of moves: what other CS nodes send it over the links.

- ``move_out_certificate`` (転出証明書情報, at the destination CS): verified end to end by the node
  certificate it carries (the grant's origin), addressed here, its members the grant's, each the
  origin's 除票 of a 転出; stored once (``moves_received``) for a later 転入 / 特例転入
  (:class:`jukinet.cs_node.moves.Moves`).
- ``move_in_notice`` (転入通知, at the old CS): signed by the grant's destination, for a grant issued
  here, its members the grant's; closes each member's 除票 once (転出確定, reason 転入通知受理).

What another CS can make this one hold is bounded: a certificate is held until its last day for a
転入 (the planned date + 44 days) and then deleted, and each origin has a share (count and bytes) of what
is held. An item that fails a check is refused for good (:class:`ItemRefused`): its sender quarantines it and
the rest of its queue flows. Whoever delivers an item, its own signature decides whose it is.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import lmdb

from jukinet.cs_node.moves import Change, write_changes
from jukinet.domain.clock import SYSTEM_CLOCK, Clock, today
from jukinet.domain.copies import dv_measures_problems
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.limits import (
    MAX_HELD_PER_ORIGIN,
    MAX_HELD_PER_ORIGIN_BYTES,
    MAX_MOVE_CERTIFICATE_BYTES,
    text_problem,
)
from jukinet.domain.moves import (
    MOVE_IN_REASONS,
    check_certificate_arrival,
    check_members,
    check_notice_move_in,
    closing_record,
    date_of,
    last_move_in_day,
    local_data_problems,
)
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.quoting import quoted
from jukinet.domain.records import validate_record
from jukinet.pki import TrustStore
from jukinet.server.grants import cs_named, grant_id_problem, open_grant, signed_by_node
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.intake import Delivery, Item, Plan
from jukinet.storage import NodeStorage
from jukinet.v1 import envelope_pb2, identity_pb2, moves_pb2

R = identity_pb2

_HEX = frozenset("0123456789abcdef")


def _from_cs(delivery: Delivery, what: str) -> None:
    if delivery.sender.kind is not NodeKind.CS:
        raise Rejected(Problem.DENIED, f"{delivery.sender} is not a CS; only CS nodes send {what}")


def _refused(exc: Rejected, what: str, position: int, sender: NodeId) -> ItemRefused:
    """One item refused for good: the sender sets it aside (quarantine) and the rest of its queue flows."""
    problem = exc.problem if exc.problem is not Problem.BROKEN else Problem.INVALID
    return ItemRefused(problem, f"{what} #{position} from {sender}: {exc}", position)


def _over_share(count: int, size: int) -> bool:
    """Whether holding ``count`` certificates of ``size`` bytes from one origin exceeds its share."""
    return count > MAX_HELD_PER_ORIGIN or size > MAX_HELD_PER_ORIGIN_BYTES


@dataclass(frozen=True)
class _Arrival:
    """One verified 転出証明書情報 of a batch, to hold until its last day."""

    grant_id: str
    origin: str
    envelope: envelope_pb2.Signed
    last_day: datetime.date


@dataclass(frozen=True)
class _StoreCertificates:
    storage: NodeStorage
    arrivals: list[_Arrival]
    now_ms: int

    def apply(self, txn: lmdb.Transaction) -> None:
        moves, origins = self.storage.moves, set()
        for arrival in self.arrivals:
            if moves.received(txn, arrival.grant_id) is None:  # applied once, however often it comes
                move = moves_pb2.ReceivedMove(certificate=arrival.envelope)
                move.received_at.FromMilliseconds(self.now_ms)
                moves.hold(txn, arrival.origin, arrival.grant_id, move, arrival.last_day.toordinal())
                origins.add(arrival.origin)
        for origin in origins:  # a batch checked while the one before it committed did not count that one
            if _over_share(*moves.held(txn, origin)):
                raise Rejected(Problem.CONFLICT, f"{origin}'s share was taken by a batch stored meanwhile; resend")


class MoveOutCertificates:
    """ItemHandler for ``move_out_certificate`` items at a CS: 転出証明書情報 addressed to it.

    What one origin can make this CS hold is bounded (MAX_HELD_PER_ORIGIN certificates and
    MAX_HELD_PER_ORIGIN_BYTES bytes): a certificate over its origin's share is refused (EXHAUSTED; the
    sender quarantines it and may retry it once older ones have been used up or expired). Each is held
    until its last day for a 転入 (:func:`last_move_in_day`), then deleted, before new ones are counted.
    """

    kind = "move_out_certificate"
    SWEEP = 10_000  # expired certificates deleted per transaction

    def __init__(self, trust: TrustStore, storage: NodeStorage, clock: Clock = SYSTEM_CLOCK) -> None:
        self._trust = trust
        self._storage = storage
        self._clock = clock

    def check(self, delivery: Delivery, items: Sequence[Item]) -> Plan:
        _from_cs(delivery, "転出証明書情報")
        day = today(self._clock)
        self.sweep(day)
        moves = self._storage.moves
        arrivals: dict[str, _Arrival] = {}
        held: dict[str, tuple[int, int]] = {}
        for position, envelope in items:
            try:
                arrival = self.verify(envelope, delivery.destination, day)
                count, size = held.get(arrival.origin) or moves.get_held(arrival.origin)
                if arrival.grant_id not in arrivals and moves.get_received(arrival.grant_id) is None:
                    count, size = count + 1, size + envelope.ByteSize()  # a certificate held already takes none
                if _over_share(count, size):
                    raise Rejected(
                        Problem.EXHAUSTED,
                        f"{arrival.origin}'s 転出証明書情報 held here would be {count} ({size} bytes); at most "
                        f"{MAX_HELD_PER_ORIGIN} ({MAX_HELD_PER_ORIGIN_BYTES} bytes) until older ones expire",
                    )
            except Rejected as exc:
                raise _refused(exc, "転出証明書情報", position, delivery.sender) from None
            held[arrival.origin] = (count, size)
            arrivals.setdefault(arrival.grant_id, arrival)
        return _StoreCertificates(self._storage, list(arrivals.values()), self._clock.now_ms())

    def sweep(self, day: datetime.date) -> int:
        """Delete the held certificates whose last day for a 転入 is before ``day``; returns how many."""
        moves, ordinal, gone = self._storage.moves, day.toordinal(), 0

        def forget(txn: lmdb.Transaction) -> int:
            expired = moves.expired(txn, ordinal, self.SWEEP)
            for last_day, grant_id in expired:
                moves.forget(txn, last_day, grant_id)
            return len(expired)

        while moves.any_expired(ordinal):
            gone += self._storage.env.submit(forget).result()
        return gone

    def verify(self, envelope: envelope_pb2.Signed, here: NodeId, day: datetime.date) -> _Arrival:
        """Every check of one 転出証明書情報, end to end (whoever delivered it).

        1. at most MAX_MOVE_CERTIFICATE_BYTES; signed by the key of the node certificate it carries;
        2. its grant verifies (:func:`open_grant`), and the certificate's signer is the grant's origin;
        3. the grant is addressed to this CS;
        4. its planned date is not further ahead than a 転出届 allows, and its window for a 転入 is open;
        5. its members are the grant's, in order, each the origin's 除票 of a 転出 with valid local items
           and at most MAX_DV_MEASURES_PER_RESIDENT valid DV support measures, each the member's.
        """
        size = envelope.ByteSize()
        if size > MAX_MOVE_CERTIFICATE_BYTES:
            raise Rejected(Problem.INVALID, f"{size} bytes; at most {MAX_MOVE_CERTIFICATE_BYTES}")
        certificate, signer = signed_by_node(envelope, moves_pb2.MoveOutCertificate, self._trust)
        grant, origin, destination = open_grant(certificate.grant, self._trust)
        if not signer.names(origin):
            raise Rejected(Problem.DENIED, f"signed by {signer}, not by the grant's origin {origin}")
        if destination != here:
            raise Rejected(Problem.DENIED, f"grant {grant.grant_id} is addressed to {destination}, not {here}")
        planned = date_of(grant.planned_date, "planned_date")
        check_certificate_arrival(planned, day)
        codes = [m.record.resident_code for m in certificate.members]
        if codes != list(grant.resident_codes):
            raise Rejected(Problem.INVALID, f"its members are not those of grant {grant.grant_id}")
        if certificate.planned_date != grant.planned_date:
            raise Rejected(Problem.INVALID, f"its planned date is not that of grant {grant.grant_id}")
        if certificate.new_address_text:
            problem = text_problem("address.text", certificate.new_address_text)
            if problem:
                raise Rejected(Problem.INVALID, f"new_{problem}")
        for member in certificate.members:
            record = member.record
            problems = validate_record(record, today=day) + local_data_problems(member.local)
            if record.address.municipality_code != origin.code:
                problems.append(f"address.municipality_code: {record.address.municipality_code} is not {origin}'s")
            if record.change_reason != R.CHANGE_REASON_MOVE_OUT or record.status != R.RECORD_STATUS_REMOVED:
                problems.append("change_reason: not the 除票 of a 転出")
            if len(member.card_serials) > 4 or any(len(c) > 64 for c in member.card_serials):
                problems.append("card_serials: at most 4 of at most 64 characters")
            problems += dv_measures_problems(record.resident_code, member.dv_measures)
            if len(member.card_auth_sha256) > len(member.card_serials) or any(
                len(f) != 64 or not _HEX.issuperset(f) for f in member.card_auth_sha256
            ):
                problems.append("card_auth_sha256: one 64-hex-digit SHA-256 per card serial at most")
            if problems:
                raise Rejected(Problem.INVALID, f"member {quoted(record.resident_code)}: " + "; ".join(problems))
        return _Arrival(grant.grant_id, str(origin), envelope, last_move_in_day(planned))


@dataclass(frozen=True)
class _CloseMoves:
    storage: NodeStorage
    node_id: NodeId
    upstream: str
    notices: list[moves_pb2.MoveInNotice]
    now_ms: int

    def apply(self, txn: lmdb.Transaction) -> None:
        s = self.storage
        changes: list[Change] = []
        for notice in self.notices:
            state = s.moves.move_out(txn, notice.grant_id)
            if state is None:  # checked before; only a damaged store gets here
                raise Rejected(Problem.BROKEN, f"grant {notice.grant_id} vanished")
            closed = set(state.closed)
            move_in = date_of(notice.move_in_date, "move_in_date")
            for code in notice.resident_codes:
                if code in closed:
                    continue  # its 転入通知 came before: applied once
                current = s.records.current(txn, code)
                if (
                    current is not None
                    and current.status == R.RECORD_STATUS_REMOVED
                    and (current.change_reason == R.CHANGE_REASON_MOVE_OUT)
                ):
                    changes.append((closing_record(current, move_in), current, None))
                state.closed.append(code)
                closed.add(code)
            s.moves.put_move_out(txn, notice.grant_id, state)
        write_changes(txn, s, self.node_id, self.upstream, changes, self.now_ms)


class MoveInNotices:
    """ItemHandler for ``move_in_notice`` items at a CS: 転入通知 for the moves it granted."""

    kind = "move_in_notice"

    def __init__(
        self, node_id: NodeId, upstream: str, trust: TrustStore, storage: NodeStorage, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._node_id = node_id
        self._upstream = upstream
        self._trust = trust
        self._storage = storage
        self._clock = clock

    def check(self, delivery: Delivery, items: Sequence[Item]) -> Plan:
        _from_cs(delivery, "転入通知")
        notices = []
        for position, envelope in items:
            try:
                notices.append(self.verify(envelope, delivery.destination))
            except Rejected as exc:
                raise _refused(exc, "転入通知", position, delivery.sender) from None
        return _CloseMoves(self._storage, self._node_id, self._upstream, notices, self._clock.now_ms())

    def verify(self, envelope: envelope_pb2.Signed, here: NodeId) -> moves_pb2.MoveInNotice:
        """1. signed by the key of the node certificate it carries, which names the notice's origin (a CS);
        2. addressed to this CS; 3. names a grant issued here, whose destination is that origin;
        4. its members are members of that grant; its reason 転入 or 特例転入; its move-in date one a 転入
        under that grant could have (:func:`check_notice_move_in`)."""
        notice, signer = signed_by_node(envelope, moves_pb2.MoveInNotice, self._trust)
        origin = cs_named(notice.origin, "転入通知 origin")
        if not signer.names(origin):
            raise Rejected(Problem.DENIED, f"names origin {origin} but was signed by {signer}")
        if notice.destination != str(here):
            raise Rejected(Problem.DENIED, f"addressed to {quoted(notice.destination)}, not {here}")
        problem = grant_id_problem(notice.grant_id)
        if problem:
            raise Rejected(Problem.INVALID, problem)
        state = self._storage.moves.get_move_out(notice.grant_id)
        if state is None:
            raise Rejected(Problem.NOT_FOUND, f"no 転出 {notice.grant_id} was granted at {here}")
        grant = moves_pb2.MoveOutGrant.FromString(state.grant.payload)
        if grant.destination != str(origin):
            raise Rejected(Problem.DENIED, f"grant {grant.grant_id} is for {grant.destination}, not {origin}")
        codes = check_members(list(notice.resident_codes))
        strangers = [c for c in codes if c not in grant.resident_codes]
        if strangers:
            raise Rejected(Problem.DENIED, f"{strangers[0]} is not a member of grant {grant.grant_id}")
        if notice.reason not in MOVE_IN_REASONS:
            raise Rejected(Problem.INVALID, f"reason {notice.reason} is not 転入 or 特例転入")
        move_in = date_of(notice.move_in_date, "move_in_date")
        check_notice_move_in(move_in, date_of(grant.planned_date, "planned_date"), today(self._clock))
        return notice


# -- the CS tier's builders (jukinet.server.assembly.TIERS) -------------------------------------------


def move_out_certificates(parts: NodeParts) -> MoveOutCertificates:
    """転出証明書情報 from other CS nodes."""
    return MoveOutCertificates(parts.trust, parts.storage, parts.clock)


def move_in_notices(parts: NodeParts) -> MoveInNotices:
    """転入通知 from other CS nodes."""
    if parts.config.upstream is None:
        raise Rejected(Problem.BROKEN, "a CS needs an upstream prefecture for its change notices")
    return MoveInNotices(parts.config.node_id, str(parts.config.upstream), parts.trust, parts.storage, parts.clock)
