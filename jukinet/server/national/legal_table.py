"""The legal tables' seed file: the TOML the national server publishes its directory's rows from.

At run time every server takes its tables from the verified network directory
(:mod:`jukinet.server.legal_tables`); this file is only where the rows are written down before they
are signed. Each row names a table (default ``別表第1``), an agency by corporate number, a business code,
a title, optionally the field groups the business may receive (default: all), how the resident is named
(``identifier``: ``resident_code``, the default, or ``agency_identifier``, 機関別符号) and, for a
prefecture's ``別表第5`` / ``別表第6``, whose table it is::

    [[row]]
    agency = "7123456789012"
    business = "pension-benefit"
    title = "年金給付の支給に関する事務"
    fields = ["resident_code", "name", "birth_date", "sex", "address", "change"]

    [[row]]
    table = "別表第6"
    prefecture = "pref:13"
    agency = "8000020130001"
    business = "tokyo-tax"
    fields = ["name", "address"]

Every row is checked as a directory checks it (:func:`jukinet.domain.legal.row_problem`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.legal import FIELD_GROUPS, NATIONAL_TABLE, LegalTables, TableRow
from jukinet.v1 import directory_pb2

__all__ = ["FIELD_GROUPS", "LegalTable", "TableRow", "rows_from_toml"]


def rows_from_toml(path: Path) -> list[directory_pb2.LegalTableRow]:
    """The ``[[row]]``s of ``path`` as directory rows; Rejected (BROKEN) naming the file and row."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise Rejected(Problem.BROKEN, f"cannot read legal table {path}: {exc}") from exc
    rows = []
    for i, item in enumerate(raw.get("row", [])):
        where = f"{path} row {i + 1}"
        if not isinstance(item, dict):
            raise Rejected(Problem.BROKEN, f"{where}: not a table")
        fields = item.get("fields", list(FIELD_GROUPS))
        if not isinstance(fields, list):
            raise Rejected(Problem.BROKEN, f"{where}: fields must be a list")
        row = directory_pb2.LegalTableRow(
            table=str(item.get("table", NATIONAL_TABLE)),
            agency=str(item.get("agency", "")),
            business=str(item.get("business", "")),
            title=str(item.get("title", "")),
            fields=[str(f) for f in fields],
            identifier=str(item.get("identifier", "")),
            prefecture=str(item.get("prefecture", "")),
        )
        try:
            rows.append(TableRow.from_message(row).to_message())
        except Rejected as exc:
            raise Rejected(Problem.BROKEN, f"{where}: {exc}") from None
    return rows


class LegalTable(LegalTables):
    """The rows of a seed file, indexed as the servers index the directory's."""

    @classmethod
    def load(cls, path: Path) -> LegalTable:
        rows = [TableRow.from_message(r) for r in rows_from_toml(path)]
        index = {(r.table, str(r.prefecture or ""), str(r.agency), r.business): r for r in rows}
        return cls(tuple(rows), 0, index)

    def row(self, agency: object, business: str) -> TableRow | None:
        """The 別表第1 row of (agency, business), or None."""
        return self.national(str(agency), business)
