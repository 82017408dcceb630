"""Policy checks that mutation testing found unexercised by the unit tests (jukinet/server/runtime/policy.py):
an operator session does not stand in for being a terminal of the site, AllOf admits when every child
does, a denial says who would have been allowed, and an RPC without a limit of its own gets the unary one."""

from __future__ import annotations

import pytest

from jukinet.domain.errors import Problem
from jukinet.domain.limits import MAX_UNARY_REQUEST_BYTES, request_limit
from jukinet.domain.node_ids import NodeKind
from jukinet.domain.operators import Role
from jukinet.pki import TrustStore, init_pki, issue_tls_certificate
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import AllOf, Kinds, OperatorWithRole, TerminalOf
from jukinet.v1 import operator_pb2

_END = b"-----END CERTIFICATE-----"


@pytest.fixture(scope="module")
def caller(tmp_path_factory):
    base = tmp_path_factory.mktemp("policy-gaps")
    init_pki(base / "pki")
    trust = TrustStore.load(base / "pki")

    def make(identity: str, session: operator_pb2.SessionClaims | None = None) -> Caller:
        issuer = {"terminal": "operator", "agency": "agency"}.get(identity.split(":")[0], "node")
        cert, _ = issue_tls_certificate(base / "pki", issuer, [identity], base / identity.replace(":", "-"))
        made = Caller(trust.identify(cert.read_bytes().split(_END)[0] + _END + b"\n"))
        made._claims = session
        return made

    return make


def test_a_session_with_the_role_from_another_sites_terminal_is_denied(caller) -> None:
    policy = OperatorWithRole(TerminalOf(frozenset({"131148"})), Role.REGISTER_RESIDENTS)
    claims = operator_pb2.SessionClaims(operator_id="operator:131016:clerk", roles=["register-residents"])
    denial = policy.deny(caller("terminal:131016:desk", session=claims))
    assert denial is not None and denial.problem is Problem.DENIED
    assert "operator terminals of 131148" in str(denial)


def test_all_of_admits_when_every_child_admits(caller) -> None:
    terminal = caller("terminal:131148:both")
    assert AllOf((TerminalOf(frozenset({"131148"})), TerminalOf(frozenset({"131148", "13"})))).deny(terminal) is None


def test_a_denial_names_who_would_have_been_allowed(caller) -> None:
    stranger = caller("agency:6100000000001")
    denial = TerminalOf(frozenset({"131148", "131016"})).deny(stranger)
    assert "operator terminals of 131016, 131148" in str(denial)
    denial = Kinds.of(NodeKind.PREFECTURE, NodeKind.CS).deny(stranger)
    assert denial is not None and "cs, pref" in str(denial) and "agency:6100000000001" in str(denial)


def test_an_rpc_without_its_own_limit_gets_the_unary_limit() -> None:
    assert request_limit("/jukinet.v1.NodeAdminService/GetStatus") == MAX_UNARY_REQUEST_BYTES
    assert request_limit("/jukinet.v1.LinkService/Deliver") > MAX_UNARY_REQUEST_BYTES
