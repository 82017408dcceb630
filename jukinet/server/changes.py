"""Change notices at the tiers above the CS: what a notice must satisfy, and how it is stored.

Shared by the prefecture and national servers. A notice must come from the CS it names as its
origin, describe a resident of that CS's municipality, and be a valid record whose status follows
from its reason (:func:`check_notices`, before the transaction); a move-out grant it carries must be
one its origin CS signed for another CS, name this resident and be addressed to the notice's origin
(:func:`verified_grant`). Then, INSIDE the
write transaction — where what is stored is exact, including the batch's earlier notices and batches
committed just before — the origin must own the resident (:func:`jukinet.domain.numbers.notice_problem`
with what this tier knows, :class:`Ownership`); a notice that does not is refused for good
(:class:`ItemRefused` at its position: the batch is not applied, the sender quarantines the item).
Storing a notice updates the latest record (unless it is a late removal, see
:func:`jukinet.domain.changes.replaces_current`) and appends it to the resident's history.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import lmdb

from jukinet.domain.changes import CODE_CHANGE, ended_record, replaces_current
from jukinet.domain.codes import is_valid_resident_code
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.kana import fold_version
from jukinet.domain.limits import MAX_NOTICE_BYTES
from jukinet.domain.moves import CLOCK_SKEW_DAYS, check_move_in_dates, date_of
from jukinet.domain.node_ids import NodeId
from jukinet.domain.numbers import GrantFacts, NoticeFacts, notice_problem
from jukinet.domain.quoting import quoted
from jukinet.domain.records import reason_name, status_for, validate_record
from jukinet.pki import TrustStore
from jukinet.server.grants import open_grant
from jukinet.storage import NodeStorage
from jukinet.storage.layout import RETIRED
from jukinet.storage.search_index import FourItemsIndex, SearchKeys
from jukinet.v1 import identity_pb2, moves_pb2, notice_pb2


@dataclass(frozen=True)
class Incoming:
    """A checked notice on its way into the store: its queue position (for a refusal) and, if it carries
    one, its move-out grant verified end to end (:func:`verified_grant`)."""

    position: int
    notice: notice_pb2.ChangeNotice
    grant: moves_pb2.MoveOutGrant | None = None
    search_keys: SearchKeys | None = None  # national: the record's four-item index keys, worked out beforehand


def verified_grant(
    notice: notice_pb2.ChangeNotice, trust: TrustStore, position: int, today: datetime.date
) -> moves_pb2.MoveOutGrant | None:
    """The notice's MoveOutGrant (None without one), after :func:`jukinet.server.grants.open_grant` (signed
    by a node certificate of its origin CS — node CA, valid, not revoked —, an id of that CS, a destination
    other than the origin) and: addressed to the notice's origin, naming the notice's resident, and within
    the legal time limits of a 転入 (:func:`jukinet.domain.moves.check_move_in_dates`) as of the day the CS
    recorded it (``recorded_at``, signed with the notice; not after this tier's ``today``): a CS that skips
    its own check cannot take a resident over late. Whether the grant covers the change here (its
    origin's 転出 除票, unused, in its window) is checked in the transaction."""
    if not notice.HasField("move_out_grant"):
        return None
    try:
        grant, _, destination = open_grant(notice.move_out_grant, trust)
        if str(destination) != notice.origin:
            raise Rejected(
                Problem.DENIED, f"the move-out grant is addressed to {grant.destination}, not {notice.origin}"
            )
        if notice.record.resident_code not in grant.resident_codes:
            raise Rejected(Problem.DENIED, f"the move-out grant does not name resident {notice.record.resident_code}")
        planned = date_of(grant.planned_date, "move-out grant planned_date")
        if not notice.HasField("recorded_at"):
            raise Rejected(Problem.INVALID, "a notice carrying a move-out grant must say when it was recorded")
        registered = datetime.date.fromtimestamp(notice.recorded_at.ToMilliseconds() / 1000)
        if (registered - today).days > CLOCK_SKEW_DAYS:
            raise Rejected(Problem.INVALID, f"recorded_at {registered} is after today ({today})")
        check_move_in_dates(date_of(notice.record.change_date, "record.change_date"), planned, registered)
    except Rejected as exc:
        raise ItemRefused(
            exc.problem, f"notice #{position} ({notice.origin}#{notice.sequence}): {exc}", position
        ) from None
    return grant


class Ownership:
    """What a tier knows, in the transaction, about whether a notice's origin may make its change.

    ``hosted``: at a prefecture, the 2-digit prefecture codes it serves (it sees only their CSs' notices);
    None at the national server, which sees every CS's."""

    def __init__(self, storage: NodeStorage, national: bool, hosted: frozenset[str] | None = None) -> None:
        self._storage = storage
        self._national = national  # the national server knows each code's assigned My Number
        self._hosted = None if national else hosted

    def _grant_facts(self, txn: lmdb.Transaction, code: str, grant: moves_pb2.MoveOutGrant) -> GrantFacts:
        planned = date_of(grant.planned_date, "move-out grant planned_date")  # checked by verified_grant
        used = seen = False
        day = (planned.year, planned.month, planned.day)
        for stored in self._storage.history.stored(txn, code):
            if stored.HasField("move_out_grant"):  # verified when it was stored
                used = (
                    used or moves_pb2.MoveOutGrant.FromString(stored.move_out_grant.payload).grant_id == grant.grant_id
                )
            r = stored.record
            if stored.origin == grant.origin and r.change_reason == identity_pb2.CHANGE_REASON_MOVE_OUT:
                seen = seen or (r.change_date.year, r.change_date.month, r.change_date.day) == day
        judged = self._hosted is None or NodeId.parse(grant.origin).prefecture_code in self._hosted
        return GrantFacts(grant.grant_id, grant.origin, planned, judged_here=judged, used=used, move_out_seen=seen)

    def check(self, txn: lmdb.Transaction, incoming: Incoming) -> None:
        """ItemRefused (DENIED) at the notice's position if its origin may not make this change."""
        s, notice = self._storage, incoming.notice
        record, origin = notice.record, notice.origin
        code = record.resident_code
        current = s.records.current(txn, code)
        designated = s.designations.of(txn, code)
        former_code = notice.former_resident_code
        issued = s.numbers.issued(txn, record.my_number) if record.my_number else None
        owner = f"cs:{current.address.municipality_code}" if current is not None else None
        former = (
            current is not None and owner != origin and s.history.has_origin(txn, code, origin)
        )  # only asked about for a late removal
        facts = NoticeFacts(
            current=current,
            designated_to=designated[0] if designated else None,
            grant=self._grant_facts(txn, code, incoming.grant) if incoming.grant is not None else None,
            former_owner=former,
            number_holder=s.records.holder_of(txn, record.my_number),
            assigned_number=(s.numbers.number_of(txn, code) or "") if self._national else None,
            number_retired=issued is not None and issued[1] == RETIRED,
            replaces=s.numbers.replaces(txn, code),
            former_code=former_code,
            former=s.records.current(txn, former_code) if former_code else None,
        )
        found = notice_problem(origin, record, facts)
        if found is not None:
            problem, message = found
            raise ItemRefused(
                problem, f"notice #{incoming.position} ({origin}#{notice.sequence}): {message}", incoming.position
            )


def check_notices(notices: Sequence[tuple[int, notice_pb2.ChangeNotice]], origin: NodeId, today: datetime.date) -> None:
    """Every notice is ``origin``'s to send and valid; ItemRefused (DENIED or INVALID) at the first that is not."""
    municipality, origin_id = origin.code, str(origin)
    for position, notice in notices:
        size = notice.ByteSize()
        if size > MAX_NOTICE_BYTES:  # unknown fields count: a padded notice does not travel on
            raise ItemRefused(
                Problem.INVALID, f"notice #{position} is {size} bytes encoded; at most {MAX_NOTICE_BYTES}", position
            )
        if notice.origin != origin_id:
            raise ItemRefused(
                Problem.DENIED,
                f"notice #{position} ({notice.origin}#{notice.sequence}) did not originate at {origin}",
                position,
            )
        record = notice.record
        if record.address.municipality_code != municipality:
            raise ItemRefused(
                Problem.DENIED,
                f"notice #{position}: {origin} may not send records of municipality "
                f"{record.address.municipality_code} (resident {record.resident_code})",
                position,
            )
        problems = validate_record(record, today=today)
        former = notice.former_resident_code
        if (record.change_reason == CODE_CHANGE) != bool(former):
            problems.append("former_resident_code: set on a 住民票コード変更 (CHANGE_REASON_RESIDENT_CODE_CHANGE) only")
        elif former and (former == record.resident_code or not is_valid_resident_code(former)):
            problems.append(f"former_resident_code: {quoted(former)} is not a valid code other than the new one")
        if not problems and record.status != status_for(record.change_reason):
            problems.append(
                f"status {record.status} does not follow from the change reason {reason_name(record.change_reason)}"
            )
        if problems:
            raise ItemRefused(
                Problem.INVALID,
                f"notice #{position} ({notice.origin}#{notice.sequence}): {'; '.join(problems)}",
                position,
            )


class ChangeWriter:
    """Stores change notices, each after its ownership check: the latest record (with the My Number index)
    and the history. A 住民票コード変更 ends the old code's record (kept, removed, reason 住民票コード変更) and
    moves the record, the My Number index and the card index to the new code, in the same transaction;
    its notice is in the history of both codes. A 個人番号変更 records the old number as retired."""

    def __init__(self, storage: NodeStorage, national: bool = False, hosted: frozenset[str] | None = None) -> None:
        self._storage = storage
        self._national = national
        self._ownership = Ownership(storage, national, hosted)
        # national: the four-item search index, kept in the transaction that stores each record
        self._index = FourItemsIndex(storage.env, fold_version()) if national else None

    def _put(
        self,
        txn: lmdb.Transaction,
        record: identity_pb2.IdentityRecord,
        previous: identity_pb2.IdentityRecord | None,
        keys: SearchKeys | None = None,
    ) -> None:
        self._storage.records.put(txn, record, previous)
        if self._index is not None:
            self._index.update(txn, record, previous, keys)

    def _used(self, txn: lmdb.Transaction, code: str) -> None:
        """National: the code's first record is stored; it no longer counts against its CS's quota of
        designated, unused codes (:data:`jukinet.server.national.numbers.MAX_UNUSED_CODES`)."""
        if self._national and (designated := self._storage.designations.of(txn, code)) is not None:
            self._storage.designations.add_unused(txn, designated[0], -1)

    def apply(self, txn: lmdb.Transaction, notices: Sequence[Incoming]) -> None:
        s = self._storage
        records, history = s.records, s.history
        first = history.reserve(txn, len(notices))
        for i, incoming in enumerate(notices):
            self._ownership.check(txn, incoming)
            notice = incoming.notice
            record, code = notice.record, notice.record.resident_code
            current = records.current(txn, code)
            if notice.former_resident_code:
                old = notice.former_resident_code
                former = records.current(txn, old)
                if former is None:  # the check above found it, in this transaction
                    raise Rejected(Problem.BROKEN, f"resident {old} vanished inside its own write transaction")
                self._put(txn, ended_record(former, record), former)
                if records.current(txn, code) is None:
                    self._used(txn, code)
                self._put(txn, record, None, incoming.search_keys)  # the My Number index now names the new code
                s.numbers.link_change(txn, old, code)
                s.cards.move(txn, old, code)  # the national server's card index (none at a prefecture)
                history.index(txn, old, first + i)
            elif replaces_current(current, record):
                if current is None:
                    self._used(txn, code)
                self._put(txn, record, current, incoming.search_keys)
                if current is not None and current.my_number and current.my_number != record.my_number:
                    s.numbers.mark_retired(txn, code, current.my_number)
            history.append(txn, code, notice.SerializeToString(), first + i)
