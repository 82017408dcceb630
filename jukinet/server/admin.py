"""Read-only administration RPCs at every node.

``GetStatus`` (counts, links, inbound progress) serves monitoring: a terminal certificate of the node's
site suffices. ``ListProvisions`` shows whose data went to whom: it needs an operator session with the
role 'answer-disclosure', and is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.operators import Role
from jukinet.server.audit import Auditor
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import OperatorWithRole, TerminalOf
from jukinet.storage import NodeStorage
from jukinet.v1 import admin_pb2, admin_pb2_grpc, audit_pb2

MAX_PROVISIONS_PER_PAGE = 1000


class NodeAdminRpc(admin_pb2_grpc.NodeAdminServiceServicer):
    def __init__(
        self,
        node_ids: Sequence[NodeId],
        storage: NodeStorage,
        links: Callable[[], list[admin_pb2.LinkStatus]],
        auditor: Auditor,
        blocking: Blocking,
    ) -> None:
        self._node_ids = tuple(node_ids)
        self._storage = storage
        self._links = links
        self.auditor = auditor
        self.blocking = blocking
        self.terminals = TerminalOf.of_nodes(node_ids)
        self.disclosure = OperatorWithRole(self.terminals, Role.ANSWER_DISCLOSURE)

    @guarded("terminals")
    def GetStatus(self, request: admin_pb2.GetStatusRequest, caller: Caller) -> admin_pb2.GetStatusResponse:
        s = self._storage
        return admin_pb2.GetStatusResponse(
            node_ids=[str(n) for n in self._node_ids],
            records=s.records.count(),
            history_entries=s.history.count(),
            queued=s.queues.total_pending(),
            provisions=s.provisions.count(),
            links=self._links(),
            inbound=[
                admin_pb2.InboundProgress(sender=sender, destination=destination, last_sequence=mark)
                for sender, destination, mark in (s.inbox.all() if request.inbound else ())
            ],
        )

    @guarded("disclosure", audit=audit_pb2.AUDIT_ACTION_LIST_PROVISIONS)
    def ListProvisions(
        self, request: admin_pb2.ListProvisionsRequest, caller: Caller
    ) -> admin_pb2.ListProvisionsResponse:
        limit = request.limit or 100
        if limit > MAX_PROVISIONS_PER_PAGE:
            raise Rejected(Problem.INVALID, f"limit {limit} is over {MAX_PROVISIONS_PER_PAGE}")
        entries = self._storage.provisions.page(request.after_id, limit)
        detail = f"{len(entries)} entries after #{request.after_id}"
        self.auditor.record(audit_pb2.AUDIT_ACTION_LIST_PROVISIONS, audit_pb2.AUDIT_OUTCOME_SUCCESS, caller, "", detail)
        return admin_pb2.ListProvisionsResponse(entries=entries)
