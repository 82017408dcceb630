"""Hypothesis strategies for hostile input: bad codes, hostile text, wrong enums, bad dates, and records
with exactly one thing wrong (so the property knows which field the refusal must name)."""

from __future__ import annotations

import datetime
import random

from hypothesis import assume
from hypothesis import strategies as st

from jukinet.domain.codes import local_gov_check_digit, my_number_check_digit, resident_code_check_digit
from jukinet.domain.limits import TEXT_LIMITS
from jukinet.domain.synthetic import synthetic_resident
from jukinet.v1 import identity_pb2

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

# Characters no repertoire allows: C0/C1 controls, NUL, ESC, DEL, CR/LF, bidi overrides, embeddings and
# isolates, zero-width characters, BOM, language tags, line/paragraph separators, private use,
# unassigned code points, the combining grapheme joiner, symbols.
HOSTILE_CHARS = (
    "\x00\x01\x07\x08\x1b\x7f\x85\x9f\r\n\t"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    "\u200b\u200c\u200d\u2060\ufeff\u2028\u2029\u034f\U000e0001\U000e0041"
    '\ue000\U000f0000\u0378\U0010fffe<>;"$%\\{}~^`|=+*@!?'
)
hostile_char = st.sampled_from(HOSTILE_CHARS)


@st.composite
def with_hostile_char(draw: st.DrawFn, text: str) -> str:
    """``text`` with one character no repertoire allows inserted somewhere (at the start too)."""
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(hostile_char) + text[at:]


def _wrong_check(code: str, digit: int) -> str:
    return code[:-1] + str((digit + 1 + random.Random(code).randrange(9)) % 10)


@st.composite
def bad_digit_code(draw: st.DrawFn, length: int, check: object) -> str:
    """A string that is not a valid code of ``length`` digits with check digit function ``check``:
    a wrong check digit, full-width digits, a wrong length, letters or spaces, or anything at all."""
    base = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    valid = base + str(check(base))  # type: ignore[operator]
    kind = draw(st.sampled_from(["check", "full-width", "length", "letter", "space", "any"]))
    if kind == "check":
        return _wrong_check(valid, int(valid[-1]))
    if kind == "full-width":
        return valid.translate(FULL_WIDTH)
    if kind == "length":
        return draw(st.text("0123456789", max_size=30).filter(lambda s: len(s) != length))
    if kind == "letter":
        at = draw(st.integers(0, length - 1))
        return valid[:at] + draw(st.sampled_from("aZ-+.ｱ一٣")) + valid[at + 1 :]
    if kind == "space":
        return draw(st.sampled_from([f" {valid}", f"{valid} ", f"{valid}\n", valid[:5] + " " + valid[5:]]))
    return draw(st.text(max_size=40).filter(lambda s: s != valid and not (len(s) == length and s.isdigit())))


bad_resident_code = bad_digit_code(11, resident_code_check_digit)
# An empty My Number is valid (the national server's assignment is pending, or the CS asks for it).
bad_my_number = bad_digit_code(12, my_number_check_digit).filter(bool)
bad_municipality_code = bad_digit_code(6, local_gov_check_digit)

# Out-of-range enum values (proto3 enums are open: any int32 arrives).
bad_sex = st.one_of(st.just(0), st.integers(4, 2**31 - 1), st.integers(-(2**31), -1))
bad_reason = st.one_of(
    st.just(0),
    st.integers(-(2**31), 2**31 - 1).filter(lambda v: v not in identity_pb2.ChangeReason.values()),
)


@st.composite
def bad_date(draw: st.DrawFn) -> identity_pb2.Date:
    """Not a calendar date, before 1850, or in the future."""
    kind = draw(st.sampled_from(["calendar", "ancient", "future"]))
    if kind == "calendar":
        year = draw(st.integers(0, 10_000))
        month = draw(st.one_of(st.integers(0, 13), st.just(2**31 - 1)))
        day = draw(st.one_of(st.integers(0, 32), st.just(2**31 - 1)))
        assume(not _is_date(year, month, day))
        return identity_pb2.Date(year=year, month=month, day=day)
    if kind == "ancient":
        return identity_pb2.Date(year=draw(st.integers(1, 1849)), month=1, day=1)
    return identity_pb2.Date(year=draw(st.integers(2200, 9999)), month=1, day=1)


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


TEXT_FIELDS = tuple(TEXT_LIMITS)


def set_text(record: identity_pb2.IdentityRecord, field: str, value: str) -> None:
    part, name = field.split(".")
    setattr(getattr(record, part), name, value)


def get_text(record: identity_pb2.IdentityRecord, field: str) -> str:
    part, name = field.split(".")
    return getattr(getattr(record, part), name)


@st.composite
def bad_text(draw: st.DrawFn, field: str, good: str) -> str:
    """A value of text ``field`` that breaks its rule: a hostile character, too long, only spaces, or
    empty when required."""
    limit = TEXT_LIMITS[field]
    kinds = ["hostile", "long", "spaces"] + (["empty"] if limit.required else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "hostile":
        return draw(with_hostile_char(good or "ア"))
    if kind == "long":
        filler = "ア" if field == "name.kana" else draw(st.sampled_from(["亜", "A", "𠮷"]))
        return filler * draw(st.integers(limit.max_chars + 1, limit.max_chars + 40))
    if kind == "spaces":
        return draw(st.sampled_from([" ", "\u3000", "  \u3000 "]))
    return ""


@st.composite
def valid_record(draw: st.DrawFn, municipality: str = "131148", numbered: bool = False) -> identity_pb2.IdentityRecord:
    """A resident of ``municipality`` as an operator enters one (a 転入: the CS assigns the 住民票コード and
    asks for the My Number), or with ``numbered`` a complete record as the tiers above the CS see one."""
    return synthetic_resident(random.Random(draw(st.integers(0, 2**63))), municipality, numbered=numbered)


@st.composite
def broken_record(
    draw: st.DrawFn, municipality: str = "131148", numbered: bool = False
) -> tuple[str, identity_pb2.IdentityRecord]:
    """(the field at fault, a record of ``municipality`` that is valid but for that one field); see
    :func:`valid_record` for ``numbered``. Without it an empty 住民票コード is no fault (the CS assigns one),
    so the faulty code is never empty."""
    record = draw(valid_record(municipality, numbered))
    field = draw(st.sampled_from([*TEXT_FIELDS, "resident_code", "my_number", "municipality_code", "sex",
                                  "change_reason", "birth_date", "change_date", "record"]))  # fmt: skip
    if field in TEXT_FIELDS:
        set_text(record, field, draw(bad_text(field, get_text(record, field))))
    elif field == "resident_code":
        record.resident_code = draw(bad_resident_code if numbered else bad_resident_code.filter(bool))
    elif field == "my_number":
        record.my_number = draw(bad_my_number)
    elif field == "municipality_code":
        record.address.municipality_code = draw(bad_municipality_code)
        field = "address.municipality_code"
    elif field == "sex":
        record.sex = draw(bad_sex)
    elif field == "change_reason":
        record.change_reason = draw(bad_reason)
    elif field in ("birth_date", "change_date"):
        getattr(record, field).CopyFrom(draw(bad_date()))
        if field == "birth_date":  # a birth after the change is the change date's fault, but still refused
            field = "date"
    else:  # unknown fields padding a record past its encoded limit
        padding = draw(st.integers(4_100, 6_000))
        record.MergeFromString(b"\xfa\x3e" + _varint(padding) + b"\x00" * padding)  # field 999, bytes
    return field, record


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
