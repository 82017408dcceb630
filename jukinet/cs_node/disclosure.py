"""開示 at a CS: its own 広域交付 copy issuances disclosed with proofs (the same DisclosureService the national
server serves over its provision log, :mod:`jukinet.server.disclosure`), and the counter's way to the
national server's provisions of a resident.

- ``DisclosureService`` over the copy-issuance log: ``ListMine`` for a residents' portal, the resident's
  card deciding whose (a card this CS set up, with the certificate stored for it, that may be presented
  now); ``ListForResident`` for an operator of this CS's site with the role disclose-provisions.
- ``DisclosureCounterService.ListProvisionsForResident``: the operator at this CS's counter (session and
  role checked here) asks for a resident's provisions; the CS audits the request, then asks the national
  server as itself, naming the operator (the national server answers only for a resident this CS keeps or
  kept, and audits the CS and the operator). The national server's answer passes unchanged: the terminal
  verifies it against the national server's tree head, not this CS's word.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.clients.transport import Keepalive, channel_options
from jukinet.domain.disclosure import page_of, resident_code
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.operators import Role
from jukinet.pki.card_presence import CardPresenceVerifier
from jukinet.server.audit import Auditor
from jukinet.server.disclosure import Disclosure, DisclosureRpc, Policies
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import AnyOf, Kinds, OperatorWithRole, TerminalOf
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.v1 import audit_pb2, disclosure_pb2, disclosure_pb2_grpc

D = disclosure_pb2
NATIONAL_TIMEOUT_S = 10.0
_FROM_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: Problem.INVALID,
    grpc.StatusCode.UNAUTHENTICATED: Problem.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED: Problem.DENIED,
    grpc.StatusCode.NOT_FOUND: Problem.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION: Problem.CONFLICT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Problem.EXHAUSTED,
}
"""The national server's refusal, passed on to the terminal as the same status; anything else: UNAVAILABLE."""


def _no_operator_named(request: D.ListForResidentRequest) -> None:
    if request.operator_id:
        raise Rejected(Problem.INVALID, "operator_id: only a CS names the operator, to the national server")


class ProvisionCounter:
    """The counter's request for a resident's provisions, asked of the national server as this CS."""

    def __init__(
        self,
        node_id: NodeId,
        auditor: Auditor,
        blocking: Blocking,
        address: Callable[[NodeId], str],
        credentials: grpc.ChannelCredentials,
        keepalive: Keepalive,
    ) -> None:
        self.node_id = node_id
        self._auditor = auditor
        self._blocking = blocking
        self._address = address  # where a node listens (the network directory)
        self._credentials = credentials
        self._keepalive = keepalive

    async def ask(self, request: D.ListProvisionsForResidentRequest, caller: Caller) -> D.DisclosureAnswer:
        code = resident_code(request.resident_code)
        page_of(request.after_id, request.limit, request.known_tree_size)
        operator = caller.actor
        detail = f"asked national for the provisions of {code} after #{request.after_id} for {operator}"
        action, success = audit_pb2.AUDIT_ACTION_DISCLOSE, audit_pb2.AUDIT_OUTCOME_SUCCESS
        await self._blocking(self._auditor.record, action, success, caller, code, detail)
        national = NodeId.national()
        forwarded = D.ListForResidentRequest(
            resident_code=code,
            after_id=request.after_id,
            limit=request.limit,
            known_tree_size=request.known_tree_size,
            operator_id=operator,
        )
        address = self._address(national)
        options = channel_options(national, self._keepalive)
        try:
            async with grpc.aio.secure_channel(address, self._credentials, options=options) as channel:
                stub = disclosure_pb2_grpc.DisclosureServiceStub(channel)
                return (await stub.ListForResident(forwarded, timeout=NATIONAL_TIMEOUT_S)).answer
        except grpc.aio.AioRpcError as exc:
            problem = _FROM_STATUS.get(exc.code(), Problem.UNAVAILABLE)
            raise Rejected(problem, f"national refused: {exc.details()}") from None


class DisclosureCounterRpc(disclosure_pb2_grpc.DisclosureCounterServiceServicer):
    def __init__(self, counter: ProvisionCounter, auditor: Auditor, blocking: Blocking) -> None:
        self._counter = counter
        self.auditor = auditor
        self.blocking = blocking
        self.clerks = OperatorWithRole(TerminalOf.of_nodes([counter.node_id]), Role.DISCLOSE_PROVISIONS)

    @guarded("clerks", audit=audit_pb2.AUDIT_ACTION_DISCLOSE)
    async def ListProvisionsForResident(
        self, request: D.ListProvisionsForResidentRequest, context: grpc.aio.ServicerContext, caller: Caller
    ) -> D.ListProvisionsForResidentResponse:
        return D.ListProvisionsForResidentResponse(answer=await self._counter.ask(request, caller))


# -- the CS tier's builders (jukinet.server.assembly.TIERS) ---------------------------------------------


def disclosure_service(parts: NodeParts) -> ServiceBinding:
    """DisclosureService over this CS's copy-issuance log."""
    node_id = parts.config.node_id
    disclosure = Disclosure(
        node_id,
        parts.storage,
        parts.storage.copies,
        parts.auditor,
        parts.certificate.public_bytes(Encoding.DER),
        CardPresenceVerifier(parts.trust, parts.clock),
        parts.clock,
    )
    terminals = TerminalOf.of_nodes(parts.config.node_ids)
    portals = Kinds.of(NodeKind.PORTAL)

    def counter(request: D.ListForResidentRequest, caller: Caller) -> D.DisclosureAnswer:
        _no_operator_named(request)
        return disclosure.for_resident(request, caller, caller.actor)

    policies = Policies(
        tree_head=AnyOf((portals, terminals)),
        mine=portals,
        for_resident=OperatorWithRole(terminals, Role.DISCLOSE_PROVISIONS),
    )
    return bind(DisclosureRpc(disclosure, policies, parts.auditor, parts.blocking, counter))


def disclosure_counter_service(parts: NodeParts) -> ServiceBinding:
    """DisclosureCounterService: the counter's requests for a resident's provisions at the national server."""
    counter = ProvisionCounter(
        parts.config.node_id,
        parts.auditor,
        parts.blocking,
        parts.directory.address,
        parts.links.ctx.credentials,
        parts.config.keepalive,
    )
    return bind(DisclosureCounterRpc(counter, parts.auditor, parts.blocking))
