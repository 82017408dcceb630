"""How national numbers are made and who may use them: the rules, without I/O.

**住民票コード** are 10 random digits (the national server draws them with ``secrets``) and the check
digit of :func:`jukinet.domain.codes.resident_code_check_digit` (the one function for it); the national
server designates them to one CS each, in blocks, once ever.

**My Number** is computed from the 住民票コード by a keyed function inside the national token:
``HMAC-SHA256(key, 住民票コード ‖ 0x00 ‖ attempt)`` (:func:`mac_input`), whose first 16 bytes, read as an
integer modulo 10^11, give the 11-digit base, followed by the My Number check digit
(:func:`my_number_from_mac`). A base that collides with a number ever issued to another code (or is all
zeros) moves to the next attempt; the national store keeps code → number and number → code, so the same
code always gets the same number and no number is issued twice.

**住民票コード変更** takes a code the national server designates for that one change (its CodeBlock names
the code it replaces); the old code stays in the history and is never designated or used again.

**Ownership** (:func:`notice_problem`), applied by the prefecture and the national server to every change
notice, with what each tier knows: a record is owned by the municipality of its current record. A CS may
create a record only with a code designated to it (or re-enter its own removed record, or take over
another municipality's resident by a 転入 / 特例転入 carrying a verified MoveOutGrant that this tier finds
unused, within its window, and issued by the CS whose 転出 除票 it holds — :func:`_grant_problem`),
change only its own current residents (a removal of a resident it owned before is kept as history only,
never as the current record, whatever that record's status), never blank a stored My Number, and use a
My Number only if it is the one assigned to that code (the national server knows it; a prefecture knows
which resident holds a number in its store).
"""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass

from jukinet.domain.changes import CODE_CHANGE, code_change_problem, ended_by_code_change
from jukinet.domain.codes import my_number_check_digit, resident_code_check_digit
from jukinet.domain.errors import Problem
from jukinet.domain.moves import AFTER_PLANNED_DAYS, BEFORE_PLANNED_DAYS
from jukinet.domain.records import CLOSING_REASON, reason_name
from jukinet.v1 import identity_pb2

R = identity_pb2

__all__ = [
    "CODE_SPACE",
    "MAX_CODES_PER_BLOCK",
    "MAX_MY_NUMBER_ATTEMPTS",
    "MAX_NUMBERS_PER_REQUEST",
    "MAX_REQUEST_ID_CHARS",
    "NUMBER_REASONS",
    "GrantFacts",
    "NoticeFacts",
    "mac_input",
    "may_number",
    "my_number_from_mac",
    "notice_problem",
    "resident_code_from_random",
]

CODE_SPACE = 10**10
"""Random 住民票コード bases are drawn below this (10 digits)."""
_NUMBER_SPACE = 10**11
MAX_CODES_PER_BLOCK = 1000
"""DesignateCodes: codes per block (a CS's reserve is refilled a block at a time)."""
MAX_NUMBERS_PER_REQUEST = 1000
"""AssignMyNumbers: codes per request (one call per 1,000-row chunk of a bulk registration)."""
MAX_REQUEST_ID_CHARS = 64
MAX_MY_NUMBER_ATTEMPTS = 64
"""Attempts per code before the national server gives up (a collision is ~1 in 10^11 / issued: 64 in a
row means the key or the store is broken, not bad luck)."""
NUMBER_REASONS = frozenset({R.CHANGE_REASON_MY_NUMBER_DESIGNATION, R.CHANGE_REASON_MY_NUMBER_CHANGE})
"""Changes the CS records itself, with the number the national server answered (never an operator)."""
_ATTEMPT = struct.Struct(">I")
_NUMBER_CHANGE = frozenset({R.CHANGE_REASON_MY_NUMBER_CHANGE})
_MOVE_IN = frozenset({R.CHANGE_REASON_MOVE_IN, R.CHANGE_REASON_SPECIAL_MOVE_IN})
"""The changes a MoveOutGrant covers (the destination's 転入 / 特例転入 of the granted residents)."""
_MOVED_OUT = frozenset({R.CHANGE_REASON_MOVE_OUT, CLOSING_REASON})


def resident_code_from_random(value: int) -> str | None:
    """The 住民票コード whose base is ``value`` (0 <= value < 10^10), or None for the all-zero base."""
    if not 0 < value < CODE_SPACE:
        return None
    base = f"{value:010d}"
    return base + str(resident_code_check_digit(base))


