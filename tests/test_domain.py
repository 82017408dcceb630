"""Tests for jukinet.domain: codes, municipality directory, node ids and record validation."""

from __future__ import annotations

import datetime
import random

import pytest

from jukinet.domain.codes import (
    CorporateNumber,
    LocalGovCode,
    MyNumber,
    ResidentCode,
    corporate_check_digit,
    generate_my_number,
    generate_resident_code,
    is_valid_corporate_number,
    is_valid_local_gov_code,
    is_valid_my_number,
    is_valid_resident_code,
    local_gov_check_digit,
    my_number_check_digit,
    resident_code_check_digit,
)
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.municipalities import MunicipalityKind, directory
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.records import (
    removal_reasons,
    require_valid,
    status_for,
    validate_record,
)
from jukinet.v1 import identity_pb2 as pb

# --- codes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["123456789018", "023456789013", "111111111118"])
def test_my_number_valid(text: str) -> None:
    assert is_valid_my_number(text)
    assert str(MyNumber.parse(text)) == text
    assert my_number_check_digit(text[:11]) == int(text[11])


@pytest.mark.parametrize("text", ["123456789010", "123456789019", "000000000000"])
def test_my_number_invalid(text: str) -> None:
    assert not is_valid_my_number(text)
    with pytest.raises(Rejected):
        MyNumber.parse(text)


def test_my_number_messages() -> None:
    with pytest.raises(Rejected, match=r"^My Number '123456789010': check digit is 0, expected 8$"):
        MyNumber.parse("123456789010")
    with pytest.raises(Rejected, match="must be 12 ASCII digits, got 11 characters"):
        MyNumber.parse("12345678901")
    with pytest.raises(Rejected, match="all zeros"):
        MyNumber.parse("000000000000")
    with pytest.raises(Rejected, match="got 'x' at position 3"):
        MyNumber.parse("12x456789018")


def test_full_width_digits_rejected() -> None:
    full = "１２３４５６７８９０１８"
    assert not is_valid_my_number(full)
    with pytest.raises(Rejected, match="full-width digits"):
        MyNumber.parse(full)
    with pytest.raises(Rejected, match="full-width digits"):
        LocalGovCode.parse("１３１１４８")


def test_local_gov_code() -> None:
    for text in ("131148", "130001", "011002"):
        assert is_valid_local_gov_code(text)
        assert local_gov_check_digit(text[:5]) == int(text[5])
    assert LocalGovCode.parse("131148").prefecture_code == "13"
    assert not is_valid_local_gov_code("131149")
    with pytest.raises(Rejected, match=r"local-government code '131149': check digit is 9, expected 8"):
        LocalGovCode.parse("131149")


def test_corporate_number() -> None:
    assert is_valid_corporate_number("7123456789012")
    assert corporate_check_digit("123456789012") == 7
    assert str(CorporateNumber.parse("7123456789012")) == "7123456789012"
    assert not is_valid_corporate_number("1123456789012")
    with pytest.raises(Rejected, match=r"corporate number '1123456789012'.*expected 7"):
        CorporateNumber.parse("1123456789012")


def test_resident_code() -> None:
    base = "1234567890"
    code = base + str(resident_code_check_digit(base))
    assert is_valid_resident_code(code)
    wrong = base + str((int(code[-1]) + 1) % 10)
    assert not is_valid_resident_code(wrong)
    with pytest.raises(Rejected, match=r"resident code .*check digit"):
        ResidentCode.parse(wrong)
    with pytest.raises(Rejected, match="must be 11 ASCII digits"):
        ResidentCode.parse("123")


def test_generated_codes_validate() -> None:
    rng = random.Random(42)
    for _ in range(1000):
        assert MyNumber.parse(generate_my_number(rng))
        assert ResidentCode.parse(generate_resident_code(rng))


def test_check_digit_rejects_bad_base() -> None:
    with pytest.raises(Rejected):
        my_number_check_digit("123")


# --- municipalities ------------------------------------------------------------------------------


def test_directory_loaded() -> None:
    d = directory()
    assert len(d) == 1969
    assert len([m for m in d if m.kind is MunicipalityKind.PREFECTURE]) == 47
    assert d is directory()


def test_directory_lookup() -> None:
    d = directory()
    nakano = d.require("131148")
    assert nakano.name == "中野区"
    assert nakano.prefecture_code == "13"
    assert nakano.holds_residents
    assert d.prefecture("13").name == "東京都"
    assert not d.prefecture("13").holds_residents
    assert nakano in d.in_prefecture("13")
    assert d.get("999999") is None
    with pytest.raises(Rejected, match="not in the municipality directory"):
        d.require("999997")
    with pytest.raises(Rejected, match="48"):
        d.prefecture("48")


