"""The import file reader: lines bounded and numbered, CSV and JSON Lines parsed into records, and nothing
judged that is the CS's to judge (those records go through as they are)."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path

import pytest

from jukinet.cli.progress import Progress
from jukinet.cli.resident_file import (
    COLUMNS,
    MAX_LINE_BYTES,
    REASONS,
    SEXES,
    FileRefused,
    ImportFile,
    lines,
    record_of,
)
from jukinet.domain.records import validate_record
from jukinet.v1 import identity_pb2

HEADER = ",".join(COLUMNS)
GOOD = "37925611205,123456789018,山田 太郎,ヤマダ タロウ,,,1980-04-01,male,131148,1丁目2番,move_in,2024-04-01"


def _csv(tmp_path: Path, body: bytes, name: str = "in.csv") -> list:
    path = tmp_path / name
    path.write_bytes(body)
    with ImportFile(path) as f:
        return list(f.rows())


def test_bom_and_crlf_are_the_file_s_not_the_data_s(tmp_path):
    rows = _csv(tmp_path, b"\xef\xbb\xbf" + f"{HEADER}\r\n{GOOD}\r\n\r\n{GOOD}\n".encode())
    assert [r.line for r in rows] == [2, 4]  # the blank line 3 is skipped, numbering is kept
    record = rows[0].record
    assert record.resident_code == "37925611205" and record.change_date == identity_pb2.Date(year=2024, month=4, day=1)
    assert record.address.text == "1丁目2番" and record.sex == identity_pb2.SEX_MALE  # no "\r" left anywhere
    assert not record.name.alias and record.status == identity_pb2.RECORD_STATUS_UNSPECIFIED


def test_a_line_longer_than_the_cap_is_skipped_without_being_held(tmp_path):
    big = b"x" * (10 * 1024 * 1024)
    path = tmp_path / "big.csv"
    path.write_bytes(f"{HEADER}\n{GOOD}\n".encode() + big + b"\n" + f"{GOOD}\n".encode())
    tracemalloc.start()
    try:
        with ImportFile(path) as f:
            rows = list(f.rows())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_LINE_BYTES  # not 10 MB
    assert [(r.line, r.record is not None) for r in rows] == [(2, True), (3, False), (4, True)]
    assert rows[1].problems == (("", f"line longer than {MAX_LINE_BYTES} bytes; not read"),)
    assert rows[2].end == path.stat().st_size


def test_invalid_utf8_missing_and_extra_columns_are_refused_by_line(tmp_path):
    body = (
        f"{HEADER}\n{GOOD}\n".encode()
        + b"37925611205,\xff\xfe,x\n"
        + f"{GOOD},extra\n{GOOD.rsplit(',', 1)[0]}\n".encode()
    )
    rows = _csv(tmp_path, body)
    assert rows[0].record is not None
    assert rows[1].record is None and rows[1].problems == (("", "not valid UTF-8: byte 0xff at byte 13 of the line"),)
    assert rows[2].problems == (("", "13 values; the header names 12 columns"),)
    assert rows[3].problems == (("", "11 values; the header names 12 columns"),)


def test_text_goes_through_unjudged_for_the_cs_to_refuse(tmp_path):
    hostile = GOOD.replace("山田 太郎", '"山\x00田,\u202e太郎"').replace("1丁目2番", "1\x1b[2J丁目")
    rows = _csv(tmp_path, f"{HEADER}\n{hostile}\n".encode())
    assert rows[0].record.name.kanji == "山\x00田,\u202e太郎" and rows[0].record.address.text == "1\x1b[2J丁目"
    bad_digit = GOOD.replace("37925611205", "37925611203").replace("2024-04-01", "2024-02-30")
    record = _csv(tmp_path, f"{HEADER}\n{bad_digit}\n".encode())[0].record
    assert record.resident_code == "37925611203" and record.change_date.day == 30  # check digit, calendar: the CS's


def test_forms_the_reader_must_understand_are_checked(tmp_path):
    row = GOOD.replace("1980-04-01", "1980/04/01").replace("male", "robot").replace("move_in", "MOVE_IN")
    (only,) = _csv(tmp_path, f"{HEADER}\n{row}\n".encode())
    assert only.record is None
    assert dict(only.problems) == {"birth_date": "expected a date as YYYY-MM-DD", "sex": "expected one of male, female"}
    unclosed = _csv(tmp_path, f'{HEADER}\n"unclosed,{GOOD}\n'.encode())[0]
    assert unclosed.problems == (("", "not valid CSV: unexpected end of data"),)


@pytest.mark.parametrize(
    ("header", "said"),
    [
        (HEADER + ",status", "unknown column(s) 'status'"),
        (HEADER + ",resident_code", "names resident_code twice"),
        ("", "no header line"),
    ],
)
def test_a_header_the_reader_cannot_map_refuses_the_file(tmp_path, header, said):
    path = tmp_path / "h.csv"
    path.write_text(f"{header}\n" if header else "\n\n")
    with pytest.raises(FileRefused, match=said.replace("(", r"\(").replace(")", r"\)")):
        ImportFile(path)


def test_json_lines(tmp_path):
    good = dict(zip(COLUMNS, next(iter([GOOD.split(",")])), strict=True))
    lines_ = [
        json.dumps(good, ensure_ascii=False),
        json.dumps({**good, "status": "active"}),
        json.dumps({**good, "sex": 1}),
        '{"resident_code": "1", "resident_code": "2"}',
        '{"resident_code": ',
        "[" * 60000,
        '"just a string"',
        json.dumps({**good, "name.kanji": "\ud800"}),
        json.dumps({**good, "name.alias": None}),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines_) + "\n")
    with ImportFile(path) as f:
        rows = list(f.rows())
    assert rows[0].record is not None and rows[0].record.name.kanji == "山田 太郎"
    assert rows[1].problems == (("", "unknown field 'status'"),)
    assert rows[2].problems == (("sex", "must be a JSON string"),)
    assert rows[3].problems == (("", "field 'resident_code' given twice"),)
    assert rows[4].problems[0][1].startswith("not valid JSON")
    assert rows[5].problems == (("", "not valid JSON: nested too deeply"),)
    assert rows[6].problems == (("", "expected a JSON object"),)
    assert rows[7].problems == (("name.kanji", "not valid Unicode text (an unpaired surrogate)"),)
    assert rows[8].record is not None and not rows[8].record.name.alias
    assert [r.line for r in rows] == list(range(1, 10))


def test_unknown_extension_needs_a_format(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text(HEADER + "\n")
    with pytest.raises(FileRefused, match="--format"):
        ImportFile(path)
    with ImportFile(path, "csv") as f:
        assert list(f.rows()) == []


def test_columns_show_what_they_fill():
    record = identity_pb2.IdentityRecord()
    for column, value in zip(COLUMNS.values(), GOOD.split(","), strict=True):
        assert column.fill(record, value) is None
    assert [c.show(record) for c in COLUMNS.values()] == GOOD.split(",")


def test_lines_numbers_and_offsets():
    data = b"a\r\nbb\n\nccc"
    assert list(lines(io.BytesIO(data))) == [(1, 3, b"a"), (2, 6, b"bb"), (3, 7, b""), (4, 10, b"ccc")]


def test_progress_on_a_pipe_is_plain_lines_and_on_a_terminal_one_redrawn_line():
    now = [0.0]
    pipe = io.StringIO()
    progress = Progress(pipe, total_bytes=1000, tty=False, clock=lambda: now[0])
    now[0] = 2.0
    progress.update(4000, 250)
    progress.say("line 7: name.kanji: …")
    now[0] = 2.5
    progress.update(5000, 300)  # within the interval: not shown
    progress.finish()
    assert pipe.getvalue().splitlines() == [
        "progress: 4,000 records, 2,000 records/s, 25%, ETA 0:00:06",
        "line 7: name.kanji: …",
        "progress: 5,000 records, 2,000 records/s, 30%, ETA 0:00:06",
    ]
    assert "\r" not in pipe.getvalue()

    tty = io.StringIO()
    progress = Progress(tty, total_bytes=1000, tty=True, clock=lambda: now[0])
    now[0] = 4.5
    progress.update(4000, 500)
    progress.say("line 9: refused")
    assert tty.getvalue().startswith("\r\x1b[K[############............] 4,000 records")
    assert "\r\x1b[Kline 9: refused\n\r\x1b[K[####" in tty.getvalue()


def test_the_documented_columns_and_reasons_are_the_code_s():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "IMPORT.md").read_text()
    table = [line.split("|")[1].strip().strip("`") for line in doc.splitlines() if line.startswith("| `")]
    assert table == list(COLUMNS)
    assert all(f"`{reason}`" in doc for reason in REASONS) and all(f"`{sex}`" in doc for sex in SEXES)
    example = json.loads(next(line for line in doc.splitlines() if line.startswith('{"resident_code"')))
    record, problems = record_of(iter(example.items()))
    assert not problems and validate_record(record) == []  # the documented example is a valid row
    header, row = doc.split("```csv\n")[1].splitlines()[:2]
    record, problems = record_of(zip(header.split(","), row.split(","), strict=True))
    assert not problems and validate_record(record) == []
