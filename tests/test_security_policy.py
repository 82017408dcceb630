"""Deny by default: a served RPC without a policy stops the node from starting; policies decide; every
problem has exactly one status; the peer check wants a certificate and TLS 1.3."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeKind
from jukinet.domain.operators import Role
from jukinet.pki import TrustStore, init_pki, issue_tls_certificate
from jukinet.server.runtime.guard import check_all_guarded, guarded
from jukinet.server.runtime.peers import Caller, PeerAuthenticator
from jukinet.server.runtime.policy import AllOf, AnyOf, Kinds, OperatorWithRole, TerminalOf
from jukinet.server.runtime.status import MAX_STATUS_MESSAGE, STATUS, bounded
from jukinet.v1 import admin_pb2, admin_pb2_grpc, operator_pb2

ADMIN = admin_pb2.DESCRIPTOR.services_by_name["NodeAdminService"]
_END = b"-----END CERTIFICATE-----"


class HalfGuarded(admin_pb2_grpc.NodeAdminServiceServicer):
    @guarded(TerminalOf(frozenset({"131148"})))
    def GetStatus(self, request, caller):  # pragma: no cover - never called
        raise AssertionError


class FullyGuarded(HalfGuarded):
    @guarded("terminals")
    def ListProvisions(self, request, caller):  # pragma: no cover - never called
        raise AssertionError

    ListQuarantine = RetryQuarantined = DropQuarantined = ListProvisions


def test_unguarded_rpc_refuses_to_serve():
    with pytest.raises(Rejected, match="ListProvisions has no access policy"):
        check_all_guarded(HalfGuarded(), ADMIN)
    check_all_guarded(FullyGuarded(), ADMIN)


def test_a_long_status_message_is_cut_at_the_edge():
    cut = bounded("x" * 50_000)
    assert len(cut) <= MAX_STATUS_MESSAGE and cut.endswith("(50000 characters in all)")
    assert bounded("short") == "short"


def test_every_problem_has_one_status():
    assert set(STATUS) == set(Problem)
    assert STATUS[Problem.OUT_OF_ORDER] == grpc.StatusCode.FAILED_PRECONDITION
    assert STATUS[Problem.DENIED] == grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture(scope="module")
def callers(tmp_path_factory):
    """Callers made from real certificates of a development PKI."""
    base = tmp_path_factory.mktemp("policy")
    init_pki(base / "pki")
    trust = TrustStore.load(base / "pki")
    kinds = {"terminal": "operator", "agency": "agency"}

    def caller(*ids: str, session: operator_pb2.SessionClaims | None = None) -> Caller:
        issuer = kinds.get(ids[0].split(":")[0], "node")
        cert, _ = issue_tls_certificate(base / "pki", issuer, list(ids), base / ids[0].replace(":", "-"))
        made = Caller(trust.identify(cert.read_bytes().split(_END)[0] + _END + b"\n"))
        made._claims = session
        return made

    return caller


def test_terminal_policy_checks_the_site(callers):
    policy = TerminalOf(frozenset({"131148"}))
    assert policy.deny(callers("terminal:131148:ops")) is None
    denial = policy.deny(callers("terminal:131016:ops"))
    assert denial.problem is Problem.DENIED and "terminal:131016:ops" in str(denial)
    assert policy.deny(callers("cs:131148")) is not None


def test_kinds_never_admit_terminals(callers):
    assert Kinds.of(NodeKind.AGENCY).deny(callers("agency:7123456789012")) is None
    assert Kinds.of(NodeKind.TERMINAL).deny(callers("terminal:131148:ops")) is not None
    assert Kinds.of(NodeKind.PREFECTURE, NodeKind.CS).deny(callers("pref:13", "pref:14")) is None


def test_operator_policy_wants_a_session_with_the_role(callers):
    policy = OperatorWithRole(TerminalOf(frozenset({"131148"})), Role.REGISTER_RESIDENTS)
    no_session = policy.deny(callers("terminal:131148:ops"))
    assert no_session.problem is Problem.UNAUTHENTICATED and "log in with IC card" in str(no_session)
    clerk = operator_pb2.SessionClaims(operator_id="operator:131148:clerk", roles=["register-residents"])
    assert policy.deny(callers("terminal:131148:desk", session=clerk)) is None
    auditor = operator_pb2.SessionClaims(operator_id="operator:131148:aud", roles=["answer-disclosure"])
    denial = policy.deny(callers("terminal:131148:desk2", session=auditor))
    assert denial.problem is Problem.DENIED and "does not have the role 'register-residents'" in str(denial)


def test_any_and_all_of(callers):
    agency, terminal = callers("agency:6100000000001"), callers("terminal:131148:x")
    either = AnyOf((Kinds.of(NodeKind.AGENCY), TerminalOf(frozenset({"131148"}))))
    assert either.deny(agency) is None and either.deny(terminal) is None
    assert either.deny(callers("cs:131016")) is not None
    both = AllOf((Kinds.of(NodeKind.AGENCY), TerminalOf(frozenset({"131148"}))))
    assert both.deny(agency) is not None and both.deny(terminal) is not None


class _Context:
    """Stands in for grpc's ServicerContext in this unit test of the authenticator."""

    def __init__(self, auth: dict) -> None:
        self._auth = auth

    def auth_context(self) -> dict:
        return self._auth

    def invocation_metadata(self) -> tuple:
        return (("jukinet-session-bin", b"token"),)


def test_authenticator_requires_a_certificate_and_tls_1_3(tmp_path: Path):
    init_pki(tmp_path / "pki")
    cert, _ = issue_tls_certificate(tmp_path / "pki", "operator", ["terminal:131148:ops"], tmp_path)
    pem = cert.read_bytes().split(_END)[0] + _END + b"\n"
    authenticator = PeerAuthenticator(TrustStore.load(tmp_path / "pki"))
    with pytest.raises(Rejected, match="no client certificate"):
        authenticator.caller(_Context({}))
    with pytest.raises(Rejected, match=r"uses TLSv1\.2; JukiNet requires TLSv1\.3") as exc:
        authenticator.caller(_Context({"x509_pem_cert": [pem], "ssl_tls_version": [b"TLSv1.2"]}))
    assert exc.value.problem is Problem.UNAUTHENTICATED
    caller = authenticator.caller(_Context({"x509_pem_cert": [pem], "ssl_tls_version": [b"TLSv1.3"]}))
    assert str(caller.primary) == "terminal:131148:ops" and len(caller.fingerprint) == 32
    assert caller.session_token == b"token"
