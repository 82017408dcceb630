"""The operator's IC card: a PKCS#11 token with the operator's authentication key and its certificate.

Enrolment (administrator): create_card, generate_card_key, store_card_certificate. Use (terminal, at
login): OperatorCard(worker, label).unlock(pin) gives an UnlockedCard that signs with the card key and
carries the card's certificate. In development every card is its own SoftHSM token. Like every token call
of the process, card calls run on the process's TokenWorker thread, so a card unlocked next to a
TokenSigner of another token does not disturb it; the card's login is shared through worker.acquire.

PIN retry limit. A real IC card counts consecutive wrong PINs inside the chip and blocks the PIN after
MAX_PIN_FAILURES; only the administrator (SO PIN) can unblock it. SoftHSM has no retry limit at all, so
JukiNet keeps the count on the card itself: a public token data object labelled "jukinet-pin-failures",
read and written through an unauthenticated R/W session. Every user-PIN login of this module checks it
before C_Login (a locked card's PIN is not even tried), increments it on a wrong PIN and resets it on
success; admin_unlock resets it. This is a limitation of the emulation: the object is public, so software
that bypasses jukinet can read, reset or delete it and guess PINs without limit. The product honours the
counter; only a real card enforces it.

Refusals are TokenErrors: PIN_INCORRECT with ``remaining`` tries, then CARD_LOCKED (``remaining`` 0).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, CertificateType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11x

from jukinet.hsm.errors import TokenError, TokenFailure
from jukinet.hsm.keys import ensure_ec_keypair, key_id_of, public_key_of, signing_key_pair
from jukinet.hsm.tokens import init_token
from jukinet.hsm.worker import TokenLogin, TokenWorker, translating

__all__ = [
    "CARD_KEY_LABEL",
    "MAX_PIN_FAILURES",
    "CardStatus",
    "OperatorCard",
    "UnlockedCard",
    "admin_unlock",
    "create_card",
    "generate_card_key",
    "store_card_certificate",
]

MAX_PIN_FAILURES = 5
CARD_KEY_LABEL = "card-auth"
FAILURES_LABEL = "jukinet-pin-failures"


@dataclass(frozen=True)
class CardStatus:
    """The PIN failure state of a card."""

    label: str
    failures: int
    locked: bool
    remaining_tries: int


def _locked(label: str) -> TokenError:
    return TokenError(
        TokenFailure.CARD_LOCKED,
        f"card '{label}' is locked after {MAX_PIN_FAILURES} consecutive wrong PINs; an administrator must unlock it",
        remaining=0,
    )


def _as_card(label: str, exc: TokenError) -> TokenError:
    """A worker error about the card's token, worded for the card (same reason)."""
    return TokenError(exc.reason, f"card '{label}': {exc}", exc.remaining)


# --- worker thread ----------------------------------------------------------------------------------------


def _public_session(worker: TokenWorker, label: str) -> pkcs11.Session:
    """A R/W session without login: enough for the public failure counter."""
    try:
        return worker.public_session(label)
    except TokenError as exc:
        raise _as_card(label, exc) from None


def _counters(session: pkcs11.Session) -> list[Any]:
    return list(session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: FAILURES_LABEL}))


def _count_of(obj: Any) -> int:
    try:
        count = int(bytes(obj[Attribute.VALUE]).decode("ascii"))
    except (ValueError, UnicodeDecodeError, p11x.PKCS11Error):
        return MAX_PIN_FAILURES  # unreadable counter: fail closed
    return count if count >= 0 else MAX_PIN_FAILURES


def _read_failures(session: pkcs11.Session, label: str) -> int:
    """The card's consecutive PIN failures (0 when the counter object does not exist yet)."""
    with translating(f"reading the PIN failure counter of card '{label}'"):
        return max((_count_of(obj) for obj in _counters(session)), default=0)


def _write_failures(session: pkcs11.Session, label: str, count: int) -> None:
    """Replace the counter object (SoftHSM cannot modify CKA_VALUE of a data object in place).

    A raised count is created before the old object is destroyed and a lowered one after, so a crash in
    between leaves the higher count (read as the maximum) rather than losing a failure.
    """
    with translating(f"reading the PIN failure counter of card '{label}'"):
        old = _counters(session)
    template = {
        Attribute.CLASS: ObjectClass.DATA,
        Attribute.TOKEN: True,
        Attribute.PRIVATE: False,
        Attribute.MODIFIABLE: True,
        Attribute.LABEL: FAILURES_LABEL,
        Attribute.APPLICATION: "jukinet",
        Attribute.VALUE: str(count).encode("ascii"),
    }
    raise_first = count >= max((_count_of(obj) for obj in old), default=0)
    with translating(f"writing the PIN failure counter of card '{label}'"):
        if raise_first:
            session.create_object(template)
        for obj in old:
            obj.destroy()
        if not raise_first:
            session.create_object(template)


def _login_counted(worker: TokenWorker, label: str, pin: str) -> pkcs11.Session:
    """worker.acquire() guarded by the card's failure counter; pair with worker.release()."""
    public = _public_session(worker, label)
    try:
        failures = _read_failures(public, label)
        if failures >= MAX_PIN_FAILURES:
            raise _locked(label)
        try:
            session = worker.acquire(label, pin)
        except TokenError as exc:
            if exc.reason is TokenFailure.PIN_INCORRECT:  # CKR_PIN_INCORRECT, or not the PIN of the shared login
                failures += 1
                _write_failures(public, label, failures)
                if failures >= MAX_PIN_FAILURES:
                    raise _locked(label) from None
                remaining = MAX_PIN_FAILURES - failures
                raise TokenError(
                    TokenFailure.PIN_INCORRECT, f"wrong PIN for card '{label}'; {remaining} tries left", remaining
                ) from None
            if exc.reason is TokenFailure.PIN_LOCKED:  # a real card that enforces its own limit
                raise _locked(label) from None
            raise _as_card(label, exc) from exc
        try:
            if failures:
                _write_failures(public, label, 0)
        except BaseException:
            worker.release(label)
            raise
        return session
    finally:
        with translating(f"closing a session on card '{label}'"):
            public.close()  # an unauthenticated session object: closing it does not log the token out


