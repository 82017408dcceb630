"""How the four-item search (４情報検索) folds names, readings and addresses before comparing them.

A name is written many ways for one person: the register holds 髙橋 and an agency types 高橋; a reading
arrives as half-width ﾀｶﾊｼ, as hiragana たかはし, with a space or without, with ー or a dash. The search
compares *folded* text — the same function for the stored record (the index) and for the query — and
tells the agency which folds it took to match (:func:`compare`), never a guess.

The folds, in order (each a :class:`Fold`; :data:`FOLDS` is the pipeline):

1. ``WIDTH`` — Unicode compatibility forms (NFKC): ｶﾀｶﾅ → カタカナ, ｶﾞ → ガ, ＡＢＣ１ → ABC1, U+3000 → space.
   CJK compatibility ideographs are left for step 6, so that they are reported as variants.
2. ``HIRAGANA`` — hiragana → katakana: たかはし → タカハシ, ゔ → ヴ, ゝ → ヽ.
3. ``SMALL_KANA`` — small kana → large: ァィゥェォッャュョヮヵヶ → アイウエオツヤユヨワカケ (キャ = キヤ).
4. ``LONG_VOWEL`` — the long-vowel mark ー and its look-alikes (ｰ, -, ‐, ‑, ‒, –, —, ―, −, ﹣, －, ⁃) removed:
   サトー = サト.
5. ``SPACES`` — every space (ASCII, ideographic, any other Unicode white space) removed: 高橋 一郎 =
   高橋一郎; a voiced mark left apart by a removed space joins its letter again (NFC).
6. ``KANJI_VARIANT`` — 旧字体/異体字 → 新字体 through the table kept as data
   (``jukinet/domain/data/kanji_variants.tsv``, which names where each pair is documented: 國 → 国,
   髙 → 高, 﨑 → 崎, 邉 → 辺) and CJK compatibility ideographs → their unified ideograph (神 U+FA19 → 神).
   A kanji variation selector (U+E0100…, U+FE00…) names a glyph of the same character, so it is dropped.

Addresses (:func:`fold_address`) take WIDTH, SPACES, KANJI_VARIANT and ``DASHES`` (every dash look-alike,
ー included, → ``-``: 1−2−3 = 1-2-3), but not the kana folds or the removal of long-vowel marks, which
would join numbers (1-23 and 12-3).

Pure: no I/O but reading the bundled table once.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from importlib import resources

__all__ = [
    "ADDRESS_FOLDS",
    "FOLDS",
    "Fold",
    "Match",
    "TextMatch",
    "compare",
    "fold",
    "fold_address",
    "fold_version",
    "kanji_variants",
]

VARIANTS_FILE = "data/kanji_variants.tsv"
_SMALL = str.maketrans(
    "ァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ",  # and the small kana for Ainu (U+31F0…)
    "アイウエオツヤユヨワカケクシストヌハヒフヘホムラリルレロ",
)
_LONG_VOWELS = "ーｰ-‐‑‒–—―−﹣－⁃"  # the mark and its look-alikes (also the dashes of addresses)
_NO_LONG_VOWELS = str.maketrans("", "", _LONG_VOWELS)
_TO_DASH = str.maketrans(_LONG_VOWELS, "-" * len(_LONG_VOWELS))
_HIRAGANA = {o: o + 0x60 for o in [*range(0x3041, 0x3097), 0x309D, 0x309E]}  # ぁ…ゖ, ゝゞ → ァ…ヶ, ヽヾ
_SPACE = re.compile(r"\s+")
_VARIATION_SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))
_COMPAT_RANGES = ((0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
_COMPAT = re.compile("([\uf900-\ufaff\U0002f800-\U0002fa1f])")


class Fold(Enum):
    """One normalisation step; the value is the wire's ``Normalisation`` number (provision.proto)."""

    WIDTH = 1
    HIRAGANA = 2
    SMALL_KANA = 3
    LONG_VOWEL = 4
    SPACES = 5
    KANJI_VARIANT = 6
    DASHES = 7


class Match(Enum):
    """How a queried text item compares with a record's; the value is the wire's ``ItemMatch`` number."""

    WITHHELD = 0  # the agency's row does not permit the item's field group: nothing is said of it
    NOT_GIVEN = 1  # the query left the item out
    EXACT = 2  # the same characters
    FOLDED = 3  # the same after the folds listed
    LEADING = 4  # addresses only: the query is the leading part of the record's, after the folds listed
    DIFFERS = 5  # given, and different even after every fold


@dataclass(frozen=True)
class TextMatch:
    match: Match
    folds: tuple[Fold, ...] = ()


NOT_GIVEN = TextMatch(Match.NOT_GIVEN)
WITHHELD = TextMatch(Match.WITHHELD)


@functools.cache
def kanji_variants() -> dict[str, str]:
    """The bundled table: variant → folded form (one code point each; checked when loaded)."""
    text = resources.files("jukinet.domain").joinpath(VARIANTS_FILE).read_text(encoding="utf-8")
    table: dict[str, str] = {}
    header_seen = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        cells = line.split("\t")
        if not header_seen:
            if cells != ["variant", "folded"]:
                raise ValueError(f"{VARIANTS_FILE} line {number}: expected the header 'variant<TAB>folded'")
            header_seen = True
            continue
        if len(cells) != 2 or len(cells[0]) != 1 or len(cells[1]) != 1 or cells[0] == cells[1]:
            raise ValueError(f"{VARIANTS_FILE} line {number}: not one character TAB another: {line!r}")
        if table.setdefault(cells[0], cells[1]) != cells[1]:
            raise ValueError(f"{VARIANTS_FILE} line {number}: {cells[0]} folded two ways")
    chained = sorted(v for v in table.values() if v in table)
    if chained:
        raise ValueError(f"{VARIANTS_FILE}: folded forms that are folded again: {chained}")
    return table


