"""The import file of ``jukinet residents import``: its columns, and CSV or JSON Lines read a line at a time.

This module only turns lines into IdentityRecords (docs/IMPORT.md). Whether a record is acceptable —
lengths, characters, check digits, dates, this municipality — is the CS's to say; it answers each row.
A line is never held whole beyond ``MAX_LINE_BYTES``: a longer one is skipped unread and reported.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from jukinet.v1 import identity_pb2

R = identity_pb2
MAX_LINE_BYTES = 64 * 1024
"""Longest line read; a valid row is a few KiB even with every character escaped in JSON."""
BOM = b"\xef\xbb\xbf"
FieldProblems = tuple[tuple[str, str], ...]  # (column, problem); "" for the line as a whole


class FileRefused(Exception):
    """The file as a whole cannot be read as an import file (format, header)."""


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line number in the file
    end: int  # file offset just after the line
    record: identity_pb2.IdentityRecord | None  # None when the line could not be parsed
    problems: FieldProblems = ()


# -- columns -------------------------------------------------------------------------------------------

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_SEXES = {R.Sex.Name(v).removeprefix("SEX_").lower(): v for v in R.Sex.values() if v}
_REASONS = {R.ChangeReason.Name(v).removeprefix("CHANGE_REASON_").lower(): v for v in R.ChangeReason.values() if v}


@dataclass(frozen=True)
class Column:
    name: str  # the IdentityRecord field it fills, as the wire contract names it
    kind: str  # text, date, sex or reason

    def fill(self, record: identity_pb2.IdentityRecord, value: str) -> str | None:
        """Put ``value`` into ``record``; a problem with its form, or None. An empty value leaves it unset."""
        if not value:
            return None
        owner, attr = self._target(record)
        if self.kind == "text":
            try:
                setattr(owner, attr, value)
            except (ValueError, UnicodeError):  # a lone surrogate (JSON "\ud800") is not text
                return "not valid Unicode text (an unpaired surrogate)"
        elif self.kind == "date":
            m = _DATE.fullmatch(value)
            if m is None:
                return "expected a date as YYYY-MM-DD"
            getattr(owner, attr).CopyFrom(R.Date(year=int(m[1]), month=int(m[2]), day=int(m[3])))
        else:
            names = _SEXES if self.kind == "sex" else _REASONS
            code = names.get(value.lower())
            if code is None:
                return f"expected one of {', '.join(names)}"
            setattr(owner, attr, code)
        return None

    def show(self, record: identity_pb2.IdentityRecord) -> str:
        """The column's value in ``record`` as an import file would hold it."""
        owner, attr = self._target(record)
        if self.kind == "text":
            return getattr(owner, attr)
        if self.kind == "date":
            d = getattr(owner, attr)
            return f"{d.year:04d}-{d.month:02d}-{d.day:02d}" if owner.HasField(attr) else ""
        names = _SEXES if self.kind == "sex" else _REASONS
        value = getattr(owner, attr)
        return next((name for name, code in names.items() if code == value), "")

    def _target(self, record: identity_pb2.IdentityRecord) -> tuple[object, str]:
        parent, _, attr = self.name.rpartition(".")
        return (getattr(record, parent) if parent else record), attr


COLUMNS: dict[str, Column] = {
    c.name: c
    for c in (
        Column("resident_code", "text"),
        Column("my_number", "text"),
        Column("name.kanji", "text"),
        Column("name.kana", "text"),
        Column("name.former_surname", "text"),
        Column("name.alias", "text"),
        Column("birth_date", "date"),
        Column("sex", "sex"),
        Column("address.municipality_code", "text"),
        Column("address.text", "text"),
        Column("change_reason", "reason"),
        Column("change_date", "date"),
    )
}
SEXES = tuple(_SEXES)
REASONS = tuple(_REASONS)


def record_of(values: Iterator[tuple[str, str]]) -> tuple[identity_pb2.IdentityRecord, FieldProblems]:
    """A record from (column, value) pairs, and the problems of form found on the way."""
    record = R.IdentityRecord()
    problems = []
    for name, value in values:
        problem = COLUMNS[name].fill(record, value)
        if problem:
            problems.append((name, problem))
    return record, tuple(problems)


# -- lines ---------------------------------------------------------------------------------------------


