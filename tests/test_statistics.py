"""The movement report's follower and reader over a real LMDB change history, with constructed notices:
births, deaths, a move across prefectures, a move within a prefecture, a 転居, removals that are not moves,
a clerk's second birth of the same resident; resume after reopening; bounds and bad months."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_REPORT_ROWS, MAX_RESPONSE_BYTES
from jukinet.domain.statistics import Count, Kind, Month, counted
from jukinet.domain.synthetic import synthetic_resident
from jukinet.server.national.statistics import MovementFollower, MovementReports
from jukinet.storage import NodeStorage
from jukinet.storage.statistics import MovementCounts
from jukinet.v1 import envelope_pb2, identity_pb2, moves_pb2, notice_pb2, statistics_pb2

R = identity_pb2
NAKANO, SUGINAMI, NISHI = "131148", "131156", "141038"  # 中野区, 杉並区 (東京都); 横浜市西区 (神奈川県)
_rng = random.Random(909)
_sequence = iter(range(1, 1_000_000))


def _notice(municipality: str, reason: int, day: tuple[int, int, int], code: str = "", grant_from: str = ""):
    record = synthetic_resident(_rng, municipality, reason, numbered=True)
    if code:
        record.resident_code = code
    record.change_date.CopyFrom(R.Date(year=day[0], month=day[1], day=day[2]))
    notice = notice_pb2.ChangeNotice(origin=f"cs:{municipality}", sequence=next(_sequence), record=record)
    if grant_from:
        grant = moves_pb2.MoveOutGrant(
            grant_id=f"cs:{grant_from}/1", origin=f"cs:{grant_from}", destination=f"cs:{municipality}",
            resident_codes=[record.resident_code],
        )  # fmt: skip
        notice.move_out_grant.CopyFrom(
            envelope_pb2.Signed(payload_type="jukinet.v1.MoveOutGrant", payload=grant.SerializeToString())
        )
    return notice


def _store(storage: NodeStorage, notices: list[notice_pb2.ChangeNotice]) -> None:
    def append(txn) -> None:
        for n in notices:
            storage.history.append(txn, n.record.resident_code, n.SerializeToString())

    storage.env.write(append)


def _november(storage: NodeStorage) -> dict[str, notice_pb2.ChangeNotice]:
    """The month's changes as the national feed holds them (and two of October)."""
    mover = _notice(NAKANO, R.CHANGE_REASON_BIRTH, (2001, 1, 1))
    mover_out = _notice(NAKANO, R.CHANGE_REASON_MOVE_OUT, (2026, 11, 3), code=mover.record.resident_code)
    mover_in = _notice(NISHI, R.CHANGE_REASON_MOVE_IN, (2026, 11, 5), mover.record.resident_code, NAKANO)
    closed = _notice(NAKANO, R.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED, (2026, 11, 5), mover.record.resident_code)
    near = _notice(SUGINAMI, R.CHANGE_REASON_SPECIAL_MOVE_IN, (2026, 11, 20), grant_from=NAKANO)
    baby = _notice(NAKANO, R.CHANGE_REASON_BIRTH, (2026, 11, 1))
    reborn = _notice(NAKANO, R.CHANGE_REASON_BIRTH, (2026, 11, 2), code=baby.record.resident_code)
    notices = {
        "old birth": mover,
        "move out": mover_out,  # a removal that is not counted: the move counts at the 転入
        "move in": mover_in,
        "closed": closed,
        "near": near,
        "baby": baby,
        "removed": _notice(NAKANO, R.CHANGE_REASON_EX_OFFICIO_REMOVAL, (2026, 11, 2), baby.record.resident_code),
        "reborn": reborn,  # the same resident entered as born again: not a second birth
        "twin": _notice(NISHI, R.CHANGE_REASON_BIRTH, (2026, 11, 30)),
        "death": _notice(SUGINAMI, R.CHANGE_REASON_DEATH, (2026, 11, 11)),
        "relocation": _notice(NAKANO, R.CHANGE_REASON_RELOCATION, (2026, 11, 12)),
        "abroad": _notice(NISHI, R.CHANGE_REASON_MOVE_IN, (2026, 11, 13)),
        "emigrant": _notice(SUGINAMI, R.CHANGE_REASON_EMIGRATION, (2026, 11, 14)),
        "renamed": _notice(NISHI, R.CHANGE_REASON_NAME_CHANGE, (2026, 11, 15)),
        "october death": _notice(NAKANO, R.CHANGE_REASON_DEATH, (2026, 10, 31)),
    }
    _store(storage, list(notices.values()))
    return notices


