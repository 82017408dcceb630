"""Writing the audit log, signing its tree heads, and serving proofs to auditors.

Every operator action and login attempt, and every provision, becomes one ``AuditEntry`` leaf. A
successful action's entry commits in the same transaction as the action; a refusal's entry commits
(group commit) before the refusal is answered. Tree heads are sealed by the node's token key in the
background, at most once per ``interval`` and only when the log has grown, so the token cost does not
grow with the number of entries.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Iterable

import lmdb
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_AUDIT_ENTRY_BYTES, MAX_RESPONSE_BYTES
from jukinet.domain.node_ids import NodeId
from jukinet.domain.quoting import AUDIT_DETAIL_CHARS, AUDIT_FIELD_CHARS, bounded
from jukinet.pki import Signer, open_signed, seal
from jukinet.server.refusals import REFUSAL_INTERVAL_SECONDS, Aggregate, RefusalTally
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import TerminalOf
from jukinet.server.runtime.status import DENIALS
from jukinet.storage import AuditLog, MerkleLog, NodeStorage
from jukinet.v1 import audit_pb2, audit_pb2_grpc, envelope_pb2

log = logging.getLogger(__name__)
A = audit_pb2
MAX_ENTRIES_PER_CALL = 1000
PAGE_BYTES = MAX_RESPONSE_BYTES - 64 * 1024
"""A page of entries stops before this many bytes (the response's other fields and framing fit the rest)."""


class Auditor:
    """Appends audit entries to the node's log. Every text field of an entry is bounded and escaped
    (:func:`jukinet.domain.quoting.bounded`), so an entry is at most ``MAX_AUDIT_ENTRY_BYTES`` whatever
    a caller sent; refusals of callers without a session are counted (:mod:`jukinet.server.refusals`)."""

    def __init__(
        self, storage: NodeStorage, clock: Clock = SYSTEM_CLOCK, refusal_interval: float = REFUSAL_INTERVAL_SECONDS
    ) -> None:
        self._log: AuditLog = storage.audit
        self._env = storage.env
        self._clock = clock
        self.refusals = RefusalTally(clock, refusal_interval)

    def entry(self, action: int, outcome: int, actor: str, terminal: str, target: str = "", detail: str = "") -> bytes:
        entry = A.AuditEntry(
            actor=bounded(actor, AUDIT_FIELD_CHARS),
            terminal=bounded(terminal, AUDIT_FIELD_CHARS),
            action=action,
            outcome=outcome,
            target=bounded(target, AUDIT_FIELD_CHARS),
            detail=bounded(detail, AUDIT_DETAIL_CHARS),
        )
        entry.time.FromMilliseconds(self._clock.now_ms())
        leaf = entry.SerializeToString()
        if len(leaf) > MAX_AUDIT_ENTRY_BYTES:  # cannot happen while the bounds above hold; never store it
            raise Rejected(Problem.BROKEN, f"an audit entry of {len(leaf)} bytes is over {MAX_AUDIT_ENTRY_BYTES}")
        return leaf

    def append(
        self,
        txn: lmdb.Transaction,
        action: int,
        outcome: int,
        caller: Caller,
        target: str = "",
        detail: str = "",
        actor: str | None = None,
    ) -> int:
        """Inside the action's own transaction."""
        leaf = self.entry(action, outcome, actor or caller.actor, str(caller.primary), target, detail)
        return self._log.append(txn, leaf)

    def record(self, action: int, outcome: int, caller: Caller, target: str = "", detail: str = "") -> int:
        """In a transaction of its own (group commit); returns the entry's index once durable."""
        leaf = self.entry(action, outcome, caller.actor, str(caller.primary), target, detail)
        return self._env.submit(lambda txn: self._log.append(txn, leaf)).result()

    def refused(self, action: int, caller: Caller, exc: Rejected, target: str = "") -> None:
        """A refusal, before it is answered: written now if the caller holds a valid operator session or it
        is the first of its kind from this caller in the interval; otherwise only counted."""
        detail = f"{exc.problem.name}: {exc}"
        if caller.operator_id is None:
            key = self.refusals.note(str(caller.primary), action, exc.problem, detail, target)
            if key is None:
                return
            self.refusals.written(key, self.record(action, _outcome(exc.problem), caller, target, detail))
            return
        self.record(action, _outcome(exc.problem), caller, target, detail)

    def flush_refusals(self, everything: bool = False) -> int:
        """Write one entry per counted interval that has ended (all, with ``everything``); returns how many."""
        aggregates = self.refusals.due(everything)
        if not aggregates:
            return 0
        leaves = [self._aggregate_entry(a) for a in aggregates]
        self._env.submit(lambda txn: self._log.append_many(txn, leaves)).result()
        return len(leaves)

    def _aggregate_entry(self, a: Aggregate) -> bytes:
        what = a.problem.name if a.problem is not None else "any reason (too many kinds to count apart)"
        first = f"; the first is entry {a.first_index}" if a.first_index is not None else ""
        detail = (
            f"{a.caller} refused {a.count} times for {what} between {_iso(a.first_ms)} and {_iso(a.last_ms)}"
            f"{first}; last: {a.last_message}"
        )
        outcome = _outcome(a.problem) if a.problem is not None else A.AUDIT_OUTCOME_DENIED
        return self.entry(a.action, outcome, a.caller, a.caller, a.last_target, detail)


def _outcome(problem: Problem) -> int:
    return A.AUDIT_OUTCOME_DENIED if problem in DENIALS else A.AUDIT_OUTCOME_FAILED


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat(timespec="milliseconds")


def seal_tree_head(node_id: str, log_: MerkleLog, signer: Signer, clock: Clock = SYSTEM_CLOCK) -> bool:
    """Seal and store the current tree head if the log grew since the last one; True if one was made."""
    size = log_.tree_size()  # a log integrated later: what its follower has brought into the tree
    latest = log_.latest_tree_head()
    if size == 0 or (latest is not None and latest[0] >= size):
        return False
    head = A.TreeHead(node_id=node_id, tree_size=size, root_hash=log_.root(size), log=log_.name)
    head.timestamp.FromMilliseconds(clock.now_ms())
    log_.put_tree_head(None, size, seal(signer, head).SerializeToString())
    return True


class TreeHeadSigner:
    """Background thread: once per interval, writes the counted refusals whose interval ended and seals a new
    tree head for each of the node's logs (audit, provision, copy-issuance) that has grown (an empty log
    gets none: only the national server's provision log and a CS's copy-issuance log ever grow)."""

    def __init__(
        self, node_id: str, storage: NodeStorage, signer: Signer, interval: float = 1.0, auditor: Auditor | None = None
    ) -> None:
        self._node_id = node_id
        self._auditor = auditor  # its counted refusals are flushed on the same beat, before the head is sealed
        self._logs: tuple[MerkleLog, ...] = (storage.audit, storage.provisions.log, storage.copies.log)
        self._signer = signer
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-heads", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def sign_now(self, everything: bool = False) -> None:
        if self._auditor is not None:
            self._auditor.flush_refusals(everything)
        for log_ in self._logs:
            seal_tree_head(self._node_id, log_, self._signer)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sign_now()
            except Exception:  # keep signing later; the log itself is intact
                log.exception("signing the audit tree head failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sign_now(everything=True)  # counted refusals written; the final state is covered by a signed head


def check_tree_head(
    signed: envelope_pb2.Signed, certificate: x509.Certificate, node_id: str | None = None, log_: str = "audit"
) -> audit_pb2.TreeHead:
    """Verify a signed tree head of the node's ``log_`` against its signing certificate; returns the head."""
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Rejected(Problem.INVALID, "the signing certificate is not for an EC key")
    head = open_signed(signed, audit_pb2.TreeHead, key)
    if node_id is not None and head.node_id != node_id:
        raise Rejected(Problem.DENIED, f"tree head is for {head.node_id}, not {node_id}")
    if (head.log or "audit") != log_:
        raise Rejected(Problem.DENIED, f"tree head is of the {head.log or 'audit'} log, not the {log_} log")
    return head


class AuditRpc(audit_pb2_grpc.AuditServiceServicer):
    """Read-only access for auditors: terminals of the node's site (machine auditors need no session)."""

    def __init__(
        self,
        node_ids: Iterable[NodeId],
        storage: NodeStorage,
        signing_certificate: x509.Certificate,
        blocking: Blocking,
    ) -> None:
        self.blocking = blocking
        self.auditors = TerminalOf.of_nodes(node_ids)
        self._log = storage.audit
        self._certificate_der = signing_certificate.public_bytes(Encoding.DER)

    @staticmethod
    def _within(what: str, value: int, limit: int) -> None:
        if value > limit:
            raise Rejected(Problem.INVALID, f"{what} {value} is beyond the log's size {limit}")

    @guarded("auditors")
    def GetSignedTreeHead(self, request, caller: Caller) -> audit_pb2.GetSignedTreeHeadResponse:
        latest = self._log.latest_tree_head()
        if latest is None:
            raise Rejected(Problem.NOT_FOUND, "no tree head has been signed yet (the log is empty)")
        return A.GetSignedTreeHeadResponse(
            tree_head=envelope_pb2.Signed.FromString(latest[1]), signer_certificate=self._certificate_der
        )

    @guarded("auditors")
    def GetInclusionProof(self, request, caller: Caller) -> audit_pb2.GetInclusionProofResponse:
        self._within("tree_size", request.tree_size, self._log.tree_size())
        if request.leaf_index >= request.tree_size:
            raise Rejected(Problem.INVALID, "leaf_index must be below tree_size")
        leaf_hash, path = self._log.inclusion_proof(request.leaf_index, request.tree_size)
        return A.GetInclusionProofResponse(audit_path=path, leaf_hash=leaf_hash)

    @guarded("auditors")
    def GetConsistencyProof(self, request, caller: Caller) -> audit_pb2.GetConsistencyProofResponse:
        self._within("second_tree_size", request.second_tree_size, self._log.tree_size())
        if not 0 < request.first_tree_size <= request.second_tree_size:
            raise Rejected(Problem.INVALID, "need 0 < first_tree_size <= second_tree_size")
        proof = self._log.consistency_proof(request.first_tree_size, request.second_tree_size)
        return A.GetConsistencyProofResponse(proof=proof)

    @guarded("auditors")
    def GetEntries(self, request, caller: Caller) -> audit_pb2.GetEntriesResponse:
        size = self._log.size()
        if not request.start < request.end <= size:
            raise Rejected(Problem.INVALID, f"need start < end <= {size}")
        if request.end - request.start > MAX_ENTRIES_PER_CALL:
            raise Rejected(Problem.INVALID, f"at most {MAX_ENTRIES_PER_CALL} entries per call")
        leaves = self._log.entries(request.start, request.end, max_bytes=PAGE_BYTES)
        return A.GetEntriesResponse(leaf_data=leaves, end=request.start + len(leaves))
