"""Operator login and enrollment as plain objects: no gRPC, no SoftHSM, no sleeping.

The node's token is stood in for by a software signer and a software AES-GCM vault, the operator's card
by a software key certified by a development operator CA, and time by a manual clock — only in this
unit test; the end-to-end tests use real cards, real tokens and real processes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.biometrics import SyntheticSubject, enroll
from jukinet.domain.clock import ManualClock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.operators import login_signing_input
from jukinet.pki import SoftwareSigner, TrustStore, init_pki, issue_signing_certificate, issue_tls_certificate, revoke
from jukinet.server.audit import Auditor
from jukinet.server.login import OperatorAdministration, OperatorLogins, TemplateVault
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.sessions import SessionIssuer, SessionVerifier
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, operator_pb2

NODE = NodeId.cs("131148")
SITES = frozenset({"131148"})
A = audit_pb2


class SoftwareAesGcm:
    def __init__(self) -> None:
        self._key = AESGCM(AESGCM.generate_key(256))

    def encrypt_aes_gcm(self, key_label: str, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        return self._key.encrypt(nonce, data, aad)

    def decrypt_aes_gcm(self, key_label: str, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        return self._key.decrypt(nonce, data, aad)


@dataclass
class Card:
    operator_id: str
    signer: SoftwareSigner
    certificate_der: bytes
    subject: SyntheticSubject


@dataclass
class Desk:
    """One node's login desk, and what the test needs around it."""

    logins: OperatorLogins
    admin: OperatorAdministration
    storage: NodeStorage
    trust: TrustStore
    pki: Path
    clock: ManualClock
    terminal: Caller
    other_terminal: Caller
    rng: np.random.Generator
    administrator: Caller | None = None  # the site terminal with the first operator's session

    def card(self, name: str) -> Card:
        operator_id = f"operator:131148:{name}"
        signer = SoftwareSigner()
        cert = issue_signing_certificate(self.pki, "operator", [operator_id], signer.public_key)
        return Card(operator_id, signer, cert.public_bytes(Encoding.DER), SyntheticSubject.create(self.rng))

    def enroll(self, card: Card, roles=("register-residents",), by: Caller | None = None) -> None:
        template = enroll(card.subject, self.rng)
        request = operator_pb2.EnrollOperatorRequest(
            operator_id=card.operator_id, card_certificate=card.certificate_der, roles=list(roles),
            template=operator_pb2.BiometricSample(features=[float(x) for x in template]),
        )  # fmt: skip
        self.admin.enroll(request, by or self.administrator or self.terminal)

    def login(self, card: Card, *, body: SyntheticSubject | None = None, terminal: Caller | None = None,
              signer: SoftwareSigner | None = None) -> operator_pb2.CompleteLoginResponse:  # fmt: skip
        terminal = terminal or self.terminal
        begun = self.logins.begin(card.operator_id, terminal)
        signed = login_signing_input(begun.node_id, begun.challenge, terminal.fingerprint)
        return self.logins.complete(self.request(card, begun, (signer or card.signer).sign(signed), body), terminal)

    def request(self, card: Card, begun, signature: bytes, body=None) -> operator_pb2.CompleteLoginRequest:
        sample = (body or card.subject).capture(self.rng)
        return operator_pb2.CompleteLoginRequest(
            challenge_id=begun.challenge_id, operator_id=card.operator_id, card_certificate=card.certificate_der,
            signature=signature, sample=operator_pb2.BiometricSample(features=[float(x) for x in sample]),
        )  # fmt: skip

    def audit(self) -> list[audit_pb2.AuditEntry]:
        log = self.storage.audit
        return [audit_pb2.AuditEntry.FromString(e) for e in log.entries(0, log.size())]


