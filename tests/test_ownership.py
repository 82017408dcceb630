"""Who may change a resident at the prefecture and national servers (jukinet.domain.numbers.notice_problem
with jukinet.domain.changes.replaces_current), case by case, and the tier storing notices
(jukinet.server.changes.ChangeWriter over LMDB, no network): a former owner's removal is history only
whatever the current status; a move-out grant covers one 転入 over its origin's 転出 除票, once, in its
window, never a code without a record, and is verified with open_grant (no self-addressed grant); a
prefecture leaves a grant from another prefecture's CS to the national server."""

from __future__ import annotations

import datetime
import random
from pathlib import Path

import pytest

from jukinet.devnet.simulated import SimulatedNode
from jukinet.domain.changes import replaces_current
from jukinet.domain.errors import ItemRefused, Problem
from jukinet.domain.numbers import GrantFacts, NoticeFacts, notice_problem
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki import TrustStore, init_pki, seal
from jukinet.server.changes import ChangeWriter, Incoming, verified_grant
from jukinet.storage import NodeStorage
from jukinet.v1 import identity_pb2, moves_pb2, notice_pb2

R = identity_pb2
NAKANO, CHIYODA, MINATO, YOKOHAMA = "cs:131148", "cs:131016", "cs:131032", "cs:141038"
_rng = random.Random(88)
PLANNED = datetime.date(2026, 4, 1)


def _record(
    municipality: str, reason: int, status: int, day: datetime.date = PLANNED, **items: object
) -> R.IdentityRecord:
    record = synthetic_resident(_rng, municipality, R.CHANGE_REASON_BIRTH, numbered=False)
    record.resident_code = "12345678903"
    record.change_reason, record.status = reason, status  # type: ignore[assignment]
    record.change_date.year, record.change_date.month, record.change_date.day = day.year, day.month, day.day
    for name, value in items.items():
        setattr(record, name, value)
    return record


def _active(municipality: str, reason: int = R.CHANGE_REASON_BIRTH, **items: object) -> R.IdentityRecord:
    return _record(municipality, reason, R.RECORD_STATUS_ACTIVE, datetime.date(2026, 1, 5), **items)


def _removed(municipality: str, reason: int, day: datetime.date = PLANNED, **items: object) -> R.IdentityRecord:
    return _record(municipality, reason, R.RECORD_STATUS_REMOVED, day, **items)


def _move_in(municipality: str, day: datetime.date = PLANNED, **items: object) -> R.IdentityRecord:
    return _record(municipality, R.CHANGE_REASON_MOVE_IN, R.RECORD_STATUS_ACTIVE, day, **items)


def _grant(origin: str = NAKANO, **facts: object) -> GrantFacts:
    return GrantFacts(f"{origin}/7", origin, PLANNED, **facts)  # type: ignore[arg-type]


def _denied(origin: str, record: R.IdentityRecord, facts: NoticeFacts, words: str) -> None:
    found = notice_problem(origin, record, facts)
    assert found is not None and found[0] is Problem.DENIED and words in found[1], found


# -- finding 2: a former owner's removal never makes it the owner again --------------------------------


@pytest.mark.parametrize(
    "reason", [R.CHANGE_REASON_DEATH, R.CHANGE_REASON_MOVE_OUT, R.CHANGE_REASON_EX_OFFICIO_REMOVAL]
)
def test_a_former_owners_removal_is_history_only_whatever_the_current_status(reason) -> None:
    current = _removed(CHIYODA[3:], reason)  # died / moved on / removed at 千代田区
    removal = _removed(NAKANO[3:], R.CHANGE_REASON_EX_OFFICIO_REMOVAL)  # 中野区's 職権消除
    assert notice_problem(NAKANO, removal, NoticeFacts(current=current, designated_to=None, former_owner=True)) is None
    assert not replaces_current(current, removal)  # kept as history: 千代田区 still owns the resident
    assert not replaces_current(_active(CHIYODA[3:]), removal)
    _denied(MINATO, _removed(MINATO[3:], R.CHANGE_REASON_EX_OFFICIO_REMOVAL),
            NoticeFacts(current=current, designated_to=None), "never recorded it")  # fmt: skip
    entry = _active(NAKANO[3:], R.CHANGE_REASON_EX_OFFICIO_ENTRY)  # then 職権記載: still not the owner
    _denied(NAKANO, entry, NoticeFacts(current=current, designated_to=None, former_owner=True), "owned by cs:131016")
    assert replaces_current(current, _active(CHIYODA[3:], R.CHANGE_REASON_EX_OFFICIO_ENTRY))  # the owner's own


