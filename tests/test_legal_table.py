"""Tests for the legal tables' seed file (jukinet.server.national.legal_table): loading rows and redacting."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import jukinet.devnet
from jukinet.domain.codes import CorporateNumber, is_valid_corporate_number
from jukinet.domain.errors import Rejected
from jukinet.domain.synthetic import synthetic_resident
from jukinet.server.national.legal_table import FIELD_GROUPS, LegalTable, TableRow
from jukinet.v1 import identity_pb2

PENSION = "7123456789012"  # valid corporate number (the demo agency)
OTHER = "1000011000005"  # valid corporate number
BAD_CHECK = "8123456789012"  # check digit wrong

TABLE = f"""
[[row]]
agency = "{PENSION}"
business = "pension-benefit"
title = "年金給付の支給に関する事務"
fields = ["resident_code", "name", "birth_date", "sex", "address", "change"]

[[row]]
agency = "{PENSION}"
business = "pension-mynumber"
title = "個人番号の確認"
fields = ["my_number"]

[[row]]
agency = "{OTHER}"
business = "tax"
title = "all fields by default"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "legal-table.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def table(tmp_path: Path) -> LegalTable:
    return LegalTable.load(_write(tmp_path, TABLE))


@pytest.fixture
def record() -> identity_pb2.IdentityRecord:
    rec = synthetic_resident(random.Random(4), "131148", numbered=True)
    rec.status = identity_pb2.RECORD_STATUS_ACTIVE
    rec.name.former_surname = "旧姓"
    return rec


def test_corporate_numbers_used_here_are_as_intended() -> None:
    assert is_valid_corporate_number(PENSION)
    assert is_valid_corporate_number(OTHER)
    assert not is_valid_corporate_number(BAD_CHECK)


def test_load_and_lookup(table: LegalTable) -> None:
    assert len(table.rows) == 3
    row = table.row(PENSION, "pension-benefit")
    assert row is not None
    assert row.agency == CorporateNumber(PENSION) and row.business == "pension-benefit"
    assert row.title == "年金給付の支給に関する事務"
    assert row.fields == frozenset({"resident_code", "name", "birth_date", "sex", "address", "change"})
    assert table.row(PENSION, "pension-mynumber").fields == {"my_number"}  # type: ignore[union-attr]
    assert table.row(OTHER, "tax").fields == frozenset(FIELD_GROUPS)  # type: ignore[union-attr]
    # Lookup needs both agency and business.
    assert table.row(OTHER, "pension-benefit") is None
    assert table.row(PENSION, "tax") is None
    assert table.row(PENSION, "") is None


def test_redact_without_my_number(table: LegalTable, record: identity_pb2.IdentityRecord) -> None:
    row = table.row(PENSION, "pension-benefit")
    assert row is not None
    out = row.redact(record)
    assert out.my_number == ""
    assert out.resident_code == record.resident_code
    assert out.name == record.name
    assert out.name.former_surname == "旧姓"
    assert out.birth_date == record.birth_date
    assert out.sex == record.sex
    assert out.address == record.address
    assert out.change_reason == record.change_reason
    assert out.change_date == record.change_date
    assert out.status == identity_pb2.RECORD_STATUS_ACTIVE
    # The original is untouched.
    assert record.my_number != ""


def test_redact_only_my_number(table: LegalTable, record: identity_pb2.IdentityRecord) -> None:
    row = table.row(PENSION, "pension-mynumber")
    assert row is not None
    out = row.redact(record)
    assert out == identity_pb2.IdentityRecord(my_number=record.my_number)
    assert not out.HasField("name")
    assert not out.HasField("address")
    assert not out.HasField("change_date")


def test_redact_change_group(record: identity_pb2.IdentityRecord) -> None:
    row = TableRow(CorporateNumber(PENSION), "b", "t", frozenset({"change"}))
    out = row.redact(record)
    expected = identity_pb2.IdentityRecord(
        change_reason=record.change_reason, status=record.status, change_date=record.change_date
    )
    assert out == expected
    assert out.HasField("change_date")
    assert out.resident_code == "" and out.my_number == ""


def test_redact_all_fields_is_identity(table: LegalTable, record: identity_pb2.IdentityRecord) -> None:
    row = table.row(OTHER, "tax")
    assert row is not None
    assert row.redact(record) == record


def test_redact_no_fields_is_empty(record: identity_pb2.IdentityRecord) -> None:
    assert TableRow(PENSION, "b", "t", frozenset()).redact(record) == identity_pb2.IdentityRecord()


def test_redact_missing_message_field_stays_unset() -> None:
    partial = identity_pb2.IdentityRecord(resident_code="12345678901")
    out = TableRow(PENSION, "b", "t", frozenset(FIELD_GROUPS)).redact(partial)
    assert not out.HasField("address")
    assert not out.HasField("birth_date")
    assert out == partial


@pytest.mark.parametrize(
    ("row_toml", "match"),
    [
        (f'agency = "{BAD_CHECK}"\nbusiness = "x"', r"row 2: agency: .*check digit"),
        ('agency = "712345678901"\nbusiness = "x"', r"row 2: agency: "),
        ('business = "x"', r"row 2: agency: "),
        (f'agency = "{PENSION}"', r"row 2: business must be 1\.\.64"),
        (f'agency = "{PENSION}"\nbusiness = ""', r"row 2: business must be 1\.\.64"),
        (
            f'agency = "{PENSION}"\nbusiness = "x"\nfields = ["name", "photo"]',
            r"row 2: unknown field groups 'photo'",
        ),
    ],
)
def test_bad_rows_name_the_row(tmp_path: Path, row_toml: str, match: str) -> None:
    text = f'[[row]]\nagency = "{OTHER}"\nbusiness = "ok"\n\n[[row]]\n{row_toml}\n'
    path = _write(tmp_path, text)
    with pytest.raises(Rejected, match=match) as info:
        LegalTable.load(path)
    assert str(path) in str(info.value)


def test_unreadable_table(tmp_path: Path) -> None:
    with pytest.raises(Rejected, match="cannot read legal table"):
        LegalTable.load(tmp_path / "missing.toml")
    with pytest.raises(Rejected, match="cannot read legal table"):
        LegalTable.load(_write(tmp_path, "[[row]\nagency = "))


def test_empty_table(tmp_path: Path) -> None:
    table = LegalTable.load(_write(tmp_path, "# no rows\n"))
    assert table.rows == ()
    assert table.row(PENSION, "pension-benefit") is None


def test_bundled_default_table_loads() -> None:
    path = Path(jukinet.devnet.__file__).parent / "default-legal-table.toml"
    table = LegalTable.load(path)
    assert table.rows
    row = table.row(PENSION, "pension-benefit")
    assert row is not None
    assert "my_number" not in row.fields
    assert {"resident_code", "name", "change"} <= row.fields
