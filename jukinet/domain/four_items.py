"""The four-item search's rules, without I/O: what a query must hold, and how a record answers it.

A query names a person by 氏名 or its reading (at least one), birth date and sex, and optionally the
municipality and the address text. The index finds everyone whose folded name or folded reading, birth
date and sex are the query's (:mod:`jukinet.domain.kana`); :func:`judge` then compares each of them item
by item and says how each matched. A person matched by the reading but not by the given name (or the
other way round) is a candidate, with that item marked DIFFERS: the search shows, it does not choose.
A given address narrows: a person whose municipality or address text differs is not a candidate (nor
counted), since an agency that knows where the person lives has no business with namesakes elsewhere.
What is reported of a candidate (:meth:`Judgement.reported`) covers only the items whose field group the
agency's row permits ("name": name and kana; "address": municipality and address text): a DIFFERS or a
LEADING would otherwise tell the agency about a field it may not receive.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from jukinet.domain.codes import local_gov_code_problem
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.kana import ADDRESS_FOLDS, NOT_GIVEN, WITHHELD, Match, TextMatch, compare, fold
from jukinet.domain.limits import SEARCH_TEXT_LIMITS, text_problem
from jukinet.domain.quoting import quoted
from jukinet.domain.records import MIN_DATE
from jukinet.v1 import identity_pb2

_SEXES = (identity_pb2.SEX_MALE, identity_pb2.SEX_FEMALE)


@dataclass(frozen=True)
class FourItems:
    """A checked query. ``folded_name`` / ``folded_kana``: the index keys ("" for an item not given)."""

    name: str
    kana: str
    birth: datetime.date
    sex: int
    municipality: str
    address_text: str
    folded_name: str
    folded_kana: str

    @property
    def birth_date(self) -> identity_pb2.Date:
        return identity_pb2.Date(year=self.birth.year, month=self.birth.month, day=self.birth.day)

    @property
    def has_address(self) -> bool:
        return bool(self.municipality or self.address_text)

    @classmethod
    def parse(
        cls,
        name: str,
        kana: str,
        birth_date: identity_pb2.Date | None,
        sex: int,
        municipality: str,
        address_text: str,
        today: datetime.date,
    ) -> FourItems:
        """Rejected (INVALID) naming every problem: lengths and repertoires (limits.SEARCH_TEXT_LIMITS), name
        or kana given and not folded away to nothing, a calendar birth date not in the future, a sex, a
        valid municipality code."""
        problems: list[str] = []
        texts = {"name": name, "kana": kana, "address_text": address_text}
        for field, text in texts.items():
            problem = text_problem(field, text, SEARCH_TEXT_LIMITS[field])
            if problem:
                problems.append(problem)
        folded_name = fold(name) if name and "name" not in _fields(problems) else ""
        folded_kana = fold(kana) if kana and "kana" not in _fields(problems) else ""
        if not name and not kana:
            problems.append("name or kana: give at least one (with birth_date and sex)")
        for field, text, folded in (("name", name, folded_name), ("kana", kana, folded_kana)):
            if text and field not in _fields(problems) and not folded:
                problems.append(f"{field}: {quoted(text)} is nothing once spaces and long-vowel marks are removed")
        birth: datetime.date | None = None
        if birth_date is None:
            problems.append("birth_date: missing")
        else:
            try:
                birth = datetime.date(birth_date.year, birth_date.month, birth_date.day)
            except ValueError:
                b = birth_date
                problems.append(f"birth_date: {b.year:04d}-{b.month:02d}-{b.day:02d} is not a calendar date")
            else:
                if birth < MIN_DATE or birth > today:
                    problems.append(f"birth_date: {birth.isoformat()} is not between {MIN_DATE} and today")
        if sex not in _SEXES:
            problems.append(f"sex: {sex} is not SEX_MALE (1) or SEX_FEMALE (2)")
        if municipality and (problem := local_gov_code_problem(municipality)):
            problems.append(f"municipality_code: {problem}")
        if problems or birth is None:
            raise Rejected(Problem.INVALID, "; ".join(problems))
        return cls(name, kana, birth, sex, municipality, address_text, folded_name, folded_kana)


def _fields(problems: list[str]) -> set[str]:
    return {p.split(":", 1)[0] for p in problems}


@dataclass(frozen=True)
class Judgement:
    """How one record answers a query. ``candidate``: name or kana matched, and the address, if given."""

    name: TextMatch
    kana: TextMatch
    municipality: Match
    address_text: TextMatch

    @property
    def named(self) -> bool:
        return self.name.match in _SAME or self.kana.match in _SAME

    @property
    def address_differs(self) -> bool:
        return self.municipality is Match.DIFFERS or self.address_text.match is Match.DIFFERS

    @property
    def candidate(self) -> bool:
        return self.named and not self.address_differs

    def reported(self, permits: Callable[[str], bool]) -> Judgement:
        """What may be told to an agency whose row permits the field groups ``permits`` accepts: the items
        of a group it does not permit are WITHHELD (ITEM_MATCH_UNSPECIFIED on the wire) — not even DIFFERS."""
        name, address = permits("name"), permits("address")
        return Judgement(
            name=self.name if name else WITHHELD,
            kana=self.kana if name else WITHHELD,
            municipality=self.municipality if address else Match.WITHHELD,
            address_text=self.address_text if address else WITHHELD,
        )


_SAME = frozenset({Match.EXACT, Match.FOLDED})


def judge(query: FourItems, record: identity_pb2.IdentityRecord) -> Judgement | None:
    """None unless birth date and sex are the query's (the index keys them; a key collision lands here)."""
    b = record.birth_date
    if (b.year, b.month, b.day) != (query.birth.year, query.birth.month, query.birth.day) or record.sex != query.sex:
        return None
    if not query.municipality:
        municipality = Match.NOT_GIVEN
    elif record.address.municipality_code == query.municipality:
        municipality = Match.EXACT
    else:
        municipality = Match.DIFFERS
    return Judgement(
        name=compare(query.name, record.name.kanji),
        kana=compare(query.kana, record.name.kana),
        municipality=municipality,
        address_text=(
            compare(query.address_text, record.address.text, ADDRESS_FOLDS, leading=True)
            if query.address_text
            else NOT_GIVEN
        ),
    )