def test_designated_city_does_not_hold_residents() -> None:
    d = directory()
    sapporo = d.require("011002")
    assert sapporo.name == "札幌市"
    assert sapporo.has_wards and not sapporo.holds_residents
    ward = d.require("011011")
    assert ward.kind is MunicipalityKind.WARD and ward.parent_code == "011002"
    assert ward.holds_residents


# --- node ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "canonical"),
    [
        ("cs:131148", NodeKind.CS, "cs:131148"),
        ("urn:jukinet:cs:011011", NodeKind.CS, "cs:011011"),
        ("pref:13", NodeKind.PREFECTURE, "pref:13"),
        ("national", NodeKind.NATIONAL, "national"),
        ("urn:jukinet:national", NodeKind.NATIONAL, "national"),
        ("agency:7123456789012", NodeKind.AGENCY, "agency:7123456789012"),
        ("terminal:131148:desk-1", NodeKind.TERMINAL, "terminal:131148:desk-1"),
        ("terminal:13:ops", NodeKind.TERMINAL, "terminal:13:ops"),
        ("terminal:national:ops-2", NodeKind.TERMINAL, "terminal:national:ops-2"),
    ],
)
def test_node_id_valid(text: str, kind: NodeKind, canonical: str) -> None:
    node = NodeId.parse(text)
    assert node.kind is kind
    assert str(node) == canonical
    assert node.urn == "urn:jukinet:" + canonical
    assert NodeId.parse(node.urn) == node


def test_node_id_parts_and_constructors() -> None:
    assert NodeId.cs("131148").code == "131148"
    assert NodeId.prefecture("01") == NodeId.parse("pref:01")
    assert NodeId.national() == NodeId.parse("national")
    assert NodeId.agency("7123456789012").code == "7123456789012"
    term = NodeId.parse("terminal:131148:desk-1")
    assert (term.site, term.name, term.code) == ("131148", "desk-1", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cs:131149", "check digit is 9, expected 8"),
        ("cs:999997", "not in the municipality directory"),
        ("cs:130001", "is a prefecture"),
        ("pref:48", "01..47"),
        ("pref:00", "01..47"),
        ("agency:1123456789012", "corporate number"),
        ("bank:123", "unknown kind 'bank'"),
        ("national:1", "no further parts"),
        ("cs:", "expected cs:<code>"),
        ("terminal:131148:Desk", r"\[a-z0-9-\]"),
        ("terminal:131148", "terminal:<site>:<name>"),
        ("terminal:1311:x", "site '1311'"),
        ("", "empty"),
    ],
)
def test_node_id_invalid(text: str, message: str) -> None:
    assert directory().get("999997") is None
    with pytest.raises(Rejected, match=message):
        NodeId.parse(text)


# --- records -------------------------------------------------------------------------------------


def _record(**changes: object) -> pb.IdentityRecord:
    rec = pb.IdentityRecord(
        resident_code="12345678903",
        my_number="123456789018",
        name=pb.PersonName(kanji="中野 太郎", kana="なかの たろう"),
        birth_date=pb.Date(year=1980, month=2, day=29),
        sex=pb.SEX_MALE,
        address=pb.Address(municipality_code="131148", text="中野四丁目8番1号"),
        change_reason=pb.CHANGE_REASON_MOVE_IN,
        change_date=pb.Date(year=2020, month=4, day=1),
    )
    for path, value in changes.items():
        target = rec
        *parents, leaf = path.split("__")
        for p in parents:
            target = getattr(target, p)
        if isinstance(value, pb.Date):
            getattr(target, leaf).CopyFrom(value)
        elif value is None:
            target.ClearField(leaf)
        else:
            setattr(target, leaf, value)
    return rec


def test_fixture_resident_code_is_valid() -> None:
    assert is_valid_resident_code("12345678903")


def test_valid_record() -> None:
    assert validate_record(_record()) == []
    require_valid(_record())
    assert validate_record(_record(name__kana="ナカノ　タロウ", address__municipality_code="011011")) == []
    assert validate_record(_record(name__kana="ﾅｶﾉ ﾀﾛｳ・ー")) == []


