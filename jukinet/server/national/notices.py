"""Change notices at the national server: CS batches relayed by their prefecture, verified end to end.

A prefecture hands over ``relayed_batch`` items, each a CS's own signed batch exactly as the CS sent
it. For every one, before anything is stored: the CS's signature verifies against a node certificate
that names the CS; the CS is in a prefecture the relaying server hosts, and its batch was addressed to
that prefecture; the batch continues the CS's queue exactly where the national server's record of it
ends (a re-delivered batch is a duplicate; one that skips ahead means the prefecture dropped or
withheld something); each of its items is of a kind a relayed batch may carry — change notices, blocks
of codes this server designated to that CS (sealed by its token) and My Number card events — each checked
by the handler for its kind (:class:`RelayedKind`) as the CS's own and valid. Each notice's ownership —
the code designated to or owned by the origin, its My Number the one assigned to the code — is checked in
the write transaction (:class:`jukinet.server.changes.Ownership`). The prefecture's own
signature over the batch that carried them was checked by the intake. So a prefecture cannot insert a
notice, alter one, or drop one from the middle of a CS's sequence without the national server refusing
that relayed batch (as an :class:`ItemRefused`: the prefecture quarantines it, and every later batch of
the same CS then waits behind it, refused as out of order, while other CS nodes' batches flow).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import lmdb

from jukinet.domain.clock import SYSTEM_CLOCK, Clock, today
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.pki import TrustStore
from jukinet.server.changes import ChangeWriter, Incoming, check_notices, verified_grant
from jukinet.server.code_blocks import verify_block
from jukinet.server.national.cards import CardEventForwarder, RelayedCardEvents, card_services
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.intake import Delivery, Item, Plan, open_batch, runs_by_kind
from jukinet.storage import NodeStorage
from jukinet.storage.search_index import FourItemsIndex

_FOR_GOOD = frozenset({Problem.INVALID, Problem.DENIED, Problem.UNAUTHENTICATED, Problem.OUT_OF_ORDER})


class RelayedKind(Protocol):
    """Checks the items of one kind in a CS's relayed batch (the CS's signature already verified)."""

    kind: str

    def check(self, origin: NodeId, items: Sequence[Item], position: int) -> Plan:
        """``position``: the relayed batch's own position in the prefecture's queue (what a refusal names)."""
        ...


@dataclass(frozen=True)
class _Store:
    writer: ChangeWriter
    notices: list[Incoming]
    cards: CardEventForwarder | None
    storage: NodeStorage
    clock: Clock

    def apply(self, txn: lmdb.Transaction) -> None:
        if self.notices:
            if self.cards is not None:  # before they are stored: it compares with the current record
                self.cards.derive(txn, [i.notice for i in self.notices])
            first = self.storage.history.next_position(txn)
            self.writer.apply(txn, self.notices)
            self.storage.feed_times.mark(txn, first, self.clock.now_ms())  # push notices carry it


class RelayedNotices:
    """The ``change_notice`` items of a CS's relayed batch."""

    kind = "change_notice"

    def __init__(
        self, trust: TrustStore, storage: NodeStorage, clock: Clock, cards: CardEventForwarder | None = None
    ) -> None:
        self._trust = trust
        self._storage = storage
        self._writer = ChangeWriter(storage, national=True)
        self._clock = clock
        self._cards = cards

    def check(self, origin: NodeId, items: Sequence[Item], position: int) -> Plan:
        day = today(self._clock)
        check_notices(items, origin, day)
        keys = FourItemsIndex.keys  # folded here, outside the write transaction every other write waits behind
        grant = verified_grant
        incoming = [Incoming(position, n, grant(n, self._trust, position, day), keys(n.record)) for _, n in items]
        return _Store(self._writer, incoming, self._cards, self._storage, self._clock)


@dataclass(frozen=True)
class _Nothing:
    def apply(self, txn: lmdb.Transaction) -> None:
        pass


class RelayedCodeBlocks:
    """The ``code_block`` items of a CS's relayed batch: designated here, so there is nothing to learn, but
    each must be genuine (sealed by this server's token) and designated to that CS."""

    kind = "code_block"

    def __init__(self, trust: TrustStore) -> None:
        self._trust = trust

    def check(self, origin: NodeId, items: Sequence[Item], position: int) -> Plan:
        for _, signed in items:
            verify_block(signed, self._trust, origin)
        return _Nothing()


@dataclass(frozen=True)
class _InOrder:
    plans: list[Plan]

    def apply(self, txn: lmdb.Transaction) -> None:
        for plan in self.plans:
            plan.apply(txn)


class RelayedChangeNotices:
    """ItemHandler for ``relayed_batch`` items at the national server: each item kind inside a relayed
    batch goes to its own :class:`RelayedKind` (a kind without one is refused)."""

    kind = "relayed_batch"

    def __init__(
        self,
        trust: TrustStore,
        storage: NodeStorage,
        clock: Clock = SYSTEM_CLOCK,
        kinds: Sequence[RelayedKind] | None = None,
    ) -> None:
        self._trust = trust
        self._storage = storage
        self._clock = clock
        relayed = kinds if kinds is not None else (RelayedNotices(trust, storage, clock), RelayedCodeBlocks(trust))
        self._kinds = {k.kind: k for k in relayed}

    def check(self, delivery: Delivery, items: Sequence[Item]) -> Plan:
        relay = delivery.sender
        if relay.kind is not NodeKind.PREFECTURE:
            raise Rejected(Problem.DENIED, f"{relay} is not a prefecture server; only they relay CS batches")
        hosted = {n.code for n in delivery.signer.node_ids if n.kind is NodeKind.PREFECTURE}
        plans: list[Plan] = []
        for position, envelope in items:
            try:
                inner, _ = open_batch(envelope, self._trust)
                origin = NodeId.parse(inner.sender)
                if origin.kind is not NodeKind.CS or origin.prefecture_code not in hosted:
                    raise Rejected(Problem.DENIED, f"{relay} may not relay batches of {origin}")
                if inner.destination != str(NodeId.prefecture(origin.prefecture_code)):
                    raise Rejected(
                        Problem.DENIED, f"{origin}'s batch was addressed to {inner.destination}, not its prefecture"
                    )
                fresh, _ = delivery.claim(inner)  # the CS's own queue, continued exactly
                for kind, run in runs_by_kind(fresh):
                    handler = self._kinds.get(kind)
                    if handler is None:
                        accepted = ", ".join(sorted(self._kinds))
                        raise Rejected(Problem.INVALID, f"a relayed batch may carry {accepted} only, not {kind}")
                    plans.append(handler.check(origin, run, position))
            except Rejected as exc:
                message = f"relayed batch #{position} from {relay}: {exc}"
                if exc.problem in _FOR_GOOD:  # the prefecture sets it aside and carries on with the rest
                    raise ItemRefused(exc.problem, message, position) from None
                raise Rejected(exc.problem, message) from None
        return _InOrder(plans)


def relayed_change_notices(parts: NodeParts) -> RelayedChangeNotices:
    """What the national tier's intake accepts (see jukinet.server.assembly.TIERS): CS batches relayed by
    their prefecture, with change notices and card events; card events (the CS's and those derived
    from notices) are forwarded to the card services among the peers."""
    forwarder = CardEventForwarder(parts.storage, card_services(parts.config.peers), parts.clock)
    kinds = (
        RelayedNotices(parts.trust, parts.storage, parts.clock, forwarder),
        RelayedCodeBlocks(parts.trust),
        RelayedCardEvents(forwarder),
    )
    return RelayedChangeNotices(parts.trust, parts.storage, parts.clock, kinds)
