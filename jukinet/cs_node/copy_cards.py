"""The resident cards a home CS checks for 広域交付: a card presentation over the request, and the card's
holder (the cards part's presentation verifier and card store, adapted to :class:`ResidentCards`)."""

from __future__ import annotations

import lmdb

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.server.parts import NodeParts
from jukinet.v1 import copies_pb2


class NoResidentCards:
    """Until resident cards are built: every presentation is refused (fail closed)."""

    def presented(self, card: copies_pb2.CopyCardPresentation, home: NodeId, request: bytes) -> str:
        raise Rejected(Problem.UNAUTHENTICATED, "resident cards cannot be verified at this CS")

    def holder(self, txn: lmdb.Transaction, card_serial: str) -> str | None:
        return None


def resident_cards(parts: NodeParts) -> NoResidentCards:
    return NoResidentCards()
