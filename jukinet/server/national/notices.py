"""Change notices at the national server: CS batches relayed by their prefecture, verified end to end.

A prefecture hands over ``relayed_batch`` items, each a CS's own signed batch exactly as the CS sent
it. For every one, before anything is stored: the CS's signature verifies against a node certificate
that names the CS; the CS is in a prefecture the relaying server hosts, and its batch was addressed to
that prefecture; the batch continues the CS's queue exactly where the national server's record of it
ends (a re-delivered batch is a duplicate; one that skips ahead means the prefecture dropped or
withheld something); each of its items is of a kind a relayed batch may carry — change notices and My
Number card events, each checked by the handler for its kind (:data:`RelayedKind`) as the CS's own and
valid. The prefecture's own
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
from jukinet.server.changes import ChangeWriter, check_notices
from jukinet.server.national.cards import CardEventForwarder, RelayedCardEvents, card_services
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.intake import Delivery, Item, Plan, open_batch, runs_by_kind
from jukinet.storage import NodeStorage
from jukinet.v1 import notice_pb2

_FOR_GOOD = frozenset({Problem.INVALID, Problem.DENIED, Problem.UNAUTHENTICATED, Problem.OUT_OF_ORDER})


class RelayedKind(Protocol):
    """Checks the items of one kind in a CS's relayed batch (the CS's signature already verified)."""

    kind: str

    def check(self, origin: NodeId, items: Sequence[Item]) -> Plan: ...


@dataclass(frozen=True)
class _Store:
    writer: ChangeWriter
    notices: list[notice_pb2.ChangeNotice]
    cards: CardEventForwarder | None

    def apply(self, txn: lmdb.Transaction) -> None:
        if self.notices:
            if self.cards is not None:
                self.cards.derive(txn, self.notices)  # before they are stored: it compares with the current record
            self.writer.apply(txn, self.notices)


class RelayedNotices:
    """The ``change_notice`` items of a CS's relayed batch."""

    kind = "change_notice"

    def __init__(self, storage: NodeStorage, clock: Clock, cards: CardEventForwarder | None = None) -> None:
        self._writer = ChangeWriter(storage)
        self._clock = clock
        self._cards = cards

    def check(self, origin: NodeId, items: Sequence[Item]) -> Plan:
        check_notices(items, origin, today(self._clock))
        return _Store(self._writer, [notice for _, notice in items], self._cards)


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
        relayed = kinds if kinds is not None else (RelayedNotices(storage, clock),)
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
                    plans.append(handler.check(origin, run))
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
    kinds = (RelayedNotices(parts.storage, parts.clock, forwarder), RelayedCardEvents(forwarder))
    return RelayedChangeNotices(parts.trust, parts.storage, parts.clock, kinds)