@pytest.fixture
def desk(tmp_path: Path, request: pytest.FixtureRequest) -> Desk:
    pki = tmp_path / "pki"
    init_pki(pki)
    clock = ManualClock()
    trust = TrustStore.load(pki, clock=clock)
    storage = NodeStorage.open(tmp_path / "data")
    signer = SoftwareSigner()
    auditor = Auditor(storage, clock)
    vault = TemplateVault(SoftwareAesGcm())
    verifier = SessionVerifier(str(NODE), signer.public_key, storage.operators.get, clock=clock)
    logins = OperatorLogins(NODE, SITES, storage, trust, vault, SessionIssuer(str(NODE), signer, 900, clock),
                            verifier, auditor, clock, max_pending=50)  # fmt: skip

    def terminal(name: str) -> Caller:
        cert, _ = issue_tls_certificate(pki, "operator", [f"terminal:131148:{name}"], tmp_path / name)
        return Caller(trust.identify(cert.read_bytes().split(b"-----END CERTIFICATE-----")[0] + _END), None, verifier)

    admin = OperatorAdministration(SITES, storage, trust, vault, auditor, clock)
    desk = Desk(
        logins, admin, storage, trust, pki, clock, terminal("desk"), terminal("other"), np.random.default_rng(5)
    )
    if "first" not in request.node.name:  # the node's first operator, enrolled as bootstrap, administers
        first = desk.card("admin")
        desk.enroll(first, roles=("administer-operators",))
        session = desk.login(first).session.SerializeToString()
        desk.administrator = Caller(desk.terminal.identity, session, verifier)
    yield desk
    storage.close()


_END = b"-----END CERTIFICATE-----\n"


def _refused(problem: Problem, match: str, fn, *args, **kwargs) -> Rejected:
    with pytest.raises(Rejected, match=match) as exc:
        fn(*args, **kwargs)
    assert exc.value.problem is problem
    return exc.value


def _failures(desk: Desk, card: Card) -> tuple[int, int]:
    info = desk.admin.show(card.operator_id)
    return info.consecutive_failures, info.status


def test_a_genuine_login_issues_a_session_and_is_audited(desk: Desk) -> None:
    card = desk.card("clerk")
    desk.enroll(card)
    reply = desk.login(card)
    assert reply.claims.operator_id == card.operator_id and list(reply.claims.roles) == ["register-residents"]
    assert reply.claims.terminal_certificate_sha256 == desk.terminal.fingerprint
    assert reply.claims.expires_at.ToMilliseconds() - reply.claims.issued_at.ToMilliseconds() == 900_000
    last = desk.audit()[-1]
    assert (last.action, last.outcome, last.actor, last.target) == (
        A.AUDIT_ACTION_LOGIN, A.AUDIT_OUTCOME_SUCCESS, card.operator_id, card.operator_id,
    )  # fmt: skip


def test_biometric_and_card_failures_count_and_the_fifth_locks(desk: Desk) -> None:
    card = desk.card("clerk")
    desk.enroll(card)
    stranger = SyntheticSubject.create(desk.rng)
    for attempt in range(1, 4):
        err = _refused(Problem.UNAUTHENTICATED, "biometric sample does not match", desk.login, card, body=stranger)
        assert f"({attempt} of 5 consecutive failures)" in str(err)
    _refused(Problem.UNAUTHENTICATED, "card signature over the challenge is not valid", desk.login, card,
             signer=SoftwareSigner())  # fmt: skip
    err = _refused(Problem.UNAUTHENTICATED, "biometric", desk.login, card, body=stranger)
    assert "is now locked (5 consecutive failures)" in str(err)
    assert _failures(desk, card) == (5, operator_pb2.OPERATOR_STATUS_LOCKED)
    # Locked: refused before any factor is checked, and not counted again.
    _refused(Problem.DENIED, "locked after 5 consecutive failures", desk.login, card)
    assert _failures(desk, card)[0] == 5
    desk.admin.unlock(card.operator_id, desk.administrator)
    assert desk.login(card).claims.operator_id == card.operator_id
    assert _failures(desk, card) == (0, operator_pb2.OPERATOR_STATUS_ACTIVE)
    outcomes = [e.outcome for e in desk.audit() if e.action == A.AUDIT_ACTION_LOGIN]
    assert outcomes.count(A.AUDIT_OUTCOME_DENIED) == 6 and outcomes[-1] == A.AUDIT_OUTCOME_SUCCESS


def test_challenge_problems_are_refused_but_not_counted(desk: Desk) -> None:
    card = desk.card("clerk")
    desk.enroll(card)
    begun = desk.logins.begin(card.operator_id, desk.terminal)
    signature = card.signer.sign(login_signing_input(begun.node_id, begun.challenge, desk.terminal.fingerprint))
    request = desk.request(card, begun, signature)
    desk.logins.complete(request, desk.terminal)
    _refused(Problem.UNAUTHENTICATED, "unknown or already used", desk.logins.complete, request, desk.terminal)
    begun = desk.logins.begin(card.operator_id, desk.terminal)
    signature = card.signer.sign(login_signing_input(begun.node_id, begun.challenge, desk.terminal.fingerprint))
    _refused(Problem.UNAUTHENTICATED, "another operator or terminal", desk.logins.complete,
             desk.request(card, begun, signature), desk.other_terminal)  # fmt: skip
    begun = desk.logins.begin(card.operator_id, desk.terminal)
    desk.clock.advance(30.5)
    _refused(Problem.UNAUTHENTICATED, r"expired \(30 s\)", desk.logins.complete,
             desk.request(card, begun, signature), desk.terminal)  # fmt: skip
    assert _failures(desk, card)[0] == 0


