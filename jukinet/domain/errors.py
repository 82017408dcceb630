"""The one error root of JukiNet: every refusal names a :class:`Problem` and says, in words, what was wrong.

Code below the RPC edge raises :class:`Rejected` (or a subclass that carries extra data); it never
knows about gRPC. The edge (``jukinet.server.runtime.status``) maps each problem to a gRPC status in
one table, so a new kind of refusal is a new member here and one row there, not a new exception class
and a new ``except`` clause in every caller. Callers that must tell refusals apart branch on
``problem`` (or on a subclass's attribute), never on message text.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["FieldRejected", "ItemRefused", "Problem", "Rejected"]


class Problem(Enum):
    """What kind of thing went wrong; closed: the edge maps each member to exactly one status."""

    INVALID = "invalid"  # malformed or out-of-range input
    UNAUTHENTICATED = "unauthenticated"  # who is asking could not be established (certificate, session, PIN, card)
    DENIED = "denied"  # who is asking is known but may not do this
    NOT_FOUND = "not found"  # the thing asked about does not exist here
    ALREADY_EXISTS = "already exists"  # creating something that exists
    CONFLICT = "conflict"  # the request contradicts the stored state (a removed record, a locked operator)
    OUT_OF_ORDER = "out of order"  # a sequence skipped ahead: something before it was lost or withheld
    EXHAUSTED = "exhausted"  # a bound was reached (too large, too many at once)
    UNAVAILABLE = "unavailable"  # a dependency (token, peer, storage) cannot serve right now
    BROKEN = "broken"  # an invariant of stored data or configuration does not hold


class Rejected(Exception):
    """A refusal with its :class:`Problem` and a human diagnostic (the message)."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem = problem

    @property
    def message(self) -> str:
        return str(self)

    def __reduce__(self) -> tuple[object, ...]:  # survives pickling across processes with its problem
        return _rebuild, (type(self), self.problem, str(self), self.__dict__)


class FieldRejected(Rejected):
    """A refusal about one field of a record; ``field`` names it as the wire contract does (``my_number``),
    so that a per-row report can say which field without reading the message."""

    def __init__(self, problem: Problem, field: str, message: str) -> None:
        super().__init__(problem, message)
        self.field = field


class ItemRefused(Rejected):
    """One item of a batch refused for good, at queue ``position``: its sender sets it aside (quarantine)
    and carries on with the rest, rather than retrying the batch forever."""

    def __init__(self, problem: Problem, message: str, position: int) -> None:
        super().__init__(problem, message)
        self.position = position


def _rebuild(cls: type[Rejected], problem: Problem, message: str, state: dict) -> Rejected:
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    exc.problem = problem
    return exc
