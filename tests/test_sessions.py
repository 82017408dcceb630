"""Session envelopes: what the node signs, and everything the verifier refuses (a software key stands in
for the node's token key, and a manual clock for time, in this unit test only: nothing sleeps)."""

from __future__ import annotations

import pytest

from jukinet.domain.clock import ManualClock
from jukinet.domain.errors import Problem, Rejected
from jukinet.pki import SoftwareSigner, seal
from jukinet.server.runtime.sessions import SessionIssuer, SessionVerifier
from jukinet.v1 import audit_pb2, node_state_pb2, operator_pb2

OPERATOR = "operator:131148:clerk-01"
TERMINAL = b"\x11" * 32


@pytest.fixture
def operators() -> dict[str, node_state_pb2.OperatorRecord]:
    record = node_state_pb2.OperatorRecord(
        info=operator_pb2.OperatorInfo(operator_id=OPERATOR, status=operator_pb2.OPERATOR_STATUS_ACTIVE)
    )
    return {OPERATOR: record}


def _pair(operators, ttl: int = 60, node: str = "cs:131148", clock: ManualClock | None = None):
    signer, clock = SoftwareSigner(), clock or ManualClock()
    verifier = SessionVerifier(node, signer.public_key, operators.get, clock=clock)
    return SessionIssuer(node, signer, ttl, clock), verifier


def _refused(verifier: SessionVerifier, token: bytes, match: str, terminal: bytes = TERMINAL) -> None:
    with pytest.raises(Rejected, match=match) as exc:
        verifier.verify(token, terminal)
    assert exc.value.problem is Problem.UNAUTHENTICATED


def test_valid_session_verifies_and_carries_roles(operators):
    issuer, verifier = _pair(operators)
    token, claims = issuer.issue(OPERATOR, ["register-residents"], TERMINAL)
    assert token.payload_type == "jukinet.v1.SessionClaims"
    checked = verifier.verify(token.SerializeToString(), TERMINAL)
    assert checked == claims and list(checked.roles) == ["register-residents"]
    assert verifier.verify(token.SerializeToString(), TERMINAL) == claims  # cached path, same answer


def test_tampered_claims_are_refused(operators):
    issuer, verifier = _pair(operators)
    token, claims = issuer.issue(OPERATOR, ["register-residents"], TERMINAL)
    claims.roles.append("administer-operators")
    token.payload = claims.SerializeToString()
    _refused(verifier, token.SerializeToString(), "not valid")
    _refused(verifier, b"\xff\xff", "not valid")


def test_session_of_another_node_key_or_node_is_refused(operators):
    issuer, _ = _pair(operators)
    _, verifier = _pair(operators)
    token, _ = issuer.issue(OPERATOR, [], TERMINAL)
    _refused(verifier, token.SerializeToString(), "not signed by the expected key")
    signer = SoftwareSigner()
    foreign = SessionIssuer("cs:131016", signer).issue(OPERATOR, [], TERMINAL)[0]
    same_key = SessionVerifier("cs:131148", signer.public_key, operators.get)
    _refused(same_key, foreign.SerializeToString(), "issued by cs:131016")
    # Bytes the node signed as something else (a tree head) are not a session.
    head = seal(signer, audit_pb2.TreeHead(node_id="cs:131148", tree_size=1))
    _refused(same_key, head.SerializeToString(), "holds jukinet.v1.TreeHead")


def test_expiry_terminal_logout_lock_and_revocation(operators):
    clock = ManualClock()
    issuer, verifier = _pair(operators, ttl=60, clock=clock)
    token, claims = issuer.issue(OPERATOR, [], TERMINAL)
    raw = token.SerializeToString()
    _refused(verifier, raw, "another terminal", terminal=b"\x22" * 32)
    operators[OPERATOR].sessions_valid_after_ms = claims.issued_at.ToMilliseconds()
    _refused(verifier, raw, "revoked by an administrator")
    operators[OPERATOR].sessions_valid_after_ms = 0
    operators[OPERATOR].info.status = operator_pb2.OPERATOR_STATUS_LOCKED
    _refused(verifier, raw, "locked")
    operators[OPERATOR].info.status = operator_pb2.OPERATOR_STATUS_ACTIVE
    verifier.revoke(claims)
    _refused(verifier, raw, "logout")
    fresh = issuer.issue(OPERATOR, [], TERMINAL)[0].SerializeToString()
    clock.advance(59.9)
    verifier.verify(fresh, TERMINAL)
    clock.advance(0.1)
    _refused(verifier, fresh, "expired")
    del operators[OPERATOR]
    _refused(verifier, issuer.issue(OPERATOR, [], TERMINAL)[0].SerializeToString(), "no longer enrolled")
