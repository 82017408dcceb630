"""The one signed envelope: what sealing binds, and every check opening makes (software keys; the token
signs the same digest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.pki import (
    SoftwareSigner,
    TrustStore,
    init_pki,
    issue_signing_certificate,
    open_certified,
    open_signed,
    seal,
    seal_payload,
)
from jukinet.pki.envelope import signing_digest
from jukinet.v1 import audit_pb2, envelope_pb2, link_pb2, operator_pb2


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pki")
    init_pki(path)
    return path


def _head(size: int = 3) -> audit_pb2.TreeHead:
    return audit_pb2.TreeHead(node_id="cs:131148", tree_size=size, root_hash=b"\x01" * 32)


def test_a_sealed_message_opens_with_the_signers_key() -> None:
    signer = SoftwareSigner()
    signed = seal(signer, _head())
    assert signed.payload_type == "jukinet.v1.TreeHead"
    assert signed.algorithm == envelope_pb2.SIGNATURE_ALGORITHM_ECDSA_P256_SHA256
    assert signed.key_id == signer.key_id and len(signed.signature) == 64
    assert open_signed(signed, audit_pb2.TreeHead, signer.public_key) == _head()


def test_the_type_is_signed_with_the_payload() -> None:
    signer = SoftwareSigner()
    signed = seal(signer, operator_pb2.SessionClaims(operator_id="operator:131148:x"))
    with pytest.raises(Rejected, match=r"holds jukinet\.v1\.SessionClaims, expected jukinet\.v1\.Receipt") as exc:
        open_signed(signed, link_pb2.Receipt, signer.public_key)
    assert exc.value.problem is Problem.INVALID
    relabelled = envelope_pb2.Signed()
    relabelled.CopyFrom(signed)
    relabelled.payload_type = "jukinet.v1.Receipt"  # same bytes, claimed as another kind: the signature fails
    with pytest.raises(Rejected) as exc:
        open_signed(relabelled, link_pb2.Receipt, signer.public_key)
    assert exc.value.problem is Problem.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("change", "problem", "message"),
    [
        (lambda s: setattr(s, "payload", s.payload + b"\x10\x01"), Problem.UNAUTHENTICATED, "does not verify"),
        (lambda s: setattr(s, "signature", bytes([s.signature[0] ^ 1]) + s.signature[1:]), Problem.UNAUTHENTICATED,
         "does not verify"),
        (lambda s: setattr(s, "signature", s.signature[:63]), Problem.UNAUTHENTICATED, "64 bytes"),
        (lambda s: setattr(s, "key_id", b"\x00" * 32), Problem.DENIED, "not signed by the expected key"),
        (lambda s: setattr(s, "algorithm", 0), Problem.INVALID, "unsupported signature algorithm"),
        (lambda s: setattr(s, "algorithm", 9), Problem.INVALID, "unsupported signature algorithm"),
    ],
)  # fmt: skip
def test_tampering_is_refused(change, problem: Problem, message: str) -> None:
    signer = SoftwareSigner()
    signed = seal(signer, _head())
    change(signed)
    with pytest.raises(Rejected, match=message) as exc:
        open_signed(signed, audit_pb2.TreeHead, signer.public_key)
    assert exc.value.problem is problem


def test_another_key_is_refused() -> None:
    signed = seal(SoftwareSigner(), _head())
    with pytest.raises(Rejected, match="not signed by the expected key"):
        open_signed(signed, audit_pb2.TreeHead, SoftwareSigner().public_key)


def test_payload_bytes_are_signed_as_given() -> None:
    signer = SoftwareSigner()
    payload = _head().SerializeToString()
    signed = seal_payload(signer, "jukinet.v1.TreeHead", payload)
    assert signed.payload == payload
    assert signing_digest("jukinet.v1.TreeHead", payload) != signing_digest("jukinet.v1.Receipt", payload)


def test_certified_envelopes_name_their_signer(pki: Path) -> None:
    trust = TrustStore.load(pki)
    signer = SoftwareSigner()
    certificate = issue_signing_certificate(pki, "node", ["pref:13"], signer.public_key)
    der = certificate.public_bytes(Encoding.DER)
    receipt = link_pb2.Receipt(receiver="pref:13", sender="cs:131148", first_sequence=1, last_sequence=2)
    signed = seal(signer, receipt, der)
    opened, identity = open_certified(signed, link_pb2.Receipt, trust, NodeId.prefecture("13"))
    assert opened == receipt and identity.primary == NodeId.prefecture("13")
    with pytest.raises(Rejected, match="names pref:13, not pref:14") as exc:
        open_certified(signed, link_pb2.Receipt, trust, NodeId.prefecture("14"))
    assert exc.value.problem is Problem.DENIED
    # A certificate of another key: the key id does not match it.
    other = seal(SoftwareSigner(), receipt, der)
    with pytest.raises(Rejected, match="not signed by the expected key"):
        open_certified(other, link_pb2.Receipt, trust, NodeId.prefecture("13"))
    bare = seal(signer, receipt)
    with pytest.raises(Rejected, match="carries no signer certificate"):
        open_certified(bare, link_pb2.Receipt, trust, NodeId.prefecture("13"))


def test_a_certificate_of_another_pki_is_refused(pki: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    init_pki(foreign)
    signer = SoftwareSigner()
    der = issue_signing_certificate(foreign, "node", ["pref:13"], signer.public_key).public_bytes(Encoding.DER)
    signed = seal(signer, link_pb2.Receipt(receiver="pref:13"), der)
    with pytest.raises(Rejected, match="not from a JukiNet issuing CA") as exc:
        open_certified(signed, link_pb2.Receipt, TrustStore.load(pki), NodeId.prefecture("13"))
    assert exc.value.problem is Problem.UNAUTHENTICATED
