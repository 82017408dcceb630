"""The rules of a move between municipalities (転出 → 転出証明書情報 → 転入 / 特例転入 → 転入通知), no I/O.

Time limits (住民基本台帳法 §22, §24 as the issue states them): a 転入 is registered within
:data:`REGISTRATION_DAYS` of the move-in date, and the move-in date lies within :data:`AFTER_PLANNED_DAYS`
after the planned move-out date. A move-in date *before* the planned date is accepted up to
:data:`BEFORE_PLANNED_DAYS` earlier: the resident moved earlier than planned (the planned date may lie
that far ahead when the 転出届 is filed), and the old municipality's 転出確定 records the actual date (the
move-in date the 転入通知 carries) on the 除票. Earlier than that is refused: the planned date the
resident gave could not have been meant. (A move-in date before the day the 転出届 was filed is
normal: one may file it after moving.)

What one CS can make another hold: a received 転出証明書情報 serves a 転入 until
:func:`last_move_in_day` (the planned date + 30 + 14 days) and is deleted after it; one arriving after
that day, or with a planned date further ahead than a 転出届 allows, is refused. A 転入通知's move-in
date lies in the window the grant allows (:func:`check_notice_move_in`). Dates judged against another
node's clock allow :data:`CLOCK_SKEW_DAYS`.

The records: at 転出 each member's 除票 (reason 転出, change date the planned date); at 転入 a new record
with the same 住民票コード and My Number at the new municipality; at 転出確定 the 除票 again, reason
転入通知受理, change date the actual move-in date, still removed.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from jukinet.domain.codes import local_gov_code_problem, resident_code_problem
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import LOCAL_TEXT_LIMITS, MAX_LOCAL_DATA_BYTES, MAX_MOVE_MEMBERS, text_problem
from jukinet.domain.records import CLOSING_REASON, MIN_DATE, MOVE_OUT_LEAD_DAYS, status_for
from jukinet.v1 import identity_pb2, local_pb2

REGISTRATION_DAYS = 14
"""A 転入 is registered at most this many days after the move-in date."""
AFTER_PLANNED_DAYS = 30
"""The move-in date is at most this many days after the planned move-out date."""
BEFORE_PLANNED_DAYS = MOVE_OUT_LEAD_DAYS
"""The move-in date may be this many days before the planned move-out date (moved earlier than planned)."""
CLOCK_SKEW_DAYS = 1
"""A date another CS judged against its own clock may be this much off ours (the day turns at different
moments on two machines)."""
MOVE_IN_REASONS = frozenset({identity_pb2.CHANGE_REASON_MOVE_IN, identity_pb2.CHANGE_REASON_SPECIAL_MOVE_IN})

_LOCAL_FIELDS = {
    "local.head_of_household": "head_of_household",
    "local.relationship": "relationship",
    "local.registered_domicile": "registered_domicile",
    "local.head_of_family_register": "head_of_family_register",
}
assert set(_LOCAL_FIELDS) == set(LOCAL_TEXT_LIMITS), "every local field has a limit"


def local_data_problems(local: local_pb2.LocalResidentData) -> list[str]:
    """Problems with ``local`` (each starting with its field's name); empty means valid."""
    problems = []
    size = local.ByteSize()
    if size > MAX_LOCAL_DATA_BYTES:  # unknown fields count
        problems.append(f"local: {size} bytes encoded, at most {MAX_LOCAL_DATA_BYTES} allowed")
    for field, attribute in _LOCAL_FIELDS.items():
        problem = text_problem(field, getattr(local, attribute), LOCAL_TEXT_LIMITS[field])
        if problem:
            problems.append(problem)
    return problems


def date_of(value: identity_pb2.Date, field: str) -> datetime.date:
    """The calendar date ``value`` (Rejected INVALID naming ``field`` if it is none, or before 1850)."""
    try:
        parsed = datetime.date(value.year, value.month, value.day)
    except ValueError:
        raise Rejected(
            Problem.INVALID, f"{field}: {value.year:04d}-{value.month:02d}-{value.day:02d} is not a calendar date"
        ) from None
    if parsed < MIN_DATE:
        raise Rejected(Problem.INVALID, f"{field}: {parsed.isoformat()} is before {MIN_DATE.isoformat()}")
    return parsed


def proto_date(value: datetime.date) -> identity_pb2.Date:
    return identity_pb2.Date(year=value.year, month=value.month, day=value.day)


def check_members(resident_codes: Sequence[str]) -> list[str]:
    """The members of one move: 1..MAX_MOVE_MEMBERS valid, distinct 住民票コード (Rejected otherwise)."""
    if not resident_codes:
        raise Rejected(Problem.INVALID, "resident_codes: name at least one member")
    if len(resident_codes) > MAX_MOVE_MEMBERS:
        raise Rejected(
            Problem.EXHAUSTED, f"resident_codes: {len(resident_codes)} members; at most {MAX_MOVE_MEMBERS} in one move"
        )
    for i, code in enumerate(resident_codes):
        problem = resident_code_problem(code)
        if problem:
            raise Rejected(Problem.INVALID, f"resident_codes[{i}]: {problem}")
    if len(set(resident_codes)) != len(resident_codes):
        raise Rejected(Problem.INVALID, "resident_codes: a member is named twice")
    return list(resident_codes)


def check_destination(code: str, own: str) -> None:
    problem = local_gov_code_problem(code)
    if problem:
        raise Rejected(Problem.INVALID, f"destination_municipality_code: {problem}")
    if code == own:
        raise Rejected(Problem.INVALID, f"destination_municipality_code: {code} is this municipality (that is 転居)")


def check_planned_date(planned: datetime.date, today: datetime.date) -> None:
    """A 転出届 is filed at most MOVE_OUT_LEAD_DAYS before the planned date (a late one is accepted)."""
    if (planned - today).days > MOVE_OUT_LEAD_DAYS:
        raise Rejected(
            Problem.INVALID,
            f"planned_date: {planned.isoformat()} is more than {MOVE_OUT_LEAD_DAYS} days after {today.isoformat()}",
        )


def check_move_in_dates(move_in: datetime.date, planned: datetime.date, today: datetime.date) -> None:
    """The legal time limits of a 転入 from a 転出証明書情報 (see the module docstring); CONFLICT
    (FAILED_PRECONDITION) naming the dates when one is not met."""
    if move_in > today:
        raise Rejected(Problem.INVALID, f"move_in_date: {move_in.isoformat()} is after today ({today.isoformat()})")
    late = (today - move_in).days
    if late > REGISTRATION_DAYS:
        raise Rejected(
            Problem.CONFLICT,
            f"too late: moved in on {move_in.isoformat()}, registered on {today.isoformat()} ({late} days); "
            f"a 転入 must be registered within {REGISTRATION_DAYS} days of moving in",
        )
    after = (move_in - planned).days
    if after > AFTER_PLANNED_DAYS:
        raise Rejected(
            Problem.CONFLICT,
            f"too late: moved in on {move_in.isoformat()}, {after} days after the planned move-out date "
            f"{planned.isoformat()}; at most {AFTER_PLANNED_DAYS} days are allowed",
        )
    if -after > BEFORE_PLANNED_DAYS:
        raise Rejected(
            Problem.CONFLICT,
            f"moved in on {move_in.isoformat()}, {-after} days before the planned move-out date "
            f"{planned.isoformat()}; at most {BEFORE_PLANNED_DAYS} days earlier is accepted",
        )


def last_move_in_day(planned: datetime.date) -> datetime.date:
    """The last day a 転出証明書情報 with this planned date can serve a 転入: moved in at most
    AFTER_PLANNED_DAYS after it, registered at most REGISTRATION_DAYS after that."""
    return planned + datetime.timedelta(days=AFTER_PLANNED_DAYS + REGISTRATION_DAYS)


def check_certificate_arrival(planned: datetime.date, today: datetime.date) -> None:
    """A 転出証明書情報 arriving today: its planned date at most MOVE_OUT_LEAD_DAYS ahead (as the 転出届
    allowed when it was filed, which was no later than today; INVALID otherwise), and its window still
    open (CONFLICT otherwise: it could never serve a 転入, and holding it would keep household data for
    nothing)."""
    ahead = (planned - today).days
    if ahead > MOVE_OUT_LEAD_DAYS + CLOCK_SKEW_DAYS:
        raise Rejected(
            Problem.INVALID,
            f"planned_date: {planned.isoformat()} is {ahead} days after today ({today.isoformat()}); a 転出届 "
            f"is filed at most {MOVE_OUT_LEAD_DAYS} days ahead",
        )
    last = last_move_in_day(planned)
    if today > last:
        raise Rejected(
            Problem.CONFLICT,
            f"arrived on {today.isoformat()}, after its last day for a 転入 ({last.isoformat()}: planned "
            f"{planned.isoformat()} + {AFTER_PLANNED_DAYS} + {REGISTRATION_DAYS} days)",
        )


def grant_open(planned: datetime.date, today: datetime.date) -> bool:
    """Whether a 転出 granted with this planned date may still serve a 転入 at its destination (whose
    clock may be a day behind ours)."""
    return today <= last_move_in_day(planned) + datetime.timedelta(days=CLOCK_SKEW_DAYS)


def check_notice_move_in(move_in: datetime.date, planned: datetime.date, today: datetime.date) -> None:
    """The move-in date a 転入通知 reports, against the grant it closes: within the window a 転入 allows
    (BEFORE_PLANNED_DAYS before to AFTER_PLANNED_DAYS after the planned date) and not after today
    (INVALID otherwise: the old CS would record a 転出日 no 転入 could have had)."""
    if (move_in - today).days > CLOCK_SKEW_DAYS:
        raise Rejected(Problem.INVALID, f"move_in_date: {move_in.isoformat()} is after today ({today.isoformat()})")
    after = (move_in - planned).days
    if after > AFTER_PLANNED_DAYS or -after > BEFORE_PLANNED_DAYS:
        raise Rejected(
            Problem.INVALID,
            f"move_in_date: {move_in.isoformat()} is outside {-BEFORE_PLANNED_DAYS:+d}..{AFTER_PLANNED_DAYS:+d} days "
            f"of the planned move-out date {planned.isoformat()}",
        )


def removal_record(current: identity_pb2.IdentityRecord, planned: datetime.date) -> identity_pb2.IdentityRecord:
    """The 除票 of a 転出: the current record, reason 転出, change date the planned date."""
    record = identity_pb2.IdentityRecord()
    record.CopyFrom(current)
    record.change_reason = identity_pb2.CHANGE_REASON_MOVE_OUT
    record.change_date.CopyFrom(proto_date(planned))
    record.status = status_for(record.change_reason)
    return record


def moved_in_record(
    left: identity_pb2.IdentityRecord, municipality: str, address_text: str, reason: int, move_in: datetime.date
) -> identity_pb2.IdentityRecord:
    """The new municipality's record: same person, same numbers, the new address, reason 転入 / 特例転入."""
    if reason not in MOVE_IN_REASONS:
        raise Rejected(Problem.BROKEN, f"{reason} is not a move-in reason")
    record = identity_pb2.IdentityRecord()
    record.CopyFrom(left)
    record.address.municipality_code = municipality
    record.address.text = address_text
    record.change_reason = reason  # type: ignore[assignment]
    record.change_date.CopyFrom(proto_date(move_in))
    record.status = status_for(record.change_reason)
    return record


def closing_record(removed: identity_pb2.IdentityRecord, move_in: datetime.date) -> identity_pb2.IdentityRecord:
    """転出確定: the 除票 again, reason 転入通知受理, change date the actual move-in date; still removed."""
    record = identity_pb2.IdentityRecord()
    record.CopyFrom(removed)
    record.change_reason = CLOSING_REASON
    record.change_date.CopyFrom(proto_date(max(move_in, date_of(removed.birth_date, "birth_date"))))
    record.status = status_for(record.change_reason)
    return record
