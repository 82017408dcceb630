"""The directory of prefectures, municipalities and designated-city wards, loaded from bundled data."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

from jukinet.domain.codes import is_valid_local_gov_code, local_gov_code_problem
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.quoting import quoted

__all__ = [
    "Municipality",
    "MunicipalityDirectory",
    "MunicipalityKind",
    "directory",
]

_COLUMNS = ["code", "kind", "name", "kana", "prefecture", "parent"]


class MunicipalityKind(StrEnum):
    """The ``kind`` column of the directory."""

    PREFECTURE = "prefecture"
    MUNICIPALITY = "municipality"
    WARD = "ward"


@dataclass(frozen=True, slots=True)
class Municipality:
    """One directory entry. ``has_wards`` is derived from the data (a designated city with wards)."""

    code: str
    kind: MunicipalityKind
    name: str
    kana: str
    prefecture_code: str
    parent_code: str | None
    has_wards: bool = False

    @property
    def holds_residents(self) -> bool:
        """True for municipalities and wards that keep resident records.

        Prefectures do not; neither does a designated city that has wards (its wards do).
        """
        return self.kind is not MunicipalityKind.PREFECTURE and not self.has_wards


class MunicipalityDirectory:
    """An immutable lookup of :class:`Municipality` entries by code."""

    def __init__(self, entries: Iterable[Municipality]) -> None:
        by_code: dict[str, Municipality] = {}
        for m in entries:
            if m.code in by_code:
                raise Rejected(Problem.BROKEN, f"municipality directory: duplicate code {m.code}")
            by_code[m.code] = m
        self._by_code = dict(sorted(by_code.items()))
        self._prefectures: dict[str, Municipality] = {}
        self._members: dict[str, list[Municipality]] = {}
        for m in self._by_code.values():
            if m.kind is MunicipalityKind.PREFECTURE:
                self._prefectures[m.prefecture_code] = m
            else:
                self._members.setdefault(m.prefecture_code, []).append(m)

    @classmethod
    def from_csv(cls, text: str) -> MunicipalityDirectory:
        """Parse CSV with columns code,kind,name,kana,prefecture,parent; validates codes and parents."""
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header != _COLUMNS:
            raise Rejected(Problem.BROKEN, f"municipality directory: expected columns {_COLUMNS}, got {header}")
        rows = [row for row in reader if row]
        codes = {row[0] for row in rows}
        parents_of_wards = {row[5] for row in rows if row[1] == MunicipalityKind.WARD}
        entries = []
        for line, row in enumerate(rows, start=2):

            def broken(why: str, line: int = line) -> Rejected:
                return Rejected(Problem.BROKEN, f"municipality directory line {line}: {why}")

            if len(row) != 6:
                raise broken(f"expected 6 fields, got {len(row)}")
            code, kind, name, kana, pref, parent = row
            problem = local_gov_code_problem(code)
            if problem is not None:
                raise broken(problem)
            if kind not in MunicipalityKind._value2member_map_:
                raise broken(f"unknown kind {kind!r}")
            if code[:2] != pref:
                raise broken(f"{code} is not in prefecture {pref}")
            if parent and parent not in codes:
                raise broken(f"unknown parent {parent}")
            entries.append(
                Municipality(
                    code=code,
                    kind=MunicipalityKind(kind),
                    name=name,
                    kana=kana,
                    prefecture_code=pref,
                    parent_code=parent or None,
                    has_wards=code in parents_of_wards,
                )
            )
        return cls(entries)

    def get(self, code: str) -> Municipality | None:
        """The entry for ``code``, or None."""
        return self._by_code.get(code)

    def require(self, code: str) -> Municipality:
        """The entry for ``code``; raises Rejected (NOT_FOUND)."""
        m = self._by_code.get(code)
        if m is None:
            if not is_valid_local_gov_code(code):
                raise Rejected(
                    Problem.NOT_FOUND, f"unknown municipality {quoted(code)}: {local_gov_code_problem(code)}"
                )
            raise Rejected(Problem.NOT_FOUND, f"unknown municipality {quoted(code)}: not in the municipality directory")
        return m

    def prefecture(self, pref_code: str) -> Municipality:
        """The prefecture entry for a 2-digit prefecture code; raises Rejected (NOT_FOUND)."""
        m = self._prefectures.get(pref_code)
        if m is None:
            raise Rejected(Problem.NOT_FOUND, f"unknown prefecture code {quoted(pref_code)}: expected 01..47")
        return m

    def in_prefecture(self, pref_code: str) -> list[Municipality]:
        """Municipalities and wards of a prefecture, by code (the prefecture entry itself excluded)."""
        return list(self._members.get(pref_code, ()))

    def prefectures(self) -> list[Municipality]:
        """All prefecture entries, by code."""
        return list(self._prefectures.values())

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Municipality]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)


@functools.cache
def directory() -> MunicipalityDirectory:
    """The bundled directory (jukinet/domain/data/municipalities.csv), loaded once."""
    text = resources.files("jukinet.domain").joinpath("data/municipalities.csv").read_text(encoding="utf-8")
    return MunicipalityDirectory.from_csv(text)
