"""Identifier types with check digits: My Number, 住民票コード, 地方公共団体コード, 法人番号.

Every kind has a check-digit function over its base, an ``is_valid_*`` predicate (the fast path:
no exceptions, no regular expressions), a ``*_problem`` function describing what is wrong (or
``None``) and a frozen value type built with ``Type.parse(text)``, which raises :class:`Rejected` (INVALID).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import mul
from typing import ClassVar, Self

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.quoting import quoted

__all__ = [
    "CorporateNumber",
    "LocalGovCode",
    "MyNumber",
    "ResidentCode",
    "corporate_check_digit",
    "corporate_number_problem",
    "generate_my_number",
    "generate_resident_code",
    "is_valid_corporate_number",
    "is_valid_local_gov_code",
    "is_valid_my_number",
    "is_valid_resident_code",
    "local_gov_check_digit",
    "local_gov_code_problem",
    "my_number_check_digit",
    "my_number_problem",
    "resident_code_check_digit",
    "resident_code_problem",
]

_MY_NUMBER_WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_RESIDENT_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_LOCAL_GOV_WEIGHTS = (6, 5, 4, 3, 2)
# 法人番号: base counted from the right, weight 1 at odd positions and 2 at even ones; written
# left to right for a 12-digit base that is 2,1,2,1,...
_CORPORATE_WEIGHTS = (2, 1) * 6

# The weighted sums run over the ASCII bytes directly; subtracting 48 (ord "0") times the weight sum
# turns byte values into digit values without a per-character int() call.
_LOCAL_GOV_OFFSET = 48 * sum(_LOCAL_GOV_WEIGHTS)
_CORPORATE_OFFSET = 48 * sum(_CORPORATE_WEIGHTS)
_FULL_WIDTH_DIGITS = frozenset("０１２３４５６７８９")


def _digits(text: object, length: int) -> bool:
    """True if ``text`` is a str of exactly ``length`` ASCII digits."""
    return isinstance(text, str) and len(text) == length and text.isascii() and text.isdigit()


def _shape_problem(text: object, length: int) -> str | None:
    """Describe why ``text`` is not ``length`` ASCII digits, or None if it is."""
    if not isinstance(text, str):
        return f"must be a string of {length} ASCII digits, got {type(text).__name__}"
    if any(c in _FULL_WIDTH_DIGITS for c in text):
        return f"must be {length} ASCII digits; full-width digits (０-９) are not accepted"
    if len(text) != length:
        return f"must be {length} ASCII digits, got {len(text)} characters"
    for i, c in enumerate(text):
        if not ("0" <= c <= "9"):
            return f"must be {length} ASCII digits, got {quoted(c)} at position {i + 1}"
    return None


def _mod11(total: int) -> int:
    r = total % 11
    return 0 if r <= 1 else 11 - r


def _require_base(base: str, length: int, kind: str) -> None:
    if not _digits(base, length):
        raise Rejected(Problem.INVALID, f"{kind} base {quoted(base)}: {_shape_problem(base, length)}")


# --- My Number (個人番号) and 住民票コード: one mod-11 scheme ----------------------------------------


@dataclass(frozen=True)
class _Mod11Scheme:
    """Digits, then one check digit: r = Σ digit·weight mod 11; check = 0 if r <= 1 else 11 - r."""

    kind: str
    weights: tuple[int, ...]
    code_word: str  # "number" / "code", for messages
    length: int = field(init=False)
    offset: int = field(init=False)  # sums run over ASCII bytes; this turns them into digit sums

    def __post_init__(self) -> None:
        object.__setattr__(self, "length", len(self.weights) + 1)
        object.__setattr__(self, "offset", 48 * sum(self.weights))

    def check_digit(self, base: str) -> int:
        _require_base(base, self.length - 1, self.kind)
        return _mod11(sum(map(mul, self.weights, base.encode())) - self.offset)

    def is_valid(self, text: str) -> bool:
        if not _digits(text, self.length) or text.count("0") == self.length:
            return False
        b = text.encode()
        return _mod11(sum(map(mul, self.weights, b)) - self.offset) == b[-1] - 48

    def problem(self, text: str) -> str | None:
        if self.is_valid(text):
            return None
        shape = _shape_problem(text, self.length)
        if shape is not None:
            return f"{self.kind} {quoted(text)}: {shape}"
        if text.count("0") == self.length:
            return f"{self.kind} {quoted(text)}: all zeros is not an issuable {self.code_word}"
        return f"{self.kind} {quoted(text)}: check digit is {text[-1]}, expected {self.check_digit(text[:-1])}"

    def generate(self, rng: random.Random) -> str:
        while True:
            base = f"{rng.randrange(10 ** (self.length - 1)):0{self.length - 1}d}"
            if base.count("0") != len(base):
                return base + str(self.check_digit(base))


_MY_NUMBER = _Mod11Scheme("My Number", _MY_NUMBER_WEIGHTS, "number")
# 住民票コード: a stand-in. The real formula is set by a ministry notice not published in
# machine-readable form, so JukiNet uses the My Number scheme over the 10-digit base (weights
# 5,4,3,2,7,6,5,4,3,2). This line is the only place that encodes it.
_RESIDENT_CODE = _Mod11Scheme("resident code", _RESIDENT_WEIGHTS, "code")


def my_number_check_digit(base: str) -> int:
    """Check digit of an 11-digit My Number base (weights 6,5,4,3,2,7,6,5,4,3,2; mod 11)."""
    return _MY_NUMBER.check_digit(base)


def is_valid_my_number(text: str) -> bool:
    """True if ``text`` is a valid 12-digit My Number (all-zero is rejected)."""
    return _MY_NUMBER.is_valid(text)


def my_number_problem(text: str) -> str | None:
    """Describe what is wrong with a My Number, or None if it is valid."""
    return _MY_NUMBER.problem(text)


def generate_my_number(rng: random.Random) -> str:
    """A random valid My Number."""
    return _MY_NUMBER.generate(rng)


def resident_code_check_digit(base: str) -> int:
    """Check digit of a 10-digit 住民票コード base: the My Number scheme (a stand-in; see _RESIDENT_CODE)."""
    return _RESIDENT_CODE.check_digit(base)


def is_valid_resident_code(text: str) -> bool:
    """True if ``text`` is a valid 11-digit 住民票コード (all-zero is rejected)."""
    return _RESIDENT_CODE.is_valid(text)


def resident_code_problem(text: str) -> str | None:
    """Describe what is wrong with a 住民票コード, or None if it is valid."""
    return _RESIDENT_CODE.problem(text)


def generate_resident_code(rng: random.Random) -> str:
    """A random valid 住民票コード."""
    return _RESIDENT_CODE.generate(rng)


# --- 全国地方公共団体コード (local-government code) ---------------------------------------------


def local_gov_check_digit(base: str) -> int:
    """Check digit of a 5-digit local-government code base (weights 6,5,4,3,2; (11 - sum mod 11) mod 10)."""
    _require_base(base, 5, "local-government code")
    return (11 - (sum(map(mul, _LOCAL_GOV_WEIGHTS, base.encode())) - _LOCAL_GOV_OFFSET) % 11) % 10


def is_valid_local_gov_code(text: str) -> bool:
    """True if ``text`` is 6 ASCII digits with a correct check digit."""
    if not _digits(text, 6):
        return False
    b = text.encode()
    return (11 - (sum(map(mul, _LOCAL_GOV_WEIGHTS, b)) - _LOCAL_GOV_OFFSET) % 11) % 10 == b[5] - 48


def local_gov_code_problem(text: str) -> str | None:
    """Describe what is wrong with a local-government code, or None if it is valid."""
    if is_valid_local_gov_code(text):
        return None
    shape = _shape_problem(text, 6)
    if shape is not None:
        return f"local-government code {quoted(text)}: {shape}"
    return f"local-government code {quoted(text)}: check digit is {text[5]}, expected {local_gov_check_digit(text[:5])}"


# --- 法人番号 (corporate number) ---------------------------------------------------------------


def corporate_check_digit(base: str) -> int:
    """Check digit of a 12-digit corporate-number base (weights 1/2 from the right; 9 - sum mod 9)."""
    _require_base(base, 12, "corporate number")
    return 9 - (sum(map(mul, _CORPORATE_WEIGHTS, base.encode())) - _CORPORATE_OFFSET) % 9


def is_valid_corporate_number(text: str) -> bool:
    """True if ``text`` is a valid 13-digit 法人番号 (check digit first)."""
    if not _digits(text, 13):
        return False
    b = text.encode()
    return 9 - (sum(map(mul, _CORPORATE_WEIGHTS, b[1:])) - _CORPORATE_OFFSET) % 9 == b[0] - 48


def corporate_number_problem(text: str) -> str | None:
    """Describe what is wrong with a corporate number, or None if it is valid."""
    if is_valid_corporate_number(text):
        return None
    shape = _shape_problem(text, 13)
    if shape is not None:
        return f"corporate number {quoted(text)}: {shape}"
    expected = corporate_check_digit(text[1:])
    return f"corporate number {quoted(text)}: check digit (first digit) is {text[0]}, expected {expected}"


# --- value types -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Code:
    """A validated code: construct with ``Type.parse(text)`` (or ``Type(text)``); raises Rejected (INVALID)."""

    value: str
    _problem: ClassVar[Callable[[str], str | None]]

    def __post_init__(self) -> None:
        problem = type(self)._problem(self.value)
        if problem is not None:
            raise Rejected(Problem.INVALID, problem)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Validate ``text``; raises Rejected (INVALID)."""
        return cls(text)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class MyNumber(_Code):
    """A validated 個人番号 (12 digits)."""

    _problem = staticmethod(my_number_problem)


@dataclass(frozen=True, slots=True)
class ResidentCode(_Code):
    """A validated 住民票コード (11 digits; see :func:`resident_code_check_digit`)."""

    _problem = staticmethod(resident_code_problem)


@dataclass(frozen=True, slots=True)
class LocalGovCode(_Code):
    """A validated 全国地方公共団体コード (6 digits). Existence is checked by the directory, not here."""

    _problem = staticmethod(local_gov_code_problem)

    @property
    def prefecture_code(self) -> str:
        """The 2-digit prefecture code (the first two digits)."""
        return self.value[:2]


@dataclass(frozen=True, slots=True)
class CorporateNumber(_Code):
    """A validated 法人番号 (13 digits, check digit first)."""

    _problem = staticmethod(corporate_number_problem)