def _width(text: str) -> str:
    """NFKC, except CJK compatibility ideographs (step 6 folds those, reported as variants)."""
    if not _COMPAT.search(text):
        return unicodedata.normalize("NFKC", text)
    parts = _COMPAT.split(text)  # the separators (the ideographs) are kept at the odd positions
    return "".join(part if i % 2 else unicodedata.normalize("NFKC", part) for i, part in enumerate(parts))


def _hiragana(text: str) -> str:
    return text.translate(_HIRAGANA)


def _small(text: str) -> str:
    return text.translate(_SMALL)


def _long_vowels(text: str) -> str:
    return text.translate(_NO_LONG_VOWELS)


def _spaces(text: str) -> str:
    joined = _SPACE.sub("", text)
    return unicodedata.normalize("NFC", joined) if joined != text else text


def _variants(text: str) -> str:
    return text.translate(_variant_table())


@functools.cache
def _variant_table() -> dict[int, str | None]:
    """The bundled table, CJK compatibility ideographs → unified, variation selectors → nothing."""
    table: dict[int, str | None] = {ord(k): v for k, v in kanji_variants().items()}
    for lo, hi in _COMPAT_RANGES:
        for o in range(lo, hi + 1):
            unified = unicodedata.normalize("NFKC", chr(o))
            if unified != chr(o):
                table[o] = unified
    for lo, hi in _VARIATION_SELECTORS:
        table.update(dict.fromkeys(range(lo, hi + 1)))
    return table


def _dashes(text: str) -> str:
    return text.translate(_TO_DASH)


_STEP: dict[Fold, Callable[[str], str]] = {
    Fold.WIDTH: _width,
    Fold.HIRAGANA: _hiragana,
    Fold.SMALL_KANA: _small,
    Fold.LONG_VOWEL: _long_vowels,
    Fold.SPACES: _spaces,
    Fold.KANJI_VARIANT: _variants,
    Fold.DASHES: _dashes,
}

FOLDS: tuple[Fold, ...] = (
    Fold.WIDTH,
    Fold.HIRAGANA,
    Fold.SMALL_KANA,
    Fold.LONG_VOWEL,
    Fold.SPACES,
    Fold.KANJI_VARIANT,
)
"""Names and readings."""
ADDRESS_FOLDS: tuple[Fold, ...] = (Fold.WIDTH, Fold.DASHES, Fold.SPACES, Fold.KANJI_VARIANT)
"""Address text below the municipality."""


def _apply(text: str, folds: Sequence[Fold]) -> str:
    for step in folds:
        text = _STEP[step](text)
    return text


def fold(text: str) -> str:
    """A name or reading as the index keys it: every fold of :data:`FOLDS`."""
    return _apply(text, FOLDS)


def fold_address(text: str) -> str:
    return _apply(text, ADDRESS_FOLDS)


def compare(query: str, stored: str, folds: Sequence[Fold] = FOLDS, leading: bool = False) -> TextMatch:
    """How ``query`` matches ``stored``: EXACT; FOLDED with the folds that were needed; LEADING (only if
    ``leading``: the folded query is the start of the folded stored text); DIFFERS; NOT_GIVEN for an
    empty query. The folds named are a set without which the two would not match: each fold that changes
    either side is tried, then each is left out in turn, the last first, if the rest still match (高橋 一郎
    and 髙橋 一郎 match by KANJI_VARIANT alone, although SPACES changes both)."""
    if not query:
        return NOT_GIVEN
    if query == stored:
        return TextMatch(Match.EXACT)

    def matches(used: Sequence[Fold]) -> bool:
        q, s = _apply(query, used), _apply(stored, used)
        return q == s or (leading and bool(q) and s.startswith(q))

    used, q, s = [], query, stored
    for step in folds:  # every fold that changes either side, applied in order
        q2, s2 = _STEP[step](q), _STEP[step](s)
        if (q2, s2) != (q, s):
            used.append(step)
        q, s = q2, s2
    if not matches(used):
        return TextMatch(Match.DIFFERS)
    for step in reversed(used):  # later folds are left out first: the earlier, plainer ones are named
        fewer = [f for f in used if f is not step]
        if matches(fewer):
            used = fewer
    q, s = _apply(query, used), _apply(stored, used)
    return TextMatch(Match.FOLDED if q == s else Match.LEADING, tuple(used))


FOLD_RULES = 1
"""Raised whenever a fold's code changes what it yields: with the table, it makes :func:`fold_version`."""


@functools.cache
def fold_version() -> bytes:
    """SHA-256 naming the folds as they stand (rules revision, pipeline, table): an index built with
    another version keys names differently and is built again."""
    table = resources.files("jukinet.domain").joinpath(VARIANTS_FILE).read_bytes()
    pipeline = ",".join(f.name for f in FOLDS).encode("ascii")
    return hashlib.sha256(b"jukinet-folds\x00%d\x00%s\x00%s" % (FOLD_RULES, pipeline, table)).digest()
