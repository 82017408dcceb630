"""The operator's IC card: a PKCS#11 token with the operator's authentication key and its certificate.

Enrolment (administrator): create_card, generate_card_key, store_card_certificate. Use (terminal, at
login): OperatorCard(module, label).unlock(pin) gives an UnlockedCard that signs with the card key and
carries the card's certificate. In development every card is its own SoftHSM token. Like every token call
of the process, card calls run on the owner thread (jukinet.hsm.owner), so a card unlocked next to a
TokenSigner of another token does not disturb it; the card's login is shared through owner.acquire.

PIN retry limit. A real IC card counts consecutive wrong PINs inside the chip and blocks the PIN after
MAX_PIN_FAILURES; only the administrator (SO PIN) can unblock it. SoftHSM has no retry limit at all, so
JukiNet keeps the count on the card itself: a public token data object labelled "jukinet-pin-failures",
read and written through an unauthenticated R/W session. Every user-PIN login of this module checks it
before C_Login (a locked card's PIN is not even tried), increments it on a wrong PIN and resets it on
success; admin_unlock resets it. This is a limitation of the emulation: the object is public, so software
that bypasses jukinet can read, reset or delete it and guess PINs without limit. The product honours the
counter; only a real card enforces it.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, CertificateType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11x

from jukinet.hsm import owner
from jukinet.hsm.errors import HsmError
from jukinet.hsm.keys import ensure_ec_keypair, key_id_of, public_key_of, signing_key_pair
from jukinet.hsm.softhsm import SoftHsmConfig

MAX_PIN_FAILURES = 5
CARD_KEY_LABEL = "card-auth"
FAILURES_LABEL = "jukinet-pin-failures"


class CardError(HsmError):
    """An operator card problem (missing card, key or certificate, wrong SO PIN, card in use)."""


class WrongPin(CardError):
    """The user PIN was wrong; `remaining` tries are left before the card locks."""

    def __init__(self, message: str, remaining: int) -> None:
        super().__init__(message)
        self.remaining = remaining

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self), self.remaining)


class CardLocked(CardError):
    """MAX_PIN_FAILURES consecutive wrong PINs: the PIN is not tried until an administrator unlocks the card."""


@dataclass(frozen=True)
class CardStatus:
    """The PIN failure state of a card."""

    label: str
    failures: int
    locked: bool
    remaining_tries: int


def _locked(label: str) -> CardLocked:
    return CardLocked(
        f"card '{label}' is locked after {MAX_PIN_FAILURES} consecutive wrong PINs; an administrator must unlock it"
    )


# --- owner thread -----------------------------------------------------------------------------------------


def _card_token(module: str, label: str) -> pkcs11.Token:
    try:
        return owner._token(module, label)
    except HsmError as exc:
        raise CardError(f"card '{label}': {exc}") from None


def _public_session(module: str, label: str) -> pkcs11.Session:
    """A R/W session without login: enough for the public failure counter."""
    try:
        return _card_token(module, label).open(rw=True)
    except p11x.PKCS11Error as exc:
        raise CardError(f"cannot open a session on card '{label}': {type(exc).__name__} {exc}") from exc


def _counters(session: pkcs11.Session) -> list[Any]:
    return list(session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: FAILURES_LABEL}))


def _count_of(obj: Any) -> int:
    try:
        count = int(bytes(obj[Attribute.VALUE]).decode("ascii"))
    except (ValueError, UnicodeDecodeError, p11x.PKCS11Error):
        return MAX_PIN_FAILURES  # unreadable counter: fail closed
    return count if count >= 0 else MAX_PIN_FAILURES


def _read_failures(session: pkcs11.Session) -> int:
    """The card's consecutive PIN failures (0 when the counter object does not exist yet)."""
    try:
        return max((_count_of(obj) for obj in _counters(session)), default=0)
    except p11x.PKCS11Error as exc:
        raise CardError(f"cannot read the PIN failure counter of the card: {type(exc).__name__} {exc}") from exc


def _write_failures(session: pkcs11.Session, count: int) -> None:
    """Replace the counter object (SoftHSM cannot modify CKA_VALUE of a data object in place).

    A raised count is created before the old object is destroyed and a lowered one after, so a crash in
    between leaves the higher count (read as the maximum) rather than losing a failure.
    """
    try:
        old = _counters(session)
    except p11x.PKCS11Error as exc:
        raise CardError(f"cannot read the PIN failure counter of the card: {type(exc).__name__} {exc}") from exc
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
    try:
        if raise_first:
            session.create_object(template)
        for obj in old:
            obj.destroy()
        if not raise_first:
            session.create_object(template)
    except p11x.PKCS11Error as exc:
        raise CardError(f"cannot write the PIN failure counter of the card: {type(exc).__name__} {exc}") from exc


