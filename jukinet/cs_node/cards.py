"""The My Number card lifecycle at the municipality's CS: 交付前設定, 交付, 一時停止 / 再開, 返納 / 廃止,
券面事項の更新. Callers are operator terminals of this municipality with a session holding 'manage-cards'.

Pre-issuance setup (交付前設定): the terminal generates the card's two keys inside the card
(jukinet.hsm.resident_card) and sends their public halves with the card serial; the CS checks the holder
is a current resident of this municipality with no other live card, has the card CA certify both keys
(the authentication certificate naming the card only, the signature certificate with the holder's
current card face) and, in ONE transaction, stores the card (state SET_UP), queues a ``card_event`` for
its prefecture (relayed to the national server, which forwards it to the card-management and JPKI
services) and writes the audit entry. The terminal then writes both certificates to the card.

Who certifies: :class:`CardIssuer`. In the development network the CS process signs with the card CA of
the network's PKI directly (:class:`DevCardIssuer`): issuance stays synchronous — the certificates go on
the card while the resident is at the counter — without a synchronous CS → JPKI call, which would need
the network directory (not built) to find and authenticate the JPKI service. Revocation, which may
wait, goes the JPKI service's way (events over links). Certificates issued for a setup that then fails
to commit are revoked at once.

:meth:`CardLifecycle.holder_of` / :meth:`CardLifecycle.cards_of` tell the services that accept a
presented card (特例転入, 広域交付) whose card it is and whether it may be presented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import lmdb
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.domain.card_lifecycle import (
    LIVE_STATES,
    MAX_CARDS_PER_RESIDENT,
    event_for,
    presentable_problem,
    transition,
)
from jukinet.domain.cards import CardFace, card_face_of
from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.codes import ResidentCode
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.operators import Role
from jukinet.domain.quoting import quoted
from jukinet.pki import issue_card_auth_certificate, issue_card_signature_certificate, revoke
from jukinet.server.audit import Auditor
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import OperatorWithRole, TerminalOf
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, cards_pb2, cards_pb2_grpc, identity_pb2, link_pb2

A = audit_pb2
C = cards_pb2
MAX_PUBLIC_KEY_BYTES = 256


class CardIssuer(Protocol):
    """Who certifies a card's keys (the JPKI service's card CA)."""

    def certify_auth(self, card_serial: str, key: ec.EllipticCurvePublicKey) -> x509.Certificate: ...

    def certify_signature(
        self, card_serial: str, key: ec.EllipticCurvePublicKey, face: CardFace
    ) -> x509.Certificate: ...

    def withdraw(self, certificate: x509.Certificate) -> None:
        """Revoke a certificate issued for a change that was not stored."""
        ...


@dataclass(frozen=True)
class DevCardIssuer:
    """The development network's card CA, signing in this process (see the module docstring)."""

    pki_dir: Path

    def certify_auth(self, card_serial: str, key: ec.EllipticCurvePublicKey) -> x509.Certificate:
        return issue_card_auth_certificate(self.pki_dir, card_serial, key)

    def certify_signature(self, card_serial: str, key: ec.EllipticCurvePublicKey, face: CardFace) -> x509.Certificate:
        return issue_card_signature_certificate(self.pki_dir, card_serial, key, face)

    def withdraw(self, certificate: x509.Certificate) -> None:
        revoke(self.pki_dir, "card", certificate.serial_number, x509.ReasonFlags.cessation_of_operation)