# -- findings 3 and 7: what a move-out grant covers ------------------------------------------------------


def test_a_grant_covers_a_move_in_over_its_origins_move_out_record() -> None:
    move_out = _removed(NAKANO[3:], R.CHANGE_REASON_MOVE_OUT)
    assert notice_problem(CHIYODA, _move_in(CHIYODA[3:]), NoticeFacts(move_out, None, grant=_grant())) is None
    special = _record(CHIYODA[3:], R.CHANGE_REASON_SPECIAL_MOVE_IN, R.RECORD_STATUS_ACTIVE)
    assert notice_problem(CHIYODA, special, NoticeFacts(move_out, None, grant=_grant())) is None
    closed = _removed(NAKANO[3:], R.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED, PLANNED + datetime.timedelta(days=3))
    late = NoticeFacts(closed, None, grant=_grant(move_out_seen=True))  # 転入通知受理 arrived before this 転入
    assert notice_problem(CHIYODA, _move_in(CHIYODA[3:]), late) is None
    on_its_way = NoticeFacts(_active(NAKANO[3:]), None, grant=_grant())  # the 転出 notice has not arrived yet
    assert notice_problem(CHIYODA, _move_in(CHIYODA[3:]), on_its_way) is None


@pytest.mark.parametrize(
    ("case", "current", "record", "grant", "words"),
    [
        # finding 7: a (self-)grant over a code with no record, designated or not, covers nothing
        ("no record", None, _move_in(CHIYODA[3:]), _grant(), "no record"),
        ("another's record", _removed(MINATO[3:], R.CHANGE_REASON_MOVE_OUT), _move_in(CHIYODA[3:]), _grant(),
         "not by the grant's origin"),
        # finding 3: replays of an old grant
        ("used", _removed(NAKANO[3:], R.CHANGE_REASON_MOVE_OUT), _move_in(CHIYODA[3:]), _grant(used=True), "used"),
        ("re-entered after", _active(NAKANO[3:], R.CHANGE_REASON_MOVE_IN), _move_in(CHIYODA[3:]),
         _grant(move_out_seen=True), "again after that 転出"),
        ("another move-out", _removed(NAKANO[3:], R.CHANGE_REASON_MOVE_OUT, datetime.date(2026, 9, 1)),
         _move_in(CHIYODA[3:]), _grant(), "not its 転出 除票"),
        ("closed unseen", _removed(NAKANO[3:], R.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED), _move_in(CHIYODA[3:]),
         _grant(), "not its 転出 除票"),
        ("dead", _removed(NAKANO[3:], R.CHANGE_REASON_DEATH), _move_in(CHIYODA[3:]), _grant(), "not its 転出 除票"),
        ("too late", _removed(NAKANO[3:], R.CHANGE_REASON_MOVE_OUT),
         _move_in(CHIYODA[3:], PLANNED + datetime.timedelta(days=31)), _grant(), "outside the window"),
        ("too early", _removed(NAKANO[3:], R.CHANGE_REASON_MOVE_OUT),
         _move_in(CHIYODA[3:], PLANNED - datetime.timedelta(days=15)), _grant(), "outside the window"),
        ("not a move-in", _removed(NAKANO[3:], R.CHANGE_REASON_MOVE_OUT),
         _active(CHIYODA[3:], R.CHANGE_REASON_EX_OFFICIO_ENTRY), _grant(), "only a 転入"),
    ],
)  # fmt: skip
def test_a_grant_that_does_not_cover_the_change_is_refused(case, current, record, grant, words) -> None:
    _denied(CHIYODA, record, NoticeFacts(current, None, grant=grant), words)
    _denied(CHIYODA, record, NoticeFacts(current, CHIYODA, grant=grant), words)  # a designation does not help