def mac_input(resident_code: str, attempt: int) -> bytes:
    """What the national token's HMAC key signs for ``attempt`` (from 0) at a code."""
    return resident_code.encode("ascii") + b"\x00" + _ATTEMPT.pack(attempt)


def my_number_from_mac(mac: bytes) -> str | None:
    """The My Number an HMAC output maps to, or None (all-zero base: take the next attempt)."""
    if len(mac) < 16:
        raise ValueError(f"an HMAC-SHA256 output has 32 bytes, got {len(mac)}")
    value = int.from_bytes(mac[:16], "big") % _NUMBER_SPACE
    if value == 0:
        return None
    base = f"{value:011d}"
    return base + str(my_number_check_digit(base))


@dataclass(frozen=True)
class GrantFacts:
    """The MoveOutGrant a notice carries, verified end to end (signed by its origin CS's node certificate,
    origin != destination, addressed to the notice's origin, naming the notice's resident:
    :func:`jukinet.server.grants.open_grant`), with what this tier knows about it.

    ``origin``: the CS that granted the move. ``planned_date``: its 転出予定日. ``judged_here``: this tier
    sees the origin's notices (the national server: always; a prefecture: for a CS it hosts) — a prefecture
    cannot judge a grant from another prefecture's CS and leaves it to the national server. ``used``: a
    notice stored here for this resident already carried this grant (grant ids are unique per origin).
    ``move_out_seen``: this tier stored the origin's 転出 of this resident with the grant's planned date.
    """

    grant_id: str
    origin: str
    planned_date: datetime.date
    judged_here: bool = True
    used: bool = False
    move_out_seen: bool = False


@dataclass(frozen=True)
class NoticeFacts:
    """What a tier knows about one notice's resident when it applies the notice (read in the transaction).

    ``designated_to``: the CS the code was designated to (None: not known here). ``grant``: the notice's
    verified MoveOutGrant and what this tier knows about it (:class:`GrantFacts`; None: no grant).
    ``former_owner``: the origin recorded this resident
    before (a late removal after the resident moved on). ``number_holder``: the code that holds the
    notice's My Number in this tier's store (None: free). ``assigned_number``: the number the national
    server assigned to the code (None where not known: at the prefecture). ``number_retired``: the
    notice's My Number was retired by a 個人番号変更 (the national server's register; a prefecture learns it
    from the 個人番号変更 notice). ``replaces``: the code this code was designated to replace by a
    住民票コード変更 (None: an ordinary designation). For a 住民票コード変更 notice, ``former_code`` is its
    ChangeNotice.former_resident_code and ``former`` this tier's record under it.
    """

    current: identity_pb2.IdentityRecord | None
    designated_to: str | None
    grant: GrantFacts | None = None
    former_owner: bool = False
    number_holder: str | None = None
    assigned_number: str | None = None
    number_retired: bool = False
    replaces: str | None = None
    former_code: str = ""
    former: identity_pb2.IdentityRecord | None = None


def _owner(record: identity_pb2.IdentityRecord) -> str:
    return f"cs:{record.address.municipality_code}"


def may_number(cs: str, designated_to: str | None, current: identity_pb2.IdentityRecord | None) -> str | None:
    """Why ``cs`` may not have numbers issued for a code (a message), or None: the code must be its
    resident's — owned by it (the current record is of its municipality) or, before any record reached the
    national server, designated to it."""
    if current is not None:
        if _owner(current) != cs:
            return f"{cs} does not own resident {current.resident_code}"
        return None
    if designated_to != cs:
        return f"{cs} may not have numbers issued for a code not designated to it"
    return None