_FUTURE = datetime.date.today() + datetime.timedelta(days=1)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"resident_code": "12345678900"}, "resident_code", "check digit is 0, expected 3"),
        ({"my_number": "123456789010"}, "my_number", "check digit is 0, expected 8"),
        ({"my_number": "１２３４５６７８９０１８"}, "my_number", "full-width"),
        ({"name__kanji": ""}, "name.kanji", "empty"),
        ({"name__kanji": "字" * 101}, "name.kanji", "at most 100"),
        ({"name__kana": ""}, "name.kana", "empty"),
        ({"name__kana": "た" * 201}, "name.kana", "at most 200"),
        ({"name__kana": "Nakano"}, "name.kana", "character 1 (U+004E LATIN CAPITAL LETTER N) is not allowed"),
        ({"name__kana": "中野たろう"}, "name.kana", "character 1 (U+4E2D CJK UNIFIED IDEOGRAPH-4E2D)"),
        ({"name__kanji": "中野\u202e太郎"}, "name.kanji", "character 3 (U+202E RIGHT-TO-LEFT OVERRIDE)"),
        ({"name__kanji": "中野\x00太郎"}, "name.kanji", "character 3 (U+0000 control character)"),
        ({"name__kanji": "中野\x1b[31m"}, "name.kanji", "character 3 (U+001B control character)"),
        ({"name__kanji": "中野\u200b太郎"}, "name.kanji", "character 3 (U+200B ZERO WIDTH SPACE)"),
        ({"name__kanji": "\ue000"}, "name.kanji", "character 1 (U+E000 private-use character)"),
        ({"name__kanji": "\u0308e"}, "name.kanji", "character 1 (U+0308 COMBINING DIAERESIS)"),
        ({"name__kanji": "   "}, "name.kanji", "only spaces"),
        ({"name__alias": "字" * 101}, "name.alias", "at most 100"),
        ({"name__alias": "a\nb"}, "name.alias", "character 2 (U+000A control character)"),
        ({"name__former_surname": "字" * 51}, "name.former_surname", "at most 50"),
        ({"name__former_surname": "<script>"}, "name.former_surname", "character 1 (U+003C LESS-THAN SIGN)"),
        ({"address__text": "1丁目\r\n2番"}, "address.text", "character 4 (U+000D control character)"),
        ({"address__text": "1丁目\u2067"}, "address.text", "character 4 (U+2067 RIGHT-TO-LEFT ISOLATE)"),
        ({"birth_date": pb.Date(year=2001, month=2, day=29)}, "birth_date", "not a calendar date"),
        ({"birth_date": pb.Date(year=1849, month=12, day=31)}, "birth_date", "before 1850-01-01"),
        ({"birth_date": None}, "birth_date", "missing"),
        (
            {"change_date": pb.Date(year=_FUTURE.year, month=_FUTURE.month, day=_FUTURE.day)},
            "change_date",
            "in the future",
        ),
        ({"change_date": pb.Date(year=1979, month=1, day=1)}, "change_date", "before birth_date"),
        ({"sex": pb.SEX_UNSPECIFIED}, "sex", "unspecified"),
        ({"sex": 7}, "sex", "unknown value 7"),
        ({"address__municipality_code": "131149"}, "address.municipality_code", "check digit"),
        ({"address__municipality_code": "999997"}, "address.municipality_code", "not in the"),
        ({"address__municipality_code": "011002"}, "address.municipality_code", "designated city"),
        ({"address__municipality_code": "130001"}, "address.municipality_code", "prefecture"),
        ({"address__text": ""}, "address.text", "empty"),
        ({"address__text": "丁" * 201}, "address.text", "at most 200"),
        ({"change_reason": pb.CHANGE_REASON_UNSPECIFIED}, "change_reason", "unspecified"),
        ({"change_reason": 99}, "change_reason", "unknown value 99"),
    ],
)
def test_invalid_record_fields(changes: dict[str, object], field: str, message: str) -> None:
    problems = validate_record(_record(**changes))
    assert len(problems) == 1, problems
    assert problems[0].startswith(field + ": ")
    assert message in problems[0]


def test_require_valid_raises() -> None:
    rec = _record(my_number="123456789010", sex=pb.SEX_UNSPECIFIED)
    with pytest.raises(Rejected) as exc:
        require_valid(rec)
    assert exc.value.problem is Problem.INVALID
    assert "my_number:" in str(exc.value) and "sex:" in str(exc.value)


def test_removal_status() -> None:
    assert removal_reasons == {
        pb.CHANGE_REASON_MOVE_OUT,
        pb.CHANGE_REASON_EMIGRATION,
        pb.CHANGE_REASON_DEATH,
        pb.CHANGE_REASON_EX_OFFICIO_REMOVAL,
    }
    for reason in removal_reasons:
        assert status_for(reason) == pb.RECORD_STATUS_REMOVED
    assert status_for(pb.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED) == pb.RECORD_STATUS_REMOVED  # 転出確定 on the 除票
    for reason in (pb.CHANGE_REASON_MOVE_IN, pb.CHANGE_REASON_BIRTH, pb.CHANGE_REASON_NAME_CHANGE):
        assert status_for(reason) == pb.RECORD_STATUS_ACTIVE
    with pytest.raises(Rejected, match="unspecified"):
        status_for(pb.CHANGE_REASON_UNSPECIFIED)
