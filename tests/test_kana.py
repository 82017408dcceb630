"""The four-item search's folds (jukinet.domain.kana), rule by rule, the variant table kept as data, and the
query rules and item-by-item judgement (jukinet.domain.four_items)."""

from __future__ import annotations

import datetime
import unicodedata

import pytest

from jukinet.domain import kana
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.four_items import FourItems, judge
from jukinet.domain.kana import ADDRESS_FOLDS, Fold, Match, compare, fold, fold_address, kanji_variants
from jukinet.v1 import identity_pb2 as pb

TODAY = datetime.date(2026, 11, 26)
F = Fold

# -- each fold alone ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "stored", "folds"),
    [
        # width (NFKC): half-width katakana with voiced marks, full-width ASCII, the ideographic space
        ("ﾀｶﾊｼ", "タカハシ", (F.WIDTH,)),
        ("ｶﾞｯｺｳ", "ガッコウ", (F.WIDTH,)),
        ("ＪＯＨＮ", "JOHN", (F.WIDTH,)),
        ("高橋　一郎", "高橋 一郎", (F.WIDTH,)),
        # hiragana → katakana (ゔ and the iteration mark too)
        ("たかはし", "タカハシ", (F.HIRAGANA,)),
        ("ゔぃ", "ヴィ", (F.HIRAGANA,)),
        ("すゞき", "スヾキ", (F.HIRAGANA,)),
        # small kana → large, on either side
        ("キャ", "キヤ", (F.SMALL_KANA,)),
        ("ハットリ", "ハツトリ", (F.SMALL_KANA,)),
        ("ヶ", "ケ", (F.SMALL_KANA,)),
        ("ヮ", "ワ", (F.SMALL_KANA,)),
        # long-vowel marks and their look-alikes removed
        ("サトー", "サト", (F.LONG_VOWEL,)),
        ("サト−", "サトー", (F.LONG_VOWEL,)),
        ("サト―", "サト‐", (F.LONG_VOWEL,)),
        # every space removed
        ("タカハシ ハナコ", "タカハシハナコ", (F.SPACES,)),
        ("高橋\t花子", "高橋花子", (F.SPACES,)),
        # kanji variants: the table, compatibility ideographs, variation selectors
        ("髙橋", "高橋", (F.KANJI_VARIANT,)),
        ("山﨑", "山崎", (F.KANJI_VARIANT,)),
        ("渡邊", "渡辺", (F.KANJI_VARIANT,)),
        ("渡邉", "渡辺", (F.KANJI_VARIANT,)),
        ("澤田", "沢田", (F.KANJI_VARIANT,)),
        ("齋藤", "斎藤", (F.KANJI_VARIANT,)),
        ("櫻井", "桜井", (F.KANJI_VARIANT,)),
        ("國廣", "国広", (F.KANJI_VARIANT,)),
        ("長濱", "長浜", (F.KANJI_VARIANT,)),
        ("德永", "徳永", (F.KANJI_VARIANT,)),
        ("眞壽", "真寿", (F.KANJI_VARIANT,)),
        ("𠮷田", "吉田", (F.KANJI_VARIANT,)),
        ("\ufa19田", "神田", (F.KANJI_VARIANT,)),  # U+FA19, a CJK compatibility ideograph
        ("葛\U000e0100城", "葛城", (F.KANJI_VARIANT,)),  # a variation selector names a glyph, not a character
    ],
)
def test_each_fold_alone_matches_and_is_named(query: str, stored: str, folds: tuple[Fold, ...]) -> None:
    assert compare(query, stored) == kana.TextMatch(Match.FOLDED, folds)
    assert compare(stored, query).match is Match.FOLDED  # symmetric: the index folds both sides
    assert fold(query) == fold(stored)


