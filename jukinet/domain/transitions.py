"""Which changes a municipality may record, given the resident's current record there.

A change that creates a record (出生, 転入 …) needs no active record; one that amends or removes
(転居, 氏名変更, 転出, 死亡 …) needs an active one. A removed record (除票) is kept and may be
re-entered by a creating change (e.g. 転入 back into the municipality).
"""

from __future__ import annotations

from collections.abc import Callable

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

CheckTransition = Callable[[identity_pb2.IdentityRecord | None, identity_pb2.IdentityRecord], None]


class ChangeRejected(Exception):
    """A change that conflicts with the stored state; ``code`` names the kind of conflict."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # "already_exists" | "not_found" | "failed_precondition"


def check_local_transition(current: identity_pb2.IdentityRecord | None, new: identity_pb2.IdentityRecord) -> None:
    """Raise ChangeRejected if ``new`` may not follow ``current`` at the municipality."""
    reason = R.ChangeReason.Name(new.change_reason)
    active = current is not None and current.status == R.RECORD_STATUS_ACTIVE
    if new.change_reason in CREATING:
        if active:
            raise ChangeRejected(
                "already_exists",
                f"resident {new.resident_code} already has an active record here; {reason} creates one",
            )
        return
    if current is None:
        raise ChangeRejected("not_found", f"resident {new.resident_code} has no record here; {reason} needs one")
    if not active:
        raise ChangeRejected(
            "failed_precondition",
            f"resident {new.resident_code} has a removed record (除票) here; {reason} needs an active one",
        )
