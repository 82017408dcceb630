"""Signed notice batches: one token signature per batch, verified in software before anything is stored.

The signed payload is a serialized ``NoticeBatch``. Outbox entries are already serialized
``ChangeNotice`` messages, so the payload is assembled by appending each entry as a length-delimited
field 4 to the serialized header: valid protobuf, byte for byte what ``NoticeBatch`` would encode,
without parsing and re-encoding every notice on the send path.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from google.protobuf.message import DecodeError

from jukinet.hsm import TokenSigner
from jukinet.node.security import Caller, Refusal
from jukinet.pki import InvalidSignatureError, TrustStore, UntrustedCertificate, key_id, verify_ecdsa_raw
from jukinet.v1 import notice_pb2

_NOTICES_TAG = bytes([(4 << 3) | 2])  # NoticeBatch.notices: field 4, length-delimited
ALGORITHM = notice_pb2.SIGNATURE_ALGORITHM_ECDSA_P256_SHA256


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_batch_payload(
    sender: str, entries: Sequence[tuple[int, bytes]], signed_at_seconds: int | None = None
) -> bytes:
    """Serialized NoticeBatch for outbox ``entries`` [(sequence, ChangeNotice bytes)], in order.

    Fields are written in field-number order (1-3, the notices as field 4, then 5), as
    ``SerializeToString`` would write them.
    """
    header = notice_pb2.NoticeBatch(sender=sender, first_sequence=entries[0][0], last_sequence=entries[-1][0])
    trailer = notice_pb2.NoticeBatch()
    if signed_at_seconds is None:
        trailer.signed_at.GetCurrentTime()
    else:
        trailer.signed_at.seconds = signed_at_seconds
    parts = [header.SerializeToString()]
    for _, notice in entries:
        parts.append(_NOTICES_TAG + _varint(len(notice)) + notice)
    parts.append(trailer.SerializeToString())
    return b"".join(parts)


class BatchSigner:
    """Signs outbox batches with the node's token key and attaches the signing certificate."""

    def __init__(self, sender: str, signer: TokenSigner, certificate: x509.Certificate) -> None:
        if certificate.public_key().public_numbers() != signer.public_key.public_numbers():
            raise ValueError("the signing certificate does not match the token's signing key")
        self.sender = sender
        self._signer = signer
        self._certificate_der = certificate.public_bytes(Encoding.DER)
        self._key_id = signer.key_id

    def sign(self, entries: Sequence[tuple[int, bytes]]) -> notice_pb2.SignedBatch:
        payload = encode_batch_payload(self.sender, entries)
        return notice_pb2.SignedBatch(
            payload=payload,
            signature=self._signer.sign(payload),
            algorithm=ALGORITHM,
            key_id=self._key_id,
            signer_certificate=self._certificate_der,
        )


class BatchRejected(Refusal):
    """A batch that must not be stored."""


class BatchVerifier:
    """Checks a SignedBatch came from the TLS peer itself, unaltered, before it is parsed for storage."""

    def __init__(self, trust: TrustStore) -> None:
        self._trust = trust

    def verify(self, signed: notice_pb2.SignedBatch, caller: Caller) -> notice_pb2.NoticeBatch:
        if signed.algorithm != ALGORITHM:
            raise BatchRejected(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unsupported signature algorithm {notice_pb2.SignatureAlgorithm.Name(signed.algorithm)}",
            )
        try:
            signer = self._trust.identify(signed.signer_certificate, expect="node")
        except UntrustedCertificate as exc:
            raise BatchRejected(grpc.StatusCode.UNAUTHENTICATED, f"signer certificate: {exc}") from exc
        if set(signer.node_ids) != set(caller.identity.node_ids):
            raise BatchRejected(
                grpc.StatusCode.PERMISSION_DENIED,
                f"batch signed by {', '.join(signer.node_ids)} but sent by {caller.primary}",
            )
        public_key = signer.certificate.public_key()
        if signed.key_id != key_id(public_key):
            raise BatchRejected(grpc.StatusCode.INVALID_ARGUMENT, "key_id does not match the signer certificate's key")
        try:
            verify_ecdsa_raw(public_key, signed.payload, signed.signature)
        except InvalidSignatureError as exc:
            raise BatchRejected(
                grpc.StatusCode.UNAUTHENTICATED,
                f"batch signature does not verify against {caller.primary}'s signing key: {exc}",
            ) from exc
        try:
            batch = notice_pb2.NoticeBatch.FromString(signed.payload)
        except DecodeError as exc:
            raise BatchRejected(grpc.StatusCode.INVALID_ARGUMENT, f"payload is not a NoticeBatch: {exc}") from exc
        if batch.sender not in caller.identity.node_ids:
            raise BatchRejected(
                grpc.StatusCode.PERMISSION_DENIED,
                f"batch names sender {batch.sender!r}, not {caller.primary}",
            )
        if not batch.notices:
            raise BatchRejected(grpc.StatusCode.INVALID_ARGUMENT, "empty batch")
        return batch
