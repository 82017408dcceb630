"""Validation of 本人確認情報 (IdentityRecord) with messages naming the field, and status rules."""

from __future__ import annotations

import datetime
import functools
import re

from jukinet.domain.codes import (
    is_valid_local_gov_code,
    is_valid_my_number,
    is_valid_resident_code,
    local_gov_code_problem,
    my_number_problem,
    resident_code_problem,
)
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.municipalities import MunicipalityDirectory
from jukinet.domain.municipalities import directory as _bundled
from jukinet.v1 import identity_pb2

__all__ = [
    "MAX_ADDRESS_TEXT",
    "MAX_KANA",
    "MAX_KANJI",
    "MIN_DATE",
    "removal_reasons",
    "require_valid",
    "status_for",
    "validate_record",
]

MAX_KANJI = 100
MAX_KANA = 200
MAX_ADDRESS_TEXT = 200
MIN_DATE = datetime.date(1850, 1, 1)

# Hiragana (incl. ゝゞ and combining/spacing voiced marks), katakana (incl. ・ー ヽヾ), half-width
# katakana (incl. ･ ｰ ﾞ ﾟ), full-width and ASCII spaces.
_KANA = re.compile("[\u3041-\u3096\u3099-\u309e\u30a1-\u30fa\u30fb-\u30fe\uff65-\uff9f\u3000 ]+")
_KANA_FULLMATCH = _KANA.fullmatch

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


def status_for(reason: identity_pb2.ChangeReason) -> identity_pb2.RecordStatus:
    """RECORD_STATUS_REMOVED for removal reasons, else ACTIVE; Rejected (INVALID) if unspecified or unknown."""
    if reason not in _REASONS:
        raise Rejected(Problem.INVALID, f"change_reason {reason!r} is unspecified or unknown")
    if reason in removal_reasons:
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
        return f"{field}: {value.isoformat()} is in the future", value
    return None, value


def _check_text(problems: list[str], field: str, text: str, limit: int) -> bool:
    """Non-empty and at most ``limit`` characters; appends a problem and returns False otherwise."""
    if not text or text.isspace():
        problems.append(f"{field}: must not be empty")
        return False
    if len(text) > limit:
        problems.append(f"{field}: {len(text)} characters, at most {limit} allowed")
        return False
    return True


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


def _text_ok(text: str, limit: int) -> bool:
    return bool(text) and len(text) <= limit and not text.isspace()


def _plainly_valid(record: identity_pb2.IdentityRecord, today: int) -> bool:
    """True only if :func:`validate_record` would find nothing (the fast path; False proves nothing)."""
    name, address = record.name, record.address
    if not (
        is_valid_resident_code(record.resident_code)
        and is_valid_my_number(record.my_number)
        and _text_ok(name.kanji, MAX_KANJI)
        and _text_ok(name.kana, MAX_KANA)
        and _KANA_FULLMATCH(name.kana) is not None
        and record.sex in _SEXES
        and record.change_reason in _REASONS
        and address.municipality_code in _holds_residents()
        and _text_ok(address.text, MAX_ADDRESS_TEXT)
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
    to the local date. ``status`` is not checked (the CS sets it from the change reason).
    """
    today = today or datetime.date.today()
    if directory is None and _plainly_valid(record, today.toordinal()):
        return []  # every tier validates every record: the common case must be cheap
    problems: list[str] = []
    rc = record.resident_code
    if not is_valid_resident_code(rc):
        problems.append(f"resident_code: {resident_code_problem(rc)}")
    mn = record.my_number
    if not is_valid_my_number(mn):
        problems.append(f"my_number: {my_number_problem(mn)}")

    name = record.name
    _check_text(problems, "name.kanji", name.kanji, MAX_KANJI)
    kana = name.kana
    if _check_text(problems, "name.kana", kana, MAX_KANA) and _KANA_FULLMATCH(kana) is None:
        bad = next(c for c in kana if _KANA_FULLMATCH(c) is None)
        problems.append(f"name.kana: {kana!r} contains {bad!r}; only hiragana, katakana and spaces allowed")

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
    _check_text(problems, "address.text", address.text, MAX_ADDRESS_TEXT)

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
