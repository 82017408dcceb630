"""Operator login with IC card + biometric, sessions, roles and lockout, against real node processes.

Cards are SoftHSM tokens in this test process's SoftHSM (the card reader); nodes run in their own
processes. Each test enrolls its own operators, so the tests do not depend on each other's counts.
"""

from __future__ import annotations

import itertools
import time

import grpc
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from netutil import bare_terminal, channel_with, residents, rpc_error, terminal

from jukinet.biometrics import SyntheticSubject
from jukinet.clients import TerminalClient
from jukinet.devnet.operators import OperatorKit, enroll_operator, issue_card, log_in, unlock_card
from jukinet.domain.operators import login_signing_input
from jukinet.hsm import TokenError, TokenFailure, create_card, generate_card_key, store_card_certificate
from jukinet.pki import init_pki, issue_signing_certificate, issue_tls_certificate, revoke
from jukinet.v1 import operator_pb2, operator_pb2_grpc

CS = "cs:131148"
PIN = "482916"
_names = (f"op-{i}" for i in itertools.count())
_rng = np.random.default_rng(99)


def _clerk(running, worker, roles=("register-residents",), node=CS) -> OperatorKit:
    """A new operator of ``node``'s site, enrolled by that node's administrator."""
    site = running.network.topology.node(node).site
    kit = issue_card(worker, running.network, f"operator:{site}:{next(_names)}", PIN, _rng)
    enroll_operator(worker, terminal(running, node), kit, list(roles), _rng)
    return kit


def _impostor(kit: OperatorKit) -> OperatorKit:
    """The same card and PIN, presented by somebody else's body."""
    return OperatorKit(kit.operator_id, kit.card_label, kit.pin, kit.so_pin, SyntheticSubject.create(_rng))


def test_genuine_login_gives_a_session_with_the_roles(private_network, worker):
    kit = _clerk(private_network, worker)
    desk = bare_terminal(private_network, CS)
    claims = log_in(worker, desk, kit, rng=_rng)
    assert claims.operator_id == kit.operator_id and list(claims.roles) == ["register-residents"]
    assert claims.expires_at.ToMilliseconds() - claims.issued_at.ToMilliseconds() == 900_000
    reply = desk.record_change(residents("131148", 1)[0])
    assert reply.sequence > 0


def test_impostor_biometric_is_rejected_and_genuine_accepted(private_network, worker):
    kit = _clerk(private_network, worker)
    err = rpc_error(log_in, worker, bare_terminal(private_network, CS), _impostor(kit), rng=_rng)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "biometric sample does not match" in err.details() and "1 of 5" in err.details()
    log_in(worker, bare_terminal(private_network, CS), kit, rng=_rng)
    info = terminal(private_network, CS).operator(kit.operator_id)
    assert info.consecutive_failures == 0  # a success resets the count


def test_wrong_pin_is_refused_by_the_card_and_locks_it_after_five(private_network, worker):
    kit = _clerk(private_network, worker)
    desk = bare_terminal(private_network, CS)
    for remaining in (4, 3, 2, 1):
        with pytest.raises(TokenError) as wrong:
            log_in(worker, desk, kit, pin="000000", rng=_rng)
        assert (wrong.value.reason, wrong.value.remaining) == (TokenFailure.PIN_INCORRECT, remaining)
    with pytest.raises(TokenError) as locked:
        log_in(worker, desk, kit, pin="000000", rng=_rng)
    assert locked.value.reason is TokenFailure.CARD_LOCKED
    with pytest.raises(TokenError, match="administrator must unlock") as locked:
        log_in(worker, desk, kit, rng=_rng)  # the right PIN is not even tried
    assert locked.value.reason is TokenFailure.CARD_LOCKED
    unlock_card(worker, kit)  # the administrator, with the card's SO PIN
    log_in(worker, desk, kit, rng=_rng)


def test_five_failed_logins_lock_the_operator_until_an_administrator_unlocks(private_network, worker):
    kit = _clerk(private_network, worker)
    desk = bare_terminal(private_network, CS)
    log_in(worker, desk, kit, rng=_rng)
    session_before = desk.session
    for attempt in range(1, 5):
        err = rpc_error(log_in, worker, bare_terminal(private_network, CS), _impostor(kit), rng=_rng)
        assert f"({attempt} of 5 consecutive failures)" in err.details()
    err = rpc_error(log_in, worker, bare_terminal(private_network, CS), _impostor(kit), rng=_rng)
    assert "is now locked (5 consecutive failures)" in err.details()
    err = rpc_error(log_in, worker, bare_terminal(private_network, CS), kit, rng=_rng)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "locked" in err.details()
    admin = terminal(private_network, CS)
    assert admin.operator(kit.operator_id).status == operator_pb2.OPERATOR_STATUS_LOCKED
    # Locking also ended the session the operator already had.
    desk.session = session_before
    err = rpc_error(desk.record_change, residents("131148", 1)[0])
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "locked" in err.details()
    info = admin.unlock_operator(kit.operator_id)
    assert info.status == operator_pb2.OPERATOR_STATUS_ACTIVE and info.consecutive_failures == 0
    log_in(worker, bare_terminal(private_network, CS), kit, rng=_rng)


