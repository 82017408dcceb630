"""What a change counts as in the monthly population movement report (住民基本台帳人口移動報告-like).

Pure rules, no I/O: the national server's follower (:mod:`jukinet.server.national.statistics`) reads the
change feed and asks :func:`counted` what each notice adds. The rules:

- **Which month**: the change date of the record (出生日, 死亡日, 転入日 …), not the day it was recorded or
  reached the national server. A change recorded late still counts in its own month, so a month's figures
  can grow after it ends; the report says how far the feed has been read.
- **A move is counted once**, at the 転入 / 特例転入 the new CS records under the old CS's move-out grant
  (the grant names the origin, the notice's municipality is the destination). The old CS's 転出 除票 and its
  later 転入通知受理 are not counted: a 転出 is only a plan until the 転入, and the national server accepts a
  grant once per resident, so no move is counted twice. Moves between two prefectures and between two
  municipalities of one prefecture are counted apart; every move is also a municipality flow.
- **転居** (within one municipality) is not a move between municipalities: counted apart (relocations).
- **A 転入 without a grant** (from abroad, or from no register) is an arrival without a grant; **国外転出** an
  emigration. Neither has a municipality of origin or destination in the network.
- **Births and deaths** count once per resident: the first 出生 and the first 死亡 of a 住民票コード in the
  feed. A clerk who removes a resident and enters them again as born (or dead) again does not add to the
  figures.
- Nothing else is counted (氏名変更, 職権記載/消除/修正, number changes, 転出, 転入通知受理 …).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.quoting import quoted
from jukinet.v1 import identity_pb2

R = identity_pb2
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")

__all__ = ["ONCE_PER_RESIDENT", "Count", "Kind", "Month", "counted"]


class Kind(StrEnum):
    """What a counter counts; the value is its one-byte tag in the store's keys."""

    BIRTH = "B"  # a: municipality
    DEATH = "D"  # a: municipality
    MOVE = "M"  # a: origin municipality, b: destination municipality
    PREFECTURE_MOVE = "P"  # a: origin prefecture, b: destination prefecture (equal: within a prefecture)
    MOVE_IN = "I"  # a: destination municipality
    MOVE_OUT = "O"  # a: origin municipality
    RELOCATION = "R"  # a: municipality (転居)
    ARRIVAL = "A"  # a: municipality (転入 without a move-out grant)
    EMIGRATION = "E"  # a: municipality (国外転出)


ONCE_PER_RESIDENT: dict[int, Kind] = {R.CHANGE_REASON_BIRTH: Kind.BIRTH, R.CHANGE_REASON_DEATH: Kind.DEATH}
"""Reasons counted only for the first notice of that reason of a resident."""


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM``; Rejected (INVALID) naming the text otherwise."""
        match = _MONTH.fullmatch(text) if isinstance(text, str) else None
        if match is None or int(match.group(1)) < 1:
            raise Rejected(Problem.INVALID, f"month {quoted(str(text))} is not YYYY-MM, e.g. 2026-11")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, date: identity_pb2.Date) -> Month | None:
        """The month of a record's date; None for an unset or impossible one."""
        if not (1 <= date.year <= 9999 and 1 <= date.month <= 12):
            return None
        return cls(date.year, date.month)

    @property
    def key(self) -> bytes:
        """Six ASCII digits, YYYYMM: months sort in time order."""
        return f"{self.year:04d}{self.month:02d}".encode("ascii")

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, order=True)
class Count:
    """One counter a change adds 1 to: (month, kind, a, b)."""

    month: Month
    kind: Kind
    a: str
    b: str = ""


def counted(
    change_reason: int,
    change_date: identity_pb2.Date,
    municipality: str,
    grant_origin: str | None,
    first_of_reason: bool,
) -> list[Count]:
    """The counters one stored change notice adds 1 to.

    ``municipality``: the record's (its origin CS's) municipality code; ``grant_origin``: the municipality code
    of the CS that granted the move, for a 転入 / 特例転入 under a move-out grant (None otherwise);
    ``first_of_reason``: no earlier notice of this resident in the feed has the same reason (checked only
    for births and deaths)."""
    month = Month.of(change_date)
    if month is None:
        return []
    once = ONCE_PER_RESIDENT.get(change_reason)
    if once is not None:
        return [Count(month, once, municipality)] if first_of_reason else []
    if change_reason in (R.CHANGE_REASON_MOVE_IN, R.CHANGE_REASON_SPECIAL_MOVE_IN):
        if grant_origin is None or grant_origin == municipality:
            return [Count(month, Kind.ARRIVAL, municipality)]
        return [
            Count(month, Kind.MOVE, grant_origin, municipality),
            Count(month, Kind.PREFECTURE_MOVE, grant_origin[:2], municipality[:2]),
            Count(month, Kind.MOVE_IN, municipality),
            Count(month, Kind.MOVE_OUT, grant_origin),
        ]
    if change_reason == R.CHANGE_REASON_RELOCATION:
        return [Count(month, Kind.RELOCATION, municipality)]
    if change_reason == R.CHANGE_REASON_EMIGRATION:
        return [Count(month, Kind.EMIGRATION, municipality)]
    return []
