"""Validation of 本人確認情報 (IdentityRecord) with messages naming the field, and status rules."""

from __future__ import annotations

import datetime
import functools

from jukinet.domain.codes import (
    is_valid_local_gov_code,
    is_valid_my_number,
    is_valid_resident_code,
    local_gov_code_problem,
    my_number_problem,
    resident_code_problem,
)
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_RECORD_BYTES, TEXT_LIMITS, text_problem
from jukinet.domain.municipalities import MunicipalityDirectory
from jukinet.domain.municipalities import directory as _bundled
from jukinet.v1 import identity_pb2

__all__ = [
    "CLOSING_REASON",
    "MIN_DATE",
    "MOVE_OUT_LEAD_DAYS",
    "reason_name",
    "removal_reasons",
    "require_valid",
    "status_for",
    "validate_record",
]

MIN_DATE = datetime.date(1850, 1, 1)

_SEXES = frozenset(v for v in identity_pb2.Sex.values() if v != identity_pb2.SEX_UNSPECIFIED)
_REASONS = frozenset(v for v in identity_pb2.ChangeReason.values() if v != identity_pb2.CHANGE_REASON_UNSPECIFIED)

removal_reasons: frozenset[int] = frozenset(
    {
        identity_pb2.CHANGE_REASON_MOVE_OUT,
        identity_pb2.CHANGE_REASON_EMIGRATION,
        identity_pb2.CHANGE_REASON_DEATH,
        identity_pb2.CHANGE_REASON_EX_OFFICIO_REMOVAL,
    }
)
"""Change reasons after which the record becomes a 除票 (RECORD_STATUS_REMOVED)."""

CLOSING_REASON = identity_pb2.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED
"""転入通知受理: the old municipality closes a 転出 (転出確定) on its 除票, which stays removed."""

MOVE_OUT_LEAD_DAYS = 14
"""A 転出's change date is the planned move-out date, which may lie up to this many days ahead (a 転出届
is filed before moving); every other change date is today or earlier."""


def reason_name(reason: int) -> str:
    """``CHANGE_REASON_BIRTH`` for a known reason, ``change_reason -1`` for what a caller made up."""
    try:
        return identity_pb2.ChangeReason.Name(reason)
    except ValueError:
        return f"change_reason {reason}"


def status_for(reason: identity_pb2.ChangeReason) -> identity_pb2.RecordStatus:
    """RECORD_STATUS_REMOVED for removal reasons, else ACTIVE; Rejected (INVALID) if unspecified or unknown."""
    if reason not in _REASONS:
        raise Rejected(Problem.INVALID, f"change_reason {reason!r} is unspecified or unknown")
    if reason in removal_reasons or reason == CLOSING_REASON:
        return identity_pb2.RECORD_STATUS_REMOVED
    return identity_pb2.RECORD_STATUS_ACTIVE


def _date_problem(
    field: str, record: identity_pb2.IdentityRecord, today: datetime.date
) -> tuple[str | None, datetime.date | None]:
    """Check a Date field; returns (problem, parsed date)."""
    if not record.HasField(field):
        return f"{field}: missing", None
    d = getattr(record, field)
    y, m, day = d.year, d.month, d.day
    try:
        value = datetime.date(y, m, day)
    except ValueError:
        return f"{field}: {y:04d}-{m:02d}-{day:02d} is not a calendar date", None
    if value < MIN_DATE:
        return f"{field}: {value.isoformat()} is before {MIN_DATE.isoformat()}", value
    if value > today:
        if field == "change_date" and record.change_reason == identity_pb2.CHANGE_REASON_MOVE_OUT:
            if (value - today).days <= MOVE_OUT_LEAD_DAYS:
                return None, value
            return f"{field}: {value.isoformat()} is more than {MOVE_OUT_LEAD_DAYS} days ahead (planned 転出)", value
        return f"{field}: {value.isoformat()} is in the future", value
    return None, value


def _texts(record: identity_pb2.IdentityRecord) -> tuple[tuple[str, str], ...]:
    name, address = record.name, record.address
    return (
        ("name.kanji", name.kanji),
        ("name.kana", name.kana),
        ("name.former_surname", name.former_surname),
        ("name.alias", name.alias),
        ("address.text", address.text),
    )


assert {f for f, _ in _texts(identity_pb2.IdentityRecord())} == set(TEXT_LIMITS), "every text field has a limit"


_MIN_ORDINAL = MIN_DATE.toordinal()


