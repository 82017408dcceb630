"""The operator's IC card: a PKCS#11 token with the operator's authentication key and its certificate.

Enrolment (administrator): create_card, generate_card_key, store_card_certificate. Use (terminal, at
login): OperatorCard(worker, label).unlock(pin) gives an UnlockedCard that signs with the card key and
carries the card's certificate. In development every card is its own SoftHSM token. Like every token call
of the process, card calls run on the process's TokenWorker thread, so a card unlocked next to a
TokenSigner of another token does not disturb it; the card's login is shared through worker.acquire.

The PIN failure counter (MAX_PIN_FAILURES, then locked until an administrator unlocks the card) and the
certificate objects are shared with residents' cards: jukinet.hsm.smartcard says how and why.

Refusals are TokenErrors: PIN_INCORRECT with ``remaining`` tries, then CARD_LOCKED (``remaining`` 0).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Mechanism

from jukinet.hsm.errors import TokenError
from jukinet.hsm.keys import ensure_ec_keypair, key_id_of, public_key_of, signing_key_pair
from jukinet.hsm.smartcard import (
    FAILURES_LABEL,
    MAX_PIN_FAILURES,
    CardStatus,
    admin_unlock_card,
    card_status,
    login_counted,
    read_certificate,
    store_certificate,
)
from jukinet.hsm.tokens import init_token
from jukinet.hsm.worker import TokenLogin, TokenWorker, translating

__all__ = [
    "CARD_KEY_LABEL",
    "FAILURES_LABEL",
    "MAX_PIN_FAILURES",
    "CardStatus",
    "OperatorCard",
    "UnlockedCard",
    "admin_unlock",
    "create_card",
    "generate_card_key",
    "store_card_certificate",
]

CARD_KEY_LABEL = "card-auth"
_HOW_TO_STORE = "store one with store_card_certificate"


# --- worker thread ----------------------------------------------------------------------------------------


def _card_key(session: pkcs11.Session, label: str) -> tuple[Any, ec.EllipticCurvePublicKey]:
    try:
        priv, pub = signing_key_pair(session, CARD_KEY_LABEL, label)
    except TokenError as exc:
        raise TokenError(exc.reason, f"card '{label}' has no key: {exc}") from None
    return priv, public_key_of(pub)


def _generate(worker: TokenWorker, label: str, pin: str) -> ec.EllipticCurvePublicKey:
    session = login_counted(worker, label, pin)
    try:
        ensure_ec_keypair(session, CARD_KEY_LABEL)
        return _card_key(session, label)[1]
    finally:
        worker.release(label)


def _store_certificate(worker: TokenWorker, label: str, pin: str, certificate: x509.Certificate) -> None:
    session = login_counted(worker, label, pin)
    try:
        store_certificate(session, label, CARD_KEY_LABEL, _card_key(session, label)[1], certificate)
    finally:
        worker.release(label)


# --- any thread -------------------------------------------------------------------------------------------


def create_card(worker: TokenWorker, label: str, pin: str, so_pin: str) -> None:
    """Initialise a new card (a SoftHSM token) with this label, user PIN and SO PIN; idempotent. Through
    PKCS#11 in this process (jukinet.hsm.tokens), so the PINs appear on no command line."""
    init_token(worker, label, pin, so_pin)


def generate_card_key(worker: TokenWorker, label: str, pin: str) -> ec.EllipticCurvePublicKey:
    """Return the public half of the card's EC P-256 key "card-auth", generating it in the card if absent.

    The private key is sensitive and non-extractable, for signing only. The PIN is checked against the
    card's failure counter like at unlock.
    """
    return worker.call(_generate, worker, label, pin)


def store_card_certificate(worker: TokenWorker, label: str, pin: str, certificate: x509.Certificate) -> None:
    """Store the certificate of the card key on the card (CKO_CERTIFICATE, label "card-auth", CKA_ID = key
    id), replacing an existing one. TokenError WRONG_KEY if the certificate is for another key."""
    worker.call(_store_certificate, worker, label, pin, certificate)


def admin_unlock(worker: TokenWorker, label: str, so_pin: str, new_pin: str | None = None) -> None:
    """Administrator: reset the card's PIN failure count with its SO PIN, optionally setting a new user PIN
    (C_InitPIN). TokenError PIN_INCORRECT on a wrong SO PIN, IN_USE while the card is unlocked in this process."""
    worker.call(admin_unlock_card, worker, label, so_pin, new_pin)


class OperatorCard:
    """An operator's IC card in a terminal's reader (a SoftHSM token in development)."""

    def __init__(self, worker: TokenWorker, label: str) -> None:
        self.worker = worker
        self.label = label

    def status(self) -> CardStatus:
        """The card's PIN failure count, read without a PIN."""
        return self.worker.call(card_status, self.worker, self.label)

    def unlock(self, pin: str) -> UnlockedCard:
        """Log in with the operator's PIN.

        TokenError with reason CARD_LOCKED (the PIN is not even tried) once MAX_PIN_FAILURES consecutive
        wrong PINs were entered, PIN_INCORRECT (with ``remaining``) on a wrong PIN, NO_TOKEN, NO_KEY or
        NO_CERTIFICATE if the card, its key or its certificate are missing.
        """
        card = UnlockedCard(self.worker, self.label)
        self.worker.call(card._open, pin)
        return card


class UnlockedCard(TokenLogin):
    """A logged-in operator card: signs with the card key (thread-safe; token calls on the worker thread)."""

    public_key: ec.EllipticCurvePublicKey
    key_id: bytes
    certificate_der: bytes

    def __init__(self, worker: TokenWorker, label: str) -> None:
        """Use OperatorCard.unlock()."""
        super().__init__(worker, label, f"card '{label}'")
        self.label = label
        self._priv: Any = None  # worker-thread state, valid for one worker.generation
        self._gen = -1

    def _open(self, pin: str) -> None:
        session = login_counted(self.worker, self.label, pin)
        try:
            self._priv, self.public_key = _card_key(session, self.label)
            self.key_id = key_id_of(self.public_key)
            self.certificate_der = read_certificate(session, self.label, CARD_KEY_LABEL, self.key_id, _HOW_TO_STORE)
            self._gen = self.worker.generation
        except BaseException:
            self._closed = True
            self.worker.release(self.label)
            raise

    def _sign(self, digest: bytes) -> bytes:
        self._check_open()
        session = self.worker.session(self.label)
        if self._gen != self.worker.generation:  # library re-initialised: handles changed
            self._priv = _card_key(session, self.label)[0]
            self._gen = self.worker.generation
        with translating(f"signing with card '{self.label}'"):
            return bytes(self._priv.sign(digest, mechanism=Mechanism.ECDSA))

    def _forget(self) -> None:
        self._priv = None

    @property
    def certificate(self) -> x509.Certificate:
        """The card's certificate, parsed."""
        return x509.load_der_x509_certificate(self.certificate_der)

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 signature of data by the card key, raw r||s (64 bytes)."""
        digest = hashlib.sha256(data).digest()
        self._check_open()
        return self.worker.call(self._sign, digest)
