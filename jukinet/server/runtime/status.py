"""The one table from :class:`~jukinet.domain.errors.Problem` to gRPC status, used at the RPC edge only."""

from __future__ import annotations

import grpc

from jukinet.domain.errors import ItemRefused, Problem, Rejected

STATUS: dict[Problem, grpc.StatusCode] = {
    Problem.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Problem.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Problem.DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Problem.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Problem.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    Problem.CONFLICT: grpc.StatusCode.FAILED_PRECONDITION,
    Problem.OUT_OF_ORDER: grpc.StatusCode.FAILED_PRECONDITION,
    Problem.EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Problem.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Problem.BROKEN: grpc.StatusCode.INTERNAL,
}
assert set(STATUS) == set(Problem), "every problem needs a status"

DENIALS = frozenset({Problem.UNAUTHENTICATED, Problem.DENIED})
"""Problems that say who the caller is or may do (audited as DENIED rather than FAILED)."""


def status_of(exc: Rejected) -> grpc.StatusCode:
    return STATUS[exc.problem]


MAX_STATUS_MESSAGE = 1000
"""Characters of a refusal's message sent to the caller (it may quote the caller's own input)."""

REFUSED_ITEM_KEY = "jukinet-refused-item"
"""Trailing metadata naming the queue position of an item refused for good (:class:`ItemRefused`)."""


async def abort(context: grpc.aio.ServicerContext, exc: Rejected) -> None:
    """End the call with the status for ``exc`` and its message (raises, as context.abort does)."""
    trailing: tuple[tuple[str, str], ...] = ()
    if isinstance(exc, ItemRefused):
        trailing = ((REFUSED_ITEM_KEY, str(exc.position)),)
    await context.abort(STATUS[exc.problem], bounded(str(exc)), trailing)


def bounded(message: str) -> str:
    """At most MAX_STATUS_MESSAGE characters: a status travels in a header, which peers cap at 16 KiB."""
    if len(message) <= MAX_STATUS_MESSAGE:
        return message
    return f"{message[: MAX_STATUS_MESSAGE - 40]}… ({len(message)} characters in all)"
