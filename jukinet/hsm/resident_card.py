"""A resident's My Number card: a PKCS#11 token with two keys and their certificates from the card CA.

As JPKI's card: the user-authentication key "auth" (利用者証明用: proves the holder is present; its
certificate names the card serial only) and the signature key "sign" (署名用: signs documents; its
certificate carries the card face). Both are P-256, generated in the card, sensitive, non-extractable and
for signing only. The card serial is the chip's (the token's serial number), read without a PIN, so the
issuer knows which card it certifies before any certificate exists.

Issuance (the municipality, 交付前設定): create_resident_card, generate_resident_card_keys, then the card
CA certifies both keys and store_resident_card_certificates puts the certificates on the card. A card-face
update (券面事項の更新, after a move) stores a new signature certificate only. Use (the holder, at a
counter): ResidentCard(worker, label).unlock(pin) gives an UnlockedResidentCard that signs with either key.

One PIN unlocks both keys here (a real card has a 4-digit authentication PIN and a 6-16 character
signature PIN); the wrong-PIN counter and lock are the operator card's (jukinet.hsm.smartcard): the same
TokenError reasons, PIN_INCORRECT with ``remaining``, CARD_LOCKED after MAX_PIN_FAILURES.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Mechanism

from jukinet.hsm.errors import TokenError, TokenFailure
from jukinet.hsm.keys import ensure_ec_keypair, key_id_of, public_key_of, signing_key_pair
from jukinet.hsm.smartcard import (
    CardStatus,
    admin_unlock_card,
    card_status,
    login_counted,
    read_certificate,
    store_certificate,
    token_serial,
)
from jukinet.hsm.tokens import init_token
from jukinet.hsm.worker import TokenLogin, TokenWorker, translating

__all__ = [
    "AUTH_KEY_LABEL",
    "SIGN_KEY_LABEL",
    "ResidentCard",
    "UnlockedResidentCard",
    "create_resident_card",
    "generate_resident_card_keys",
    "resident_card_serial",
    "store_resident_card_certificates",
    "unlock_resident_card",
]

AUTH_KEY_LABEL = "auth"  # 利用者証明用
SIGN_KEY_LABEL = "sign"  # 署名用
_HOW_TO_STORE = "store it with store_resident_card_certificates"


# --- worker thread ----------------------------------------------------------------------------------------


def _key(session: pkcs11.Session, label: str, key_label: str) -> tuple[Any, ec.EllipticCurvePublicKey]:
    try:
        priv, pub = signing_key_pair(session, key_label, label)
    except TokenError as exc:
        raise TokenError(exc.reason, f"resident card '{label}' has no '{key_label}' key: {exc}") from None
    return priv, public_key_of(pub)


def _generate(worker: TokenWorker, label: str, pin: str) -> tuple[ec.EllipticCurvePublicKey, ec.EllipticCurvePublicKey]:
    session = login_counted(worker, label, pin)
    try:
        ensure_ec_keypair(session, AUTH_KEY_LABEL)
        ensure_ec_keypair(session, SIGN_KEY_LABEL)
        return _key(session, label, AUTH_KEY_LABEL)[1], _key(session, label, SIGN_KEY_LABEL)[1]
    finally:
        worker.release(label)


def _card_urn(certificate: x509.Certificate) -> list[str]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith("urn:jukinet:card:")]


def _store(
    worker: TokenWorker,
    label: str,
    pin: str,
    auth_certificate: x509.Certificate | None,
    signature_certificate: x509.Certificate | None,
) -> None:
    serial = token_serial(worker, label)
    for certificate in (auth_certificate, signature_certificate):
        if certificate is not None and _card_urn(certificate) != [f"urn:jukinet:card:{serial}"]:
            raise TokenError(
                TokenFailure.WRONG_KEY,
                f"the certificate 0x{certificate.serial_number:x} does not name resident card {serial} ('{label}')",
            )
    session = login_counted(worker, label, pin)
    try:
        pairs = ((AUTH_KEY_LABEL, auth_certificate), (SIGN_KEY_LABEL, signature_certificate))
        keys = {key_label: _key(session, label, key_label)[1] for key_label, cert in pairs if cert is not None}
        for key_label, cert in pairs:  # both checked against their keys before either is written
            if cert is not None and cert.public_key() != keys[key_label]:
                raise TokenError(
                    TokenFailure.WRONG_KEY, f"the certificate is not for the '{key_label}' key of card '{label}'"
                )
        for key_label, cert in pairs:
            if cert is not None:
                store_certificate(session, label, key_label, keys[key_label], cert)
    finally:
        worker.release(label)


# --- any thread -------------------------------------------------------------------------------------------


def create_resident_card(worker: TokenWorker, label: str, pin: str, so_pin: str) -> None:
    """Initialise a blank resident card (a SoftHSM token) with this label, PIN and SO PIN; idempotent.
    Through PKCS#11 in this process, so the PINs appear on no command line."""
    init_token(worker, label, pin, so_pin)


