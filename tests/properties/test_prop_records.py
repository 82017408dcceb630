"""The record rules every tier applies (jukinet/domain/records.py, limits.py), as plain functions: a record
with one thing wrong is refused naming that field; hostile text is refused naming the character and its
position; valid records and text pass."""

from __future__ import annotations

from hostile_input import HOSTILE_CHARS, TEXT_FIELDS, broken_record, valid_record
from hypothesis import given
from hypothesis import strategies as st
from propcount import ran

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import TEXT_LIMITS, text_problem
from jukinet.domain.records import require_valid, validate_record

FAMILY = "resident registry (rules)"


@given(valid_record())
def test_a_valid_record_passes(record) -> None:
    ran(FAMILY)
    assert validate_record(record) == []


@given(broken_record())
def test_a_record_with_one_fault_is_refused_naming_the_field(case) -> None:
    ran(FAMILY)
    field, record = case
    problems = validate_record(record)
    assert problems, f"{field} was accepted: {record}"
    prefixes = ("birth_date", "change_date") if field == "date" else (field,)
    assert any(p.startswith(prefixes) for p in problems), (field, problems)
    try:
        require_valid(record)
    except Rejected as exc:
        assert exc.problem is Problem.INVALID
        assert str(exc).startswith("invalid identity record: ")
    else:
        raise AssertionError("require_valid accepted what validate_record refused")


@given(
    field=st.sampled_from(TEXT_FIELDS),
    bad=st.sampled_from(HOSTILE_CHARS),
    before=st.text("亜イうAz ", max_size=20),
    after=st.text("亜イうAz", max_size=20),
)
def test_hostile_characters_are_named_with_their_position(field: str, bad: str, before: str, after: str) -> None:
    ran(FAMILY)
    if field == "name.kana":
        before, after = (
            before.translate(str.maketrans("亜うAz", "アウアウ")),
            after.translate(str.maketrans("亜うAz", "アウアウ")),
        )
    text = (before + bad + after)[: TEXT_LIMITS[field].max_chars]
    if bad not in text:
        return
    problem = text_problem(field, text)
    assert problem is not None, (field, text)
    assert problem.startswith(f"{field}: ")
    if " characters, at most " not in problem:
        position = text.index(bad) + 1
        first_bad = next(i for i, ch in enumerate(text, 1) if f"character {i} " in problem)
        assert first_bad <= position
        assert f"U+{ord(text[first_bad - 1]):04X}" in problem


@given(field=st.sampled_from(TEXT_FIELDS), text=st.text(max_size=400))
def test_any_text_is_either_accepted_or_refused_with_a_reason(field: str, text: str) -> None:
    """No input makes the check raise, and what it accepts is within the field's length and repertoire."""
    ran(FAMILY)
    problem = text_problem(field, text)
    if problem is None:
        assert len(text) <= TEXT_LIMITS[field].max_chars
        assert not any(ch in HOSTILE_CHARS for ch in text), text
    else:
        assert problem.startswith(f"{field}: ")
