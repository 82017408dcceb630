"""EC P-256 key helpers: key ids, PEM I/O and raw (r||s) ECDSA-SHA256 signatures.

The HSM package produces raw 64-byte r||s signatures (PKCS#11 ``CKM_ECDSA`` over a SHA-256 digest
computed in Python); :func:`verify_ecdsa_raw` checks those with a public key from a certificate.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature, encode_dss_signature

from jukinet.domain.errors import Problem, Rejected
from jukinet.pki.layout import atomic_write

_COORD = 32  # bytes per P-256 scalar


_PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))
_SHA256 = ec.ECDSA(hashes.SHA256())


def _bad_signature(why: str) -> Rejected:
    return Rejected(Problem.UNAUTHENTICATED, why)


def generate_key() -> ec.EllipticCurvePrivateKey:
    """A fresh EC P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo (32 bytes)."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write an unencrypted PKCS#8 PEM private key with mode 0600."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    atomic_write(path, pem, mode=0o600)


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load an EC private key written by :func:`write_private_key`."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} does not hold an EC private key")
    return key


def sign_ecdsa_raw(private_key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """Sign ``data`` with ECDSA-P256-SHA256 and return raw r||s (software keys: dev and tests)."""
    r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(_COORD, "big") + s.to_bytes(_COORD, "big")


class SoftwareSigner:
    """A signing key held in memory. For tests and load generators only: a node's keys live in its token."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self._key = private_key or generate_key()
        self.public_key = self._key.public_key()
        self.key_id = key_id(self.public_key)

    def sign_digest(self, digest: bytes) -> bytes:
        return sign_digest_raw(self._key, digest)

    def sign(self, data: bytes) -> bytes:
        return sign_ecdsa_raw(self._key, data)


def sign_digest_raw(private_key: ec.EllipticCurvePrivateKey, digest: bytes) -> bytes:
    """Sign a SHA-256 ``digest`` with ECDSA-P256 and return raw r||s (software keys: dev and tests)."""
    r, s = decode_dss_signature(private_key.sign(digest, _PREHASHED))
    return r.to_bytes(_COORD, "big") + s.to_bytes(_COORD, "big")


def verify_ecdsa_raw(public_key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> None:
    """Verify a raw r||s ECDSA-P256-SHA256 signature over ``data``; Rejected (UNAUTHENTICATED) if bad."""
    _verify(public_key, data, signature, _SHA256)


def verify_digest_raw(public_key: ec.EllipticCurvePublicKey, digest: bytes, signature: bytes) -> None:
    """As :func:`verify_ecdsa_raw`, over an already computed SHA-256 ``digest``."""
    _verify(public_key, digest, signature, _PREHASHED)


def _verify(public_key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes, algorithm: ec.ECDSA) -> None:
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP256R1):
        raise _bad_signature("verification key is not an EC P-256 public key")
    if len(signature) != 2 * _COORD:
        raise _bad_signature(f"raw ECDSA P-256 signature must be {2 * _COORD} bytes (r||s), got {len(signature)}")
    r = int.from_bytes(signature[:_COORD], "big")
    s = int.from_bytes(signature[_COORD:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), data, algorithm)
    except InvalidSignature:
        raise _bad_signature(
            f"ECDSA P-256 signature does not verify for key id {key_id(public_key).hex()[:16]}"
        ) from None
