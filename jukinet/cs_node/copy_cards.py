"""The resident cards a home CS checks for 広域交付: the card's presentation over the request's exact bytes
(jukinet.pki.card_presence: card CA, authentication key, CRL, ±120 s, single use) and the card's holder at
this CS (the card store: only a card that may be presented now)."""

from __future__ import annotations

from collections.abc import Callable

import lmdb

from jukinet.domain.card_lifecycle import presentable_problem
from jukinet.domain.copies import CARD_PURPOSE
from jukinet.domain.node_ids import NodeId
from jukinet.pki.card_presence import CardPresenceVerifier
from jukinet.server.parts import NodeParts
from jukinet.v1 import cards_pb2

Holders = Callable[[lmdb.Transaction, str], "str | None"]
"""(txn, card serial) -> the 住民票コード of its holder if the card may be presented now, else None."""


class ResidentCardsAtCs:
    """:class:`jukinet.cs_node.copies.ResidentCards` over the presence verifier and the card store."""

    def __init__(self, verifier: CardPresenceVerifier, holders: Holders) -> None:
        self._verifier = verifier
        self._holders = holders

    def presented(self, card: cards_pb2.CardPresentation, home: NodeId, request: bytes) -> str:
        return self._verifier.verify(card, CARD_PURPOSE, str(home), request).card_serial

    def holder(self, txn: lmdb.Transaction, card_serial: str) -> str | None:
        return self._holders(txn, card_serial)


def resident_cards(parts: NodeParts) -> ResidentCardsAtCs:
    cards = parts.storage.cards

    def holder(txn: lmdb.Transaction, card_serial: str) -> str | None:
        card = cards.current(txn, card_serial)
        if card is None or presentable_problem(card, card_serial) is not None:
            return None  # not this municipality's card, or not issued, suspended, returned, revoked
        return card.resident_code

    return ResidentCardsAtCs(CardPresenceVerifier(parts.trust, parts.clock), holder)