def test_folds_combine_and_only_those_needed_are_named() -> None:
    # half-width hiragana does not exist: half-width katakana with spaces, against the register's katakana
    assert compare("ﾀｶﾊｼ ﾊﾅｺ", "タカハシ ハナコ") == kana.TextMatch(Match.FOLDED, (F.WIDTH,))
    assert compare("た か は し", "タカハシ") == kana.TextMatch(Match.FOLDED, (F.HIRAGANA, F.SPACES))
    assert compare("きゃろる　さとー", "キヤロルサト") == kana.TextMatch(
        Match.FOLDED,
        (F.HIRAGANA, F.SMALL_KANA, F.LONG_VOWEL, F.SPACES),  # U+3000 is removed as a space
    )
    assert compare("ｷｬﾛﾙ　ｻﾄｰ", "キヤロルサト") == kana.TextMatch(
        Match.FOLDED, (F.WIDTH, F.SMALL_KANA, F.LONG_VOWEL, F.SPACES)
    )
    # U+3000 and U+0020 are one space once widths are folded: the spaces fold is not needed then
    assert compare("たかはし　いちろう", "タカハシ イチロウ") == kana.TextMatch(Match.FOLDED, (F.WIDTH, F.HIRAGANA))
    assert compare("髙橋 一郎", "高橋　一郎") == kana.TextMatch(Match.FOLDED, (F.WIDTH, F.KANJI_VARIANT))
    # a voiced mark written apart (゛ U+309B) joins its letter once the space NFKC leaves is removed
    assert compare("カ゛", "ガ") == kana.TextMatch(Match.FOLDED, (F.WIDTH, F.SPACES))


def test_exact_differs_and_not_given() -> None:
    assert compare("タカハシ", "タカハシ") == kana.TextMatch(Match.EXACT)
    assert compare("", "タカハシ").match is Match.NOT_GIVEN
    assert compare("タカハシ", "タカバシ").match is Match.DIFFERS  # a voiced mark is not folded away
    assert compare("サトー", "サトウ").match is Match.DIFFERS  # ー is removed, not read as ウ
    assert compare("斉藤", "斎藤").match is Match.DIFFERS  # two characters of the 常用漢字表, not variants
    assert compare("齊藤", "斉藤").match is Match.FOLDED and compare("齊藤", "斎藤").match is Match.DIFFERS
    assert compare("高橋", "高橋 一郎").match is Match.DIFFERS  # names are whole: no leading match


def test_addresses_fold_dashes_and_match_by_their_leading_part() -> None:
    assert fold_address("１−２−３　サンハイツ") == "1-2-3サンハイツ"
    assert compare("中野4丁目8−1", "中野４丁目8-1", ADDRESS_FOLDS, leading=True) == kana.TextMatch(
        Match.FOLDED, (F.WIDTH, F.DASHES)
    )
    assert compare("中野4丁目", "中野４丁目8番1号", ADDRESS_FOLDS, leading=True) == kana.TextMatch(
        Match.LEADING, (F.WIDTH,)
    )
    assert compare("中野5丁目", "中野４丁目8番1号", ADDRESS_FOLDS, leading=True).match is Match.DIFFERS
    assert fold_address("1-23") != fold_address("12-3")  # dashes are kept in addresses


# -- the table, as data -----------------------------------------------------------------------------------


def test_the_variant_table_is_data_with_its_sources_and_every_pair_is_one_character_to_another() -> None:
    table = kanji_variants()
    assert len(table) >= 150
    text = (kana.resources.files("jukinet.domain") / kana.VARIANTS_FILE).read_text(encoding="utf-8")
    assert "常用漢字表" in text.split("variant\tfolded")[0]  # the header names where the pairs are documented
    for variant, folded in table.items():
        assert len(variant) == len(folded) == 1 and variant != folded
        assert folded not in table  # folded once is folded for good
        assert unicodedata.normalize("NFKC", variant) == variant  # compatibility ideographs need no line
    for variant, folded in zip("髙﨑邊邉澤齋櫻國廣濱德眞壽", "高崎辺辺沢斎桜国広浜徳真寿", strict=True):
        assert table[variant] == folded
    assert table["齊"] == "斉"


def test_the_fold_version_names_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    version = kana.fold_version()
    assert len(version) == 32
    kana.fold_version.cache_clear()
    monkeypatch.setattr(kana, "FOLD_RULES", kana.FOLD_RULES + 1)
    try:
        assert kana.fold_version() != version  # an index built with other folds is built again
    finally:
        kana.fold_version.cache_clear()


