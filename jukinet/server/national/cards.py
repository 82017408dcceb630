"""My Number cards at the national server: an index of every card, the events it derives from change
notices, and forwarding to the card-management and JPKI services.

The index (``cards``, by card serial and by resident) is built from the CS events relayed to it. For
each change notice that becomes a resident's current record, the national server derives what the
change means for the resident's live cards (jukinet.domain.card_lifecycle.derived_events: a changed
name, address, birth date or sex revokes the signature certificate, death both) — in the same
transaction that stores the notice — and queues every event, the CS's and its own, for each card
service the network has (``cards``, ``jpki``: those in its peers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lmdb

from jukinet.domain.card_lifecycle import apply_event, derived_events
from jukinet.domain.changes import replaces_current
from jukinet.domain.clock import Clock
from jukinet.domain.node_ids import NodeId
from jukinet.server.card_events import check_card_events
from jukinet.server.runtime.intake import Item, Plan
from jukinet.storage import NodeStorage
from jukinet.v1 import cards_pb2, identity_pb2, link_pb2, notice_pb2


class CardEventForwarder:
    """Keeps the national card index and queues card events for the card services."""

    def __init__(self, storage: NodeStorage, destinations: Sequence[str], clock: Clock) -> None:
        self._storage = storage
        self.destinations = tuple(destinations)
        self._clock = clock

    def forward(self, txn: lmdb.Transaction, events: Sequence[cards_pb2.CardEvent]) -> None:
        if not events:
            return
        cards = self._storage.cards
        for event in events:
            cards.put(txn, apply_event(cards.current(txn, event.card_serial), event))
        items = [link_pb2.LinkItem(card_event=e).SerializeToString() for e in events]
        for destination in self.destinations:
            self._storage.queues.enqueue(txn, destination, items)

    def derive(self, txn: lmdb.Transaction, notices: Sequence[notice_pb2.ChangeNotice]) -> None:
        """Before ``notices`` are stored: the events their changes mean for the residents' cards."""
        latest: dict[str, identity_pb2.IdentityRecord | None] = {}
        held_under: dict[str, str] = {}  # a new code → where its cards are listed until the batch is stored
        now = self._clock.now_ms()
        for notice in notices:
            record = notice.record
            code = record.resident_code
            if notice.former_resident_code:  # 住民票コード変更: the card face is unchanged, nothing to derive
                held_under[code] = held_under.get(notice.former_resident_code, notice.former_resident_code)
                latest[code] = record
                continue
            cards = self._storage.cards.of_resident(txn, held_under.get(code, code))
            if not cards:
                continue
            old = latest[code] if code in latest else self._storage.records.current(txn, code)
            if not replaces_current(old, record):
                continue
            latest[code] = record
            self.forward(txn, derived_events(old, record, cards, now))


@dataclass(frozen=True)
class _Forward:
    forwarder: CardEventForwarder
    events: list[cards_pb2.CardEvent]

    def apply(self, txn: lmdb.Transaction) -> None:
        self.forwarder.forward(txn, self.events)


class RelayedCardEvents:
    """The ``card_event`` items of a CS's relayed batch (jukinet.server.national.notices)."""

    kind = "card_event"

    def __init__(self, forwarder: CardEventForwarder) -> None:
        self._forwarder = forwarder

    def check(self, origin: NodeId, items: Sequence[Item], position: int) -> Plan:
        check_card_events(items, origin)
        return _Forward(self._forwarder, [event for _, event in items])


def card_services(peers: Sequence[str]) -> list[str]:
    """The card services among a node's peers (a network without them forwards nothing)."""
    wanted = {str(NodeId.card_management()), str(NodeId.jpki())}
    return sorted(p for p in peers if p in wanted)