def lines(fh: BinaryIO) -> Iterator[tuple[int, int, bytes | None]]:
    """(line number, offset after the line, the line without its ending — None if it is longer than
    MAX_LINE_BYTES). A BOM at the start is skipped; CRLF and LF both end a line."""
    offset, number = 0, 0
    if fh.read(len(BOM)) == BOM:
        offset = len(BOM)
    else:
        fh.seek(0)
    while True:
        piece = fh.readline(MAX_LINE_BYTES + 1)
        if not piece:
            return
        number += 1
        offset += len(piece)
        if len(piece) > MAX_LINE_BYTES and not piece.endswith(b"\n"):
            while piece and not piece.endswith(b"\n"):  # the rest of the line, a bounded piece at a time
                piece = fh.readline(MAX_LINE_BYTES + 1)
                offset += len(piece)
            yield number, offset, None
            continue
        if piece.endswith(b"\n"):
            piece = piece[:-2] if piece.endswith(b"\r\n") else piece[:-1]
        yield number, offset, piece


def _decoded(raw: bytes | None) -> tuple[str | None, str | None]:
    """(text, problem)."""
    if raw is None:
        return None, f"line longer than {MAX_LINE_BYTES} bytes; not read"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line"


class ImportFile:
    """One import file, open; :meth:`rows` reads it once, front to back."""

    def __init__(self, path: Path, fmt: str | None = None) -> None:
        self.path = path
        self.format = fmt or _format_of(path)
        self.size = path.stat().st_size
        self._fh = path.open("rb")
        self._lines = lines(self._fh)
        self._header: list[str] = []
        if self.format == "csv":
            self._header = self._read_header()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> ImportFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rows(self) -> Iterator[Row]:
        """Every non-empty line after the header, as a record or as the problems that kept it from being one."""
        parse: Callable[[str], tuple[identity_pb2.IdentityRecord | None, FieldProblems]]
        parse = self._csv_row if self.format == "csv" else _json_row
        for number, end, raw in self._lines:
            if raw == b"":
                continue
            text, problem = _decoded(raw)
            if text is None:
                yield Row(number, end, None, (("", problem or ""),))
                continue
            record, problems = parse(text)
            yield Row(number, end, record, problems)

    def _read_header(self) -> list[str]:
        for number, _, raw in self._lines:
            if raw == b"":
                continue
            text, problem = _decoded(raw)
            if text is None:
                raise FileRefused(f"{self.path}: line {number} (the header): {problem}")
            try:
                header = next(csv.reader([text], strict=True))
            except csv.Error as exc:
                raise FileRefused(f"{self.path}: line {number} (the header) is not valid CSV: {exc}") from None
            unknown = [name for name in header if name not in COLUMNS]
            if unknown:
                raise FileRefused(
                    f"{self.path}: line {number} (the header): unknown column(s) "
                    f"{', '.join(_quoted(u) for u in unknown)}; the columns are {', '.join(COLUMNS)}"
                )
            twice = sorted({name for name in header if header.count(name) > 1})
            if twice:
                raise FileRefused(f"{self.path}: line {number} (the header) names {', '.join(twice)} twice")
            return header
        raise FileRefused(f"{self.path}: no header line (a CSV import file starts with the column names)")

    def _csv_row(self, text: str) -> tuple[identity_pb2.IdentityRecord | None, FieldProblems]:
        try:
            values = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            return None, (("", f"not valid CSV: {str(exc).split(' - ')[0]}"),)
        if len(values) != len(self._header):
            return None, (("", f"{len(values)} values; the header names {len(self._header)} columns"),)
        record, problems = record_of(zip(self._header, values, strict=True))
        return (None, problems) if problems else (record, ())


def _json_row(text: str) -> tuple[identity_pb2.IdentityRecord | None, FieldProblems]:
    try:
        obj = json.loads(text, object_pairs_hook=_object)
    except _DuplicateKey as exc:
        return None, (("", f"field {_quoted(exc.args[0])} given twice"),)
    except json.JSONDecodeError as exc:
        return None, (("", f"not valid JSON: {exc.msg} at character {exc.pos + 1}"),)
    except RecursionError:
        return None, (("", "not valid JSON: nested too deeply"),)
    if not isinstance(obj, dict):
        return None, (("", "expected a JSON object"),)
    problems = [("", f"unknown field {_quoted(k)}") for k in obj if k not in COLUMNS]
    problems += [(k, "must be a JSON string") for k, v in obj.items() if k in COLUMNS and not isinstance(v, str | None)]
    if problems:
        return None, tuple(problems)
    record, problems_of_form = record_of((k, v or "") for k, v in obj.items())
    return (None, problems_of_form) if problems_of_form else (record, ())


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _quoted(name: str, limit: int = 40) -> str:
    """A name from the file, quoted with escapes (repr), and cut short."""
    return repr(name if len(name) <= limit else name[:limit] + "…")


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise FileRefused(f"{path}: cannot tell the format from the name; use --format csv or --format jsonl")