def notice_problem(origin: str, record: identity_pb2.IdentityRecord, facts: NoticeFacts) -> tuple[Problem, str] | None:
    """Why ``origin`` may not send this change of ``record`` (DENIED and a message), or None.

    Checks, in order: a 住民票コード変更 by its own rules (:func:`_code_change_problem`); a code a
    住民票コード変更 replaced is never used again (a late removal by a former owner stays history only), and
    a code designated for a 住民票コード変更 serves only that change; a 出生 only for a code with no record
    here (whoever holds it: a birth never re-enters nor amends a resident); (1) ownership of the code — the
    current owner; else, for a removal, a former owner (kept as history only, whatever the current
    record's status); else a grant that covers the change (:func:`_grant_problem`); else, for a code with
    no record, a designation to the origin; (2) the My Number — never blanked by a notice that becomes the
    current record, held by no other resident, never retired, the one assigned to this code, and changed
    only by a 個人番号変更 or first set by a 個人番号指定. A notice that
    repeats the number this tier holds for the code is not a number change: a CS's changes recorded before
    a 個人番号変更 may arrive after the national server retired the number, before that change's notice.
    """
    code, current = record.resident_code, facts.current
    reason = reason_name(record.change_reason)
    if record.change_reason == CODE_CHANGE:
        return _code_change_problem(origin, record, facts)
    if current is not None and ended_by_code_change(current):
        late_removal = record.status == R.RECORD_STATUS_REMOVED and facts.former_owner and _owner(current) != origin
        if late_removal:
            return None  # history only (jukinet.domain.changes.replaces_current)
        return Problem.DENIED, (
            f"{origin} may not change resident {code} ({reason}): the code was replaced by a 住民票コード変更 "
            "and is never used again"
        )
    if current is None and facts.replaces is not None:
        return Problem.DENIED, (
            f"{origin} may not create resident {code} ({reason}): the code was designated to replace "
            f"{facts.replaces} (住民票コード変更) and serves only that change"
        )
    if record.change_reason == R.CHANGE_REASON_BIRTH and current is not None:
        return Problem.DENIED, (
            f"{origin} may not record a 出生 for resident {code}: the code already has a record here "
            f"({reason_name(current.change_reason)}, {_owner(current)}); a 出生 takes a new, unused code"
        )
    owned = current is not None and _owner(current) == origin
    removal = record.status == R.RECORD_STATUS_REMOVED
    if not owned:
        if current is not None and removal:
            if not facts.former_owner:
                return Problem.DENIED, (
                    f"{origin} may not remove resident {code} ({reason}): the resident is owned by "
                    f"{_owner(current)}, and {origin} never recorded it"
                )
            # a former owner's late removal: history only (jukinet.domain.changes.replaces_current)
        elif facts.grant is not None:
            found = _grant_problem(origin, record, facts, facts.grant)
            if found is not None:
                return Problem.DENIED, found
        elif current is None:
            if facts.designated_to != origin:
                where = f"designated to {facts.designated_to}" if facts.designated_to else "not designated to it"
                return Problem.DENIED, f"{origin} may not create resident {code} ({reason}): the code is {where}"
        else:
            return Problem.DENIED, (
                f"{origin} may not change resident {code} ({reason}): the resident is owned by "
                f"{_owner(current)}, and the notice carries no move-out grant for it"
            )
    number = record.my_number
    if not number:
        if current is not None and current.my_number and (owned or not removal):  # a history-only removal aside
            return Problem.DENIED, f"resident {code} has My Number; a change may not remove it ({reason})"
        return None
    if facts.number_holder is not None and facts.number_holder != code:
        return Problem.DENIED, f"{origin} may not give resident {code} the My Number of another resident"
    kept = current is not None and current.my_number == number  # the number this tier holds for the code
    if facts.number_retired and not kept:
        return Problem.DENIED, f"{origin} may not give resident {code} a My Number retired by a 個人番号変更"
    if facts.assigned_number is not None and facts.assigned_number != number and not kept:
        return Problem.DENIED, f"the My Number of resident {code} is not the one the national server assigned"
    changed = current is not None and current.my_number and current.my_number != number
    if facts.assigned_number is None and owned and changed and record.change_reason not in _NUMBER_CHANGE:
        return Problem.DENIED, f"only a 個人番号変更 changes the My Number of resident {code}, not {reason}"
    return None


