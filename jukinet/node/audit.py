"""Writing the audit log, signing its tree heads, and serving proofs to auditors.

Every operator action and login attempt becomes one ``AuditEntry`` leaf. A successful action's
entry commits in the same transaction as the action; a refusal's entry commits (group commit)
before the refusal is answered. Tree heads are signed by the node's token key in the background,
at most once per ``interval`` and only when the log has grown, so the token cost does not grow with
the number of entries.
"""

from __future__ import annotations

import logging
import threading

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.domain.node_ids import NodeKind
from jukinet.hsm import TokenSigner
from jukinet.node.security import AnyOf, Caller, PeerAuthenticator, guarded
from jukinet.pki import InvalidSignatureError, verify_ecdsa_raw
from jukinet.storage.audit_log import AuditLog
from jukinet.storage.node_store import NodeStore
from jukinet.v1 import audit_pb2, audit_pb2_grpc, notice_pb2

log = logging.getLogger(__name__)
_DENIED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
_ALGORITHM = notice_pb2.SIGNATURE_ALGORITHM_ECDSA_P256_SHA256
MAX_ENTRIES_PER_CALL = 1000


def audit_entry(action: int, outcome: int, actor: str, terminal: str, target: str = "", detail: str = "") -> bytes:
    entry = audit_pb2.AuditEntry(
        actor=actor, terminal=terminal, action=action, outcome=outcome, target=target, detail=detail
    )
    entry.time.GetCurrentTime()
    return entry.SerializeToString()


class Auditor:
    """Appends audit entries to the node's log."""

    def __init__(self, store: NodeStore) -> None:
        self._log: AuditLog = store.audit
        self._env = store.env

    def append(
        self, txn, action: int, outcome: int, actor: str, caller: Caller, target: str = "", detail: str = ""
    ) -> int:
        """Inside the action's own transaction."""
        return self._log.append(txn, audit_entry(action, outcome, actor, str(caller.primary), target, detail))

    def record(self, action: int, outcome: int, caller: Caller, target: str = "", detail: str = "") -> None:
        """In a transaction of its own (group commit); returns once durable."""
        self._commit(audit_entry(action, outcome, caller.actor, str(caller.primary), target, detail))

    def refused(self, action: int, who: str, terminal: str, status: grpc.StatusCode, message: str) -> None:
        outcome = audit_pb2.AUDIT_OUTCOME_DENIED if status in _DENIED else audit_pb2.AUDIT_OUTCOME_FAILED
        self._commit(audit_entry(action, outcome, who, terminal, "", f"{status.name}: {message}"))

    def _commit(self, leaf: bytes) -> None:
        self._env.submit(lambda txn: self._log.append(txn, leaf)).result()


def sign_tree_head(node_id: str, log_: AuditLog, signer: TokenSigner) -> audit_pb2.SignedTreeHead | None:
    """Sign the current tree head if the log grew since the last signed one; store and return it."""
    size = log_.size()
    latest = log_.latest_tree_head()
    if size == 0 or (latest is not None and latest[0] >= size):
        return None
    head = audit_pb2.TreeHead(node_id=node_id, tree_size=size, root_hash=log_.root(size))
    head.timestamp.GetCurrentTime()
    payload = head.SerializeToString()
    sth = audit_pb2.SignedTreeHead(
        tree_head=payload, signature=signer.sign(payload), algorithm=_ALGORITHM, key_id=signer.key_id
    )
    log_.put_tree_head(None, size, sth.SerializeToString())
    return sth


class TreeHeadSigner:
    """Background thread: signs a new tree head when the log has grown, at most once per interval."""

    def __init__(self, node_id: str, store: NodeStore, signer: TokenSigner, interval: float = 1.0) -> None:
        self._node_id = node_id
        self._log = store.audit
        self._signer = signer
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-heads", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def sign_now(self) -> None:
        sign_tree_head(self._node_id, self._log, self._signer)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sign_now()
            except Exception:  # keep signing later; the log itself is intact
                log.exception("signing the audit tree head failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sign_now()  # the final state is covered by a signed head


class TreeHeadProblem(Exception):
    pass


def check_tree_head(
    sth: audit_pb2.SignedTreeHead, certificate: x509.Certificate, node_id: str | None = None
) -> audit_pb2.TreeHead:
    """Verify a signed tree head against the node's signing certificate; returns the tree head."""
    try:
        verify_ecdsa_raw(certificate.public_key(), sth.tree_head, sth.signature)
    except InvalidSignatureError as exc:
        raise TreeHeadProblem(f"tree head signature does not verify: {exc}") from exc
    head = audit_pb2.TreeHead.FromString(sth.tree_head)
    if node_id is not None and head.node_id != node_id:
        raise TreeHeadProblem(f"tree head is for {head.node_id}, not {node_id}")
    return head


class AuditService(audit_pb2_grpc.AuditServiceServicer):
    """Read-only access for auditors: terminals of the node's site (machine auditors need no session)."""

    def __init__(
        self, sites: set[str], authenticator: PeerAuthenticator, store: NodeStore, signing_certificate: x509.Certificate
    ) -> None:
        self.authenticator = authenticator
        self.auditors = AnyOf({NodeKind.TERMINAL}, sites)
        self._log = store.audit
        self._certificate_der = signing_certificate.public_bytes(Encoding.DER)

    def _sizes(self, context: grpc.ServicerContext, *pairs: tuple[str, int, int]) -> None:
        for what, value, limit in pairs:
            if value > limit:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{what} {value} is beyond the log's size {limit}")

    @guarded("auditors")
    def GetSignedTreeHead(self, request, context, caller) -> audit_pb2.GetSignedTreeHeadResponse:
        latest = self._log.latest_tree_head()
        if latest is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "no tree head has been signed yet (the log is empty)")
        return audit_pb2.GetSignedTreeHeadResponse(
            tree_head=audit_pb2.SignedTreeHead.FromString(latest[1]), signer_certificate=self._certificate_der
        )

    @guarded("auditors")
    def GetInclusionProof(self, request, context, caller) -> audit_pb2.GetInclusionProofResponse:
        size = self._log.size()
        self._sizes(context, ("tree_size", request.tree_size, size))
        if request.leaf_index >= request.tree_size:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "leaf_index must be below tree_size")
        leaf_hash, path = self._log.inclusion_proof(request.leaf_index, request.tree_size)
        return audit_pb2.GetInclusionProofResponse(audit_path=path, leaf_hash=leaf_hash)

    @guarded("auditors")
    def GetConsistencyProof(self, request, context, caller) -> audit_pb2.GetConsistencyProofResponse:
        size = self._log.size()
        self._sizes(context, ("second_tree_size", request.second_tree_size, size))
        if not 0 < request.first_tree_size <= request.second_tree_size:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "need 0 < first_tree_size <= second_tree_size")
        proof = self._log.consistency_proof(request.first_tree_size, request.second_tree_size)
        return audit_pb2.GetConsistencyProofResponse(proof=proof)

    @guarded("auditors")
    def GetEntries(self, request, context, caller) -> audit_pb2.GetEntriesResponse:
        size = self._log.size()
        if not request.start < request.end <= size:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"need start < end <= {size}")
        if request.end - request.start > MAX_ENTRIES_PER_CALL:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"at most {MAX_ENTRIES_PER_CALL} entries per call")
        return audit_pb2.GetEntriesResponse(leaf_data=self._log.entries(request.start, request.end))
