"""Operator login and enrollment as plain objects: no gRPC, no SoftHSM, no sleeping.

The node's token is stood in for by a software signer and a software AES-GCM vault, the operator's card
by a software key certified by a development operator CA, and time by a manual clock — only in this
unit test; the end-to-end tests use real cards, real tokens and real processes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from loginkit import Card, SoftwareAesGcm

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
    terminal_named: Callable[[str], Caller]
    administrator: Caller | None = None  # the site terminal with the first operator's session
    auditor: Auditor | None = None

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
        logins, admin, storage, trust, pki, clock, terminal("desk"), terminal("other"), np.random.default_rng(5),
        terminal, auditor=auditor,
    )  # fmt: skip
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


def test_biometric_failures_count_and_the_fifth_locks(desk: Desk) -> None:
    card = desk.card("clerk")
    desk.enroll(card)
    stranger = SyntheticSubject.create(desk.rng)
    for attempt in range(1, 5):
        err = _refused(Problem.UNAUTHENTICATED, "biometric sample does not match", desk.login, card, body=stranger)
        assert f"({attempt} of 5 consecutive failures)" in str(err)
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
    # Five counted failures, one entry each; the refusal while locked is the first of its kind, in full.
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
    desk.clock.advance(1)  # each card failure makes this terminal wait before trying the operator again
    reissued = desk.card("clerk")  # a second card of the same operator, never enrolled
    _refused(Problem.UNAUTHENTICATED, "not the card enrolled", desk.login,
             Card(card.operator_id, reissued.signer, reissued.certificate_der, card.subject))  # fmt: skip
    desk.clock.advance(2)
    revoke(desk.pki, "operator", x509.load_der_x509_certificate(card.certificate_der).serial_number)
    _refused(Problem.UNAUTHENTICATED, "revoked", desk.login, card)
    assert _failures(desk, card)[0] == 0  # none of these proved the card: the operator's count is untouched
    assert desk.storage.operators.count() == 3  # admin, clerk, other


def test_a_terminal_without_the_card_backs_off_and_locks_nobody(desk: Desk) -> None:
    card = desk.card("clerk")
    desk.enroll(card)
    thief = desk.other_terminal
    for failures, delay in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 32)):
        err = _refused(Problem.UNAUTHENTICATED, "card signature over the challenge is not valid", desk.login,
                       card, terminal=thief, signer=SoftwareSigner())  # fmt: skip
        assert f"may try {card.operator_id} again in {delay} s (the operator is not locked)" in str(err)
        # Until the delay has passed, this terminal cannot even begin a login of this operator.
        desk.clock.advance(delay - 0.5)
        err = _refused(Problem.EXHAUSTED, f"{failures} consecutive failed logins", desk.logins.begin,
                       card.operator_id, thief)  # fmt: skip
        assert "this terminal may try again in 1 s (at " in str(err)
        desk.clock.advance(0.5)
    assert _failures(desk, card) == (0, operator_pb2.OPERATOR_STATUS_ACTIVE)
    # A challenge taken before the wait began does not get around it.
    begun = desk.logins.begin(card.operator_id, thief)
    err = _refused(Problem.UNAUTHENTICATED, "not valid", desk.login, card, terminal=thief, signer=SoftwareSigner())
    assert "again in 64 s" in str(err)
    _refused(Problem.EXHAUSTED, "may try again in 64 s", desk.logins.complete,
             desk.request(card, begun, b"\0" * 64), thief)  # fmt: skip
    # The operator, at the terminal holding the card, logs in meanwhile.
    desk.login(card)
    # The administrator sees who fails as whom, from where, and until when; reading it is audited.
    listed = desk.logins.attempts("", desk.administrator)
    assert [(a.operator_id, a.terminal, a.failures) for a in listed.attempts] == [
        (card.operator_id, "terminal:131148:other", 7)
    ]
    attempt = listed.attempts[0]
    assert attempt.retry_at.ToMilliseconds() - attempt.last_failure_at.ToMilliseconds() == 64_000
    assert "card signature" in attempt.last_reason
    last = desk.audit()[-1]
    assert (last.action, last.outcome, last.actor) == (
        A.AUDIT_ACTION_LIST_LOGIN_ATTEMPTS, A.AUDIT_OUTCOME_SUCCESS, "operator:131148:admin",
    )  # fmt: skip
    assert desk.logins.attempts(card.operator_id, desk.administrator).attempts[0].failures == 7
    assert not desk.logins.attempts("operator:131148:admin", desk.administrator).attempts
    # A success from the same terminal (it got hold of the card after all) clears its record.
    desk.clock.advance(64)
    desk.login(card, terminal=thief)
    assert not desk.logins.attempts("", desk.administrator).attempts


def test_unknown_and_foreign_operators_and_malformed_samples(desk: Desk) -> None:
    _refused(Problem.NOT_FOUND, "no operator 'operator:131148:nobody'", desk.logins.begin, "operator:131148:nobody",
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


def test_pending_logins_are_bounded_per_terminal_and_in_total(desk: Desk) -> None:
    card = desk.card("clerk")
    desk.enroll(card)
    flooders = [desk.other_terminal, *(desk.terminal_named(f"flood-{i}") for i in range(3))]
    for _ in range(16):
        desk.logins.begin(card.operator_id, flooders[0])
    for _ in range(100):  # a flood from one terminal takes its own share only
        _refused(Problem.EXHAUSTED, "terminal:131148:other has 16 logins in progress, at most 16 per terminal",
                 desk.logins.begin, card.operator_id, flooders[0])  # fmt: skip
    desk.login(card)  # the operator at their own terminal is not held up
    desk.clock.advance(10)
    for flooder, share in zip(flooders[1:], (16, 16, 2), strict=True):  # it takes four terminals to fill 50
        for _ in range(share):
            desk.logins.begin(card.operator_id, flooder)
    err = _refused(Problem.EXHAUSTED, "50 logins are in progress at this node, at most 50", desk.logins.begin,
                   card.operator_id, desk.terminal)  # fmt: skip
    assert "try again in 20 s" in str(err)  # when the first flooder's challenges expire
    desk.clock.advance(20)  # expired challenges make room again
    desk.login(card)
    listed = desk.logins.attempts("", desk.administrator)
    assert listed.pending_total == 34 and (listed.pending_limit, listed.pending_per_terminal_limit) == (50, 16)
    assert (listed.pending[0].terminal, listed.pending[0].pending) == ("terminal:131148:flood-0", 16)


def test_a_terminal_share_must_be_below_the_total(desk: Desk) -> None:
    with pytest.raises(ValueError, match="below the total"):
        OperatorLogins(NODE, SITES, desk.storage, desk.trust, None, None, None, None, desk.clock,  # type: ignore[arg-type]
                       max_pending=16, max_pending_per_terminal=16)  # fmt: skip


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


def test_huge_and_hostile_operator_ids_cost_the_log_a_bounded_summary(desk: Desk) -> None:
    log = desk.storage.audit
    size, flood = log.size(), desk.other_terminal
    hostile = ["operator:131148:" + "x" * 60_000 + str(i) for i in range(300)]
    hostile += ["\x1b[2J\u202e" * 10_000 + str(i) for i in range(300)]
    for operator_id in hostile:
        err = _refused(Problem.INVALID, "is not an operator of this node|invalid node id", desk.logins.begin,
                       operator_id, flood)  # fmt: skip
        assert len(str(err)) < 400 and "\x1b" not in str(err) and "SHA-256" in str(err)
    assert log.size() == size + 1  # the first refusal in full; the other 599 counted
    desk.clock.advance(60)
    assert desk.auditor is not None and desk.auditor.flush_refusals() == 1
    first, counted = desk.audit()[size:]
    assert first.ByteSize() < 2_000 and counted.ByteSize() < 2_000
    assert "refused 600 times for INVALID" in counted.detail and "<U+001B>[2J<U+202E>" in counted.detail
    assert first.target.startswith("operator:131148:xxx") and "60017 characters, SHA-256 " in first.target
    assert log.verify().ok
