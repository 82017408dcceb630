"""The resident cards a home CS checks for 広域交付: the card's presentation over the request's exact bytes
(jukinet.pki.card_presence: card CA, authentication key, CRL, ±120 s, single use) and the card's holder at
this CS (the card store: only a card that may be presented now).

The presented authentication certificate must be exactly the one this CS stored when it set the card up
(not merely one naming the same card serial: a serial is readable without the PIN, and another CS could
have had a certificate for it issued with its own key), and that is checked before the presentation
uses a replay-cache slot: presentations of cards that are not this CS's residents' never fill it."""

from __future__ import annotations

from collections.abc import Callable

import lmdb
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.domain.card_lifecycle import presentable_problem
from jukinet.domain.copies import CARD_PURPOSE
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.pki.card_presence import CardPresenceVerifier, PresentedCard
from jukinet.server.parts import NodeParts
from jukinet.storage.cards import CardStore
from jukinet.v1 import cards_pb2

Holders = Callable[[lmdb.Transaction, str], "str | None"]
"""(txn, card serial) -> the 住民票コード of its holder if the card may be presented now, else None."""
Accept = Callable[[PresentedCard], None]
"""Rejected (UNAUTHENTICATED) unless the presented card is one of this CS's, with its stored certificate."""


class ResidentCardsAtCs:
    """:class:`jukinet.cs_node.copies.ResidentCards` over the presence verifier and the card store."""

    def __init__(self, verifier: CardPresenceVerifier, holders: Holders, accept: Accept | None = None) -> None:
        self._verifier = verifier
        self._holders = holders
        self._accept = accept

    def presented(self, card: cards_pb2.CardPresentation, home: NodeId, request: bytes) -> str:
        return self._verifier.verify(card, CARD_PURPOSE, str(home), request, self._accept).card_serial

    def holder(self, txn: lmdb.Transaction, card_serial: str) -> str | None:
        return self._holders(txn, card_serial)


def resident_cards(parts: NodeParts) -> ResidentCardsAtCs:
    cards = parts.storage.cards

    def holder(txn: lmdb.Transaction, card_serial: str) -> str | None:
        card = cards.current(txn, card_serial)
        if card is None or presentable_problem(card, card_serial) is not None:
            return None  # not this municipality's card, or not issued, suspended, returned, revoked
        return card.resident_code

    return ResidentCardsAtCs(
        CardPresenceVerifier(parts.trust, parts.clock),
        holder,
        stored_certificate(parts.storage.cards, parts.config.node_id),
    )


def stored_certificate(cards: CardStore, node_id: NodeId) -> Accept:
    """The presented card must be a card this CS set up, that may be presented now, and the presented
    authentication certificate byte for byte the one stored for it."""

    def accept(presented: PresentedCard) -> None:
        card = cards.holder_of(presented.card_serial)
        ok = card is not None and presentable_problem(card, presented.card_serial) is None
        der = presented.certificate.public_bytes(Encoding.DER)
        if card is not None and card.auth_certificate != der:  # a clone: another key certified for the serial
            ok = False
        if not ok:
            raise Rejected(
                Problem.UNAUTHENTICATED,
                f"card presentation refused: the card presented is not a card of a resident of {node_id} "
                "(with the certificate it was set up with) that may be presented now",
            )

    return accept
