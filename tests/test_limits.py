"""The limits table: documented as the code reads it, sizes that nest, and a repertoire that takes the
names and addresses a register holds and refuses what hides or reorders text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jukinet.domain import limits
from jukinet.domain.limits import TEXT_LIMITS, text_problem
from jukinet.domain.records import validate_record
from jukinet.v1 import identity_pb2 as pb
from jukinet.v1 import notice_pb2

DOC = Path(__file__).resolve().parents[1] / "docs" / "LIMITS.md"


def _largest_record() -> pb.IdentityRecord:
    """Every field at its bound, every text field full of 4-byte characters (CJK extension B)."""
    big = "\U00020000"
    return pb.IdentityRecord(
        resident_code="12345678903",
        my_number="123456789018",
        name=pb.PersonName(
            kanji=big * TEXT_LIMITS["name.kanji"].max_chars,
            kana="ヴ" * TEXT_LIMITS["name.kana"].max_chars,
            former_surname=big * TEXT_LIMITS["name.former_surname"].max_chars,
            alias=big * TEXT_LIMITS["name.alias"].max_chars,
        ),
        birth_date=pb.Date(year=1980, month=12, day=31),
        sex=pb.SEX_FEMALE,
        address=pb.Address(municipality_code="131148", text=big * TEXT_LIMITS["address.text"].max_chars),
        change_reason=pb.CHANGE_REASON_EX_OFFICIO_CORRECTION,
        change_date=pb.Date(year=2020, month=12, day=31),
        status=pb.RECORD_STATUS_REMOVED,
    )


def test_the_largest_valid_record_fits_every_container() -> None:
    record = _largest_record()
    assert validate_record(record) == []
    assert record.ByteSize() <= limits.MAX_RECORD_BYTES
    notice = notice_pb2.ChangeNotice(record=record)
    assert notice.ByteSize() + 64 <= limits.MAX_NOTICE_BYTES  # origin, position and dates are a few dozen bytes
    assert limits.MAX_NOTICE_BYTES < limits.MAX_ORIGIN_BATCH_BYTES
    relayed = limits.MAX_ORIGIN_BATCH_BYTES + limits.MAX_ENVELOPE_OVERHEAD
    assert relayed + 64 <= limits.MAX_LINK_BATCH_BYTES  # a relayed origin batch goes in a link batch
    assert limits.request_limit("/jukinet.v1.LinkService/Deliver") >= limits.MAX_LINK_BATCH_BYTES + 1024
    chunk = limits.MAX_RECORDS_PER_CHUNK * (limits.MAX_RECORD_BYTES + 8)
    assert limits.request_limit("/jukinet.v1.ResidentRegistryService/RegisterResidents") >= chunk
    assert limits.MAX_REQUEST_BYTES <= 8 * limits.MIB


def test_a_padded_record_is_refused_by_its_encoded_size() -> None:
    record = _largest_record()
    record.name.kanji = "字"
    padded = pb.IdentityRecord.FromString(record.SerializeToString() + b"\xfa\x3f" + b"\x85\x20" + b"x" * 4101)
    assert any(p.startswith("record: ") and "at most 4096" in p for p in validate_record(padded))


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("name.kanji", "高橋 花子"),
        ("name.kanji", "髙橋　々子"),
        ("name.kanji", "葛\U000e0100城 一郎"),  # a kanji with its variation selector (異体字)
        ("name.kanji", "ヶ谷 ｱｲ"),
        ("name.alias", "José Nguyễn Văn An"),
        ("name.alias", "Zoe\u0308 O’Brien-Smith"),
        ("name.former_surname", "MÜLLER"),
        ("name.kana", "タカハシ ハナコ"),
        ("name.kana", "ｶﾞｯｺｳ"),
        ("name.kana", "ゔぁいおりん・ゐゑ"),
        ("address.text", "中野四丁目8番1号"),
        ("address.text", "3-4-5 サンハイツ１０１号室"),
        ("address.text", "本町2丁目（第二地割）"),
    ],
)
def test_what_a_register_holds_is_accepted(field: str, text: str) -> None:
    assert text_problem(field, text) is None


@pytest.mark.parametrize(
    ("field", "text", "position", "named"),
    [
        ("name.kanji", "高橋\u202e子花", 3, "RIGHT-TO-LEFT OVERRIDE"),
        ("name.kanji", "高橋\u2066花子", 3, "LEFT-TO-RIGHT ISOLATE"),
        ("name.kanji", "高\u200d橋", 2, "ZERO WIDTH JOINER"),
        ("name.kanji", "\ufeff高橋", 1, "ZERO WIDTH NO-BREAK SPACE"),
        ("name.kanji", "高橋\x00", 3, "control character"),
        ("name.kanji", "高橋\x85", 3, "control character"),
        ("name.kanji", "高橋\ud83d", 3, "surrogate"),
        ("name.kanji", "高橋\U000f0000", 3, "private-use character"),
        ("name.kanji", "高橋\U000e0001", 3, "LANGUAGE TAG"),
        ("name.kanji", "高\u034f橋", 2, "COMBINING GRAPHEME JOINER"),
        ("name.kanji", "高橋\u2028", 3, "LINE SEPARATOR"),
        ("name.kanji", "田中1号", 3, "DIGIT ONE"),
        ("name.alias", "Bob<b>", 4, "LESS-THAN SIGN"),
        ("name.kana", "タカハシ\u3099\u3099\u0301", 7, "COMBINING ACUTE ACCENT"),
        ("address.text", "1丁目\x1b[2J", 4, "control character"),
        ("address.text", "1丁目\u061c", 4, "ARABIC LETTER MARK"),
    ],
)
def test_hidden_and_reordering_characters_are_refused_by_position(field, text, position, named) -> None:
    problem = text_problem(field, text)
    assert problem is not None
    assert re.search(rf"^{re.escape(field)}: character {position} \(U\+[0-9A-F]{{4,6}} [^)]*{named}", problem), problem


def test_the_documented_table_is_the_code_table() -> None:
    doc = DOC.read_text(encoding="utf-8")
    rows = {m.group(1): m for m in re.finditer(r"^\| `([a-z_.]+)` \| (\d+) \| (\w+) \| (yes|no) \|", doc, re.M)}
    assert set(rows) == set(TEXT_LIMITS)
    for field, rule in TEXT_LIMITS.items():
        row = rows[field]
        assert (int(row.group(2)), row.group(3), row.group(4) == "yes") == (
            rule.max_chars,
            rule.repertoire.value,
            rule.required,
        ), field
    sizes = dict(re.findall(r"^\| `([A-Z_]+)` \| ([\d,]+) bytes", doc, re.M))
    documented = [n for n in dir(limits) if n.startswith("MAX_") and n.endswith("_BYTES")] + ["MAX_ENVELOPE_OVERHEAD"]
    for name in documented:
        assert int(sizes[name].replace(",", "")) == getattr(limits, name), name
    methods = dict(re.findall(r"^\| `(/jukinet\.v1\.[A-Za-z]+/[A-Za-z]+)` \| ([\d,]+) bytes", doc, re.M))
    assert {m: int(v.replace(",", "")) for m, v in methods.items()} == limits.REQUEST_LIMITS
