"""The edges of the record rules (jukinet/domain/records.py), which mutation testing found untested:
the first allowed date, today, a change on the day of birth, and a record of exactly MAX_RECORD_BYTES are
valid; one day or one byte further is not. Each is checked on both paths of ``validate_record``: the fast
one (no directory given) and the full one (a directory given), since either alone would mask the other."""

from __future__ import annotations

import datetime
import random

from jukinet.domain.limits import MAX_RECORD_BYTES
from jukinet.domain.municipalities import directory
from jukinet.domain.records import MIN_DATE
from jukinet.domain.records import validate_record as _validate
from jukinet.domain.synthetic import synthetic_resident
from jukinet.v1 import identity_pb2

TODAY = datetime.date(2026, 11, 25)


def validate_record(record: identity_pb2.IdentityRecord, today: datetime.date = TODAY) -> list[str]:
    """The problems both paths find (they must agree)."""
    fast, full = _validate(record, today=today), _validate(record, directory(), today=today)
    assert fast == full, (fast, full)
    return full


def _record() -> identity_pb2.IdentityRecord:
    return synthetic_resident(random.Random(99), "131148", today=TODAY, numbered=True)


def _set(date: identity_pb2.Date, value: datetime.date) -> None:
    date.year, date.month, date.day = value.year, value.month, value.day


def _padded_to(size: int) -> identity_pb2.IdentityRecord:
    record = _record()
    filler = size - record.ByteSize() - 4  # field 999: 2 bytes of tag, 2 of length (128 ≤ filler < 16384)
    assert 128 <= filler < 16384
    record.MergeFromString(b"\xfa\x3e" + bytes([filler & 0x7F | 0x80, filler >> 7]) + b"\x00" * filler)
    assert record.ByteSize() == size
    return record


def test_dates_at_their_bounds_are_valid() -> None:
    record = _record()
    _set(record.birth_date, MIN_DATE)
    _set(record.change_date, MIN_DATE)  # a change on the day of birth, the first day allowed
    assert validate_record(record, today=TODAY) == []
    _set(record.change_date, TODAY)
    assert validate_record(record, today=TODAY) == []
    _set(record.birth_date, TODAY)
    assert validate_record(record, today=TODAY) == []


def test_dates_one_day_out_are_refused() -> None:
    record = _record()
    _set(record.birth_date, MIN_DATE - datetime.timedelta(days=1))
    assert any(p.startswith("birth_date") and "before 1850" in p for p in validate_record(record, today=TODAY))
    record = _record()
    _set(record.change_date, TODAY + datetime.timedelta(days=1))
    assert any(p.startswith("change_date") and "future" in p for p in validate_record(record, today=TODAY))
    record = _record()
    _set(record.birth_date, TODAY)
    _set(record.change_date, TODAY - datetime.timedelta(days=1))
    assert any("is before birth_date" in p for p in validate_record(record, today=TODAY))


def test_a_record_of_exactly_the_limit_is_valid_and_one_byte_more_is_not() -> None:
    assert validate_record(_padded_to(MAX_RECORD_BYTES), datetime.date.today()) == []
    problems = validate_record(_padded_to(MAX_RECORD_BYTES + 1), datetime.date.today())
    assert problems == [f"record: {MAX_RECORD_BYTES + 1} bytes encoded, at most {MAX_RECORD_BYTES} allowed"]