@pytest.fixture
def storage(tmp_path: Path):
    s = NodeStorage.open(tmp_path / "national")
    yield s
    s.close()


def _report(storage: NodeStorage, month: str = "2026-11", **kwargs) -> statistics_pb2.GetMovementReportResponse:
    return MovementReports(storage, **kwargs).report(month)


def test_each_change_counts_where_and_when_it_happened_and_a_move_once(storage):
    _november(storage)
    assert MovementFollower(storage).catch_up() == 15
    report = _report(storage)
    assert report.totals == statistics_pb2.MovementTotals(
        births=2, deaths=1, inter_prefecture_moves=1, intra_prefecture_moves=1, relocations=1,
        arrivals_without_grant=1, emigrations=1,
    )  # fmt: skip
    assert [(f.origin_prefecture, f.destination_prefecture, f.moves) for f in report.prefecture_flows] == [
        ("13", "14", 1)
    ]
    flows = [(f.origin_municipality, f.destination_municipality, f.moves) for f in report.municipality_flows]
    assert flows == [(NAKANO, SUGINAMI, 1), (NAKANO, NISHI, 1)]
    by_code = {m.municipality_code: m for m in report.municipalities}
    assert list(by_code) == [NAKANO, SUGINAMI, NISHI]
    assert by_code[NAKANO] == statistics_pb2.MunicipalityCounts(
        municipality_code=NAKANO, births=1, moves_out=2, relocations=1
    )
    assert by_code[SUGINAMI] == statistics_pb2.MunicipalityCounts(
        municipality_code=SUGINAMI, deaths=1, moves_in=1, emigrations=1
    )
    assert by_code[NISHI] == statistics_pb2.MunicipalityCounts(
        municipality_code=NISHI, births=1, moves_in=1, arrivals_without_grant=1
    )
    assert (report.read_position, report.feed_position) == (15, 15)
    assert not report.municipality_flows_truncated and not report.municipalities_truncated
    october = _report(storage, "2026-10")
    assert october.totals == statistics_pb2.MovementTotals(deaths=1) and october.month == "2026-10"
    assert _report(storage, "2001-01").totals.births == 1  # the mover's own birth, in its month


def test_a_second_birth_or_death_of_one_resident_is_not_counted(storage):
    """The dishonest clerk: a resident removed and entered again as born (or dead) again adds nothing."""
    baby = _notice(NAKANO, R.CHANGE_REASON_BIRTH, (2026, 11, 1))
    code = baby.record.resident_code
    dead = _notice(NAKANO, R.CHANGE_REASON_DEATH, (2026, 11, 9), code=code)
    again = [
        _notice(NAKANO, R.CHANGE_REASON_EX_OFFICIO_ENTRY, (2026, 11, 10), code=code),
        _notice(NAKANO, R.CHANGE_REASON_BIRTH, (2026, 11, 10), code=code),
        _notice(NAKANO, R.CHANGE_REASON_DEATH, (2026, 11, 11), code=code),
    ]
    _store(storage, [baby, dead])
    follower = MovementFollower(storage, chunk=1)
    follower.catch_up()
    _store(storage, again)  # in a later step: the earlier ones are read from the feed, not from memory
    follower.catch_up()
    totals = _report(storage).totals
    assert (totals.births, totals.deaths) == (1, 1)


