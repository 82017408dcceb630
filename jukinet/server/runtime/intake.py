"""The receiving end of links: verify a batch, store what is new exactly once, answer with a receipt.

For each delivered batch, before anything is stored:

1. the envelope is a ``LinkBatch`` signed by the key its certificate certifies, and that certificate
   (node CA, valid, not revoked) names the TLS peer itself — whoever hands a batch over signs it;
2. the batch names a sender the peer is, and a destination this node is; its positions are contiguous;
3. positions at or below the mark for (sender, destination) are re-deliveries (counted, not applied);
   the first new one must be ``mark + 1``, else something was lost or withheld (OUT_OF_ORDER); positions
   the sender withdrew into its quarantine carry no item and move the mark with the rest;
4. each new item goes to the :class:`ItemHandler` registered for its kind (the ``LinkItem`` oneof
   member) — a kind this node has no handler for is refused — which checks authority and validity
   and returns what it will write. A handler refuses one item for good with :class:`ItemRefused`
   (its position travels in the status): the sender quarantines that item and resends the rest.

Then one transaction (group commit: across links, and across the batches of one link that queue up
while the node is busy, so a node under load commits more per fsync) applies every handler's writes
and moves the marks, each only if it still is where the check found it; only after it is durable does
the node sign the :class:`Receipt` with its token. A refusal stores nothing. A stream checks its next
batch while the previous one commits (:class:`Marks`). Link code knows no payload kinds: a new kind
is a new handler.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import lmdb

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_BATCH_ITEMS
from jukinet.domain.node_ids import NodeId
from jukinet.domain.quoting import quoted
from jukinet.pki import PeerIdentity, Signer, TrustStore, open_signed, seal
from jukinet.server.runtime.batches import batch_digest
from jukinet.storage import NodeStorage
from jukinet.v1 import envelope_pb2, link_pb2


class Marks:
    """The marks one stream works from: stored ones, overlaid by those of its batches still committing.

    A stream checks batch N+1 while batch N commits, so it reads the mark N will leave, not the stored
    one. Every mark a batch moves is recorded as (queue, from, to); its commit moves it only if the
    stored mark is still ``from`` (another stream of the same queue may have got there first).
    """

    def __init__(self, storage: NodeStorage) -> None:
        self._storage = storage
        self._pending: dict[tuple[str, str], int] = {}

    def get(self, sender: str, destination: str) -> int:
        queue = (sender, destination)
        if queue in self._pending:
            return self._pending[queue]
        with self._storage.env.read() as txn:
            return self._storage.inbox.get(txn, sender, destination)

    def move(self, sender: str, destination: str, to: int) -> tuple[tuple[str, str], int, int]:
        queue = (sender, destination)
        moved = (queue, self.get(sender, destination), to)
        self._pending[queue] = to
        return moved


@dataclass
class Delivery:
    """A verified batch: who signed it, for whom, the envelope exactly as received, and the marks its
    items move (its own queue's, and for relayed batches their origins')."""

    envelope: envelope_pb2.Signed
    batch: link_pb2.LinkBatch
    sender: NodeId
    destination: NodeId
    signer: PeerIdentity
    marks: Marks
    moves: list[tuple[tuple[str, str], int, int]] = field(default_factory=list)
    relayed: bool = False  # a handler has queued this envelope to be relayed (handlers of several kinds relay it once)

    def claim(self, batch: link_pb2.LinkBatch) -> tuple[list[tuple[int, link_pb2.LinkItem]], int]:
        """New items of ``batch`` (this delivery's or one relayed in it) and the re-delivered count."""
        mark = self.marks.get(batch.sender, batch.destination)
        fresh, duplicates = new_items(batch, mark)
        if fresh:
            self.moves.append(self.marks.move(batch.sender, batch.destination, fresh[-1][0]))
        return fresh, duplicates


Item = tuple[int, Any]  # (queue position, the payload message of the item's oneof member)


class Plan(Protocol):
    """What a handler will write, prepared outside the transaction."""

    def apply(self, txn: lmdb.Transaction) -> None: ...


class ItemHandler(Protocol):
    """Consumes one kind of LinkItem at this node."""

    kind: str  # the LinkItem oneof member, e.g. "change_notice"

    def check(self, delivery: Delivery, items: Sequence[Item]) -> Plan:
        """Check authority and validity of new ``items`` (in order); Rejected refuses the whole batch."""
        ...


def open_batch(
    envelope: envelope_pb2.Signed, trust: TrustStore, expected_signer: NodeId | None = None
) -> tuple[link_pb2.LinkBatch, PeerIdentity]:
    """Verify a LinkBatch envelope by the node certificate it carries (steps 1-2 without the TLS peer).

    With ``expected_signer`` the certificate must name that node; either way the batch's sender must be
    one the certificate names.
    """
    if not envelope.certificate:
        raise Rejected(Problem.UNAUTHENTICATED, "link batch carries no signer certificate")
    if expected_signer is not None:
        signer = trust.identify_as(envelope.certificate, expected_signer)
    else:
        signer = trust.identify(envelope.certificate, expect="node", purpose="signing")
    batch = open_signed(envelope, link_pb2.LinkBatch, signer.public_key)
    try:
        sender = NodeId.parse(batch.sender)
    except Rejected as exc:
        raise Rejected(Problem.INVALID, f"link batch sender: {exc}") from exc
    if not signer.names(sender):
        raise Rejected(Problem.DENIED, f"link batch names sender {sender} but was signed by {signer}")
    count, withdrawn = len(batch.items), batch.withdrawn
    if count == 0:
        raise Rejected(Problem.INVALID, "empty link batch")
    if count + len(withdrawn) > MAX_BATCH_ITEMS:
        raise Rejected(
            Problem.EXHAUSTED, f"link batch spans {count + len(withdrawn)} positions; at most {MAX_BATCH_ITEMS}"
        )
    first, last = batch.first_sequence, batch.last_sequence
    if first < 1 or last != first + count + len(withdrawn) - 1:
        raise Rejected(
            Problem.INVALID,
            f"link batch positions {first}..{last} do not fit its {count} items and {len(withdrawn)} withdrawn",
        )
    if withdrawn and not (
        first <= withdrawn[0] and withdrawn[-1] < last and all(a < b for a, b in itertools.pairwise(withdrawn))
    ):
        raise Rejected(Problem.INVALID, f"withdrawn positions must ascend within {first}..{last - 1}")
    return batch, signer


def item_positions(batch: link_pb2.LinkBatch) -> list[int]:
    """The queue position of each item: the batch's range without its withdrawn positions."""
    if not batch.withdrawn:
        return list(range(batch.first_sequence, batch.last_sequence + 1))
    withdrawn = set(batch.withdrawn)
    return [p for p in range(batch.first_sequence, batch.last_sequence + 1) if p not in withdrawn]


def new_items(batch: link_pb2.LinkBatch, mark: int) -> tuple[list[tuple[int, link_pb2.LinkItem]], int]:
    """(items above ``mark``, number of re-delivered items); OUT_OF_ORDER if the batch skips ahead."""
    if batch.first_sequence > mark + 1:
        queue = f"{batch.sender} (queue for {batch.destination})"
        raise Rejected(
            Problem.OUT_OF_ORDER, f"{queue} #{batch.first_sequence} arrived but #{mark + 1} is the next expected"
        )
    fresh = [(p, item) for p, item in zip(item_positions(batch), batch.items, strict=True) if p > mark]
    return fresh, len(batch.items) - len(fresh)


def runs_by_kind(items: Sequence[tuple[int, link_pb2.LinkItem]]) -> list[tuple[str, list[Item]]]:
    """Consecutive items of one kind, each with its payload message, in order."""
    runs: list[tuple[str, list[Item]]] = []
    for position, item in items:
        kind = item.WhichOneof("payload")
        if kind is None:
            raise Rejected(Problem.INVALID, f"link item #{position} carries no payload")
        if not runs or runs[-1][0] != kind:
            runs.append((kind, []))
        runs[-1][1].append((position, getattr(item, kind)))
    return runs


@dataclass
class Accepted:
    """A batch checked and ready to commit; its receipt is signed once the commit is durable."""

    delivery: Delivery
    plans: list[Plan]
    applied: int
    duplicates: int


class LinkIntake:
    """Accepts batches for this node (plain object: the RPC in front of it only moves messages)."""

    def __init__(
        self,
        node_ids: Sequence[NodeId],
        trust: TrustStore,
        storage: NodeStorage,
        signer: Signer,
        certificate_der: bytes,
        handlers: Mapping[str, ItemHandler],
        clock: Clock = SYSTEM_CLOCK,
        after_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._node_ids = tuple(node_ids)
        self._trust = trust
        self._storage = storage
        self._signer = signer
        self._certificate = certificate_der
        self._handlers = dict(handlers)
        self._clock = clock
        self.after_commit = after_commit

    def marks(self) -> Marks:
        """A fresh view of the marks, for one stream."""
        return Marks(self._storage)

    def accept(self, envelope: envelope_pb2.Signed, peer: PeerIdentity) -> envelope_pb2.Signed:
        """Check, store and receipt one batch handed over by ``peer`` (its TLS identity)."""
        accepted = self.prepare(envelope, peer, self.marks())
        self.commit(accepted).result()
        if accepted.applied:
            self.after_commit()
        return self.receipt(accepted)

    def prepare(self, envelope: envelope_pb2.Signed, peer: PeerIdentity, marks: Marks) -> Accepted:
        """Every check, before anything is stored; Rejected refuses the batch."""
        batch, signer = open_batch(envelope, self._trust, peer.primary)
        sender = NodeId.parse(batch.sender)
        if not peer.names(sender):
            raise Rejected(Problem.DENIED, f"batch names sender {sender} but was handed over by {peer}")
        delivery = Delivery(envelope, batch, sender, self._destination(batch), signer, marks)
        fresh, duplicates = delivery.claim(batch)
        plans = [self._handler(kind, delivery).check(delivery, items) for kind, items in runs_by_kind(fresh)]
        return Accepted(delivery, plans, len(fresh), duplicates)

    def commit(self, accepted: Accepted) -> Future[None]:
        """Queue the batch's writes for group commit; the future resolves once they are durable."""
        storage = self._storage

        def commit(txn: lmdb.Transaction) -> None:
            for (sender, destination), before, after in accepted.delivery.moves:
                stored = storage.inbox.get(txn, sender, destination)
                if stored != before:
                    raise Rejected(
                        Problem.CONFLICT,
                        f"{sender} (queue for {destination}) is at #{stored} here, not #{before}: another "
                        "delivery of it was stored first; resend",
                    )
                storage.inbox.set(txn, sender, destination, after)
            for plan in accepted.plans:
                plan.apply(txn)

        if not accepted.delivery.moves:
            done: Future[None] = Future()
            done.set_result(None)
            return done
        return storage.env.submit(commit)

    def receipt(self, accepted: Accepted) -> envelope_pb2.Signed:
        """The signed receipt of a committed batch."""
        batch = accepted.delivery.batch
        receipt = link_pb2.Receipt(
            receiver=batch.destination,
            sender=batch.sender,
            first_sequence=batch.first_sequence,
            last_sequence=batch.last_sequence,
            batch_sha256=batch_digest(accepted.delivery.envelope.payload),
            applied=accepted.applied,
            duplicates=accepted.duplicates,
        )
        receipt.stored_at.FromMilliseconds(self._clock.now_ms())
        return seal(self._signer, receipt, self._certificate)

    def _destination(self, batch: link_pb2.LinkBatch) -> NodeId:
        for node_id in self._node_ids:
            if str(node_id) == batch.destination:
                return node_id
        mine = ", ".join(str(n) for n in self._node_ids)
        raise Rejected(Problem.DENIED, f"batch is for {quoted(batch.destination)}, but this node is {mine}")

    def _handler(self, kind: str, delivery: Delivery) -> ItemHandler:
        handler = self._handlers.get(kind)
        if handler is None:
            raise Rejected(Problem.DENIED, f"{delivery.destination} accepts no {kind} items (from {delivery.sender})")
        return handler
