"""Which changes a node stores, given what it already holds: the rules every tier applies.

At the CS (:func:`local_change`): a change that creates a record (出生, 転入 …) needs no active
record; one that amends or removes (転居, 氏名変更, 転出, 死亡 …) needs an active one; a removed record
(除票) is kept and may be re-entered by a creating change (転入 back into the municipality); a My
Number belongs to one resident. The stored status follows from the reason.

At the tiers above (:func:`replaces_current`): a notice normally replaces the stored record, except a
removal from another municipality than the resident's current one (a late 転出 arriving after the
転入 elsewhere, a former owner's 職権消除), which is kept as history only whether the current record is
active or itself removed.

住民票コード変更 (:data:`CODE_CHANGE`, every tier): the record moves to a new code with every other item
unchanged (:func:`code_change_problem`); the old code's record ends as a removed record whose reason is the
change (:func:`ended_record`, :func:`ended_by_code_change`) and never changes again: no change, creating
or amending, may use the old code after it.
"""

from __future__ import annotations

from jukinet.domain.errors import FieldRejected, Problem
from jukinet.domain.records import CLOSING_REASON, reason_name, status_for
from jukinet.v1 import identity_pb2

R = identity_pb2
CREATING = frozenset(
    {
        R.CHANGE_REASON_BIRTH,
        R.CHANGE_REASON_MOVE_IN,
        R.CHANGE_REASON_SPECIAL_MOVE_IN,
        R.CHANGE_REASON_EX_OFFICIO_ENTRY,
    }
)

CODE_CHANGE = R.CHANGE_REASON_RESIDENT_CODE_CHANGE
"""住民票コード変更: the one change that moves a record to another code (ChangeNotice.former_resident_code)."""

__all__ = [
    "CODE_CHANGE",
    "CREATING",
    "code_change_problem",
    "ended_by_code_change",
    "ended_record",
    "local_change",
    "local_numbers",
    "replaces_current",
]


def local_change(
    current: identity_pb2.IdentityRecord | None,
    new: identity_pb2.IdentityRecord,
    my_number_holder: str | None,
) -> identity_pb2.IdentityRecord:
    """Check that ``new`` may follow ``current`` at the municipality; return it with its status set.

    ``my_number_holder`` is the resident code that holds ``new.my_number`` now (None if free).
    Raises FieldRejected (ALREADY_EXISTS, NOT_FOUND or CONFLICT) naming ``resident_code`` or ``my_number``.
    """
    reason = reason_name(new.change_reason)
    active = current is not None and current.status == R.RECORD_STATUS_ACTIVE
    if current is not None and ended_by_code_change(current):
        raise FieldRejected(
            Problem.CONFLICT,
            "resident_code",
            f"resident_code {new.resident_code} was replaced by a 住民票コード変更 and is never used again ({reason})",
        )
    if new.change_reason == CLOSING_REASON:
        if current is None or active or current.change_reason not in (R.CHANGE_REASON_MOVE_OUT, CLOSING_REASON):
            raise FieldRejected(
                Problem.CONFLICT,
                "resident_code",
                f"resident {new.resident_code} has no 除票 of a 転出 here; {reason} closes one",
            )
    elif new.change_reason == R.CHANGE_REASON_BIRTH and current is not None:
        raise FieldRejected(
            Problem.ALREADY_EXISTS,
            "resident_code",
            f"resident {new.resident_code} already has a record here; a 出生 takes a new code (leave it empty)",
        )
    elif new.change_reason in CREATING:
        if active:
            raise FieldRejected(
                Problem.ALREADY_EXISTS,
                "resident_code",
                f"resident {new.resident_code} already has an active record here; {reason} creates one",
            )
    elif current is None:
        raise FieldRejected(
            Problem.NOT_FOUND, "resident_code", f"resident {new.resident_code} has no record here; {reason} needs one"
        )
    elif not active:
        raise FieldRejected(
            Problem.CONFLICT,
            "resident_code",
            f"resident {new.resident_code} has a removed record (除票) here; {reason} needs an active one",
        )
    if my_number_holder is not None and my_number_holder != new.resident_code:
        raise FieldRejected(
            Problem.ALREADY_EXISTS,
            "my_number",
            f"my_number {new.my_number} already belongs to resident {my_number_holder}",
        )
    new.status = status_for(new.change_reason)
    return new


