"""Session tokens: what the node signs, and everything the verifier refuses (software key stands in
for the node's token key, in this unit test only)."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from jukinet.node.sessions import SessionIssuer, SessionRejected, SessionVerifier
from jukinet.pki import key_id
from jukinet.pki.keys import sign_ecdsa_raw
from jukinet.v1 import node_state_pb2, operator_pb2

OPERATOR = "operator:131148:clerk-01"
TERMINAL = b"\x11" * 32


class SoftSigner:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.key_id = key_id(self.key.public_key())

    def sign(self, data: bytes) -> bytes:
        return sign_ecdsa_raw(self.key, data)


@pytest.fixture
def operators() -> dict[str, node_state_pb2.OperatorRecord]:
    record = node_state_pb2.OperatorRecord(
        info=operator_pb2.OperatorInfo(operator_id=OPERATOR, status=operator_pb2.OPERATOR_STATUS_ACTIVE)
    )
    return {OPERATOR: record}


def _pair(operators, ttl: int = 60, node: str = "cs:131148"):
    signer = SoftSigner()
    verifier = SessionVerifier(node, signer.key.public_key(), signer.key_id, operators.get)
    return SessionIssuer(node, signer, ttl), verifier


def test_valid_session_verifies_and_carries_roles(operators):
    issuer, verifier = _pair(operators)
    token, claims = issuer.issue(OPERATOR, ["register-residents"], TERMINAL)
    checked = verifier.verify(token.SerializeToString(), TERMINAL)
    assert checked == claims and list(checked.roles) == ["register-residents"]
    assert verifier.verify(token.SerializeToString(), TERMINAL) == claims  # cached path, same answer


def test_tampered_claims_are_refused(operators):
    issuer, verifier = _pair(operators)
    token, claims = issuer.issue(OPERATOR, ["register-residents"], TERMINAL)
    claims.roles.append("administer-operators")
    token.claims = claims.SerializeToString()
    with pytest.raises(SessionRejected, match="not valid"):
        verifier.verify(token.SerializeToString(), TERMINAL)


def test_session_of_another_node_key_or_node_is_refused(operators):
    issuer, _ = _pair(operators)
    _, verifier = _pair(operators)
    token, _ = issuer.issue(OPERATOR, [], TERMINAL)
    with pytest.raises(SessionRejected, match="not issued by this node"):
        verifier.verify(token.SerializeToString(), TERMINAL)
    signer = SoftSigner()
    foreign = SessionIssuer("cs:131016", signer).issue(OPERATOR, [], TERMINAL)[0]
    same_key = SessionVerifier("cs:131148", signer.key.public_key(), signer.key_id, operators.get)
    with pytest.raises(SessionRejected, match="issued by cs:131016"):
        same_key.verify(foreign.SerializeToString(), TERMINAL)


def test_expiry_terminal_logout_lock_and_revocation(operators):
    issuer, verifier = _pair(operators, ttl=1)
    token, claims = issuer.issue(OPERATOR, [], TERMINAL)
    raw = token.SerializeToString()
    with pytest.raises(SessionRejected, match="another terminal"):
        verifier.verify(raw, b"\x22" * 32)
    operators[OPERATOR].sessions_valid_after_ms = claims.issued_at.ToMilliseconds()
    with pytest.raises(SessionRejected, match="revoked by an administrator"):
        verifier.verify(raw, TERMINAL)
    operators[OPERATOR].sessions_valid_after_ms = 0
    operators[OPERATOR].info.status = operator_pb2.OPERATOR_STATUS_LOCKED
    with pytest.raises(SessionRejected, match="locked"):
        verifier.verify(raw, TERMINAL)
    operators[OPERATOR].info.status = operator_pb2.OPERATOR_STATUS_ACTIVE
    verifier.revoke(claims)
    with pytest.raises(SessionRejected, match="logout"):
        verifier.verify(raw, TERMINAL)
    fresh, _ = issuer.issue(OPERATOR, [], TERMINAL)
    time.sleep(1.05)
    with pytest.raises(SessionRejected, match="expired"):
        verifier.verify(fresh.SerializeToString(), TERMINAL)
    del operators[OPERATOR]
    with pytest.raises(SessionRejected):
        verifier.verify(issuer.issue(OPERATOR, [], TERMINAL)[0].SerializeToString(), TERMINAL)
