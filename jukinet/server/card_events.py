"""My Number card events on links: what every tier checks of one, and the two J-LIS services that act on
them (the card-management service keeps each card's state, the JPKI service revokes in the card CA).

Flow. A CS's lifecycle events travel in its own signed batches: CS → prefecture (which relays the
batch unchanged) → national server (which checks them as part of the CS's relayed batch, keeps an
index of cards, and forwards them). The national server also derives events from change notices (a
changed card face revokes the signature certificate; death both). It forwards every event, in its own
batches, to the card-management service (``cards``) and the JPKI service (``jpki``); each accepts
``card_event`` items from the national server only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lmdb
from cryptography import x509

from jukinet.domain.card_lifecycle import apply_event
from jukinet.domain.codes import resident_code_problem
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.pki import revoke_all
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.intake import Delivery, Item, Plan
from jukinet.storage import NodeStorage
from jukinet.v1 import cards_pb2

C = cards_pb2
MAX_CARD_EVENT_BYTES = 1024
CS_EVENT_KINDS = frozenset(
    {
        C.CARD_EVENT_KIND_SET_UP,
        C.CARD_EVENT_KIND_ISSUED,
        C.CARD_EVENT_KIND_SUSPENDED,
        C.CARD_EVENT_KIND_RESUMED,
        C.CARD_EVENT_KIND_RETURNED,
        C.CARD_EVENT_KIND_REVOKED,
        C.CARD_EVENT_KIND_FACE_UPDATED,
    }
)
"""What a CS may say about its cards; SIGNATURE_REVOKED and HOLDER_DIED are the national server's."""
ALL_EVENT_KINDS = CS_EVENT_KINDS | {C.CARD_EVENT_KIND_SIGNATURE_REVOKED, C.CARD_EVENT_KIND_HOLDER_DIED}
_HEX = frozenset("0123456789abcdef")
_REASONS = {
    C.CARD_EVENT_KIND_FACE_UPDATED: x509.ReasonFlags.superseded,
    C.CARD_EVENT_KIND_SIGNATURE_REVOKED: x509.ReasonFlags.affiliation_changed,
}


MAX_CERTIFICATE_SERIAL = (1 << 159) - 1
"""RFC 5280 serials are at most 20 octets, positive; the CRL writer refuses a 160-bit one, so a wider one
is refused here, before anything is queued or revoked."""


def _serial_ok(text: str) -> bool:
    return 1 <= len(text) <= 40 and _HEX.issuperset(text) and 0 < int(text, 16) <= MAX_CERTIFICATE_SERIAL


def check_card_events(items: Sequence[Item], origin: NodeId, kinds: frozenset[int] = CS_EVENT_KINDS) -> None:
    """Every event is ``origin``'s to send and well formed; ItemRefused (DENIED or INVALID) at the first
    that is not. A CS speaks only of cards of its own municipality."""
    for position, event in items:

        def refuse(problem: Problem, why: str, pos: int = position) -> ItemRefused:
            return ItemRefused(problem, f"card event #{pos}: {why}", pos)

        size = event.ByteSize()
        if size > MAX_CARD_EVENT_BYTES:
            raise refuse(Problem.INVALID, f"{size} bytes encoded; at most {MAX_CARD_EVENT_BYTES}")
        if event.kind not in kinds:
            raise refuse(Problem.DENIED, f"{origin} may not send events of kind {event.kind}")
        if event.origin != str(origin):
            raise refuse(Problem.DENIED, f"it names {event.origin!r} as its origin, not {origin}")
        if origin.kind is NodeKind.CS and event.municipality_code != origin.code:
            raise refuse(
                Problem.DENIED, f"{origin} may not speak for cards of municipality {event.municipality_code!r}"
            )
        try:
            NodeId.card(event.card_serial)
        except Rejected as exc:
            raise refuse(Problem.INVALID, str(exc)) from None
        problem = resident_code_problem(event.resident_code)
        if problem:
            raise refuse(Problem.INVALID, f"resident_code: {problem}")
        serials = [event.auth_certificate_serial, event.signature_certificate_serial, *event.revoke_serials]
        if len(event.revoke_serials) > 2 or not all(_serial_ok(s) for s in serials if s):
            raise refuse(
                Problem.INVALID, "certificate serials are 1 to 40 lowercase hex digits below 2^159, at most 2 revoked"
            )