def local_numbers(
    current: identity_pb2.IdentityRecord | None,
    new: identity_pb2.IdentityRecord,
    designated: bool,
    assigned: str = "",
    granted: bool = False,
) -> None:
    """Where the numbers of a change at the CS come from: the national server, never the operator.

    A creating change takes a code that is an unused code designated to this CS (``designated``), or the
    code of a record this CS holds (re-entry), or one covered by a move-out grant (``granted``: checked by
    the moves code, not here). A My Number given on a creating change must be the one this CS knows for
    the code (its record's); an amending change keeps the stored number (an empty my_number means "keep
    it") — only 個人番号変更, which the CS obtains from the national server itself, changes it. Raises
    FieldRejected (DENIED) naming ``resident_code`` or ``my_number``.
    """
    code, number = new.resident_code, new.my_number  # ``assigned``: what the national server answered now
    if new.change_reason in CREATING and current is None and not designated and not granted:
        raise FieldRejected(
            Problem.DENIED,
            "resident_code",
            f"resident_code {code} is not an unused code designated to this CS; leave it empty and the CS "
            "takes one from its reserve",
        )
    known = current.my_number if current is not None else ""
    if number and number not in (known, assigned) and not granted:  # a move-in's number: the moves code checks it
        raise FieldRejected(
            Problem.DENIED,
            "my_number",
            f"my_number {number} is not the number the national server assigned to resident {code}; "
            "My Numbers are never entered by operators: leave it empty",
        )


def replaces_current(current: identity_pb2.IdentityRecord | None, incoming: identity_pb2.IdentityRecord) -> bool:
    """False for a removal from another municipality than the current record's — whatever the current
    record's status: a former owner's late 転出 arriving after the 転入 elsewhere, or its 職権消除 after the
    resident died or moved on, never makes it the owner again — and for anything about a code a
    住民票コード変更 ended (both kept as history only)."""
    if current is None:
        return True
    if ended_by_code_change(current):
        return False
    foreign = current.address.municipality_code != incoming.address.municipality_code
    return not (foreign and incoming.status == R.RECORD_STATUS_REMOVED)


def ended_by_code_change(record: identity_pb2.IdentityRecord) -> bool:
    """``record`` is the last record of a code a 住民票コード変更 replaced (it never changes again)."""
    return record.change_reason == CODE_CHANGE and record.status == R.RECORD_STATUS_REMOVED


_SAME_PERSON = ("name", "birth_date", "sex", "address")
"""The items a 住民票コード変更 carries over unchanged (a change of them is a change of its own)."""


def code_change_problem(
    former: identity_pb2.IdentityRecord | None, change: identity_pb2.IdentityRecord
) -> tuple[Problem, str, str] | None:
    """Why ``change`` (reason 住民票コード変更) may not replace the code of ``former``, the record held under
    the old code: (problem, field, message), or None. The old record must be active, and the change must
    repeat its name, birth date, sex and address (and its My Number, when it has one) unchanged."""
    code = former.resident_code if former is not None else "?"
    if former is None:
        return Problem.NOT_FOUND, "resident_code", "no record under this code; 住民票コード変更 needs an active one"
    if ended_by_code_change(former):
        return Problem.CONFLICT, "resident_code", f"resident_code {code} was replaced already (住民票コード変更)"
    if former.status != R.RECORD_STATUS_ACTIVE:
        return Problem.CONFLICT, "resident_code", f"resident {code} has a removed record (除票); no 住民票コード変更"
    for name in _SAME_PERSON:
        if getattr(former, name) != getattr(change, name):
            return (
                Problem.INVALID,
                name,
                (
                    f"a 住民票コード変更 changes only the code; {name} differs from resident {code}'s record "
                    "(record that change on its own)"
                ),
            )
    if former.my_number and change.my_number and change.my_number != former.my_number:
        return Problem.DENIED, "my_number", "a 住民票コード変更 keeps the resident's My Number"
    return None


def ended_record(
    former: identity_pb2.IdentityRecord, change: identity_pb2.IdentityRecord
) -> identity_pb2.IdentityRecord:
    """The old code's record as a 住民票コード変更 leaves it: kept, removed, the change's reason and date."""
    ended = identity_pb2.IdentityRecord()
    ended.CopyFrom(former)
    ended.change_reason = CODE_CHANGE
    ended.change_date.CopyFrom(change.change_date)
    ended.status = R.RECORD_STATUS_REMOVED
    return ended