@functools.lru_cache(maxsize=1 << 16)  # bounded: the arguments come from the wire
def _ordinal(year: int, month: int, day: int) -> int | None:
    """Day number of a calendar date, or None."""
    try:
        return datetime.date(year, month, day).toordinal()
    except ValueError:
        return None


@functools.cache
def _holds_residents() -> frozenset[str]:
    return frozenset(m.code for m in _bundled() if m.holds_residents)


def _plainly_valid(record: identity_pb2.IdentityRecord, today: int) -> bool:
    """True only if :func:`validate_record` would find nothing (the fast path; False proves nothing)."""
    if not (
        is_valid_resident_code(record.resident_code)
        and (not record.my_number or is_valid_my_number(record.my_number))
        and all(text_problem(field, text) is None for field, text in _texts(record))
        and record.sex in _SEXES
        and record.change_reason in _REASONS
        and record.address.municipality_code in _holds_residents()
        and record.ByteSize() <= MAX_RECORD_BYTES
        and record.HasField("birth_date")
        and record.HasField("change_date")
    ):
        return False
    b, c = record.birth_date, record.change_date
    birth, change = _ordinal(b.year, b.month, b.day), _ordinal(c.year, c.month, c.day)
    return birth is not None and change is not None and _MIN_ORDINAL <= birth <= change <= today


def validate_record(
    record: identity_pb2.IdentityRecord,
    directory: MunicipalityDirectory | None = None,
    today: datetime.date | None = None,
) -> list[str]:
    """Problems with ``record``, each starting with the field name; an empty list means valid.

    ``directory`` defaults to the bundled municipality directory; ``today`` (for "in the future")
    to the local date. ``status`` is not checked (the CS sets it from the change reason). An empty
    ``my_number`` is valid: the resident's number is not assigned yet (jukinet.domain.numbers).
    """
    today = today or datetime.date.today()
    if directory is None and _plainly_valid(record, today.toordinal()):
        return []  # every tier validates every record: the common case must be cheap
    problems: list[str] = []
    size = record.ByteSize()
    if size > MAX_RECORD_BYTES:  # unknown fields count: padding does not get a record through
        problems.append(f"record: {size} bytes encoded, at most {MAX_RECORD_BYTES} allowed")
    for field, text in _texts(record):
        problem = text_problem(field, text)
        if problem:
            problems.append(problem)
    rc = record.resident_code
    if not is_valid_resident_code(rc):
        problems.append(f"resident_code: {resident_code_problem(rc)}")
    mn = record.my_number
    if mn and not is_valid_my_number(mn):  # empty: the national server's assignment is pending
        problems.append(f"my_number: {my_number_problem(mn)}")

    birth_problem, birth = _date_problem("birth_date", record, today)
    if birth_problem:
        problems.append(birth_problem)
    change_problem, change = _date_problem("change_date", record, today)
    if change_problem:
        problems.append(change_problem)
    elif birth is not None and change is not None and change < birth:
        problems.append(f"change_date: {change.isoformat()} is before birth_date {birth.isoformat()}")

    sex = record.sex
    if sex not in _SEXES:
        what = "unspecified" if sex == identity_pb2.SEX_UNSPECIFIED else f"unknown value {sex}"
        problems.append(f"sex: {what}")

    address = record.address
    code = address.municipality_code
    if not is_valid_local_gov_code(code):
        problems.append(f"address.municipality_code: {local_gov_code_problem(code)}")
    else:
        m = (directory or _bundled()).get(code)
        if m is None:
            problems.append(f"address.municipality_code: {code} is not in the municipality directory")
        elif not m.holds_residents:
            why = "a designated city with wards; use the ward" if m.has_wards else f"a {m.kind}"
            problems.append(f"address.municipality_code: {code} ({m.name}) does not hold residents: it is {why}")

    reason = record.change_reason
    if reason not in _REASONS:
        what = "unspecified" if reason == identity_pb2.CHANGE_REASON_UNSPECIFIED else f"unknown value {reason}"
        problems.append(f"change_reason: {what}")
    return problems


def require_valid(record: identity_pb2.IdentityRecord, directory: MunicipalityDirectory | None = None) -> None:
    """Raise Rejected (INVALID) naming every problem :func:`validate_record` finds."""
    problems = validate_record(record, directory)
    if problems:
        raise Rejected(Problem.INVALID, "invalid identity record: " + "; ".join(problems))
