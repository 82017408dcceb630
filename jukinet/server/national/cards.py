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

from jukinet.domain.card_lifecycle import LIVE_STATES, apply_event, derived_events
from jukinet.domain.changes import replaces_current
from jukinet.domain.clock import Clock
from jukinet.domain.errors import ItemRefused, Problem
from jukinet.domain.node_ids import NodeId
from jukinet.server.card_events import check_card_events, indexed_card_problem
from jukinet.server.runtime.intake import Item, Plan
from jukinet.storage import NodeStorage
from jukinet.storage.records import RecordStore
from jukinet.v1 import cards_pb2, identity_pb2, link_pb2, notice_pb2


class CardEventForwarder:
    """Keeps the national card index and queues card events for the card services."""

    def __init__(self, storage: NodeStorage, destinations: Sequence[str], clock: Clock) -> None:
        self._storage = storage
        self.storage = storage
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
    storage: NodeStorage
    origin: NodeId
    events: list[cards_pb2.CardEvent]
    position: int  # the relayed batch's position: what a refusal names

    def apply(self, txn: lmdb.Transaction) -> None:
        """Each CS event against the national index (as it stands after the batch's earlier events): deny by
        default, ItemRefused (DENIED) at the relayed batch's position; nothing of the batch is stored."""
        cards, records = self.storage.cards, self.storage.records
        seen: dict[str, cards_pb2.CardRecord] = {}
        for number, event in enumerate(self.events):
            card = seen.get(event.card_serial) or cards.current(txn, event.card_serial)
            problem = indexed_card_problem(card, event)
            if problem is None and event.kind == cards_pb2.CARD_EVENT_KIND_SET_UP:
                problem = self._set_up_problem(txn, event, records)
            if problem:
                message = f"card event {number + 1} of {self.origin}'s batch: {problem}"
                raise ItemRefused(Problem.DENIED, message, self.position)
            seen[event.card_serial] = apply_event(card, event)
        self.forwarder.forward(txn, self.events)

    def _set_up_problem(self, txn: lmdb.Transaction, event: cards_pb2.CardEvent, records: RecordStore) -> str | None:
        record = records.current(txn, event.resident_code)
        if record is None or record.address.municipality_code != self.origin.code:
            return f"{event.resident_code} is not a resident of {self.origin} here; it sets up no card for them"
        if record.status != identity_pb2.RECORD_STATUS_ACTIVE:
            return f"{event.resident_code} is a removed record (除票); no card"
        held = self.storage.cards.of_resident(txn, event.resident_code)
        live = [c.card_serial for c in held if c.state in LIVE_STATES and c.municipality_code == self.origin.code]
        if live:  # as the CS itself refuses (a card of a former municipality may still be live)
            return f"{event.resident_code} already holds card {live[0]} of {self.origin}"
        return None


class RelayedCardEvents:
    """The ``card_event`` items of a CS's relayed batch (jukinet.server.national.notices)."""

    kind = "card_event"

    def __init__(self, forwarder: CardEventForwarder) -> None:
        self._forwarder = forwarder

    def check(self, origin: NodeId, items: Sequence[Item], position: int) -> Plan:
        check_card_events(items, origin)
        return _Forward(self._forwarder, self._forwarder.storage, origin, [event for _, event in items], position)


def card_services(peers: Sequence[str]) -> list[str]:
    """The card services among a node's peers (a network without them forwards nothing)."""
    wanted = {str(NodeId.card_management()), str(NodeId.jpki())}
    return sorted(p for p in peers if p in wanted)
