"""Is the resident's card here? Verifying a card presented at a counter (CardPresentation).

A node that acts on a resident's card (特例転入 at the new municipality, 広域交付 to the holder) checks,
in order, and refuses with Rejected(UNAUTHENTICATED) naming the first check that failed:

1. the certificate is a card certificate of the JukiNet card CA (not a foreign CA's), for the
   user-authentication key (not the signature key), valid now and not on the card CA's CRL;
2. the time it was signed is within ±PRESENCE_SKEW_MS (120 s) of the node's clock;
3. the signature verifies over exactly presentation_input(purpose, this node, the binding, the time) —
   so a presentation made for another purpose, node or request does not verify;
4. it was not presented before (single use): a bounded cache of what was accepted in the last
   2 × 120 s, keyed by (card serial, signed input). Not by the signature: an ECDSA signature can be
   re-encoded into a second valid one (s → n − s), the signed input cannot.

The card's state at its municipality (issued, suspended, returned) is the card store's to check; the
CRL here is what the JPKI service has revoked.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from cryptography import x509

from jukinet.domain.cards import PRESENCE_SKEW_MS, check_purpose, presentation_input
from jukinet.domain.clock import Clock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeKind
from jukinet.pki.keys import verify_ecdsa_raw
from jukinet.pki.trust import TrustStore
from jukinet.v1 import cards_pb2

__all__ = [
    "MAX_REMEMBERED_PRESENTATIONS",
    "CardPresenceVerifier",
    "PresentedCard",
    "presentation_input",
]

MAX_REMEMBERED_PRESENTATIONS: Final = 100_000
"""Presentations remembered for replay checks; a node accepting more in 4 minutes refuses the excess
(EXHAUSTED) rather than forgetting one that could then be replayed."""
_REMEMBER_S: Final = 2 * PRESENCE_SKEW_MS / 1000 + 1
_MAX_CERTIFICATE_BYTES: Final = 8 * 1024


@dataclass(frozen=True)
class PresentedCard:
    """A card verified as present: its serial and its authentication certificate."""

    card_serial: str
    certificate: x509.Certificate = field(repr=False)


def _refused(why: str) -> Rejected:
    return Rejected(Problem.UNAUTHENTICATED, f"card presentation refused: {why}")


class CardPresenceVerifier:
    """Verifies CardPresentations for one node (thread-safe; the replay cache is in memory)."""

    def __init__(self, trust: TrustStore, clock: Clock, capacity: int = MAX_REMEMBERED_PRESENTATIONS) -> None:
        self._trust = trust
        self._clock = clock
        self._capacity = capacity
        self._seen: OrderedDict[bytes, float] = OrderedDict()  # key -> monotonic time it may be forgotten
        self._lock = threading.Lock()

    def verify(
        self,
        presentation: cards_pb2.CardPresentation,
        purpose: str,
        node_id: str,
        binding: bytes,
        accept: Callable[[PresentedCard], None] | None = None,
    ) -> PresentedCard:
        """The card presented for ``purpose`` to ``node_id`` for ``binding``, or Rejected (UNAUTHENTICATED).

        ``accept`` (the caller's own check that this is a card it acts on: e.g. the stored authentication
        certificate of one of its residents' cards) runs after the signature verifies and BEFORE a replay
        slot is used, so presentations of cards the node would refuse anyway never fill the cache."""
        check_purpose(purpose)
        der = bytes(presentation.auth_certificate)
        if not der:
            raise _refused("no card certificate")
        if len(der) > _MAX_CERTIFICATE_BYTES:
            raise _refused(f"the card certificate has {len(der)} bytes, at most {_MAX_CERTIFICATE_BYTES}")
        try:
            ident = self._trust.identify(der, expect="card", purpose="authentication")
        except Rejected as e:
            raise _refused(str(e)) from None
        cards = [n for n in ident.node_ids if n.kind is NodeKind.CARD]
        if len(cards) != 1 or len(ident.node_ids) != 1:
            raise _refused(f"the certificate names {ident}, not exactly one card")
        serial = cards[0].code or ""
        now = self._clock.now_ms()
        skew = presentation.signed_at_ms - now
        if abs(skew) > PRESENCE_SKEW_MS:
            when = "in the future" if skew > 0 else "ago"
            raise _refused(
                f"card {serial} signed it {abs(skew) // 1000} s {when}; at most {PRESENCE_SKEW_MS // 1000} s"
            )
        signed = presentation_input(purpose, node_id, binding, presentation.signed_at_ms)
        try:
            verify_ecdsa_raw(ident.public_key, signed, bytes(presentation.signature))
        except Rejected:
            raise _refused(
                f"the signature of card {serial} does not verify for {purpose} at {node_id} over this request"
            ) from None
        card = PresentedCard(serial, ident.certificate)
        if accept is not None:
            accept(card)
        self._consume(hashlib.sha256(serial.encode() + b"\x00" + signed).digest(), serial)
        return card

    def _consume(self, key: bytes, serial: str) -> None:
        now = self._clock.monotonic()
        with self._lock:
            while self._seen:
                oldest, expiry = next(iter(self._seen.items()))
                if expiry > now:
                    break
                del self._seen[oldest]
            if key in self._seen:
                raise _refused(f"this presentation of card {serial} was already used (present the card again)")
            if len(self._seen) >= self._capacity:
                raise Rejected(
                    Problem.EXHAUSTED, f"more than {self._capacity} card presentations in {_REMEMBER_S:.0f} s"
                )
            self._seen[key] = now + _REMEMBER_S