def test_card_from_a_foreign_ca_is_rejected(private_network, worker, softhsm, tmp_path):
    kit = _clerk(private_network, worker)
    foreign = tmp_path / "foreign-pki"
    init_pki(foreign)
    label = f"foreign-{kit.card_label[-10:]}"
    create_card(worker, label, PIN, "55555555")
    public_key = generate_card_key(worker, label, PIN)
    certificate = issue_signing_certificate(foreign, "operator", [kit.operator_id], public_key)
    store_card_certificate(worker, label, PIN, certificate)
    forged = OperatorKit(kit.operator_id, label, PIN, "55555555", kit.subject)
    err = rpc_error(log_in, worker, bare_terminal(private_network, CS), forged, rng=_rng)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "card certificate" in err.details() and "not from a JukiNet issuing CA" in err.details()


def test_revoked_operator_certificate_is_rejected(private_network, worker):
    kit = _clerk(private_network, worker)
    log_in(worker, bare_terminal(private_network, CS), kit, rng=_rng)
    with kit.card(worker).unlock(kit.pin) as card:
        serial = card.certificate.serial_number
    revoke(private_network.network.pki_dir, "operator", serial)
    err = rpc_error(log_in, worker, bare_terminal(private_network, CS), kit, rng=_rng)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked" in err.details()


def test_replayed_challenge_response_is_rejected(private_network, worker):
    kit = _clerk(private_network, worker)
    desk = bare_terminal(private_network, CS)
    creds = private_network.network.terminal("131148")
    fingerprint = x509.load_pem_x509_certificate(creds.cert.read_bytes()).fingerprint(hashes.SHA256())
    with channel_with(private_network, CS, creds.cert, creds.key) as channel:
        auth = operator_pb2_grpc.OperatorAuthServiceStub(channel)
        challenge = auth.BeginLogin(operator_pb2.BeginLoginRequest(operator_id=kit.operator_id))
        with kit.card(worker).unlock(kit.pin) as card:
            request = operator_pb2.CompleteLoginRequest(
                challenge_id=challenge.challenge_id,
                operator_id=kit.operator_id,
                card_certificate=card.certificate_der,
                signature=card.sign(login_signing_input(challenge.node_id, challenge.challenge, fingerprint)),
                sample=operator_pb2.BiometricSample(features=kit.subject.capture(_rng).tolist()),
            )
        assert auth.CompleteLogin(request).claims.operator_id == kit.operator_id
        err = rpc_error(auth.CompleteLogin, request)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "already used" in err.details()
    assert desk.session is None


def test_session_presented_from_another_terminal_is_rejected(private_network, worker, tmp_path):
    kit = _clerk(private_network, worker)
    desk = bare_terminal(private_network, CS)
    log_in(worker, desk, kit, rng=_rng)
    cert, key = issue_tls_certificate(private_network.network.pki_dir, "operator", ["terminal:131148:desk-2"], tmp_path)
    other = TerminalClient(channel_with(private_network, CS, cert, key), b"")
    other.session = desk.session  # copied to another terminal
    err = rpc_error(other.record_change, residents("131148", 1)[0])
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "another terminal" in err.details()
    desk.record_change(residents("131148", 1)[0])  # still valid where it was issued


def test_operator_without_the_role_is_permission_denied(private_network, worker):
    kit = _clerk(private_network, worker, roles=("answer-disclosure",))
    desk = bare_terminal(private_network, CS)
    log_in(worker, desk, kit, rng=_rng)
    err = rpc_error(desk.record_change, residents("131148", 1)[0])
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "does not have the role 'register-residents'" in err.details()
    err = rpc_error(desk.enroll_operator, "operator:131148:sneaky", b"", ["register-residents"], [0.1] * 128)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "administer-operators" in err.details()


def test_no_session_is_unauthenticated(private_network):
    err = rpc_error(bare_terminal(private_network, CS).record_change, residents("131148", 1)[0])
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "log in with IC card and biometric" in err.details()
    err = rpc_error(bare_terminal(private_network, CS).unlock_operator, "operator:131148:admin")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_logout_and_administrator_revocation_end_sessions(private_network, worker):
    kit = _clerk(private_network, worker)
    desk = bare_terminal(private_network, CS)
    log_in(worker, desk, kit, rng=_rng)
    token = desk.session
    desk.logout()
    desk.session = token
    err = rpc_error(desk.record_change, residents("131148", 1)[0])
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "logout" in err.details()
    log_in(worker, desk, kit, rng=_rng)
    time.sleep(0.01)
    terminal(private_network, CS).revoke_sessions(kit.operator_id)
    err = rpc_error(desk.record_change, residents("131148", 1)[0])
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked by an administrator" in err.details()
    time.sleep(0.01)
    log_in(worker, desk, kit, rng=_rng)
    desk.record_change(residents("131148", 1)[0])


def test_expired_session_is_unauthenticated(private_network, worker):
    spec = private_network.network.topology.node("cs:131016")
    config = private_network.network.node_config(spec)
    config.write_text(config.read_text() + "\n[operators]\nsession_seconds = 2\n")
    private_network.stop_node(spec)
    private_network.start_node(spec)
    admin_kit, admin = private_network.operators["cs:131016"]
    log_in(worker, admin, admin_kit, rng=_rng)  # the restart kept its enrollment (LMDB), a new session lasts 2 s
    admin.record_change(residents("131016", 1)[0])
    time.sleep(2.2)
    err = rpc_error(admin.record_change, residents("131016", 1)[0])
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "expired" in err.details()
