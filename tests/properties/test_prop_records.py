"""The record rules every tier applies (jukinet/domain/records.py, limits.py), as plain functions: a record
with one thing wrong is refused naming that field; hostile text is refused naming the character and its
position; valid records and text pass."""

from __future__ import annotations

from hostile_input import HOSTILE_CHARS, TEXT_FIELDS, broken_record, valid_record
from hypothesis import given
from hypothesis import strategies as st
from propcount import ran

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import TEXT_LIMITS, describe_char, text_problem
from jukinet.domain.records import require_valid, validate_record

FAMILY = "resident registry (rules)"


@given(valid_record(numbered=True))
def test_a_valid_record_passes(record) -> None:
    ran(FAMILY)
    assert validate_record(record) == []


@given(broken_record(numbered=True))
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


# Allowed characters, with the last one of each kana range (ゖ ゞ ヺ ヾ ﾟ) and marks after a letter.
NAME_OK = "亜イうAzé ゞヾ"
KANA_OK = "アいゖゞヺヾﾟｱ ー"


@given(
    field=st.sampled_from(TEXT_FIELDS),
    bad=st.sampled_from(HOSTILE_CHARS),
    data=st.data(),
)
def test_hostile_characters_are_named_with_their_position(field: str, bad: str, data) -> None:
    """The refusal names exactly the first character no repertoire allows, and where it is."""
    ran(FAMILY)
    alphabet = KANA_OK if field == "name.kana" else NAME_OK
    before = data.draw(st.text(alphabet, min_size=1, max_size=20))
    after = data.draw(st.text(alphabet, max_size=20))
    text = (before + bad + after)[: TEXT_LIMITS[field].max_chars]
    problem = text_problem(field, text)
    assert problem is not None, (field, text)
    position = text.index(bad) + 1
    assert problem == (
        f"{field}: character {position} ({describe_char(bad)}) is not allowed in "
        f"{TEXT_LIMITS[field].repertoire.value} text"
    ), (text, problem)


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
