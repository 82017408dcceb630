"""Tests for jukinet.node.batches: payload encoding, signing and verification against a real dev PKI.

The token signer is replaced by a software stand-in (same interface: ``public_key``, ``key_id``,
``sign``) so that these unit tests need no PKCS#11 token; the PKI and trust store are real.
"""

from __future__ import annotations

import random
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.timestamp_pb2 import Timestamp
from jukinet.node.batches import (
    ALGORITHM,
    BatchRejected,
    BatchSigner,
    BatchVerifier,
    encode_batch_payload,
)
from jukinet.node.security import Caller

from jukinet.domain.node_ids import NodeId
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki import (
    TrustStore,
    generate_key,
    init_pki,
    issue_signing_certificate,
    issue_tls_certificate,
    key_id,
    sign_ecdsa_raw,
)
from jukinet.v1 import notice_pb2

SENDER = "cs:131148"
OTHER = "cs:131016"


class SoftSigner:
    """Software stand-in for jukinet.hsm.TokenSigner (unit tests only)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self._key = private_key or generate_key()
        self.public_key = self._key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return sign_ecdsa_raw(self._key, data)


def _notice_bytes(rng: random.Random, seq: int, pad: int = 0) -> bytes:
    if pad < 0:  # a tiny notice (< 128 bytes): no record
        return notice_pb2.ChangeNotice(origin=SENDER, sequence=seq).SerializeToString()
    record = synthetic_resident(rng, "131148")
    if pad:
        record.address.text = "丁" * pad  # 3 bytes each in UTF-8
    notice = notice_pb2.ChangeNotice(origin=SENDER, sequence=seq, record=record)
    notice.recorded_at.CopyFrom(Timestamp(seconds=1_700_000_000 + seq))
    return notice.SerializeToString()


def _entries(rng: random.Random, sizes: list[int], first: int = 1) -> list[tuple[int, bytes]]:
    return [(first + i, _notice_bytes(rng, first + i, pad)) for i, pad in enumerate(sizes)]


# -- encoding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pads",
    [
        [-1],  # < 128 bytes: 1-byte length
        [0, -1, 60],  # > 127 bytes: 2-byte varint length
        [6000],  # > 16384 bytes: 3-byte varint length
        [-1, 50, 6000, 0, -1, 45],
    ],
)
def test_encode_batch_payload_parses_as_notice_batch(pads: list[int]) -> None:
    rng = random.Random(7)
    entries = _entries(rng, pads, first=41)
    payload = encode_batch_payload(SENDER, entries, signed_at_seconds=1_700_000_123)
    batch = notice_pb2.NoticeBatch.FromString(payload)

    assert batch.sender == SENDER
    assert batch.first_sequence == 41
    assert batch.last_sequence == 41 + len(entries) - 1
    assert batch.signed_at.seconds == 1_700_000_123
    assert list(batch.notices) == [notice_pb2.ChangeNotice.FromString(raw) for _, raw in entries]
    assert [n.SerializeToString() for n in batch.notices] == [raw for _, raw in entries]

    expected = notice_pb2.NoticeBatch(
        sender=SENDER,
        first_sequence=entries[0][0],
        last_sequence=entries[-1][0],
        notices=[notice_pb2.ChangeNotice.FromString(raw) for _, raw in entries],
    )
    expected.signed_at.seconds = 1_700_000_123
    assert batch == expected
    assert notice_pb2.NoticeBatch.FromString(expected.SerializeToString()) == batch
    # Same total size as the normal encoding (field order may differ, content does not).
    assert len(payload) == len(expected.SerializeToString())


def test_encode_batch_payload_varint_lengths() -> None:
    rng = random.Random(3)
    small, mid, big = (e[1] for e in _entries(rng, [-1, 60, 6000]))
    assert len(small) < 128 <= len(mid) < 16384 <= len(big)
    tag = bytes([0x22])  # field 4, wire type 2
    for raw, header_len in ((small, 1), (mid, 2), (big, 3)):
        payload = encode_batch_payload(SENDER, [(1, raw)], signed_at_seconds=5)
        framed = tag + _varint(len(raw)) + raw
        assert len(_varint(len(raw))) == header_len
        assert framed in payload
        assert list(notice_pb2.NoticeBatch.FromString(payload).notices) == [notice_pb2.ChangeNotice.FromString(raw)]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def test_encode_batch_payload_default_signed_at_is_now() -> None:
    rng = random.Random(1)
    batch = notice_pb2.NoticeBatch.FromString(encode_batch_payload(SENDER, _entries(rng, [0])))
    now = Timestamp()
    now.GetCurrentTime()
    assert abs(batch.signed_at.seconds - now.seconds) <= 5


# -- signing and verification -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    init_pki(d)
    return d


@pytest.fixture(scope="module")
def trust(pki: Path) -> TrustStore:
    return TrustStore.load(pki)


def _caller(pki: Path, trust: TrustStore, node: str, out: Path) -> Caller:
    out.mkdir(parents=True, exist_ok=True)
    cert_path, _ = issue_tls_certificate(pki, "node", [node], out)
    identity = trust.identify(cert_path.read_bytes())
    return Caller(identity, tuple(NodeId.parse(n) for n in identity.node_ids))


@pytest.fixture(scope="module")
def caller(pki: Path, trust: TrustStore, tmp_path_factory: pytest.TempPathFactory) -> Caller:
    return _caller(pki, trust, SENDER, tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def soft() -> SoftSigner:
    return SoftSigner()


@pytest.fixture(scope="module")
def signer(pki: Path, soft: SoftSigner) -> BatchSigner:
    cert = issue_signing_certificate(pki, "node", [SENDER], soft.public_key)
    return BatchSigner(SENDER, soft, cert)  # type: ignore[arg-type]


@pytest.fixture
def entries() -> list[tuple[int, bytes]]:
    return _entries(random.Random(11), [0, 60, 6000], first=100)


def _rejected(verifier: BatchVerifier, signed: notice_pb2.SignedBatch, caller: Caller) -> BatchRejected:
    with pytest.raises(BatchRejected) as info:
        verifier.verify(signed, caller)
    return info.value


def test_valid_batch_verifies(
    signer: BatchSigner, trust: TrustStore, caller: Caller, soft: SoftSigner, entries: list[tuple[int, bytes]]
) -> None:
    signed = signer.sign(entries)
    assert signed.algorithm == ALGORITHM
    assert signed.key_id == soft.key_id
    assert len(signed.signature) == 64
    batch = BatchVerifier(trust).verify(signed, caller)
    assert isinstance(batch, notice_pb2.NoticeBatch)
    assert batch.sender == SENDER
    assert (batch.first_sequence, batch.last_sequence) == (100, 102)
    assert [n.SerializeToString() for n in batch.notices] == [raw for _, raw in entries]
    # Survives a round trip over the wire.
    again = notice_pb2.SignedBatch.FromString(signed.SerializeToString())
    assert BatchVerifier(trust).verify(again, caller) == batch


@pytest.mark.parametrize("where", [0, 37, -1])
def test_tampered_payload_is_unauthenticated(
    signer: BatchSigner, trust: TrustStore, caller: Caller, entries: list[tuple[int, bytes]], where: int
) -> None:
    signed = signer.sign(entries)
    payload = bytearray(signed.payload)
    payload[where] ^= 0x01
    signed.payload = bytes(payload)
    exc = _rejected(BatchVerifier(trust), signed, caller)
    assert exc.status == grpc.StatusCode.UNAUTHENTICATED


def test_tampered_signature_is_unauthenticated(
    signer: BatchSigner, trust: TrustStore, caller: Caller, entries: list[tuple[int, bytes]]
) -> None:
    signed = signer.sign(entries)
    sig = bytearray(signed.signature)
    sig[5] ^= 0x80
    signed.signature = bytes(sig)
    assert _rejected(BatchVerifier(trust), signed, caller).status == grpc.StatusCode.UNAUTHENTICATED
    signed.signature = b""
    assert _rejected(BatchVerifier(trust), signed, caller).status == grpc.StatusCode.UNAUTHENTICATED


def test_signer_of_another_node_is_permission_denied(
    pki: Path, trust: TrustStore, caller: Caller, entries: list[tuple[int, bytes]]
) -> None:
    other = SoftSigner()
    cert = issue_signing_certificate(pki, "node", [OTHER], other.public_key)
    signed = BatchSigner(SENDER, other, cert).sign(entries)  # type: ignore[arg-type]
    exc = _rejected(BatchVerifier(trust), signed, caller)
    assert exc.status == grpc.StatusCode.PERMISSION_DENIED
    assert OTHER in str(exc)


def test_sender_field_not_matching_caller_is_permission_denied(
    pki: Path, trust: TrustStore, caller: Caller, soft: SoftSigner, entries: list[tuple[int, bytes]]
) -> None:
    cert = issue_signing_certificate(pki, "node", [SENDER], soft.public_key)
    signed = BatchSigner(OTHER, soft, cert).sign(entries)  # type: ignore[arg-type]
    exc = _rejected(BatchVerifier(trust), signed, caller)
    assert exc.status == grpc.StatusCode.PERMISSION_DENIED


def test_key_id_mismatch_is_invalid_argument(
    signer: BatchSigner, trust: TrustStore, caller: Caller, entries: list[tuple[int, bytes]]
) -> None:
    signed = signer.sign(entries)
    signed.key_id = bytes(32)
    assert _rejected(BatchVerifier(trust), signed, caller).status == grpc.StatusCode.INVALID_ARGUMENT


def test_unsupported_algorithm_is_invalid_argument(
    signer: BatchSigner, trust: TrustStore, caller: Caller, entries: list[tuple[int, bytes]]
) -> None:
    signed = signer.sign(entries)
    signed.algorithm = notice_pb2.SIGNATURE_ALGORITHM_UNSPECIFIED
    exc = _rejected(BatchVerifier(trust), signed, caller)
    assert exc.status == grpc.StatusCode.INVALID_ARGUMENT
    assert "SIGNATURE_ALGORITHM_UNSPECIFIED" in str(exc)


def test_signer_from_foreign_pki_is_unauthenticated(
    tmp_path: Path, trust: TrustStore, caller: Caller, entries: list[tuple[int, bytes]]
) -> None:
    foreign = tmp_path / "foreign-pki"
    init_pki(foreign)
    soft = SoftSigner()
    cert = issue_signing_certificate(foreign, "node", [SENDER], soft.public_key)
    signed = BatchSigner(SENDER, soft, cert).sign(entries)  # type: ignore[arg-type]
    exc = _rejected(BatchVerifier(trust), signed, caller)
    assert exc.status == grpc.StatusCode.UNAUTHENTICATED
    assert "signer certificate" in str(exc)


def test_garbage_signer_certificate_is_unauthenticated(
    signer: BatchSigner, trust: TrustStore, caller: Caller, entries: list[tuple[int, bytes]]
) -> None:
    signed = signer.sign(entries)
    signed.signer_certificate = b"not a certificate"
    assert _rejected(BatchVerifier(trust), signed, caller).status == grpc.StatusCode.UNAUTHENTICATED


def test_signer_refuses_certificate_of_another_key(pki: Path, soft: SoftSigner) -> None:
    cert = issue_signing_certificate(pki, "node", [SENDER], generate_key().public_key())
    with pytest.raises(ValueError, match="does not match"):
        BatchSigner(SENDER, soft, cert)  # type: ignore[arg-type]


def test_signature_covers_exact_payload(
    signer: BatchSigner, trust: TrustStore, caller: Caller, soft: SoftSigner, entries: list[tuple[int, bytes]]
) -> None:
    # The signature is checked over the payload bytes as sent: if re-encoding the parsed batch gives
    # other bytes (field order), the old signature no longer verifies; a fresh one over them does.
    signed = signer.sign(entries)
    original = signed.payload
    batch = notice_pb2.NoticeBatch.FromString(original)
    reencoded = batch.SerializeToString()
    signed.payload = reencoded
    if reencoded != original:
        assert _rejected(BatchVerifier(trust), signed, caller).status == grpc.StatusCode.UNAUTHENTICATED
    signed.signature = soft.sign(reencoded)
    assert BatchVerifier(trust).verify(signed, caller) == batch


def test_empty_batch_is_invalid_argument(
    pki: Path, trust: TrustStore, caller: Caller, soft: SoftSigner, signer: BatchSigner
) -> None:
    payload = notice_pb2.NoticeBatch(sender=SENDER, first_sequence=1, last_sequence=1).SerializeToString()
    good = signer.sign(_entries(random.Random(2), [0]))
    signed = notice_pb2.SignedBatch(
        payload=payload,
        signature=soft.sign(payload),
        algorithm=ALGORITHM,
        key_id=soft.key_id,
        signer_certificate=good.signer_certificate,
    )
    exc = _rejected(BatchVerifier(trust), signed, caller)
    assert exc.status == grpc.StatusCode.INVALID_ARGUMENT
    assert "empty" in str(exc)


def test_encode_batch_payload_is_byte_identical_to_normal_encoding() -> None:
    entries = _entries(random.Random(5), [-1, 0])
    payload = encode_batch_payload(SENDER, entries, signed_at_seconds=5)
    assert payload == notice_pb2.NoticeBatch.FromString(payload).SerializeToString()