def test_a_take_over_never_blanks_a_stored_my_number() -> None:
    move_out = _removed(NAKANO[3:], R.CHANGE_REASON_MOVE_OUT, my_number="123456789018")
    _denied(CHIYODA, _move_in(CHIYODA[3:]), NoticeFacts(move_out, None, grant=_grant()), "may not remove it")
    kept = _move_in(CHIYODA[3:], my_number="123456789018")
    assert notice_problem(CHIYODA, kept, NoticeFacts(move_out, None, grant=_grant(), number_holder=None)) is None


# -- finding 8: a prefecture leaves a grant from another prefecture's CS to the national server ---------


def test_a_prefecture_defers_a_grant_from_another_prefecture() -> None:
    elsewhere = _grant(YOKOHAMA, judged_here=False)
    for current in (
        _removed(NAKANO[3:], R.CHANGE_REASON_MOVE_OUT, datetime.date(2025, 1, 1)),  # its last record: 131148's 転出
        _removed(NAKANO[3:], R.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED),
        None,  # never here before
    ):
        assert notice_problem(CHIYODA, _move_in(CHIYODA[3:]), NoticeFacts(current, None, grant=elsewhere)) is None
    _denied(CHIYODA, _move_in(CHIYODA[3:]), NoticeFacts(_active(NAKANO[3:]), None, grant=elsewhere), "did not move out")
    _denied(CHIYODA, _move_in(CHIYODA[3:]), NoticeFacts(_removed(NAKANO[3:], R.CHANGE_REASON_DEATH), None,
            grant=elsewhere), "did not move out")  # fmt: skip
    _denied(CHIYODA, _move_in(CHIYODA[3:]), NoticeFacts(None, NAKANO, grant=elsewhere), "designated to cs:131148")
    _denied(CHIYODA, _move_in(CHIYODA[3:]), NoticeFacts(None, None, grant=_grant(YOKOHAMA, judged_here=False,
            used=True)), "used")  # fmt: skip


# -- the tiers storing notices ----------------------------------------------------------------------------


def _signed_grant(grant_id: str, origin: str, destination: str, planned: datetime.date) -> moves_pb2.MoveOutGrant:
    grant = moves_pb2.MoveOutGrant(grant_id=grant_id, origin=origin, destination=destination,
                                   resident_codes=["12345678903"])  # fmt: skip
    grant.planned_date.year, grant.planned_date.month, grant.planned_date.day = planned.year, planned.month, planned.day
    return grant


def _notice(record: R.IdentityRecord, sequence: int, grant: moves_pb2.MoveOutGrant | None = None):
    notice = notice_pb2.ChangeNotice(origin=f"cs:{record.address.municipality_code}", sequence=sequence, record=record)
    if grant is not None:
        notice.move_out_grant.payload_type = "jukinet.v1.MoveOutGrant"
        notice.move_out_grant.payload = grant.SerializeToString()
    return Incoming(sequence, notice, grant)


def _store(storage: NodeStorage, writer: ChangeWriter, *incoming: Incoming) -> None:
    storage.env.write(lambda txn: writer.apply(txn, list(incoming)))