def _grant_problem(
    origin: str, record: identity_pb2.IdentityRecord, facts: NoticeFacts, grant: GrantFacts
) -> str | None:
    """Why ``grant`` does not let ``origin`` take over ``record``'s resident here (a message), or None.

    A grant covers only a 転入 / 特例転入, once per resident, dated within the legal window around its
    planned date (BEFORE_PLANNED_DAYS before .. AFTER_PLANNED_DAYS after). Where this tier sees the grant
    origin's notices, the current record must be the origin's: its 転出 除票 with the grant's planned date,
    its 転入通知受理 after that 転出, or its still-active record while that 転出 has not arrived here
    (notices of two CSes travel on separate links) — never a code without a record (a grant never stands
    in for a designation) and never a record the origin re-entered after the 転出. A prefecture that does
    not see the origin (another prefecture's CS) accepts it only over no record of its own or a 転出 /
    転入通知受理 除票 and leaves the owner check to the national server.
    """
    code, current = record.resident_code, facts.current
    what = f"{origin} may not take over resident {code} ({reason_name(record.change_reason)}) by grant {grant.grant_id}"
    if record.change_reason not in _MOVE_IN:
        return f"{what}: a move-out grant covers only a 転入 or 特例転入"
    if grant.used:
        return f"{what}: the grant was used for this resident already"
    moved = _day(record.change_date)
    after = (moved - grant.planned_date).days
    if after > AFTER_PLANNED_DAYS or -after > BEFORE_PLANNED_DAYS:
        return (
            f"{what}: moved in on {moved.isoformat()}, outside the window of the planned move-out date "
            f"{grant.planned_date.isoformat()} ({BEFORE_PLANNED_DAYS} days before .. {AFTER_PLANNED_DAYS} after)"
        )
    if not grant.judged_here:
        if current is None:
            if facts.designated_to is not None:
                return f"{what}: the code is designated to {facts.designated_to} and was never used"
            return None
        if current.status == R.RECORD_STATUS_REMOVED and current.change_reason in _MOVED_OUT:
            return None
        return f"{what}: the resident is {_owner(current)}'s and did not move out of it"
    if current is None:
        return f"{what}: there is no record of resident {code} here (a grant never stands in for a designation)"
    if _owner(current) != grant.origin:
        return f"{what}: the resident is owned by {_owner(current)}, not by the grant's origin {grant.origin}"
    if current.status == R.RECORD_STATUS_ACTIVE:
        if grant.move_out_seen:
            return f"{what}: {grant.origin} recorded the resident again after that 転出"
        return None
    move_out = current.change_reason == R.CHANGE_REASON_MOVE_OUT and _day(current.change_date) == grant.planned_date
    if move_out or (current.change_reason == CLOSING_REASON and grant.move_out_seen):
        return None
    return f"{what}: {grant.origin}'s current record of the resident is not its 転出 除票 for this grant"


def _day(date: identity_pb2.Date) -> datetime.date:
    return datetime.date(date.year, date.month, date.day)  # a notice's dates are validated before the transaction


def _code_change_problem(
    origin: str, record: identity_pb2.IdentityRecord, facts: NoticeFacts
) -> tuple[Problem, str] | None:
    """A 住民票コード変更 notice (record under the new code, ``facts.former_code`` the old one): the origin
    owns the old code's active record; the new code is unused, designated to the origin to replace exactly
    that code; every other item, the My Number included, carries over."""
    code, old, former = record.resident_code, facts.former_code, facts.former
    what = f"{origin} may not replace resident code {old or '(none)'} by {code}"
    if not old or old == code:
        return Problem.INVALID, f"{what}: a 住民票コード変更 names the former code, which differs from the new one"
    if former is None:
        return Problem.DENIED, f"{what}: there is no resident {old} here"
    if ended_by_code_change(former):
        return Problem.DENIED, f"{what}: {old} was replaced already and is never used again"
    if _owner(former) != origin:
        return Problem.DENIED, f"{what}: the resident is owned by {_owner(former)}"
    if former.status != R.RECORD_STATUS_ACTIVE:
        return Problem.DENIED, f"{what}: the resident's record is removed (除票)"
    if facts.current is not None:
        return Problem.DENIED, f"{what}: code {code} is in use already"
    if facts.designated_to != origin or facts.replaces != old:
        return Problem.DENIED, f"{what}: the national server did not designate {code} to {origin} to replace {old}"
    found = code_change_problem(former, record)  # INVALID (another item changed) or DENIED (the number)
    if found is not None:
        return found[0], f"{what}: {found[2]}"
    number = record.my_number
    if former.my_number and number != former.my_number:
        return Problem.DENIED, f"{what}: a 住民票コード変更 keeps the My Number"
    if number and not former.my_number:  # first numbered with the change (the national server's answer)
        if facts.number_holder not in (None, old, code) or facts.number_retired:
            return Problem.DENIED, f"{what}: the My Number is another resident's"
        if facts.assigned_number is not None and facts.assigned_number != number:
            return Problem.DENIED, f"{what}: the My Number is not the one the national server assigned"
    return None