def test_a_card_must_be_the_operators_own_enrolled_and_not_revoked(desk: Desk) -> None:
    card = desk.card("clerk")
    desk.enroll(card)
    other = desk.card("other")
    desk.enroll(other)
    borrowed = Card(card.operator_id, other.signer, other.certificate_der, card.subject)
    _refused(Problem.UNAUTHENTICATED, "belongs to operator:131148:other", desk.login, borrowed)
    reissued = desk.card("clerk")  # a second card of the same operator, never enrolled
    _refused(Problem.UNAUTHENTICATED, "not the card enrolled", desk.login,
             Card(card.operator_id, reissued.signer, reissued.certificate_der, card.subject))  # fmt: skip
    revoke(desk.pki, "operator", x509.load_der_x509_certificate(card.certificate_der).serial_number)
    _refused(Problem.UNAUTHENTICATED, "revoked", desk.login, card)
    assert _failures(desk, card)[0] == 3
    assert desk.storage.operators.count() == 3  # admin, clerk, other


def test_unknown_and_foreign_operators_and_malformed_samples(desk: Desk) -> None:
    _refused(Problem.NOT_FOUND, "no operator operator:131148:nobody", desk.logins.begin, "operator:131148:nobody",
             desk.terminal)  # fmt: skip
    _refused(Problem.INVALID, "not an operator of this node", desk.logins.begin, "operator:131016:x", desk.terminal)
    _refused(Problem.INVALID, "invalid node id", desk.logins.begin, "clerk", desk.terminal)
    card = desk.card("clerk")
    desk.enroll(card)
    begun = desk.logins.begin(card.operator_id, desk.terminal)
    request = desk.request(card, begun, b"")
    del request.sample.features[:]
    _refused(Problem.INVALID, "features", desk.logins.complete, request, desk.terminal)
    assert _failures(desk, card)[0] == 0


def test_pending_logins_are_bounded(desk: Desk) -> None:
    card = desk.card("clerk")
    desk.enroll(card)
    for _ in range(50):
        desk.logins.begin(card.operator_id, desk.terminal)
    _refused(Problem.EXHAUSTED, "too many logins in progress", desk.logins.begin, card.operator_id, desk.terminal)
    desk.clock.advance(31)  # expired challenges make room again
    desk.logins.begin(card.operator_id, desk.terminal)


def test_only_one_of_several_simultaneous_first_enrollments_succeeds(desk: Desk) -> None:
    cards = [desk.card(f"first-{i}") for i in range(6)]
    outcomes: list[str] = []
    start = threading.Barrier(len(cards))

    def first(card: Card) -> None:
        start.wait()
        try:
            desk.enroll(card, roles=("administer-operators",))
            outcomes.append("enrolled")
        except Rejected as exc:
            outcomes.append(exc.problem.name)

    threads = [threading.Thread(target=first, args=(c,)) for c in cards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("enrolled") == 1 and desk.storage.operators.count() == 1
    assert set(outcomes) == {"enrolled", "UNAUTHENTICATED"}
    # Once there is an operator, a terminal without an administrator's session enrolls nobody.
    _refused(Problem.UNAUTHENTICATED, "already has an operator", desk.enroll, desk.card("late"))


def test_enrollment_checks_its_input(desk: Desk) -> None:
    card = desk.card("clerk")
    _refused(Problem.INVALID, "unknown roles", desk.enroll, card, roles=("register-resident",))
    _refused(Problem.INVALID, "at least one role", desk.enroll, card, roles=())
    stranger = desk.card("stranger")
    _refused(Problem.INVALID, "is for operator:131148:stranger", desk.enroll,
             Card(card.operator_id, stranger.signer, stranger.certificate_der, card.subject))  # fmt: skip
    desk.enroll(card)
    _refused(Problem.ALREADY_EXISTS, "already enrolled", desk.enroll, card)