def indexed_card_problem(
    card: cards_pb2.CardRecord | None, event: cards_pb2.CardEvent, same_resident: bool = True
) -> str | None:
    """Why a CS's ``event`` does not fit the receiving node's index of that card (None if it does).

    Deny by default: an unknown card may only be SET_UP (and revokes nothing); a known card is never set up
    again, belongs to the municipality that set it up (the event's, checked against its origin before) and
    to the same resident (``same_resident``: the national server, which follows 住民票コード変更), keeps its
    authentication certificate, and an event revokes only that card's own certificate serials."""
    if card is None:
        if event.kind != C.CARD_EVENT_KIND_SET_UP:
            return f"card {event.card_serial} is not known here; only its SET_UP may come first"
        if event.revoke_serials:
            return f"SET_UP of card {event.card_serial} revokes nothing"
        return None
    if event.kind == C.CARD_EVENT_KIND_SET_UP:
        return f"card {event.card_serial} is already set up (by {card.municipality_code}); card serials are unique"
    if card.municipality_code != event.municipality_code:
        return f"card {event.card_serial} is a card of municipality {card.municipality_code}"
    if same_resident and card.resident_code != event.resident_code:
        return f"card {event.card_serial} is not a card of resident {event.resident_code}"
    if event.auth_certificate_serial and event.auth_certificate_serial != card.auth_certificate_serial:
        return f"card {event.card_serial} keeps its authentication certificate 0x{card.auth_certificate_serial}"
    own = {card.auth_certificate_serial, card.signature_certificate_serial} - {""}
    foreign = [s for s in event.revoke_serials if s not in own]
    if foreign:
        return f"0x{foreign[0]} is not a certificate of card {event.card_serial}"
    return None


@dataclass(frozen=True)
class _Apply:
    storage: NodeStorage
    events: list[tuple[int, cards_pb2.CardEvent]]
    pki_dir: Path | None = None  # the JPKI service: revoke in the card CA too

    def apply(self, txn: lmdb.Transaction) -> None:
        cards = self.storage.cards
        for position, event in self.events:
            card = cards.current(txn, event.card_serial)
            if event.origin == "national":
                problem = _derived_problem(card, event)
            else:  # checked by the national server against its index already; checked again here
                problem = indexed_card_problem(card, event, same_resident=False)
            if problem:
                raise ItemRefused(Problem.DENIED, f"card event #{position}: {problem}", position)
            if self.pki_dir is not None and event.revoke_serials:
                reason = _REASONS.get(event.kind, x509.ReasonFlags.cessation_of_operation)
                serials = [int(serial, 16) for serial in event.revoke_serials]
                try:  # idempotent: re-applied, it changes nothing
                    revoke_all(self.pki_dir, "card", serials, reason)
                except (ValueError, TypeError) as exc:  # never a stuck link: this one event is set aside
                    raise ItemRefused(
                        Problem.INVALID, f"card event #{position}: the card CA refused the revocation: {exc}", position
                    ) from None
            cards.put(txn, apply_event(card, event))


def _derived_problem(card: cards_pb2.CardRecord | None, event: cards_pb2.CardEvent) -> str | None:
    """The national server's own events are about cards it indexed from their CS's events: known here, and
    revoking only their own certificates."""
    if card is None:
        return f"card {event.card_serial} is not known here"
    own = {card.auth_certificate_serial, card.signature_certificate_serial} - {""}
    foreign = [s for s in event.revoke_serials if s not in own]
    return f"0x{foreign[0]} is not a certificate of card {event.card_serial}" if foreign else None


class NationalCardEvents:
    """ItemHandler for ``card_event`` items at the card-management service (states) and the JPKI service
    (``pki_dir``: revocations in the card CA, whose CRL every node's trust store reads)."""

    kind = "card_event"

    def __init__(self, storage: NodeStorage, pki_dir: Path | None = None) -> None:
        self._storage = storage
        self._pki_dir = pki_dir

    def check(self, delivery: Delivery, items: Sequence[Item]) -> Plan:
        if delivery.sender.kind is not NodeKind.NATIONAL:
            raise Rejected(
                Problem.DENIED, f"{delivery.sender} is not the national server; only it sends card events here"
            )
        for position, event in items:  # the national server's own, and the CS events it forwards
            try:
                origin = NodeId.parse(event.origin)
            except Rejected as exc:
                raise ItemRefused(Problem.INVALID, f"card event #{position}: origin: {exc}", position) from None
            if origin.kind is NodeKind.NATIONAL:
                check_card_events([(position, event)], origin, ALL_EVENT_KINDS - CS_EVENT_KINDS)
            elif origin.kind is NodeKind.CS:
                check_card_events([(position, event)], origin, CS_EVENT_KINDS)
            else:
                raise ItemRefused(
                    Problem.DENIED, f"card event #{position}: {origin} decides nothing about cards", position
                )
        return _Apply(self._storage, list(items), self._pki_dir)


def card_states(parts: NodeParts) -> NationalCardEvents:
    """The card-management service's intake (see jukinet.server.assembly.TIERS)."""
    return NationalCardEvents(parts.storage)


def jpki_revocations(parts: NodeParts) -> NationalCardEvents:
    """The JPKI service's intake (see jukinet.server.assembly.TIERS)."""
    return NationalCardEvents(parts.storage, parts.config.pki_dir)
