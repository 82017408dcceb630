"""Deny by default: a served RPC without a policy stops the node from starting; policies decide."""

from __future__ import annotations

import pytest
from jukinet.node.security import AnyOf, Caller, check_all_guarded, guarded
from jukinet.server.notice_ingest import MunicipalitiesOfCallerPrefectures, MunicipalitiesOfHostedPrefectures

from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.v1 import admin_pb2, admin_pb2_grpc, notice_pb2

ADMIN = admin_pb2.DESCRIPTOR.services_by_name["NodeAdminService"]


class HalfGuarded(admin_pb2_grpc.NodeAdminServiceServicer):
    @guarded(AnyOf({NodeKind.TERMINAL}, terminal_sites={"131148"}))
    def GetStatus(self, request, context, caller):  # pragma: no cover - never called
        raise AssertionError


class FullyGuarded(HalfGuarded):
    @guarded("terminals")
    def ListProvisions(self, request, context, caller):  # pragma: no cover - never called
        raise AssertionError


def test_unguarded_rpc_refuses_to_serve():
    with pytest.raises(RuntimeError, match="ListProvisions has no access policy"):
        check_all_guarded(HalfGuarded(), ADMIN)
    check_all_guarded(FullyGuarded(), ADMIN)


def _caller(*ids: str) -> Caller:
    return Caller(identity=None, node_ids=tuple(NodeId.parse(i) for i in ids))  # type: ignore[arg-type]


def test_terminal_policy_checks_the_site():
    policy = AnyOf({NodeKind.TERMINAL}, terminal_sites={"131148"})
    assert policy.deny(_caller("terminal:131148:ops")) is None
    assert "terminal:131016:ops" in policy.deny(_caller("terminal:131016:ops"))
    assert policy.deny(_caller("cs:131148")) is not None


def test_prefecture_authority_per_notice():
    policy = MunicipalitiesOfHostedPrefectures(frozenset({"13"}))
    cs = _caller("cs:131148")
    assert policy.deny(cs) is None
    assert "not a CS of a prefecture served here" in policy.deny(_caller("cs:142018"))
    own = notice_pb2.ChangeNotice(origin="cs:131148", sequence=1)
    own.record.address.municipality_code = "131148"
    assert policy.notice_problem(cs, own) is None
    other = notice_pb2.ChangeNotice(origin="cs:131148", sequence=2)
    other.record.address.municipality_code = "131016"
    assert "131016" in policy.notice_problem(cs, other)
    relayed = notice_pb2.ChangeNotice(origin="cs:131016", sequence=1)
    relayed.record.address.municipality_code = "131016"
    assert "did not originate" in policy.notice_problem(cs, relayed)


def test_national_authority_per_notice():
    policy = MunicipalitiesOfCallerPrefectures()
    centre = _caller("pref:13", "pref:14")
    assert policy.deny(centre) is None and policy.deny(_caller("cs:131148")) is not None
    for origin, municipality, ok in [
        ("cs:131148", "131148", True),
        ("cs:142018", "142018", True),
        ("cs:112089", "112089", False),  # 埼玉県: not the caller's prefecture
        ("cs:131148", "131016", False),  # record of another municipality than its origin
        ("pref:13", "131148", False),  # origin must be a CS
    ]:
        notice = notice_pb2.ChangeNotice(origin=origin, sequence=1)
        notice.record.address.municipality_code = municipality
        assert (policy.notice_problem(centre, notice) is None) is ok, (origin, municipality)


class _Context:
    """Stands in for grpc.ServicerContext in this unit test of the authenticator."""

    def __init__(self, auth: dict) -> None:
        self._auth = auth

    def auth_context(self) -> dict:
        return self._auth

    def invocation_metadata(self) -> tuple:
        return ()


def test_authenticator_requires_a_certificate_and_tls_1_3(tmp_path):
    from jukinet.node.security import AuthenticationFailed, PeerAuthenticator

    from jukinet.pki import TrustStore, init_pki, issue_tls_certificate

    init_pki(tmp_path / "pki")
    cert, _ = issue_tls_certificate(tmp_path / "pki", "operator", ["terminal:131148:ops"], tmp_path)
    pem = cert.read_bytes().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    authenticator = PeerAuthenticator(TrustStore.load(tmp_path / "pki"))
    with pytest.raises(AuthenticationFailed, match="no client certificate"):
        authenticator.caller(_Context({}))
    with pytest.raises(AuthenticationFailed, match=r"uses TLSv1\.2; JukiNet requires TLSv1\.3"):
        authenticator.caller(_Context({"x509_pem_cert": [pem], "ssl_tls_version": [b"TLSv1.2"]}))
    caller = authenticator.caller(_Context({"x509_pem_cert": [pem], "ssl_tls_version": [b"TLSv1.3"]}))
    assert str(caller.primary) == "terminal:131148:ops" and len(caller.terminal_fp) == 32
