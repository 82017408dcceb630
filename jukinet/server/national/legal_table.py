"""Legal tables as data: which agency may receive identity information for which business.

At the national server this is 別表第1 of the Basic Resident Registration Act (agency × business).
The table is a TOML file; each row names an agency by corporate number, a business code, a title
and, optionally, the fields that business may receive (default: all)::

    [[row]]
    agency = "7123456789012"
    business = "pension-benefit"
    title = "年金給付の支給に関する事務"
    fields = ["resident_code", "name", "birth_date", "sex", "address", "change"]
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from jukinet.domain.codes import CorporateNumber
from jukinet.domain.errors import Problem, Rejected
from jukinet.v1 import identity_pb2

# Field groups a row may permit, and the IdentityRecord fields each group covers.
FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    "resident_code": ("resident_code",),
    "my_number": ("my_number",),
    "name": ("name",),
    "birth_date": ("birth_date",),
    "sex": ("sex",),
    "address": ("address",),
    "change": ("change_reason", "change_date", "status"),
}
_IS_MESSAGE = {f.name: f.message_type is not None for f in identity_pb2.IdentityRecord.DESCRIPTOR.fields}


@dataclass(frozen=True)
class TableRow:
    agency: CorporateNumber
    business: str
    title: str
    fields: frozenset[str]

    def redact(self, record: identity_pb2.IdentityRecord) -> identity_pb2.IdentityRecord:
        """A copy of ``record`` holding only the fields this row permits."""
        out = identity_pb2.IdentityRecord()
        for group in self.fields:
            for name in FIELD_GROUPS[group]:
                if _IS_MESSAGE[name]:
                    if record.HasField(name):
                        getattr(out, name).CopyFrom(getattr(record, name))
                else:
                    setattr(out, name, getattr(record, name))
        return out


class LegalTable:
    def __init__(self, rows: list[TableRow]) -> None:
        self._rows = {(str(r.agency), r.business): r for r in rows}
        self.rows = rows

    def row(self, agency: CorporateNumber | str, business: str) -> TableRow | None:
        return self._rows.get((str(agency), business))

    @classmethod
    def load(cls, path: Path) -> LegalTable:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise Rejected(Problem.BROKEN, f"cannot read legal table {path}: {exc}") from exc
        rows = []
        for i, item in enumerate(raw.get("row", [])):
            where = f"{path} row {i + 1}"
            business = str(item.get("business", ""))
            try:
                agency = CorporateNumber.parse(str(item.get("agency", "")))
            except Rejected as exc:
                raise Rejected(Problem.BROKEN, f"{where}: agency: {exc}") from None
            if not business:
                raise Rejected(Problem.BROKEN, f"{where}: needs a business code")
            fields = frozenset(item.get("fields", FIELD_GROUPS))
            unknown = fields - FIELD_GROUPS.keys()
            if unknown:
                known = sorted(FIELD_GROUPS)
                raise Rejected(Problem.BROKEN, f"{where}: unknown fields {sorted(unknown)}; known: {known}")
            rows.append(TableRow(agency, business, str(item.get("title", "")), fields))
        return cls(rows)