def test_the_national_server_refuses_a_replayed_grant_and_stores_nothing(tmp_path: Path) -> None:
    storage = NodeStorage.open(tmp_path / "national")
    writer = ChangeWriter(storage, national=True)
    storage.env.write(lambda txn: storage.designations.put(txn, "12345678903", NAKANO, 1))
    back = datetime.date(2026, 5, 1)
    g1 = _signed_grant(f"{NAKANO}/1", NAKANO, CHIYODA, PLANNED)
    g2 = _signed_grant(f"{CHIYODA}/1", CHIYODA, NAKANO, back)
    _store(storage, writer,
           _notice(_active(NAKANO[3:]), 1), _notice(_removed(NAKANO[3:], R.CHANGE_REASON_MOVE_OUT), 2),
           _notice(_move_in(CHIYODA[3:]), 3, g1), _notice(_removed(CHIYODA[3:], R.CHANGE_REASON_MOVE_OUT, back), 4),
           _notice(_move_in(NAKANO[3:], back), 5, g2))  # fmt: skip
    before = storage.history.count()
    for replay in (_move_in(CHIYODA[3:], PLANNED + datetime.timedelta(days=20)), _move_in(CHIYODA[3:])):
        with pytest.raises(ItemRefused) as refused:  # 千代田区 replays g1 (a4_grant_replay.py)
            _store(storage, writer, _notice(replay, 6, g1))
        assert refused.value.problem is Problem.DENIED and "used" in str(refused.value)
    self_grant = _signed_grant(f"{MINATO}/1", MINATO, MINATO, PLANNED)
    with pytest.raises(ItemRefused) as refused:  # a5: a grant over a code never recorded here
        storage.env.write(lambda txn: storage.designations.put(txn, "98765432106", NAKANO, 2))
        record = _move_in(MINATO[3:], resident_code="98765432106")
        self_grant.resident_codes[:] = ["98765432106"]
        _store(storage, writer, _notice(record, 1, self_grant))
    assert refused.value.problem is Problem.DENIED and "no record" in str(refused.value)
    with storage.env.read() as txn:
        assert storage.records.current(txn, "12345678903").address.municipality_code == NAKANO[3:]
        assert storage.records.current(txn, "98765432106") is None
    assert storage.history.count() == before
    storage.close()


def test_a_prefecture_accepts_a_return_from_another_prefecture(tmp_path: Path) -> None:
    storage = NodeStorage.open(tmp_path / "pref-13")
    writer = ChangeWriter(storage, hosted=frozenset({"13"}))
    storage.env.write(lambda txn: storage.designations.put(txn, "12345678903", NAKANO, 1))
    _store(storage, writer, _notice(_active(NAKANO[3:]), 1), _notice(_removed(NAKANO[3:], R.CHANGE_REASON_MOVE_OUT), 2))
    back = datetime.date(2026, 6, 1)  # R went to 横浜市西区 (pref:14 saw that) and now returns to 千代田区
    _store(storage, writer, _notice(_move_in(CHIYODA[3:], back), 3, _signed_grant(f"{YOKOHAMA}/4", YOKOHAMA, CHIYODA,
           back)))  # fmt: skip
    with storage.env.read() as txn:
        assert storage.records.current(txn, "12345678903").address.municipality_code == CHIYODA[3:]
    with pytest.raises(ItemRefused) as refused:  # a grant from 中野区 itself is judged here: not its 転出 now
        _store(storage, writer, _notice(_move_in(MINATO[3:], back), 4, _signed_grant(f"{NAKANO}/9", NAKANO, MINATO,
               back)))  # fmt: skip
    assert refused.value.problem is Problem.DENIED
    storage.close()


