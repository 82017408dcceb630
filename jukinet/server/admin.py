"""Administration RPCs at every node.

``GetStatus`` (counts, links, inbound progress) serves monitoring: a terminal certificate of the node's
site suffices. ``ListProvisions`` shows whose data went to whom: it needs an operator session with the
role 'answer-disclosure', and is audited. The outbox quarantine (items a destination refused for good)
needs the role 'manage-links'; retrying and dropping are audited in the transaction that does them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol

import lmdb

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.operators import Role
from jukinet.server.audit import Auditor
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import OperatorWithRole, TerminalOf
from jukinet.storage import NodeStorage
from jukinet.v1 import admin_pb2, admin_pb2_grpc, audit_pb2, directory_pb2

MAX_PROVISIONS_PER_PAGE = 1000


class Links(Protocol):
    """What administration needs of the node's links (jukinet.server.runtime.links.LinkSet)."""

    def statuses(self) -> list[admin_pb2.LinkStatus]: ...

    def wake(self, destination: str) -> None: ...


class NodeAdminRpc(admin_pb2_grpc.NodeAdminServiceServicer):
    def __init__(
        self,
        node_ids: Sequence[NodeId],
        storage: NodeStorage,
        links: Links,
        auditor: Auditor,
        blocking: Blocking,
        directory_status: Callable[[], directory_pb2.DirectoryStatus] | None = None,
    ) -> None:
        self._node_ids = tuple(node_ids)
        self._directory_status = directory_status
        self._storage = storage
        self._links = links
        self.auditor = auditor
        self.blocking = blocking
        self.terminals = TerminalOf.of_nodes(node_ids)
        self.disclosure = OperatorWithRole(self.terminals, Role.ANSWER_DISCLOSURE)
        self.link_managers = OperatorWithRole(self.terminals, Role.MANAGE_LINKS)

    @guarded("terminals")
    def GetStatus(self, request: admin_pb2.GetStatusRequest, caller: Caller) -> admin_pb2.GetStatusResponse:
        s = self._storage
        return admin_pb2.GetStatusResponse(
            node_ids=[str(n) for n in self._node_ids],
            records=s.records.count(),
            history_entries=s.history.count(),
            queued=s.queues.total_pending(),
            provisions=s.provisions.count(),
            links=self._links.statuses(),
            inbound=[
                admin_pb2.InboundProgress(sender=sender, destination=destination, last_sequence=mark)
                for sender, destination, mark in (s.inbox.all() if request.inbound else ())
            ],
            directory=self._directory_status() if self._directory_status else None,
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

    @guarded("link_managers")
    def ListQuarantine(
        self, request: admin_pb2.ListQuarantineRequest, caller: Caller
    ) -> admin_pb2.ListQuarantineResponse:
        items = self._storage.queues.quarantined(_destination(request.destination, optional=True))
        for item in items:
            item.ClearField("item")
        return admin_pb2.ListQuarantineResponse(items=items[:MAX_QUARANTINE_LISTED])

    @guarded("link_managers", audit=audit_pb2.AUDIT_ACTION_QUARANTINE_RETRY)
    def RetryQuarantined(
        self, request: admin_pb2.RetryQuarantinedRequest, caller: Caller
    ) -> admin_pb2.RetryQuarantinedResponse:
        destination = _destination(request.destination)

        def retry(txn: lmdb.Transaction) -> admin_pb2.RetryQuarantinedResponse:
            taken, positions = self._storage.queues.requeue(txn, destination, request.positions)
            detail = f"{_listed(taken)} back in the queue at #{positions.start}..{positions.stop - 1}"
            self.auditor.append(txn, audit_pb2.AUDIT_ACTION_QUARANTINE_RETRY, SUCCESS, caller, destination, detail)
            return admin_pb2.RetryQuarantinedResponse(items=len(taken), first_position=positions.start)

        response = self._storage.env.submit(retry).result()
        self._links.wake(destination)
        return response

    @guarded("link_managers", audit=audit_pb2.AUDIT_ACTION_QUARANTINE_DROP)
    def DropQuarantined(
        self, request: admin_pb2.DropQuarantinedRequest, caller: Caller
    ) -> admin_pb2.DropQuarantinedResponse:
        destination = _destination(request.destination)

        def drop(txn: lmdb.Transaction) -> admin_pb2.DropQuarantinedResponse:
            taken = self._storage.queues.take_quarantined(txn, destination, request.positions)
            digests = ", ".join(f"#{t.position} sha256:{hashlib.sha256(t.item).hexdigest()[:16]}" for t in taken[:50])
            detail = f"{_listed(taken)} given up ({digests})"
            self.auditor.append(txn, audit_pb2.AUDIT_ACTION_QUARANTINE_DROP, SUCCESS, caller, destination, detail)
            return admin_pb2.DropQuarantinedResponse(items=len(taken))

        return self._storage.env.submit(drop).result()


MAX_QUARANTINE_LISTED = 1000
SUCCESS = audit_pb2.AUDIT_OUTCOME_SUCCESS


def _destination(text: str, optional: bool = False) -> str:
    if not text and optional:
        return ""
    try:
        return str(NodeId.parse(text))
    except Rejected as exc:
        raise Rejected(Problem.INVALID, f"destination: {exc}") from None


def _listed(items: Sequence[admin_pb2.QuarantinedItem]) -> str:
    if not items:
        raise Rejected(Problem.NOT_FOUND, "nothing is in quarantine for that destination")
    return f"{len(items)} item(s) ({', '.join(f'#{t.position} {t.summary}' for t in items[:20])})"
