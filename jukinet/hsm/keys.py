"""Provisioning non-extractable keys in a token, and reading their public halves."""

from __future__ import annotations

import hashlib
from types import MappingProxyType
from typing import Any, Final

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11x
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from jukinet.hsm.errors import TokenError, TokenFailure
from jukinet.hsm.worker import TokenWorker, translating

# Least privilege: a signing key signs and nothing else (no ECDH derivation, no decryption, no
# (un)wrapping, no sign-recover); the template key encrypts and decrypts and nothing else. Every usage
# attribute is set explicitly, because python-pkcs11 otherwise fills in its defaults (DERIVE for EC
# keys; SIGN, VERIFY, WRAP and UNWRAP for AES keys). Stored keys are also unmodifiable, so a holder of
# the PIN cannot switch a usage back on, and their copies cannot gain one either.
_SIGNING_PRIVATE: Final = MappingProxyType(
    {
        Attribute.SIGN: True,
        Attribute.SIGN_RECOVER: False,
        Attribute.DERIVE: False,
        Attribute.DECRYPT: False,
        Attribute.UNWRAP: False,
        Attribute.EXTRACTABLE: False,
        Attribute.SENSITIVE: True,
        Attribute.PRIVATE: True,
    }
)
_SIGNING_PUBLIC: Final = MappingProxyType(
    {
        Attribute.VERIFY: True,
        Attribute.VERIFY_RECOVER: False,
        Attribute.DERIVE: False,
        Attribute.ENCRYPT: False,
        Attribute.WRAP: False,
    }
)
_AES_TEMPLATE: Final = MappingProxyType(
    {
        Attribute.ENCRYPT: True,
        Attribute.DECRYPT: True,
        Attribute.SIGN: False,
        Attribute.VERIFY: False,
        Attribute.WRAP: False,
        Attribute.UNWRAP: False,
        Attribute.DERIVE: False,
        Attribute.EXTRACTABLE: False,
        Attribute.SENSITIVE: True,
        Attribute.PRIVATE: True,
        Attribute.MODIFIABLE: False,
        Attribute.COPYABLE: False,
    }
)


# The national server's My Number key (HMAC-SHA256): a generic secret that signs (computes MACs) and
# nothing else — no verify (a MAC check is a recomputation), no encryption, no wrapping, no derivation —
# generated inside the token, sensitive, never extractable, unmodifiable and uncopyable.
_HMAC_TEMPLATE: Final = MappingProxyType(
    {
        Attribute.SIGN: True,
        Attribute.VERIFY: False,
        Attribute.ENCRYPT: False,
        Attribute.DECRYPT: False,
        Attribute.WRAP: False,
        Attribute.UNWRAP: False,
        Attribute.DERIVE: False,
        Attribute.EXTRACTABLE: False,
        Attribute.SENSITIVE: True,
        Attribute.PRIVATE: True,
        Attribute.MODIFIABLE: False,
        Attribute.COPYABLE: False,
    }
)
MY_NUMBER_KEY_LABEL: Final = "my-number"
"""Label of the national token's HMAC key that My Numbers are computed with."""
AGENCY_IDENTIFIER_KEY_LABEL: Final = "agency-identifier"
"""Label of the national token's HMAC key that agency identifiers (機関別符号) are computed with: a key
of its own, so that no My Number computation can ever yield an agency identifier or the other way round."""


def find_key(session: pkcs11.Session, cls: ObjectClass, key_type: KeyType, label: str) -> Any | None:
    """The key with this class, type and label, or None (worker thread)."""
    with translating(f"looking up {cls.name} '{label}'"):  # e.g. more than one with that label
        try:
            return session.get_key(object_class=cls, key_type=key_type, label=label)
        except p11x.NoSuchKey:
            return None


def public_key_of(pub: Any) -> ec.EllipticCurvePublicKey:
    """Decode a token EC public key object into a cryptography P-256 key."""
    key = serialization.load_der_public_key(encode_ec_public_key(pub))
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise TokenError(TokenFailure.WRONG_KEY, f"key '{pub.label}' is not an EC P-256 key")
    return key