def test_a_self_addressed_grant_is_refused_before_the_transaction(tmp_path: Path) -> None:
    init_pki(tmp_path / "pki")
    trust = TrustStore.load(tmp_path / "pki")
    rogue = SimulatedNode.issue(tmp_path / "pki", [MINATO], tmp_path / "rogue")
    grant = _signed_grant(f"{MINATO}/1", MINATO, MINATO, PLANNED)
    notice = notice_pb2.ChangeNotice(origin=MINATO, sequence=1, record=_move_in(MINATO[3:]))
    notice.move_out_grant.CopyFrom(seal(rogue.signer, grant, rogue.certificate_der))
    recorded = PLANNED + datetime.timedelta(days=3)
    notice.recorded_at.FromDatetime(datetime.datetime.combine(recorded, datetime.time(12)))
    with pytest.raises(ItemRefused) as refused:
        verified_grant(notice, trust, 5, recorded)
    assert (
        refused.value.problem is Problem.INVALID and refused.value.position == 5 and "to itself" in str(refused.value)
    )
    grant.destination = CHIYODA  # a genuine grant to another CS is verified (and judged in the transaction)
    notice.move_out_grant.CopyFrom(seal(rogue.signer, grant, rogue.certificate_der))
    notice.origin = CHIYODA
    assert verified_grant(notice, trust, 5, recorded) == grant
    assert verified_grant(notice, trust, 5, recorded + datetime.timedelta(days=200)) == grant  # delayed on the way


def test_the_tiers_apply_the_legal_time_limits_of_a_move_in(tmp_path: Path) -> None:
    """A CS that skips its own checks cannot take a resident over late: the tiers judge a grant's 転入 by the
    day the CS recorded it (signed with the notice) — within 14 days of moving in and 30 of the planned
    move-out date — and refuse one recorded in their future or not saying when it was recorded."""
    init_pki(tmp_path / "pki")
    trust = TrustStore.load(tmp_path / "pki")
    nakano = SimulatedNode.issue(tmp_path / "pki", [NAKANO], tmp_path / "nakano")
    grant = seal(nakano.signer, _signed_grant(f"{NAKANO}/1", NAKANO, CHIYODA, PLANNED), nakano.certificate_der)

    def notice(moved: datetime.date, recorded: datetime.date | None) -> notice_pb2.ChangeNotice:
        out = notice_pb2.ChangeNotice(origin=CHIYODA, sequence=1, record=_move_in(CHIYODA[3:], moved))
        out.move_out_grant.CopyFrom(grant)
        if recorded is not None:
            out.recorded_at.FromDatetime(datetime.datetime.combine(recorded, datetime.time(12)))
        return out

    day = datetime.timedelta(days=1)
    today = PLANNED + 400 * day
    assert verified_grant(notice(PLANNED + 2 * day, PLANNED + 16 * day), trust, 3, today) is not None
    cases = [
        (notice(PLANNED + 2 * day, PLANNED + 17 * day), Problem.CONFLICT, "within 14 days of moving in"),
        (notice(PLANNED + 31 * day, PLANNED + 32 * day), Problem.CONFLICT, "at most 30 days"),
        (notice(PLANNED + 2 * day, today + 2 * day), Problem.INVALID, "after today"),
        (notice(PLANNED + 2 * day, None), Problem.INVALID, "when it was recorded"),
    ]
    for late, problem, words in cases:
        with pytest.raises(ItemRefused) as refused:
            verified_grant(late, trust, 3, today)
        assert refused.value.problem is problem and words in str(refused.value) and refused.value.position == 3


def test_a_birth_over_a_code_with_a_record_is_refused_at_the_tiers() -> None:
    """Even from the CS that owns the resident: a 出生 notice over a living or a dead resident's code would give
    somebody else that resident's code (and history); the tiers refuse it whatever the owner."""
    for current in (_active(NAKANO[3:]), _removed(NAKANO[3:], R.CHANGE_REASON_DEATH)):
        birth = _active(NAKANO[3:], R.CHANGE_REASON_BIRTH)
        _denied(NAKANO, birth, NoticeFacts(current=current, designated_to=NAKANO), "a 出生 takes a new, unused code")
    assert notice_problem(NAKANO, _active(NAKANO[3:]), NoticeFacts(current=None, designated_to=NAKANO)) is None
