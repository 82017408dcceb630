"""One signed envelope (``jukinet.v1.Signed``) for batches, receipts, sessions and tree heads.

The signature covers ``"jukinet-signed-v1" 0x00 payload_type 0x00 payload``: the payload's message
type is signed with it, so bytes signed as a receipt can never be opened as a session. Opening checks,
in order: the payload type is the one expected, the algorithm is the one JukiNet uses, the key id is
the expected key's, the signature verifies over the exact payload bytes, and only then are the bytes
parsed. Signing hashes in the caller's thread and hands the token a 32-byte digest, so a large batch
costs the token the same as a small one.
"""

from __future__ import annotations

import hashlib
from typing import Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import DecodeError, Message

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.pki.keys import key_id, verify_digest_raw
from jukinet.pki.trust import PeerIdentity, TrustStore
from jukinet.v1 import envelope_pb2

__all__ = ["ALGORITHM", "Signer", "open_certified", "open_signed", "seal", "seal_payload", "signing_digest"]

ALGORITHM = envelope_pb2.SIGNATURE_ALGORITHM_ECDSA_P256_SHA256
_CONTEXT = b"jukinet-signed-v1\x00"
M = TypeVar("M", bound=Message)


class Signer(Protocol):
    """What can seal: a token signer (jukinet.hsm.TokenSigner) or a software key in tests."""

    @property
    def key_id(self) -> bytes: ...

    def sign_digest(self, digest: bytes) -> bytes: ...


def signing_digest(payload_type: str, payload: bytes) -> bytes:
    """SHA-256 of the signing input (see the module docstring)."""
    h = hashlib.sha256(_CONTEXT)
    h.update(payload_type.encode("ascii"))
    h.update(b"\x00")
    h.update(payload)
    return h.digest()


def seal(signer: Signer, message: Message, certificate: bytes = b"") -> envelope_pb2.Signed:
    """Sign ``message`` (serialized once, here) with ``signer``; attach ``certificate`` (DER) if given."""
    return seal_payload(signer, message.DESCRIPTOR.full_name, message.SerializeToString(), certificate)


def seal_payload(signer: Signer, payload_type: str, payload: bytes, certificate: bytes = b"") -> envelope_pb2.Signed:
    """Sign already serialized ``payload`` bytes of message type ``payload_type``."""
    signature = signer.sign_digest(signing_digest(payload_type, payload))
    return envelope_pb2.Signed(
        payload_type=payload_type,
        payload=payload,
        algorithm=ALGORITHM,
        key_id=signer.key_id,
        signature=signature,
        certificate=certificate,
    )


def open_signed(signed: envelope_pb2.Signed, kind: type[M], key: ec.EllipticCurvePublicKey) -> M:
    """Verify ``signed`` against ``key`` and parse its payload as ``kind``; Rejected if anything is off."""
    expected = kind.DESCRIPTOR.full_name
    if signed.payload_type != expected:
        raise Rejected(Problem.INVALID, f"envelope holds {signed.payload_type or 'no type'}, expected {expected}")
    if signed.algorithm != ALGORITHM:
        name = envelope_pb2.SignatureAlgorithm.Name(signed.algorithm) if signed.algorithm in _KNOWN else "unknown"
        raise Rejected(Problem.INVALID, f"{expected}: unsupported signature algorithm {name} ({signed.algorithm})")
    if signed.key_id != key_id(key):
        raise Rejected(Problem.DENIED, f"{expected} was not signed by the expected key")
    verify_digest_raw(key, signing_digest(expected, signed.payload), signed.signature)
    try:
        return kind.FromString(signed.payload)
    except DecodeError as exc:
        raise Rejected(Problem.INVALID, f"signed payload is not a {expected}: {exc}") from exc


def open_certified(
    signed: envelope_pb2.Signed, kind: type[M], trust: TrustStore, signer: NodeId
) -> tuple[M, PeerIdentity]:
    """Open an envelope that carries its signer's certificate, which must be valid and name ``signer``."""
    if not signed.certificate:
        raise Rejected(Problem.UNAUTHENTICATED, f"{kind.DESCRIPTOR.full_name} carries no signer certificate")
    identity = trust.identify_as(signed.certificate, signer)
    return open_signed(signed, kind, identity.public_key), identity


_KNOWN = frozenset(envelope_pb2.SignatureAlgorithm.values())
