"""The rules of a move, without a network: time limits at their boundaries, local-only items, and that
the largest grant rides on the largest record's notice within the notice limit."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest

from jukinet.domain import limits
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import LOCAL_TEXT_LIMITS
from jukinet.domain.moves import (
    AFTER_PLANNED_DAYS,
    BEFORE_PLANNED_DAYS,
    REGISTRATION_DAYS,
    check_certificate_arrival,
    check_members,
    check_move_in_dates,
    check_notice_move_in,
    check_planned_date,
    grant_open,
    last_move_in_day,
    local_data_problems,
)
from jukinet.server.grants import MAX_GRANT_ID_CHARS, grant_id_problem
from jukinet.v1 import local_pb2, moves_pb2, notice_pb2

DAY = datetime.timedelta(days=1)
TODAY = datetime.date(2026, 11, 26)
DOC = Path(__file__).resolve().parents[1] / "docs" / "LIMITS.md"


def _refused(problem: Problem, words: str, fn, *args) -> None:
    with pytest.raises(Rejected) as exc:
        fn(*args)
    assert exc.value.problem is problem and words in str(exc.value), str(exc.value)


def test_move_in_time_limits_at_their_boundaries() -> None:
    planned = TODAY - 20 * DAY
    check_move_in_dates(TODAY - REGISTRATION_DAYS * DAY, planned, TODAY)  # exactly 14 days ago
    _refused(Problem.CONFLICT, "within 14 days", check_move_in_dates, TODAY - 15 * DAY, planned, TODAY)
    early = TODAY - 40 * DAY
    check_move_in_dates(early + AFTER_PLANNED_DAYS * DAY, early, TODAY)  # exactly 30 days after
    _refused(Problem.CONFLICT, "31 days after the planned", check_move_in_dates, early + 31 * DAY, early, TODAY)
    ahead = TODAY + 5 * DAY
    check_move_in_dates(ahead - BEFORE_PLANNED_DAYS * DAY, ahead, TODAY)  # moved 14 days earlier than planned
    _refused(Problem.CONFLICT, "15 days before", check_move_in_dates, ahead - 15 * DAY, ahead, TODAY)
    _refused(Problem.INVALID, "after today", check_move_in_dates, TODAY + DAY, TODAY, TODAY)


def test_what_a_certificate_and_a_notice_may_carry_at_their_boundaries() -> None:
    planned = TODAY - 10 * DAY
    assert last_move_in_day(planned) == planned + 44 * DAY
    check_certificate_arrival(TODAY + 15 * DAY, TODAY)  # 14 days ahead, and a day of clock skew
    _refused(Problem.INVALID, "16 days after today", check_certificate_arrival, TODAY + 16 * DAY, TODAY)
    check_certificate_arrival(TODAY - 44 * DAY, TODAY)  # its last day
    _refused(Problem.CONFLICT, "after its last day", check_certificate_arrival, TODAY - 45 * DAY, TODAY)
    assert grant_open(TODAY - 45 * DAY, TODAY) and not grant_open(TODAY - 46 * DAY, TODAY)
    check_notice_move_in(planned - 14 * DAY, planned, TODAY)
    check_notice_move_in(TODAY + DAY, TODAY - 29 * DAY, TODAY)  # +30 days, tomorrow by our clock
    _refused(Problem.INVALID, "outside -14..+30", check_notice_move_in, planned - 15 * DAY, planned, TODAY)
    _refused(Problem.INVALID, "outside -14..+30", check_notice_move_in, TODAY, TODAY - 31 * DAY, TODAY)
    _refused(Problem.INVALID, "after today", check_notice_move_in, TODAY + 2 * DAY, TODAY, TODAY)


def test_planned_date_at_most_14_days_ahead() -> None:
    check_planned_date(TODAY + 14 * DAY, TODAY)
    check_planned_date(TODAY - 400 * DAY, TODAY)  # a late 転出届 is accepted
    _refused(Problem.INVALID, "more than 14 days", check_planned_date, TODAY + 15 * DAY, TODAY)


def test_members_are_bounded_distinct_valid_codes() -> None:
    code = "12345678903"
    assert check_members([code]) == [code]
    _refused(Problem.INVALID, "at least one", check_members, [])
    _refused(Problem.INVALID, "named twice", check_members, [code, code])
    _refused(Problem.INVALID, "resident_codes[0]", check_members, ["12345678901"])
    _refused(Problem.EXHAUSTED, "at most 20", check_members, [code] * (limits.MAX_MOVE_MEMBERS + 1))


def test_grant_ids() -> None:
    assert grant_id_problem("cs:131148/42") is None
    for bad in (
        "",
        "cs:131148/0",
        "pref:13/1",
        "cs:131148/1/2",
        "cs:131148/" + "9" * 20,
        "cs:131148/\u0661",
        "cs:131148/1\u0661",
        "cs:13114\u0668/1",
    ):
        assert grant_id_problem(bad) is not None, bad
    assert len("cs:131148/" + "9" * 19) == MAX_GRANT_ID_CHARS


def test_local_items_are_bounded_and_checked() -> None:
    big = "\U00020000"
    largest = local_pb2.LocalResidentData(
        **{field.split(".")[1]: big * rule.max_chars for field, rule in LOCAL_TEXT_LIMITS.items()}
    )
    assert local_data_problems(largest) == []
    assert largest.ByteSize() <= limits.MAX_LOCAL_DATA_BYTES
    hidden = local_pb2.LocalResidentData(relationship="妻\u202e")
    assert any("local.relationship: character 2" in p for p in local_data_problems(hidden))
    too_long = local_pb2.LocalResidentData(relationship="子" * 21)
    assert any("at most 20" in p for p in local_data_problems(too_long))


def test_the_largest_grant_rides_on_the_largest_record_within_the_notice_limit() -> None:
    from test_limits import _largest_record

    grant = moves_pb2.MoveOutGrant(
        grant_id="cs:131148/" + "9" * 19,
        origin="cs:131148",
        destination="cs:141038",
        resident_codes=["12345678903"] * limits.MAX_MOVE_MEMBERS,
    )
    grant.planned_date.year = 2026
    grant.issued_at.FromMilliseconds(1_790_000_000_000)
    signed = moves_pb2.MoveOutCertificate().grant  # a Signed
    signed.payload_type, signed.payload = "jukinet.v1.MoveOutGrant", grant.SerializeToString()
    signed.algorithm, signed.key_id, signed.signature = 1, b"k" * 32, b"s" * 64
    signed.certificate = b"c" * 1200  # a node signing certificate is about 700 bytes of DER
    notice = notice_pb2.ChangeNotice(origin="cs:141038", sequence=2**40, record=_largest_record())
    notice.move_out_grant.CopyFrom(signed)
    notice.recorded_at.FromMilliseconds(1_790_000_000_000)
    assert notice.ByteSize() <= limits.MAX_NOTICE_BYTES


def test_the_documented_local_table_is_the_code_table() -> None:
    rows = re.findall(r"^\| `(local\.[a-z_]+)` \| (\d+) chars \| (\w+) \|", DOC.read_text(encoding="utf-8"), re.M)
    assert {f: (int(n), r) for f, n, r in rows} == {
        f: (rule.max_chars, rule.repertoire.value) for f, rule in LOCAL_TEXT_LIMITS.items()
    }