def key_id_of(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo: the key's identifier throughout JukiNet."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def signing_key_pair(session: pkcs11.Session, key_label: str, token_label: str) -> tuple[Any, Any]:
    """(private, public) token objects of an existing EC key pair; TokenError NO_KEY if a half is missing."""
    priv = find_key(session, ObjectClass.PRIVATE_KEY, KeyType.EC, key_label)
    pub = find_key(session, ObjectClass.PUBLIC_KEY, KeyType.EC, key_label)
    if priv is None or pub is None:
        half = "private" if priv is None else "public"
        raise TokenError(
            TokenFailure.NO_KEY, f"{half} key '{key_label}' not found in token '{token_label}'; provision it first"
        )
    return priv, pub


def ensure_ec_keypair(session: pkcs11.Session, key_label: str) -> None:
    """Generate a P-256 key pair labelled ``key_label`` in the token (worker thread) unless one exists.

    The private half is sensitive, non-extractable and signs only. CKA_ID = key id on both halves, so
    generic PKCS#11 tools pair them as usual; since the id is known only once the key exists and stored
    halves are unmodifiable, the pair is generated as session objects and copied into the token with
    its id (the copies keep CKA_LOCAL, ALWAYS_SENSITIVE and NEVER_EXTRACTABLE). The private half is
    stored last: its presence means the pair is complete.
    """
    if find_key(session, ObjectClass.PRIVATE_KEY, KeyType.EC, key_label) is not None:
        return
    with translating(f"generating EC key pair '{key_label}'"):
        for stray in session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: key_label}):
            stray.destroy()  # the public half of a generation interrupted before its private half was stored
        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
        )
        pub, priv = params.generate_keypair(
            store=False,
            label=key_label,
            public_template=dict(_SIGNING_PUBLIC),
            private_template=dict(_SIGNING_PRIVATE),
        )
        try:
            stored = {Attribute.TOKEN: True, Attribute.ID: key_id_of(public_key_of(pub)), Attribute.MODIFIABLE: False}
            pub.copy(stored)
            priv.copy(stored)
        finally:
            pub.destroy()
            priv.destroy()


def _provision_ec(worker: TokenWorker, token_label: str, pin: str, key_label: str) -> ec.EllipticCurvePublicKey:
    session = worker.acquire(token_label, pin)
    try:
        ensure_ec_keypair(session, key_label)
        _, pub = signing_key_pair(session, key_label, token_label)
        return public_key_of(pub)
    finally:
        worker.release(token_label)


def provision_signing_key(
    worker: TokenWorker, token_label: str, pin: str, key_label: str = "signing"
) -> ec.EllipticCurvePublicKey:
    """Return the public key of the EC P-256 pair labelled key_label, generating it in the token if absent.

    The private key is generated inside the token as sensitive, non-extractable and for signing only.
    Runs on the worker thread, so it is safe alongside TokenSigners of the same process.
    """
    return worker.call(_provision_ec, worker, token_label, pin, key_label)


def _provision_aes(worker: TokenWorker, token_label: str, pin: str, key_label: str) -> None:
    session = worker.acquire(token_label, pin)
    try:
        if find_key(session, ObjectClass.SECRET_KEY, KeyType.AES, key_label) is None:
            with translating(f"generating AES key '{key_label}'"):
                session.generate_key(KeyType.AES, 256, label=key_label, store=True, template=dict(_AES_TEMPLATE))
    finally:
        worker.release(token_label)


def provision_aes_key(worker: TokenWorker, token_label: str, pin: str, key_label: str) -> None:
    """Generate a non-extractable AES-256 key labelled key_label in the token unless it exists; idempotent.
    The key encrypts and decrypts only (no wrapping, no MACs)."""
    worker.call(_provision_aes, worker, token_label, pin, key_label)


def _provision_hmac(worker: TokenWorker, token_label: str, pin: str, key_label: str) -> None:
    session = worker.acquire(token_label, pin)
    try:
        if find_key(session, ObjectClass.SECRET_KEY, KeyType.GENERIC_SECRET, key_label) is None:
            with translating(f"generating HMAC key '{key_label}'"):
                session.generate_key(
                    KeyType.GENERIC_SECRET, 256, label=key_label, store=True, template=dict(_HMAC_TEMPLATE)
                )
    finally:
        worker.release(token_label)


def provision_hmac_key(worker: TokenWorker, token_label: str, pin: str, key_label: str = MY_NUMBER_KEY_LABEL) -> None:
    """Generate a non-extractable 256-bit generic secret labelled key_label in the token unless it exists
    (idempotent). It computes HMAC-SHA256 (CKM_SHA256_HMAC) and nothing else: the national server's My
    Number key, which never leaves its token."""
    worker.call(_provision_hmac, worker, token_label, pin, key_label)