def _public_key(der: bytes, what: str) -> ec.EllipticCurvePublicKey:
    if not der or len(der) > MAX_PUBLIC_KEY_BYTES:
        raise Rejected(
            Problem.INVALID,
            f"{what} must be a DER SubjectPublicKeyInfo of at most {MAX_PUBLIC_KEY_BYTES} bytes, got {len(der)}",
        )
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError) as e:
        raise Rejected(Problem.INVALID, f"{what} is not a DER public key: {e}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise Rejected(Problem.INVALID, f"{what} is not an EC P-256 key")
    return key


def _card_serial(text: str) -> str:
    try:
        return NodeId.card(text).code or ""
    except Rejected:
        raise Rejected(Problem.INVALID, f"card_serial {quoted(text)} is not 16 lowercase hex digits") from None


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


class CardLifecycle:
    """The plain object behind CardService (no gRPC)."""

    def __init__(
        self,
        node_id: NodeId,
        upstream: NodeId,
        storage: NodeStorage,
        auditor: Auditor,
        issuer: CardIssuer,
        clock: Clock = SYSTEM_CLOCK,
        enqueued: Callable[[str], None] = lambda destination: None,
    ) -> None:
        self.node_id = node_id
        self._upstream = str(upstream)
        self._storage = storage
        self._auditor = auditor
        self._issuer = issuer
        self._clock = clock
        self._enqueued = enqueued

    # -- what other services ask --------------------------------------------------------------------------

    def holder_of(self, card_serial: str) -> cards_pb2.CardRecord | None:
        """The card (holder's resident code, state), or None if this municipality did not set it up."""
        return self._storage.cards.holder_of(card_serial)

    def cards_of(self, resident_code: str) -> list[cards_pb2.CardRecord]:
        """A resident's cards with their states."""
        return self._storage.cards.cards_of(resident_code)

    def presented_holder(self, card_serial: str) -> str:
        """The resident code of the holder of a card verified as presented (CardPresenceVerifier), if the
        card may be presented: issued, not suspended, returned or revoked; else Rejected UNAUTHENTICATED."""
        card = self.holder_of(card_serial)
        problem = presentable_problem(card, card_serial)
        if problem is not None:
            raise problem
        assert card is not None
        return card.resident_code

    # -- the lifecycle ----------------------------------------------------------------------------------

    def set_up(self, request: cards_pb2.SetUpCardRequest, caller: Caller) -> cards_pb2.CardRecord:
        resident_code = str(ResidentCode.parse(request.resident_code))
        serial = _card_serial(request.card_serial)
        auth_key = _public_key(request.auth_public_key, "auth_public_key")
        sign_key = _public_key(request.signature_public_key, "signature_public_key")
        if auth_key == sign_key:
            raise Rejected(Problem.INVALID, "the card's authentication and signature keys must differ")
        with self._storage.env.read() as txn:
            record = self._check_set_up(txn, resident_code, serial)
        face = card_face_of(record)
        auth = self._issuer.certify_auth(serial, auth_key)
        sign = self._issuer.certify_signature(serial, sign_key, face)
        card = C.CardRecord(
            card_serial=serial,
            resident_code=resident_code,
            municipality_code=self.node_id.code,
            state=C.CARD_STATE_SET_UP,
            auth_certificate_serial=format(auth.serial_number, "x"),
            signature_certificate_serial=format(sign.serial_number, "x"),
            auth_certificate=_der(auth),
            signature_certificate=_der(sign),
        )
        now = self._clock.now_ms()
        card.updated_at.FromMilliseconds(now)

        def apply(txn: lmdb.Transaction) -> None:
            self._check_set_up(txn, resident_code, serial)  # again: another setup may have committed since
            self._store(txn, card, C.CARD_EVENT_KIND_SET_UP, now)
            self._auditor.append(txn, A.AUDIT_ACTION_SET_UP_CARD, A.AUDIT_OUTCOME_SUCCESS, caller, resident_code,
                                 f"card {serial}; certificates 0x{card.auth_certificate_serial}, "
                                 f"0x{card.signature_certificate_serial}")  # fmt: skip

        try:
            self._storage.env.submit(apply).result()
        except BaseException:
            for certificate in (auth, sign):
                self._issuer.withdraw(certificate)
            raise
        self._enqueued(self._upstream)
        return card

    def _check_set_up(self, txn: lmdb.Transaction, resident_code: str, serial: str) -> identity_pb2.IdentityRecord:
        record = self._storage.records.current(txn, resident_code)
        if record is None or record.address.municipality_code != self.node_id.code:
            raise Rejected(Problem.NOT_FOUND, f"no resident {resident_code} at {self.node_id}")
        if record.status != identity_pb2.RECORD_STATUS_ACTIVE:
            raise Rejected(Problem.CONFLICT, f"resident {resident_code} is a removed record (除票); no card")
        if self._storage.cards.current(txn, serial) is not None:
            raise Rejected(Problem.ALREADY_EXISTS, f"card {serial} is already set up")
        cards = self._storage.cards.of_resident(txn, resident_code)
        live = [c.card_serial for c in cards if c.state in LIVE_STATES]
        if live:
            raise Rejected(Problem.CONFLICT, f"resident {resident_code} already holds card {live[0]}; return it first")
        if len(cards) >= MAX_CARDS_PER_RESIDENT:
            raise Rejected(Problem.EXHAUSTED, f"resident {resident_code} has had {len(cards)} cards here")
        return record

    def _store(
        self, txn: lmdb.Transaction, card: cards_pb2.CardRecord, kind: int, now: int, old_signature: str = ""
    ) -> None:
        event = event_for(card, kind, str(self.node_id), now, old_signature)
        revoked = set(event.revoke_serials)
        if card.auth_certificate_serial in revoked:
            card.auth_revoked = True
        if card.signature_certificate_serial in revoked:
            card.signature_revoked = True
        self._storage.cards.put(txn, card)
        self._storage.queues.enqueue(txn, self._upstream, [link_pb2.LinkItem(card_event=event).SerializeToString()])

    def change_state(self, card_serial: str, action: int, caller: Caller) -> cards_pb2.CardRecord:
        serial = _card_serial(card_serial)
        now = self._clock.now_ms()

        def apply(txn: lmdb.Transaction) -> cards_pb2.CardRecord:
            card = self._owned(txn, serial)
            t = transition(card, action)
            card.state = t.to
            card.updated_at.FromMilliseconds(now)
            self._store(txn, card, t.event, now)
            self._auditor.append(txn, A.AUDIT_ACTION_CHANGE_CARD_STATE, A.AUDIT_OUTCOME_SUCCESS, caller,
                                 card.resident_code, f"card {serial}: {C.CardAction.Name(action)} → "
                                 f"{C.CardState.Name(t.to)}")  # fmt: skip
            return card

        card = self._storage.env.submit(apply).result()
        self._enqueued(self._upstream)
        return card

    def update_face(self, card_serial: str, signature_public_key: bytes, caller: Caller) -> cards_pb2.CardRecord:
        serial = _card_serial(card_serial)
        sign_key = _public_key(signature_public_key, "signature_public_key")
        with self._storage.env.read() as txn:
            card = self._owned(txn, serial)
            record = self._live_holder(txn, card)
        certificate = self._issuer.certify_signature(serial, sign_key, card_face_of(record))
        now = self._clock.now_ms()

        def apply(txn: lmdb.Transaction) -> cards_pb2.CardRecord:
            card = self._owned(txn, serial)
            self._live_holder(txn, card)
            old = "" if card.signature_revoked else card.signature_certificate_serial
            card.signature_certificate_serial = format(certificate.serial_number, "x")
            card.signature_certificate = _der(certificate)
            card.signature_revoked = False
            card.updated_at.FromMilliseconds(now)
            self._store(txn, card, C.CARD_EVENT_KIND_FACE_UPDATED, now, old)
            detail = f"card {serial}: signature certificate 0x{card.signature_certificate_serial}"
            detail += f", 0x{old} revoked" if old else ""
            self._auditor.append(
                txn, A.AUDIT_ACTION_UPDATE_CARD_FACE, A.AUDIT_OUTCOME_SUCCESS, caller, card.resident_code, detail
            )
            return card

        try:
            card = self._storage.env.submit(apply).result()
        except BaseException:
            self._issuer.withdraw(certificate)
            raise
        self._enqueued(self._upstream)
        return card

    def _owned(self, txn: lmdb.Transaction, serial: str) -> cards_pb2.CardRecord:
        card = self._storage.cards.current(txn, serial)
        if card is None:
            raise Rejected(Problem.NOT_FOUND, f"no card {serial} at {self.node_id}")
        return card

    def _live_holder(self, txn: lmdb.Transaction, card: cards_pb2.CardRecord) -> identity_pb2.IdentityRecord:
        if card.state not in LIVE_STATES:
            raise Rejected(Problem.CONFLICT, f"card {card.card_serial} is {C.CardState.Name(card.state)}")
        record = self._storage.records.current(txn, card.resident_code)
        if record is None or record.status != identity_pb2.RECORD_STATUS_ACTIVE:
            raise Rejected(Problem.CONFLICT, f"the holder of card {card.card_serial} is no current resident here")
        if record.address.municipality_code != self.node_id.code:
            raise Rejected(Problem.CONFLICT, f"the holder of card {card.card_serial} has moved away")
        return record

    def list(self, request: cards_pb2.ListCardsRequest, caller: Caller) -> list[cards_pb2.CardRecord]:
        which = request.WhichOneof("of")
        if which == "card_serial":
            serial = _card_serial(request.card_serial)
            card = self.holder_of(serial)
            cards, target = ([card] if card is not None else []), serial
        elif which == "resident_code":
            target = str(ResidentCode.parse(request.resident_code))
            cards = self.cards_of(target)
        else:
            raise Rejected(Problem.INVALID, "ask for a resident_code or a card_serial")
        self._auditor.record(A.AUDIT_ACTION_LIST_CARDS, A.AUDIT_OUTCOME_SUCCESS, caller, target, f"{len(cards)} cards")
        return cards


class CardRpc(cards_pb2_grpc.CardServiceServicer):
    def __init__(self, cards: CardLifecycle, auditor: Auditor, blocking: Blocking) -> None:
        self._cards = cards
        self.auditor = auditor
        self.blocking = blocking
        self.card_clerks = OperatorWithRole(TerminalOf.of_nodes([cards.node_id]), Role.MANAGE_CARDS)

    @guarded("card_clerks", audit=A.AUDIT_ACTION_SET_UP_CARD)
    def SetUpCard(self, request: cards_pb2.SetUpCardRequest, caller: Caller) -> cards_pb2.SetUpCardResponse:
        return C.SetUpCardResponse(card=self._cards.set_up(request, caller))

    @guarded("card_clerks", audit=A.AUDIT_ACTION_CHANGE_CARD_STATE)
    def ChangeCardState(
        self, request: cards_pb2.ChangeCardStateRequest, caller: Caller
    ) -> cards_pb2.ChangeCardStateResponse:
        return C.ChangeCardStateResponse(card=self._cards.change_state(request.card_serial, request.action, caller))

    @guarded("card_clerks", audit=A.AUDIT_ACTION_UPDATE_CARD_FACE)
    def UpdateCardFace(
        self, request: cards_pb2.UpdateCardFaceRequest, caller: Caller
    ) -> cards_pb2.UpdateCardFaceResponse:
        card = self._cards.update_face(request.card_serial, request.signature_public_key, caller)
        return C.UpdateCardFaceResponse(card=card)

    @guarded("card_clerks", audit=A.AUDIT_ACTION_LIST_CARDS)
    def ListCards(self, request: cards_pb2.ListCardsRequest, caller: Caller) -> cards_pb2.ListCardsResponse:
        return C.ListCardsResponse(cards=self._cards.list(request, caller))


def card_lifecycle(parts: NodeParts) -> CardLifecycle:
    """The CS's card lifecycle object (also what 特例転入 and 広域交付 ask about presented cards)."""
    if parts.config.upstream is None:
        raise Rejected(Problem.BROKEN, "a CS needs an upstream prefecture for its card events")
    return CardLifecycle(
        parts.config.node_id,
        parts.config.upstream,
        parts.storage,
        parts.auditor,
        DevCardIssuer(parts.config.pki_dir),
        parts.clock,
        parts.links.wake,
    )


def card_service(parts: NodeParts) -> ServiceBinding:
    """The CS tier's card service (see jukinet.server.assembly.TIERS)."""
    return bind(CardRpc(card_lifecycle(parts), parts.auditor, parts.blocking))