def _card_key(session: pkcs11.Session, label: str) -> tuple[Any, ec.EllipticCurvePublicKey]:
    try:
        priv, pub = signing_key_pair(session, CARD_KEY_LABEL, label)
    except TokenError as exc:
        raise TokenError(exc.reason, f"card '{label}' has no key: {exc}") from None
    return priv, public_key_of(pub)


def _certificates(session: pkcs11.Session, label: str) -> list[Any]:
    with translating(f"reading the certificates of card '{label}'"):
        return list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: CARD_KEY_LABEL}))


def _der_integer(value: int) -> bytes:
    """DER INTEGER (CKA_SERIAL_NUMBER holds the DER encoding of the certificate serial)."""
    body = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    size = len(body)
    if size < 0x80:
        return b"\x02" + bytes([size]) + body
    size_bytes = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return b"\x02" + bytes([0x80 | len(size_bytes)]) + size_bytes + body


def _generate(worker: TokenWorker, label: str, pin: str) -> ec.EllipticCurvePublicKey:
    session = _login_counted(worker, label, pin)
    try:
        ensure_ec_keypair(session, CARD_KEY_LABEL)
        return _card_key(session, label)[1]
    finally:
        worker.release(label)


def _store_certificate(worker: TokenWorker, label: str, pin: str, certificate: x509.Certificate) -> None:
    session = _login_counted(worker, label, pin)
    try:
        kid = key_id_of(_card_key(session, label)[1])
        cert_key = certificate.public_key()
        if not isinstance(cert_key, ec.EllipticCurvePublicKey) or key_id_of(cert_key) != kid:
            raise TokenError(TokenFailure.WRONG_KEY, f"the certificate is not for the key of card '{label}'")
        with translating(f"storing the certificate on card '{label}'"):
            for old in _certificates(session, label):
                old.destroy()
            session.create_object(
                {
                    Attribute.CLASS: ObjectClass.CERTIFICATE,
                    Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                    Attribute.LABEL: CARD_KEY_LABEL,
                    Attribute.ID: kid,
                    Attribute.SUBJECT: certificate.subject.public_bytes(),
                    Attribute.ISSUER: certificate.issuer.public_bytes(),
                    Attribute.SERIAL_NUMBER: _der_integer(certificate.serial_number),
                    Attribute.VALUE: certificate.public_bytes(serialization.Encoding.DER),
                }
            )
    finally:
        worker.release(label)


def _read_certificate(session: pkcs11.Session, label: str, kid: bytes) -> bytes:
    certs = _certificates(session, label)
    with translating(f"reading the certificate of card '{label}'"):
        matching = [c for c in certs if bytes(c[Attribute.ID]) == kid] if len(certs) > 1 else certs
        if not matching:
            raise TokenError(
                TokenFailure.NO_CERTIFICATE,
                f"card '{label}' carries no certificate; store one with store_card_certificate",
            )
        der = bytes(matching[0][Attribute.VALUE])
    cert_key = x509.load_der_x509_certificate(der).public_key()
    if not isinstance(cert_key, ec.EllipticCurvePublicKey) or key_id_of(cert_key) != kid:
        raise TokenError(TokenFailure.WRONG_KEY, f"the certificate on card '{label}' is not for the card's key")
    return der


def _status(worker: TokenWorker, label: str) -> CardStatus:
    public = _public_session(worker, label)
    try:
        failures = _read_failures(public, label)
    finally:
        with translating(f"closing a session on card '{label}'"):
            public.close()
    return CardStatus(label, failures, failures >= MAX_PIN_FAILURES, max(0, MAX_PIN_FAILURES - failures))


def _admin_unlock(worker: TokenWorker, label: str, so_pin: str, new_pin: str | None) -> None:
    try:
        session = worker.so_session(label, so_pin)
    except TokenError as exc:
        if exc.reason is TokenFailure.PIN_INCORRECT:
            raise TokenError(exc.reason, f"wrong SO PIN for card '{label}'") from None
        if exc.reason is TokenFailure.IN_USE:
            raise TokenError(
                exc.reason, f"card '{label}' is in use in this process; close it before an administrator unlocks it"
            ) from None
        raise _as_card(label, exc) from exc
    try:
        if new_pin is not None:
            with translating(f"setting a new PIN on card '{label}'"):
                session.init_pin(new_pin)
        _write_failures(session, label, 0)
    finally:
        with translating(f"logging the SO out of card '{label}'"):
            session.close()


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
    worker.call(_admin_unlock, worker, label, so_pin, new_pin)


class OperatorCard:
    """An operator's IC card in a terminal's reader (a SoftHSM token in development)."""

    def __init__(self, worker: TokenWorker, label: str) -> None:
        self.worker = worker
        self.label = label

    def status(self) -> CardStatus:
        """The card's PIN failure count, read without a PIN."""
        return self.worker.call(_status, self.worker, self.label)

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
        session = _login_counted(self.worker, self.label, pin)
        try:
            self._priv, self.public_key = _card_key(session, self.label)
            self.key_id = key_id_of(self.public_key)
            self.certificate_der = _read_certificate(session, self.label, self.key_id)
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