# -- the query and the judgement --------------------------------------------------------------------------


def _parse(**items: object) -> FourItems:
    base: dict[str, object] = dict(name="", kana="タカハシ", birth_date=pb.Date(year=1980, month=4, day=1),
                                   sex=pb.SEX_MALE, municipality="", address_text="")  # fmt: skip
    base.update(items)
    return FourItems.parse(today=TODAY, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("items", "words"),
    [
        ({"kana": ""}, "name or kana: give at least one"),
        ({"kana": "ーー　"}, "kana: 'ーー　' is nothing once spaces and long-vowel marks are removed"),
        ({"kana": "タ" * 201}, "kana: 201 characters, at most 200"),
        ({"name": "高" * 101}, "name: 101 characters, at most 100"),
        ({"kana": "Takahashi"}, "kana: character 1"),
        ({"name": "高橋\u202e"}, "RIGHT-TO-LEFT OVERRIDE"),
        ({"address_text": "1丁目\x1b"}, "address_text: character 4"),
        ({"address_text": "1" * 201}, "address_text: 201 characters"),
        ({"birth_date": None}, "birth_date: missing"),
        ({"birth_date": pb.Date(year=1980, month=2, day=30)}, "birth_date: 1980-02-30 is not a calendar date"),
        ({"birth_date": pb.Date(year=2027, month=1, day=1)}, "birth_date: 2027-01-01 is not between"),
        ({"birth_date": pb.Date(year=1849, month=1, day=1)}, "is not between 1850-01-01"),
        ({"sex": pb.SEX_UNSPECIFIED}, "sex: 0 is not SEX_MALE"),
        ({"sex": 7}, "sex: 7"),
        ({"municipality": "131149"}, "municipality_code:"),
        ({"municipality": "13114"}, "municipality_code:"),
    ],
)
def test_a_malformed_query_is_refused_saying_what(items: dict[str, object], words: str) -> None:
    with pytest.raises(Rejected) as refused:
        _parse(**items)
    assert refused.value.problem is Problem.INVALID
    assert words in str(refused.value)


def _record(**items: object) -> pb.IdentityRecord:
    record = pb.IdentityRecord(
        resident_code="12345678903",
        name=pb.PersonName(kanji="髙橋 一郎", kana="タカハシ イチロウ"),
        birth_date=pb.Date(year=1980, month=4, day=1),
        sex=pb.SEX_MALE,
        address=pb.Address(municipality_code="131148", text="中野四丁目8番1号"),
    )
    for name, value in items.items():
        if isinstance(value, pb.Date):
            getattr(record, name).CopyFrom(value)
        else:
            setattr(record, name, value)
    return record


def test_judge_says_item_by_item_how_a_record_matched() -> None:
    how = judge(_parse(name="高橋一郎", kana="たかはし　いちろう", municipality="131148"), _record())
    assert how is not None and how.candidate
    assert how.name == kana.TextMatch(Match.FOLDED, (F.SPACES, F.KANJI_VARIANT))
    assert how.kana == kana.TextMatch(Match.FOLDED, (F.WIDTH, F.HIRAGANA))
    assert how.municipality is Match.EXACT and how.address_text.match is Match.NOT_GIVEN
    # matched by the reading alone: still a candidate, the name marked as differing
    other = judge(_parse(name="高箸一郎", kana="タカハシイチロウ"), _record())
    assert other is not None and other.candidate and other.name.match is Match.DIFFERS
    # the given address narrows
    away = judge(_parse(kana="タカハシイチロウ", municipality="131016"), _record())
    assert away is not None and away.address_differs and not away.candidate
    street = judge(_parse(kana="タカハシイチロウ", address_text="中野四丁目"), _record())
    assert street is not None and street.candidate and street.address_text.match is Match.LEADING
    # birth date and sex are keys: a record that differs in either is no answer at all (a key collision)
    assert judge(_parse(kana="タカハシイチロウ"), _record(sex=pb.SEX_FEMALE)) is None
    assert judge(_parse(kana="タカハシイチロウ"), _record(birth_date=pb.Date(year=1980, month=4, day=2))) is None
