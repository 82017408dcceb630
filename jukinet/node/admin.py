"""Read-only administration RPCs at every node.

``GetStatus`` (counts only) serves monitoring: a terminal certificate of the node's site suffices.
``ListProvisions`` shows whose data went to whom: it needs an operator session with the role
'answer-disclosure', and is audited.
"""

from __future__ import annotations

import grpc

from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.node.audit import Auditor
from jukinet.node.security import AnyOf, Caller, OperatorWithRole, PeerAuthenticator, guarded
from jukinet.storage.node_store import NodeStore
from jukinet.v1 import admin_pb2, admin_pb2_grpc, audit_pb2


def site_of(node_id: NodeId) -> str:
    """The terminal site name of a node: municipality code, prefecture code, or "national"."""
    return node_id.code if node_id.kind is not NodeKind.NATIONAL else "national"


class NodeAdminService(admin_pb2_grpc.NodeAdminServiceServicer):
    def __init__(
        self, node_ids: tuple[NodeId, ...], authenticator: PeerAuthenticator, store: NodeStore, auditor: Auditor
    ) -> None:
        self.node_ids = node_ids
        self.authenticator = authenticator
        self.auditor = auditor
        sites = {site_of(n) for n in node_ids}
        self.terminals = AnyOf({NodeKind.TERMINAL}, terminal_sites=sites)
        self.disclosure = OperatorWithRole("answer-disclosure", sites)
        self._store = store

    @guarded("terminals")
    def GetStatus(
        self, request: admin_pb2.GetStatusRequest, context: grpc.ServicerContext, caller: Caller
    ) -> admin_pb2.GetStatusResponse:
        counts = self._store.counts()
        return admin_pb2.GetStatusResponse(
            node_id=",".join(str(n) for n in self.node_ids),
            records=counts["records"],
            history_entries=counts["history"],
            outbox_pending=counts["outbox"],
            provisions=counts["provisions"],
            origins=[
                admin_pb2.OriginProgress(origin=o, last_sequence=s) for o, s in self._store.origin_marks().items()
            ],
        )

    @guarded("disclosure", audit=audit_pb2.AUDIT_ACTION_LIST_PROVISIONS)
    def ListProvisions(
        self, request: admin_pb2.ListProvisionsRequest, context: grpc.ServicerContext, caller: Caller
    ) -> admin_pb2.ListProvisionsResponse:
        limit = request.limit or 100
        if limit > 1000:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"limit {limit} is over 1000")
        entries = self._store.provisions(request.after_id, limit)
        detail = f"{len(entries)} entries after #{request.after_id}"
        self.auditor.record(audit_pb2.AUDIT_ACTION_LIST_PROVISIONS, audit_pb2.AUDIT_OUTCOME_SUCCESS, caller, "", detail)
        return admin_pb2.ListProvisionsResponse(entries=entries)
