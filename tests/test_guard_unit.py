"""The RPC edge (jukinet/server/runtime/guard.py) without a server: a guarded method runs its policy on
the caller the peer gate set, hands the body the request and the caller, maps a refusal to its status
once (audited first, unless the body audited it), and answers anything else with a bare INTERNAL.

The end-to-end tests exercise the same code inside node processes; mutation testing showed nothing in the
unit tests did, so a guard that skipped its policy or lost the request would have gone unnoticed here.
The gRPC context is a stand-in (unit test only).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
import pytest

from jukinet.domain.errors import Problem, Rejected
from jukinet.server.runtime import peers
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import AlreadyAudited, check_all_guarded, guarded
from jukinet.v1 import admin_pb2, admin_pb2_grpc


@dataclass
class Rule:
    """A policy whose answer the test sets; it records whom it was asked about."""

    denial: Rejected | None = None
    asked: list = field(default_factory=list)

    def deny(self, caller):
        self.asked.append(caller)
        return self.denial


class Context:
    """Records the status a call ends with (grpc.aio's abort raises; so does this one)."""

    def __init__(self) -> None:
        self.status: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata=()) -> None:
        self.status = (code, details)
        raise grpc.aio.AbortError()


class Auditor:
    def __init__(self) -> None:
        self.refusals: list[tuple[int, object, Rejected]] = []

    def refused(self, action: int, caller: object, exc: Rejected) -> None:
        self.refusals.append((action, caller, exc))


class Servicer(admin_pb2_grpc.NodeAdminServiceServicer):
    def __init__(self, rule: Rule, outcome: BaseException | None = None) -> None:
        self.rule = rule
        self.outcome = outcome
        self.blocking = Blocking(2)
        self.auditor = Auditor()
        self.seen: list[tuple[object, object]] = []

    @guarded("rule", audit=8)
    def GetStatus(self, request, caller):
        self.seen.append((request, caller))
        if self.outcome is not None:
            raise self.outcome
        return admin_pb2.GetStatusResponse(records=7)


CALLER = object()


def call(servicer: Servicer, request: object) -> tuple[object, Context]:
    async def run() -> tuple[object, Context]:
        peers._current.set(CALLER)  # what the peer gate does for every call
        context = Context()
        try:
            return await servicer.GetStatus(request, context), context
        except grpc.aio.AbortError:
            return None, context

    try:
        return asyncio.run(run())
    finally:
        servicer.blocking.shutdown()


def test_an_admitted_call_runs_the_body_with_the_request_and_the_caller() -> None:
    rule = Rule()
    servicer = Servicer(rule)
    request = admin_pb2.GetStatusRequest(inbound=True)
    response, context = call(servicer, request)
    assert response.records == 7 and context.status is None
    assert rule.asked == [CALLER] and servicer.seen == [(request, CALLER)]
    assert servicer.auditor.refusals == []


def test_a_denied_call_never_reaches_the_body_and_is_audited() -> None:
    denial = Rejected(Problem.DENIED, "terminal:131016:ops may not ask this node")
    servicer = Servicer(Rule(denial))
    response, context = call(servicer, admin_pb2.GetStatusRequest())
    assert response is None and servicer.seen == []
    assert context.status == (grpc.StatusCode.PERMISSION_DENIED, "terminal:131016:ops may not ask this node")
    assert servicer.auditor.refusals == [(8, CALLER, denial)]


@pytest.mark.parametrize(
    ("problem", "status"),
    [(Problem.INVALID, grpc.StatusCode.INVALID_ARGUMENT), (Problem.NOT_FOUND, grpc.StatusCode.NOT_FOUND),
     (Problem.EXHAUSTED, grpc.StatusCode.RESOURCE_EXHAUSTED)],
)  # fmt: skip
def test_a_refusal_of_the_body_gets_its_status_and_its_message(problem: Problem, status: grpc.StatusCode) -> None:
    refusal = Rejected(problem, "x" * 5000)
    servicer = Servicer(Rule(), refusal)
    _, context = call(servicer, admin_pb2.GetStatusRequest())
    assert context.status is not None and context.status[0] == status
    assert context.status[1].startswith("xxx") and len(context.status[1]) <= 1000  # cut: it may quote input
    assert servicer.auditor.refusals == [(8, CALLER, refusal)]


def test_a_refusal_the_body_audited_is_not_audited_twice() -> None:
    servicer = Servicer(Rule(), AlreadyAudited(Problem.UNAUTHENTICATED, "card signature does not verify"))
    _, context = call(servicer, admin_pb2.GetStatusRequest())
    assert context.status == (grpc.StatusCode.UNAUTHENTICATED, "card signature does not verify")
    assert servicer.auditor.refusals == []


def test_anything_else_is_a_bare_internal_error() -> None:
    servicer = Servicer(Rule(), KeyError("secret detail"))
    _, context = call(servicer, admin_pb2.GetStatusRequest())
    assert context.status is not None and context.status[0] == grpc.StatusCode.INTERNAL
    assert "secret" not in context.status[1]


def test_a_service_with_an_unguarded_rpc_is_broken() -> None:
    with pytest.raises(Rejected, match="ListProvisions has no access policy") as exc:
        check_all_guarded(Servicer(Rule()), admin_pb2.DESCRIPTOR.services_by_name["NodeAdminService"])
    assert exc.value.problem is Problem.BROKEN