def resident_card_serial(worker: TokenWorker, label: str) -> str:
    """The card serial (the chip's, 16 lowercase hex digits), read without a PIN."""
    return worker.call(token_serial, worker, label)


def generate_resident_card_keys(
    worker: TokenWorker, label: str, pin: str
) -> tuple[ec.EllipticCurvePublicKey, ec.EllipticCurvePublicKey]:
    """(auth, sign) public keys of the card's two key pairs, generating each in the card if absent.

    The private halves are sensitive, non-extractable and sign only. The PIN is counted as at unlock.
    """
    return worker.call(_generate, worker, label, pin)


def store_resident_card_certificates(
    worker: TokenWorker,
    label: str,
    pin: str,
    auth_certificate: x509.Certificate | None = None,
    signature_certificate: x509.Certificate | None = None,
) -> None:
    """Store the card CA's certificates of the card's keys, replacing the ones there (None: keep it).

    TokenError WRONG_KEY, and nothing stored, if a certificate names another card or certifies another key.
    """
    worker.call(_store, worker, label, pin, auth_certificate, signature_certificate)


def unlock_resident_card(worker: TokenWorker, label: str, so_pin: str, new_pin: str | None = None) -> None:
    """The municipality (SO PIN): reset the card's wrong-PIN count, optionally setting a new PIN."""
    worker.call(admin_unlock_card, worker, label, so_pin, new_pin)


class ResidentCard:
    """A resident's My Number card in a reader (a SoftHSM token in development)."""

    def __init__(self, worker: TokenWorker, label: str) -> None:
        self.worker = worker
        self.label = label

    def status(self) -> CardStatus:
        """The card's PIN failure count, read without a PIN."""
        return self.worker.call(card_status, self.worker, self.label)

    @property
    def card_serial(self) -> str:
        """The card serial, read without a PIN."""
        return resident_card_serial(self.worker, self.label)

    def unlock(self, pin: str) -> UnlockedResidentCard:
        """Log in with the holder's PIN: TokenError CARD_LOCKED (the PIN is not even tried) once
        MAX_PIN_FAILURES consecutive wrong PINs were entered, PIN_INCORRECT (with ``remaining``) on a wrong
        PIN, NO_TOKEN, NO_KEY or NO_CERTIFICATE if the card, a key or a certificate is missing."""
        card = UnlockedResidentCard(self.worker, self.label)
        self.worker.call(card._open, pin)
        return card


class UnlockedResidentCard(TokenLogin):
    """A logged-in resident card: signs with its authentication or its signature key (thread-safe)."""

    card_serial: str
    auth_certificate_der: bytes
    signature_certificate_der: bytes

    def __init__(self, worker: TokenWorker, label: str) -> None:
        """Use ResidentCard.unlock()."""
        super().__init__(worker, label, f"resident card '{label}'")
        self.label = label
        self._keys: dict[str, Any] = {}  # worker-thread state, valid for one worker.generation
        self._gen = -1

    def _open(self, pin: str) -> None:
        self.card_serial = token_serial(self.worker, self.label)
        session = login_counted(self.worker, self.label, pin)
        try:
            ders = {}
            for key_label in (AUTH_KEY_LABEL, SIGN_KEY_LABEL):
                priv, pub = _key(session, self.label, key_label)
                self._keys[key_label] = priv
                ders[key_label] = read_certificate(session, self.label, key_label, key_id_of(pub), _HOW_TO_STORE)
            self.auth_certificate_der = ders[AUTH_KEY_LABEL]
            self.signature_certificate_der = ders[SIGN_KEY_LABEL]
            self._gen = self.worker.generation
        except BaseException:
            self._closed = True
            self._keys = {}
            self.worker.release(self.label)
            raise

    def _sign(self, key_label: str, digest: bytes) -> bytes:
        self._check_open()
        session = self.worker.session(self.label)
        if self._gen != self.worker.generation:  # library re-initialised: handles changed
            self._keys = {k: _key(session, self.label, k)[0] for k in (AUTH_KEY_LABEL, SIGN_KEY_LABEL)}
            self._gen = self.worker.generation
        with translating(f"signing with the '{key_label}' key of resident card '{self.label}'"):
            return bytes(self._keys[key_label].sign(digest, mechanism=Mechanism.ECDSA))

    def _forget(self) -> None:
        self._keys = {}

    @property
    def auth_certificate(self) -> x509.Certificate:
        """The user-authentication certificate (card serial only)."""
        return x509.load_der_x509_certificate(self.auth_certificate_der)

    @property
    def signature_certificate(self) -> x509.Certificate:
        """The signature certificate (card face)."""
        return x509.load_der_x509_certificate(self.signature_certificate_der)

    def sign_auth(self, data: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 signature of ``data`` by the authentication key, raw r||s (64 bytes)."""
        self._check_open()
        return self.worker.call(self._sign, AUTH_KEY_LABEL, hashlib.sha256(data).digest())

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 signature of ``data`` by the signature key, raw r||s (64 bytes)."""
        self._check_open()
        return self.worker.call(self._sign, SIGN_KEY_LABEL, hashlib.sha256(data).digest())
