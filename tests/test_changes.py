"""The change rules of jukinet.domain.changes: what a CS may record, and what the tiers above keep."""

from __future__ import annotations

import random

import pytest

from jukinet.domain.changes import local_change, replaces_current
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.synthetic import synthetic_resident
from jukinet.v1 import identity_pb2 as R

_rng = random.Random(77)


def _copy(record: R.IdentityRecord, **changes: object) -> R.IdentityRecord:
    out = R.IdentityRecord()
    out.CopyFrom(record)
    for name, value in changes.items():
        if name == "municipality_code":
            out.address.municipality_code = value  # type: ignore[assignment]
        else:
            setattr(out, name, value)
    return out


def test_creating_changes_need_no_active_record_and_set_status() -> None:
    birth = synthetic_resident(_rng, "131148", R.CHANGE_REASON_BIRTH, numbered=True)
    stored = local_change(None, birth, None)
    assert stored.status == R.RECORD_STATUS_ACTIVE
    with pytest.raises(Rejected, match="already has an active record") as exc:
        local_change(stored, _copy(stored, change_reason=R.CHANGE_REASON_MOVE_IN), None)
    assert exc.value.problem is Problem.ALREADY_EXISTS


def test_amending_changes_need_an_active_record() -> None:
    person = local_change(None, synthetic_resident(_rng, "131148", numbered=True), None)
    with pytest.raises(Rejected, match="has no record here") as exc:
        local_change(None, _copy(person, change_reason=R.CHANGE_REASON_RELOCATION), None)
    assert exc.value.problem is Problem.NOT_FOUND
    death = local_change(person, _copy(person, change_reason=R.CHANGE_REASON_DEATH), person.resident_code)
    assert death.status == R.RECORD_STATUS_REMOVED
    with pytest.raises(Rejected, match="removed record") as exc:
        local_change(death, _copy(person, change_reason=R.CHANGE_REASON_NAME_CHANGE), person.resident_code)
    assert exc.value.problem is Problem.CONFLICT
    back = local_change(death, _copy(person, change_reason=R.CHANGE_REASON_MOVE_IN), person.resident_code)
    assert back.status == R.RECORD_STATUS_ACTIVE  # a 除票 may be re-entered by a creating change


def test_a_birth_never_reuses_a_code_that_has_a_record() -> None:
    """A 出生 takes a new code: not one of a living resident, nor a dead one's (whose code and My Number would
    pass to somebody else)."""
    person = local_change(None, synthetic_resident(_rng, "131148", numbered=True), None)
    death = local_change(person, _copy(person, change_reason=R.CHANGE_REASON_DEATH), person.resident_code)
    newborn = synthetic_resident(_rng, "131148", R.CHANGE_REASON_BIRTH, numbered=False)
    for current in (person, death):
        reborn = _copy(newborn, resident_code=person.resident_code, my_number=person.my_number)
        with pytest.raises(Rejected, match="a 出生 takes a new code") as exc:
            local_change(current, reborn, person.resident_code)
        assert exc.value.problem is Problem.ALREADY_EXISTS


def test_a_my_number_belongs_to_one_resident() -> None:
    person = synthetic_resident(_rng, "131148", numbered=True)
    with pytest.raises(Rejected, match="already belongs to resident 12345678903") as exc:
        local_change(None, person, "12345678903")
    assert exc.value.problem is Problem.ALREADY_EXISTS
    assert local_change(None, person, person.resident_code) is person  # its own number


def test_a_late_removal_from_another_municipality_does_not_replace_the_current_record() -> None:
    moved_in = _copy(synthetic_resident(_rng, "131016", numbered=True), status=R.RECORD_STATUS_ACTIVE)
    late_move_out = _copy(moved_in, municipality_code="131148", change_reason=R.CHANGE_REASON_MOVE_OUT,
                          status=R.RECORD_STATUS_REMOVED)  # fmt: skip
    assert not replaces_current(moved_in, late_move_out)
    same_place_death = _copy(moved_in, change_reason=R.CHANGE_REASON_DEATH, status=R.RECORD_STATUS_REMOVED)
    assert replaces_current(moved_in, same_place_death)
    assert replaces_current(None, late_move_out)
    assert replaces_current(moved_in, _copy(moved_in, municipality_code="131148"))