def _login_counted(module: str, label: str, pin: str) -> pkcs11.Session:
    """owner.acquire() guarded by the card's failure counter; pair with owner.release()."""
    public = _public_session(module, label)
    try:
        failures = _read_failures(public)
        if failures >= MAX_PIN_FAILURES:
            raise _locked(label)
        try:
            session = owner.acquire(module, label, pin)
        except HsmError as exc:
            reason = str(exc)
            if reason.startswith("wrong PIN"):  # owner's message for CKR_PIN_INCORRECT and a shared-login mismatch
                failures += 1
                _write_failures(public, failures)
                if failures >= MAX_PIN_FAILURES:
                    raise _locked(label) from None
                remaining = MAX_PIN_FAILURES - failures
                raise WrongPin(f"wrong PIN for card '{label}'; {remaining} tries left", remaining) from None
            if "is locked" in reason:  # a real card that enforces its own limit
                raise _locked(label) from None
            raise CardError(f"card '{label}': {reason}") from exc
        try:
            if failures:
                _write_failures(public, 0)
        except BaseException:
            owner.release(module, label)
            raise
        return session
    finally:
        public.close()  # an unauthenticated session object: closing it does not log the token out


def _card_key(session: pkcs11.Session, label: str) -> tuple[Any, ec.EllipticCurvePublicKey]:
    try:
        priv, pub = signing_key_pair(session, CARD_KEY_LABEL, label)
    except HsmError as exc:
        raise CardError(f"card '{label}' has no key: {exc}") from None
    return priv, public_key_of(pub)


def _certificates(session: pkcs11.Session) -> list[Any]:
    return list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: CARD_KEY_LABEL}))


def _der_integer(value: int) -> bytes:
    """DER INTEGER (CKA_SERIAL_NUMBER holds the DER encoding of the certificate serial)."""
    body = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    size = len(body)
    if size < 0x80:
        return b"\x02" + bytes([size]) + body
    size_bytes = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return b"\x02" + bytes([0x80 | len(size_bytes)]) + size_bytes + body


def _generate(module: str, label: str, pin: str) -> ec.EllipticCurvePublicKey:
    session = _login_counted(module, label, pin)
    try:
        ensure_ec_keypair(session, CARD_KEY_LABEL)
        return _card_key(session, label)[1]
    finally:
        owner.release(module, label)


def _store_certificate(module: str, label: str, pin: str, certificate: x509.Certificate) -> None:
    session = _login_counted(module, label, pin)
    try:
        kid = key_id_of(_card_key(session, label)[1])
        cert_key = certificate.public_key()
        if not isinstance(cert_key, ec.EllipticCurvePublicKey) or key_id_of(cert_key) != kid:
            raise CardError(f"the certificate is not for the key of card '{label}'")
        for old in _certificates(session):
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
        owner.release(module, label)


def _read_certificate(session: pkcs11.Session, label: str, kid: bytes) -> bytes:
    certs = _certificates(session)
    matching = [c for c in certs if bytes(c[Attribute.ID]) == kid] if len(certs) > 1 else certs
    if not matching:
        raise CardError(f"card '{label}' carries no certificate; store one with store_card_certificate")
    der = bytes(matching[0][Attribute.VALUE])
    cert_key = x509.load_der_x509_certificate(der).public_key()
    if not isinstance(cert_key, ec.EllipticCurvePublicKey) or key_id_of(cert_key) != kid:
        raise CardError(f"the certificate on card '{label}' is not for the card's key")
    return der


def _status(module: str, label: str) -> CardStatus:
    public = _public_session(module, label)
    try:
        failures = _read_failures(public)
    finally:
        public.close()
    return CardStatus(label, failures, failures >= MAX_PIN_FAILURES, max(0, MAX_PIN_FAILURES - failures))


def _admin_unlock(module: str, label: str, so_pin: str, new_pin: str | None) -> None:
    try:
        session = _card_token(module, label).open(rw=True, so_pin=so_pin)
    except p11x.PinIncorrect:
        raise CardError(f"wrong SO PIN for card '{label}'") from None
    except (p11x.AnotherUserAlreadyLoggedIn, p11x.UserAlreadyLoggedIn):
        raise CardError(
            f"card '{label}' is in use in this process; close it before an administrator unlocks it"
        ) from None
    except p11x.PKCS11Error as exc:
        raise CardError(f"cannot log in to card '{label}' as SO: {type(exc).__name__} {exc}") from exc
    try:
        if new_pin is not None:
            try:
                session.init_pin(new_pin)
            except p11x.PKCS11Error as exc:
                raise CardError(f"cannot set a new PIN on card '{label}': {type(exc).__name__} {exc}") from exc
        _write_failures(session, 0)
    finally:
        session.close()  # logs the SO out


