"""Synthetic residents for demos, tests and benchmarks (never real people)."""

from __future__ import annotations

import datetime
import random

from jukinet.domain.codes import generate_my_number, generate_resident_code
from jukinet.v1 import identity_pb2

_SURNAMES = [
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
]
_GIVEN = [
    ("太郎", "タロウ", 1),
    ("花子", "ハナコ", 2),
    ("健一", "ケンイチ", 1),
    ("美咲", "ミサキ", 2),
    ("翔太", "ショウタ", 1),
    ("陽菜", "ヒナ", 2),
    ("大輔", "ダイスケ", 1),
    ("結衣", "ユイ", 2),
]


def _date(d: datetime.date) -> identity_pb2.Date:
    return identity_pb2.Date(year=d.year, month=d.month, day=d.day)


def synthetic_resident(
    rng: random.Random,
    municipality_code: str,
    reason: identity_pb2.ChangeReason = identity_pb2.CHANGE_REASON_MOVE_IN,
    today: datetime.date | None = None,
    numbered: bool = False,
) -> identity_pb2.IdentityRecord:
    """A made-up resident of ``municipality_code`` as an operator enters one: ``resident_code`` and
    ``my_number`` empty, for the CS to take from its reserve and ask the national server for. With
    ``numbered`` both are invented (valid check digits) — only for stores and rules tested without a
    national server: a network refuses numbers it did not issue. The address goes down to the 号, so that
    residents drawn are distinct people even by the hundred thousand (a CS takes a row without a code that
    says the same as one it created before as that person again: jukinet.cs_node.registry.row_digest)."""
    today = today or datetime.date.today()
    surname, surname_kana = rng.choice(_SURNAMES)
    given, given_kana, sex = rng.choice(_GIVEN)
    birth = today - datetime.timedelta(days=rng.randrange(1, 36_500))
    if reason == identity_pb2.CHANGE_REASON_BIRTH:
        birth = today - datetime.timedelta(days=rng.randrange(0, 14))
    return identity_pb2.IdentityRecord(
        resident_code=generate_resident_code(rng) if numbered else "",
        my_number=generate_my_number(rng) if numbered else "",
        name=identity_pb2.PersonName(kanji=f"{surname} {given}", kana=f"{surname_kana} {given_kana}"),
        birth_date=_date(birth),
        sex=sex,
        address=identity_pb2.Address(
            municipality_code=municipality_code,
            text=f"{rng.randrange(1, 9)}丁目{rng.randrange(1, 40)}番{rng.randrange(1, 30)}号",
        ),
        change_reason=reason,
        change_date=_date(today),
    )
