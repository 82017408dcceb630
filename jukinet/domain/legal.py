"""Legal tables as data: which agency may receive identity information for which business, and how.

The signed network directory carries every table as ``LegalTableRow``s; this module checks each row
(:func:`row_problem`, called by :meth:`jukinet.domain.directory.Directory.from_message`, so a directory
with one bad row is refused whole) and indexes them for the servers that provide (:class:`LegalTables`):

- ``別表第1`` — the national server's: agency × business → permitted field groups, and how the resident
  is named to the business (``identifier``): by 住民票コード (the default) or by an identifier specific
  to the agency (機関別符号, ``agency_identifier``), in which case the row may not permit the
  ``resident_code`` or ``my_number`` groups at all;
- ``別表第5`` and ``別表第6`` — a prefecture's provision to its own bodies and its own use; each row
  names its ``prefecture`` (``pref:13``) and names residents by 住民票コード (only the national token
  derives agency identifiers).

A row that permits no ``my_number`` also refuses a lookup *by* My Number: that business may not handle
My Numbers at all.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from jukinet.domain.codes import CorporateNumber, corporate_number_problem
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.quoting import quoted
from jukinet.v1 import directory_pb2, identity_pb2

__all__ = [
    "AGENCY_IDENTIFIER_CHARS",
    "FIELD_GROUPS",
    "NATIONAL_TABLE",
    "PREFECTURE_TABLES",
    "Identifier",
    "LegalTables",
    "TableRow",
    "agency_identifier_from_mac",
    "agency_identifier_input",
    "agency_identifier_problem",
    "row_problem",
]

NATIONAL_TABLE = "別表第1"
PREFECTURE_TABLES = frozenset({"別表第5", "別表第6"})
TABLES = frozenset({NATIONAL_TABLE, *PREFECTURE_TABLES})
MAX_BUSINESS_CHARS = 64
MAX_TITLE_CHARS = 200

# Field groups a row may permit, and the IdentityRecord fields each group covers.
FIELD_GROUPS: Mapping[str, tuple[str, ...]] = {
    "resident_code": ("resident_code",),
    "my_number": ("my_number",),
    "name": ("name",),
    "birth_date": ("birth_date",),
    "sex": ("sex",),
    "address": ("address",),
    "change": ("change_reason", "change_date", "status"),
}
NUMBER_GROUPS = frozenset({"resident_code", "my_number"})
_IS_MESSAGE = {f.name: f.message_type is not None for f in identity_pb2.IdentityRecord.DESCRIPTOR.fields}

AGENCY_IDENTIFIER_CHARS = 32
"""An agency identifier is the first 160 bits of its HMAC in RFC 4648 base32 (A-Z, 2-7), no padding."""
_AGENCY_IDENTIFIER = re.compile(r"^[A-Z2-7]{32}$")


AGENCY_IDENTIFIER_CONTEXT = b"jukinet-agency-identifier-v1"
"""Domain separation: no other MAC of the national token covers a message beginning with this."""


def agency_identifier_input(agency: CorporateNumber | str, resident_code: str) -> bytes:
    """What the national token MACs for (agency, resident): context ‖ 0x00 ‖ 法人番号 (13 ASCII digits) ‖
    0x00 ‖ 住民票コード (11 ASCII digits) — 54 bytes, fixed fields, so no two pairs share a message."""
    return b"\x00".join((AGENCY_IDENTIFIER_CONTEXT, str(agency).encode("ascii"), resident_code.encode("ascii")))


def agency_identifier_from_mac(mac: bytes) -> str:
    """The printable identifier: the MAC's first 20 bytes (160 bits) in RFC 4648 base32 — exactly 32
    characters of A-Z and 2-7, no padding."""
    if len(mac) < 20:
        raise ValueError("an agency identifier needs 20 bytes of MAC")
    return base64.b32encode(mac[:20]).decode("ascii")


class Identifier(StrEnum):
    """How a row names the resident to its business."""

    RESIDENT_CODE = "resident_code"
    AGENCY_IDENTIFIER = "agency_identifier"


def agency_identifier_problem(text: str) -> str | None:
    """What is wrong with ``text`` as an agency identifier (None if its form is right)."""
    if _AGENCY_IDENTIFIER.match(text):
        return None
    return f"agency_identifier {quoted(text)}: must be {AGENCY_IDENTIFIER_CHARS} characters of A-Z and 2-7"


@dataclass(frozen=True)
class TableRow:
    agency: CorporateNumber
    business: str
    title: str
    fields: frozenset[str]
    table: str = NATIONAL_TABLE
    identifier: Identifier = Identifier.RESIDENT_CODE
    prefecture: NodeId | None = None  # whose table (別表第5/第6); None for 別表第1

    @property
    def pseudonymous(self) -> bool:
        return self.identifier is Identifier.AGENCY_IDENTIFIER

    def permits(self, group: str) -> bool:
        return group in self.fields and not (self.pseudonymous and group in NUMBER_GROUPS)

    def redact(self, record: identity_pb2.IdentityRecord) -> identity_pb2.IdentityRecord:
        """A copy of ``record`` holding only the fields this row permits (never the numbers of a row that
        names residents by agency identifier)."""
        out = identity_pb2.IdentityRecord()
        for group in self.fields:
            if not self.permits(group):
                continue
            for name in FIELD_GROUPS[group]:
                if _IS_MESSAGE[name]:
                    if record.HasField(name):
                        getattr(out, name).CopyFrom(getattr(record, name))
                else:
                    setattr(out, name, getattr(record, name))
        return out

    def items(self) -> list[str]:
        """What a provision under this row hands over, as the provision log names it."""
        items = sorted(g for g in self.fields if self.permits(g))
        return [*items, Identifier.AGENCY_IDENTIFIER.value] if self.pseudonymous else items

    def to_message(self) -> directory_pb2.LegalTableRow:
        return directory_pb2.LegalTableRow(
            table=self.table,
            agency=str(self.agency),
            business=self.business,
            title=self.title,
            fields=sorted(self.fields),
            identifier=self.identifier.value,
            prefecture=str(self.prefecture) if self.prefecture else "",
        )

    @classmethod
    def from_message(cls, row: directory_pb2.LegalTableRow) -> TableRow:
        """A row of a directory (Rejected INVALID naming what is wrong)."""
        problem = row_problem(row)
        if problem:
            raise Rejected(Problem.INVALID, problem)
        return cls(
            CorporateNumber(row.agency),
            row.business,
            row.title,
            frozenset(row.fields),
            row.table,
            Identifier(row.identifier or Identifier.RESIDENT_CODE),
            NodeId.parse(row.prefecture) if row.prefecture else None,
        )


def row_problem(row: directory_pb2.LegalTableRow) -> str | None:
    """What is wrong with one row (None if nothing): an unknown table, a prefecture table's row without
    its prefecture or the national table's with one, an unknown identifier or one the table cannot use,
    unknown field groups, numbers permitted to a row that names residents by agency identifier."""
    if row.table not in TABLES:
        return f"table {quoted(row.table)} is not one of {', '.join(sorted(TABLES))}"
    problem = corporate_number_problem(row.agency)
    if problem:
        return f"agency: {problem}"
    if not (0 < len(row.business) <= MAX_BUSINESS_CHARS and row.business.isprintable()):
        return f"business must be 1..{MAX_BUSINESS_CHARS} printable characters"
    if len(row.title) > MAX_TITLE_CHARS or not row.title.isprintable():
        return f"title must be at most {MAX_TITLE_CHARS} printable characters"
    if not row.fields:
        return "fields must name one or more field groups"
    unknown = sorted(set(row.fields) - FIELD_GROUPS.keys())
    if unknown:
        return f"unknown field groups {', '.join(map(quoted, unknown))}; known: {', '.join(FIELD_GROUPS)}"
    if len(set(row.fields)) != len(row.fields):
        return "a field group is listed twice"
    if row.identifier not in ("", *Identifier):
        return f"identifier {quoted(row.identifier)} is not one of {', '.join(Identifier)}"
    if row.table == NATIONAL_TABLE:
        if row.prefecture:
            return f"{NATIONAL_TABLE} is the national table: its rows name no prefecture"
        if row.identifier == Identifier.AGENCY_IDENTIFIER and NUMBER_GROUPS & set(row.fields):
            numbers = ", ".join(sorted(NUMBER_GROUPS & set(row.fields)))
            return f"a row naming residents by agency identifier may not permit {numbers}"
        return None
    try:
        prefecture = NodeId.parse(row.prefecture)
    except Rejected:
        prefecture = None
    if prefecture is None or prefecture.kind is not NodeKind.PREFECTURE:
        return f"a row of {row.table} names its prefecture (pref:NN), not {quoted(row.prefecture)}"
    if row.identifier == Identifier.AGENCY_IDENTIFIER:
        return f"{row.table} names residents by resident_code (agency identifiers are the national server's)"
    return None


@dataclass(frozen=True)
class LegalTables:
    """The rows of every table, indexed for lookups; immutable (a new directory makes a new one)."""

    rows: tuple[TableRow, ...] = ()
    version: int = 0  # the directory version they came from (0: none)
    _index: Mapping[tuple[str, str, str, str], TableRow] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[TableRow], version: int = 0) -> LegalTables:
        rows = tuple(rows)
        index = {(r.table, str(r.prefecture or ""), str(r.agency), r.business): r for r in rows}
        return cls(rows, version, index)

    @classmethod
    def from_directory(cls, message: directory_pb2.NetworkDirectory) -> LegalTables:
        return cls.of((TableRow.from_message(r) for r in message.legal_table), message.version)

    def national(self, agency: CorporateNumber | str, business: str) -> TableRow | None:
        """The 別表第1 row of (agency, business), or None."""
        return self._index.get((NATIONAL_TABLE, "", str(agency), business))

    def prefectural(
        self, prefectures: Iterable[NodeId | str], agency: CorporateNumber | str, business: str
    ) -> list[TableRow]:
        """The 別表第5/第6 rows of (agency, business) in the tables of ``prefectures``."""
        found = []
        for prefecture in prefectures:
            for table in sorted(PREFECTURE_TABLES):
                row = self._index.get((table, str(prefecture), str(agency), business))
                if row is not None:
                    found.append(row)
        return found
