"""Terminal side of a resident's card at a counter: the card signs a presentation for one request.

The card is any object with the authentication certificate and key of an unlocked resident card
(jukinet.hsm.resident_card.UnlockedResidentCard); this module imports no token code. The node the card is
presented to checks it with jukinet.pki.card_presence.CardPresenceVerifier over the same input.
"""

from __future__ import annotations

from typing import Protocol

from jukinet.domain.cards import presentation_input
from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.v1 import cards_pb2

__all__ = ["PresentableCard", "present_card"]


class PresentableCard(Protocol):
    """An unlocked resident card (jukinet.hsm.resident_card.UnlockedResidentCard)."""

    auth_certificate_der: bytes

    def sign_auth(self, data: bytes) -> bytes: ...


def present_card(
    card: PresentableCard, purpose: str, node_id: str, binding: bytes, clock: Clock = SYSTEM_CLOCK
) -> cards_pb2.CardPresentation:
    """The card's presentation for ``purpose`` to ``node_id`` for ``binding`` (e.g. the serialized request
    it goes with), signed now by the card's authentication key; valid once, for 120 s."""
    signed_at_ms = clock.now_ms()
    signature = card.sign_auth(presentation_input(purpose, node_id, binding, signed_at_ms))
    return cards_pb2.CardPresentation(
        auth_certificate=card.auth_certificate_der, signed_at_ms=signed_at_ms, signature=signature
    )