# --- any thread -------------------------------------------------------------------------------------------


def _run(fn: Any, *args: Any) -> Any:
    try:
        return owner.call(fn, *args)
    finally:
        owner.stop_if_idle()


def create_card(softhsm: SoftHsmConfig, label: str, pin: str, so_pin: str) -> None:
    """Initialise a new card (a SoftHSM token) with this label, user PIN and SO PIN; idempotent."""
    softhsm.init_token(label, pin, so_pin)


def generate_card_key(module: Path, label: str, pin: str) -> ec.EllipticCurvePublicKey:
    """Return the public half of the card's EC P-256 key "card-auth", generating it in the card if absent.

    The private key is sensitive and non-extractable, for signing only. The PIN is checked against the
    card's failure counter like at unlock.
    """
    result: ec.EllipticCurvePublicKey = _run(_generate, str(module), label, pin)
    return result


def store_card_certificate(module: Path, label: str, pin: str, certificate: x509.Certificate) -> None:
    """Store the certificate of the card key on the card (CKO_CERTIFICATE, label "card-auth", CKA_ID = key
    id), replacing an existing one. CardError if the certificate is for another key."""
    _run(_store_certificate, str(module), label, pin, certificate)


def admin_unlock(module: Path, label: str, so_pin: str, new_pin: str | None = None) -> None:
    """Administrator: reset the card's PIN failure count with its SO PIN, optionally setting a new user PIN
    (C_InitPIN). CardError on a wrong SO PIN or while the card is unlocked in this process."""
    _run(_admin_unlock, str(module), label, so_pin, new_pin)


class OperatorCard:
    """An operator's IC card in a terminal's reader (a SoftHSM token in development)."""

    def __init__(self, module: Path, label: str) -> None:
        self.module = Path(module)
        self.label = label

    def status(self) -> CardStatus:
        """The card's PIN failure count, read without a PIN."""
        result: CardStatus = _run(_status, str(self.module), self.label)
        return result

    def unlock(self, pin: str) -> UnlockedCard:
        """Log in with the operator's PIN.

        Raises CardLocked (without trying the PIN) once MAX_PIN_FAILURES consecutive wrong PINs were
        entered, WrongPin (with `remaining`) on a wrong PIN, CardError if key or certificate are missing.
        """
        card = UnlockedCard(str(self.module), self.label)
        try:
            owner.call(card._open, pin)
        except BaseException:
            owner.stop_if_idle()
            raise
        return card


class UnlockedCard(owner.OwnedLogin):
    """A logged-in operator card: signs with the card key (thread-safe; token calls on the owner thread)."""

    public_key: ec.EllipticCurvePublicKey
    key_id: bytes
    certificate_der: bytes

    def __init__(self, module: str, label: str) -> None:
        """Use OperatorCard.unlock()."""
        self._module = module
        self.label = label
        self._close_lock = threading.Lock()
        self._closed = False
        self._priv: Any = None  # owner-thread state, valid for one owner.generation
        self._gen = -1

    def _open(self, pin: str) -> None:
        session = _login_counted(self._module, self.label, pin)
        try:
            self._priv, self.public_key = _card_key(session, self.label)
            self.key_id = key_id_of(self.public_key)
            self.certificate_der = _read_certificate(session, self.label, self.key_id)
            self._gen = owner.generation
        except BaseException:
            owner.release(self._module, self.label)
            self._closed = True
            raise

    def _sign(self, digest: bytes) -> bytes:
        if self._closed:
            raise CardError(f"card '{self.label}' is closed")
        if self._gen != owner.generation:  # library re-initialised: handles changed
            self._priv = _card_key(owner.session(self._module, self.label), self.label)[0]
            self._gen = owner.generation
        try:
            return bytes(self._priv.sign(digest, mechanism=Mechanism.ECDSA))
        except p11x.PKCS11Error as exc:
            raise CardError(f"signing with card '{self.label}' failed: {type(exc).__name__} {exc}") from exc

    def _close(self) -> None:
        if not self._closed:
            self._priv = None
            self._closed = True
            owner.release(self._module, self.label)

    @property
    def certificate(self) -> x509.Certificate:
        """The card's certificate, parsed."""
        return x509.load_der_x509_certificate(self.certificate_der)

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 signature of data by the card key, raw r||s (64 bytes)."""
        digest = hashlib.sha256(data).digest()
        if self._closed:
            raise CardError(f"card '{self.label}' is closed")
        result: bytes = owner.call(self._sign, digest)
        return result