def test_a_clerk_alternating_deaths_and_births_costs_the_follower_one_read_per_entry(storage, monkeypatch):
    """The dishonest clerk, at scale (review finding F4): 2,000 relocations of one resident, then 2,000 deaths
    and births alternating. Deciding "the first birth" once re-read the resident's history for each of them
    (quadratic: about 26 s here); with the marks, the follower decodes each feed entry once and reads no
    history. Counted by the notices decoded, not by wall time; the spy stops a quadratic follower early."""
    n = 2_000
    code = _notice(NAKANO, R.CHANGE_REASON_BIRTH, (2026, 11, 1)).record.resident_code
    reasons = [R.CHANGE_REASON_RELOCATION] * n + [R.CHANGE_REASON_DEATH, R.CHANGE_REASON_BIRTH] * (n // 2)
    _store(storage, [_notice(NAKANO, reason, (2026, 11, 1), code=code) for reason in reasons])
    decode = notice_pb2.ChangeNotice.FromString
    bound = 2 * n + 100  # every entry once, and plenty to spare
    decoded = 0

    def counting(raw: bytes) -> notice_pb2.ChangeNotice:
        nonlocal decoded
        decoded += 1
        assert decoded <= bound, f"the follower decoded more than {bound} notices for {2 * n} feed entries"
        return decode(raw)

    monkeypatch.setattr(notice_pb2.ChangeNotice, "FromString", staticmethod(counting))
    follower = MovementFollower(storage)
    assert follower.catch_up() == 2 * n
    assert decoded == 2 * n
    monkeypatch.undo()
    totals = _report(storage).totals
    assert (totals.relocations, totals.births, totals.deaths) == (n, 1, 1)


def test_the_marks_survive_reopening(tmp_path):
    """The first birth and death counted before a restart stay counted: a clerk's second ones after it add
    nothing (the marks committed with the counters)."""
    path = tmp_path / "national"
    storage = NodeStorage.open(path)
    baby = _notice(NAKANO, R.CHANGE_REASON_BIRTH, (2026, 11, 1))
    code = baby.record.resident_code
    _store(storage, [baby, _notice(NAKANO, R.CHANGE_REASON_DEATH, (2026, 11, 2), code=code)])
    assert MovementFollower(storage).catch_up() == 2
    storage.close()
    reopened = NodeStorage.open(path)
    try:
        again = [_notice(NAKANO, reason, (2026, 11, 3), code=code) for reason in (R.CHANGE_REASON_BIRTH,
                                                                                  R.CHANGE_REASON_DEATH)]  # fmt: skip
        _store(reopened, [*again, _notice(NISHI, R.CHANGE_REASON_BIRTH, (2026, 11, 3))])
        assert MovementFollower(reopened).catch_up() == 3
        totals = _report(reopened).totals
        assert (totals.births, totals.deaths) == (2, 1)  # the other resident's birth counts
        counts = MovementCounts(reopened.env)
        with reopened.env.read() as txn:
            assert counts.marked(txn, code, Kind.BIRTH) and counts.marked(txn, code, Kind.DEATH)
    finally:
        reopened.close()


@pytest.mark.parametrize("chunk", [1, 1_000])  # the change in a later step, and in the same step
def test_a_code_change_carries_the_marks_to_the_new_code(storage, chunk):
    """A clerk cannot count a resident's birth again by changing their 住民票コード and entering a birth
    under the new code."""
    baby = _notice(NAKANO, R.CHANGE_REASON_BIRTH, (2026, 11, 1))
    changed = _notice(NAKANO, R.CHANGE_REASON_RESIDENT_CODE_CHANGE, (2026, 11, 5))
    changed.former_resident_code = baby.record.resident_code
    new = changed.record.resident_code
    reborn = [_notice(NAKANO, R.CHANGE_REASON_BIRTH, (2026, 11, 6), code=new),
              _notice(NAKANO, R.CHANGE_REASON_DEATH, (2026, 11, 7), code=new)]  # fmt: skip
    _store(storage, [baby, changed, *reborn])
    assert MovementFollower(storage, chunk=chunk).catch_up() == 4
    totals = _report(storage).totals
    assert (totals.births, totals.deaths) == (1, 1)  # the death is the resident's first


def test_the_follower_resumes_after_reopening_and_counts_nothing_twice(tmp_path):
    path = tmp_path / "national"
    storage = NodeStorage.open(path)
    _november(storage)
    follower = MovementFollower(storage, chunk=4)
    assert follower.step() == 4 and follower.step() == 4
    assert _report(storage).read_position == 8
    storage.close()

    reopened = NodeStorage.open(path)
    try:
        assert _report(reopened).read_position == 8  # the cursor committed with the counters
        resumed = MovementFollower(reopened, chunk=4)
        assert resumed.catch_up() == 7
        assert resumed.step() == 0
        _store(reopened, [_notice(NISHI, R.CHANGE_REASON_BIRTH, (2026, 11, 29))])
        assert resumed.catch_up() == 1
        report = _report(reopened)
    finally:
        reopened.close()

    once = NodeStorage.open(tmp_path / "once")
    try:
        _november(once)
        _store(once, [_notice(NISHI, R.CHANGE_REASON_BIRTH, (2026, 11, 29))])
        MovementFollower(once).catch_up()
        in_one_pass = _report(once)
    finally:
        once.close()
    assert report.totals == in_one_pass.totals and report.totals.births == 3
    assert report.municipalities == in_one_pass.municipalities
    assert report.read_position == report.feed_position == 16


def test_a_second_follower_cannot_count_the_same_entries(storage):
    _november(storage)
    counts = MovementCounts(storage.env)
    one = Count(Month(2026, 11), Kind.BIRTH, NAKANO)
    storage.env.write(lambda txn: counts.add(txn, {one: 1}, 0, 5))
    with pytest.raises(Rejected) as refused:
        storage.env.write(lambda txn: counts.add(txn, {one: 1}, 0, 5))
    assert refused.value.problem is Problem.BROKEN
    assert _report(storage).totals.births == 1 and _report(storage).read_position == 5


@pytest.mark.parametrize("month", ["", "2026-13", "2026-00", "2026-1", "26-11", "2026/11", "0000-01", "２０２６-11",
                                   "2026-11-01", "x" * 5000])  # fmt: skip
def test_a_bad_month_is_refused_naming_it(storage, month):
    with pytest.raises(Rejected) as refused:
        _report(storage, month)
    assert refused.value.problem is Problem.INVALID and "YYYY-MM" in str(refused.value)
    assert len(str(refused.value)) < 300  # a long value is quoted cut


def test_rows_are_capped_and_the_answer_says_so(storage):
    notices = [_notice(NISHI, R.CHANGE_REASON_MOVE_IN, (2026, 11, 1), grant_from=src) for src in (NAKANO, SUGINAMI)]
    notices.append(_notice(NAKANO, R.CHANGE_REASON_BIRTH, (2026, 11, 1)))
    _store(storage, notices)
    MovementFollower(storage).catch_up()
    capped = _report(storage, max_rows=1)
    assert len(capped.municipality_flows) == 1 and capped.municipality_flows_truncated
    assert len(capped.municipalities) == 1 and capped.municipalities_truncated
    assert capped.totals.intra_prefecture_moves == 0 and capped.totals.inter_prefecture_moves == 2  # never cut
    assert capped.totals.births == 1
    whole = _report(storage, max_rows=3)
    assert len(whole.municipality_flows) == 2 and not whole.municipality_flows_truncated
    assert len(whole.municipalities) == 3 and not whole.municipalities_truncated


COUNT_FIELDS = ("births", "deaths", "moves_in", "moves_out", "relocations", "arrivals_without_grant", "emigrations")


def test_the_largest_answer_fits_a_response():
    code = "999999"
    full = statistics_pb2.GetMovementReportResponse(month="2026-11", read_position=2**63, feed_position=2**63)
    for _ in range(MAX_REPORT_ROWS):
        full.municipality_flows.add(origin_municipality=code, destination_municipality=code, moves=2**40)
        full.municipalities.add(municipality_code=code, **dict.fromkeys(COUNT_FIELDS, 2**40))
    for _ in range(47 * 46):
        full.prefecture_flows.add(origin_prefecture="47", destination_prefecture="46", moves=2**40)
    assert full.ByteSize() < MAX_RESPONSE_BYTES


def test_what_is_not_counted():
    day = R.Date(year=2026, month=11, day=1)
    not_counted = (
        R.CHANGE_REASON_MOVE_OUT, R.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED, R.CHANGE_REASON_EX_OFFICIO_REMOVAL,
        R.CHANGE_REASON_EX_OFFICIO_ENTRY, R.CHANGE_REASON_NAME_CHANGE, R.CHANGE_REASON_RESIDENT_CODE_CHANGE,
        R.CHANGE_REASON_MY_NUMBER_CHANGE, R.CHANGE_REASON_EX_OFFICIO_CORRECTION,
    )  # fmt: skip
    for reason in not_counted:
        assert counted(reason, day, NAKANO, None, True) == [], reason
    assert counted(R.CHANGE_REASON_BIRTH, R.Date(), NAKANO, None, True) == []  # no date, no month
    assert counted(R.CHANGE_REASON_MOVE_IN, day, NAKANO, NAKANO, True) == [Count(Month(2026, 11), Kind.ARRIVAL, NAKANO)]
