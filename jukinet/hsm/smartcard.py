"""What every card shares (an operator's IC card, a resident's My Number card): a PIN failure counter kept
on the card, the login that honours it, the SO unlock, and certificates stored next to their keys.

PIN retry limit. A real IC card counts consecutive wrong PINs inside the chip and blocks the PIN after
MAX_PIN_FAILURES; only the administrator (SO PIN) can unblock it. SoftHSM has no retry limit at all, so
JukiNet keeps the count on the card itself: a public token data object labelled "jukinet-pin-failures",
read and written through an unauthenticated R/W session. Every user-PIN login of a card checks it before
C_Login (a locked card's PIN is not even tried), increments it on a wrong PIN and resets it on success;
admin_unlock_card resets it. This is a limitation of the emulation: the object is public, so software
that bypasses jukinet can read, reset or delete it and guess PINs without limit. The product honours the
counter; only a real card enforces it.

Refusals are TokenErrors: PIN_INCORRECT with ``remaining`` tries, then CARD_LOCKED (``remaining`` 0).
Every function here runs on the worker thread (inside ``worker.call``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, CertificateType, ObjectClass
from pkcs11 import exceptions as p11x

from jukinet.hsm.errors import TokenError, TokenFailure
from jukinet.hsm.keys import key_id_of
from jukinet.hsm.worker import TokenWorker, translating

__all__ = [
    "FAILURES_LABEL",
    "MAX_PIN_FAILURES",
    "CardStatus",
    "admin_unlock_card",
    "as_card_error",
    "card_status",
    "login_counted",
    "read_certificate",
    "store_certificate",
    "token_serial",
]

MAX_PIN_FAILURES = 5
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


def as_card_error(label: str, exc: TokenError) -> TokenError:
    """A worker error about the card's token, worded for the card (same reason)."""
    return TokenError(exc.reason, f"card '{label}': {exc}", exc.remaining)


def _public_session(worker: TokenWorker, label: str) -> pkcs11.Session:
    """A R/W session without login: enough for the public failure counter."""
    try:
        return worker.public_session(label)
    except TokenError as exc:
        raise as_card_error(label, exc) from None


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


def login_counted(worker: TokenWorker, label: str, pin: str) -> pkcs11.Session:
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
            raise as_card_error(label, exc) from exc
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


def card_status(worker: TokenWorker, label: str) -> CardStatus:
    """The card's PIN failure count, read without a PIN."""
    public = _public_session(worker, label)
    try:
        failures = _read_failures(public, label)
    finally:
        with translating(f"closing a session on card '{label}'"):
            public.close()
    return CardStatus(label, failures, failures >= MAX_PIN_FAILURES, max(0, MAX_PIN_FAILURES - failures))


def admin_unlock_card(worker: TokenWorker, label: str, so_pin: str, new_pin: str | None) -> None:
    """Reset the failure count with the SO PIN, optionally setting a new user PIN."""
    try:
        session = worker.so_session(label, so_pin)
    except TokenError as exc:
        if exc.reason is TokenFailure.PIN_INCORRECT:
            raise TokenError(exc.reason, f"wrong SO PIN for card '{label}'") from None
        if exc.reason is TokenFailure.IN_USE:
            raise TokenError(
                exc.reason, f"card '{label}' is in use in this process; close it before an administrator unlocks it"
            ) from None
        raise as_card_error(label, exc) from exc
    try:
        if new_pin is not None:
            with translating(f"setting a new PIN on card '{label}'"):
                session.init_pin(new_pin)
        _write_failures(session, label, 0)
    finally:
        with translating(f"logging the SO out of card '{label}'"):
            session.close()


def token_serial(worker: TokenWorker, label: str) -> str:
    """The card's chip serial (CK_TOKEN_INFO.serialNumber; SoftHSM: 16 hex digits), read without a PIN."""
    try:
        token = worker.token(label)
    except TokenError as exc:
        raise as_card_error(label, exc) from None
    with translating(f"reading the serial of card '{label}'"):
        raw = token.serial
    return (raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)).strip().lower()


def _der_integer(value: int) -> bytes:
    """DER INTEGER (CKA_SERIAL_NUMBER holds the DER encoding of the certificate serial)."""
    body = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    size = len(body)
    if size < 0x80:
        return b"\x02" + bytes([size]) + body
    size_bytes = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return b"\x02" + bytes([0x80 | len(size_bytes)]) + size_bytes + body


def _certificates(session: pkcs11.Session, label: str, cert_label: str) -> list[Any]:
    with translating(f"reading the certificates of card '{label}'"):
        return list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: cert_label}))


def store_certificate(
    session: pkcs11.Session, label: str, cert_label: str, key: ec.EllipticCurvePublicKey, certificate: x509.Certificate
) -> None:
    """Store ``certificate`` of the card key ``key`` (CKO_CERTIFICATE labelled ``cert_label``, CKA_ID = key
    id), replacing the certificates of that label. TokenError WRONG_KEY if it certifies another key."""
    kid = key_id_of(key)
    cert_key = certificate.public_key()
    if not isinstance(cert_key, ec.EllipticCurvePublicKey) or key_id_of(cert_key) != kid:
        raise TokenError(
            TokenFailure.WRONG_KEY, f"the certificate is not for the key of card '{label}' (its '{cert_label}' key)"
        )
    with translating(f"storing the certificate on card '{label}'"):
        for old in _certificates(session, label, cert_label):
            old.destroy()
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.LABEL: cert_label,
                Attribute.ID: kid,
                Attribute.SUBJECT: certificate.subject.public_bytes(),
                Attribute.ISSUER: certificate.issuer.public_bytes(),
                Attribute.SERIAL_NUMBER: _der_integer(certificate.serial_number),
                Attribute.VALUE: certificate.public_bytes(serialization.Encoding.DER),
            }
        )


def read_certificate(session: pkcs11.Session, label: str, cert_label: str, kid: bytes, how_to_store: str) -> bytes:
    """DER of the certificate labelled ``cert_label`` for the key with id ``kid``; TokenError NO_CERTIFICATE
    if the card carries none, WRONG_KEY if it certifies another key."""
    certs = _certificates(session, label, cert_label)
    with translating(f"reading the certificate of card '{label}'"):
        matching = [c for c in certs if bytes(c[Attribute.ID]) == kid] if len(certs) > 1 else certs
        if not matching:
            raise TokenError(
                TokenFailure.NO_CERTIFICATE,
                f"card '{label}' carries no certificate for its '{cert_label}' key; {how_to_store}",
            )
        der = bytes(matching[0][Attribute.VALUE])
    cert_key = x509.load_der_x509_certificate(der).public_key()
    if not isinstance(cert_key, ec.EllipticCurvePublicKey) or key_id_of(cert_key) != kid:
        raise TokenError(
            TokenFailure.WRONG_KEY, f"the '{cert_label}' certificate on card '{label}' is not for the card's key"
        )
    return der
