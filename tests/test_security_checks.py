"""Security checks, each attacked alone: every forgery here is caught by exactly one check, so removing
that check makes its test fail (docs/SECURITY.md lists them; ``make removals`` proves it).

Plain objects only — login on a manual clock with software keys standing in for cards and the node's
token, the change-notice rules, the provision log, the tree-head check — no gRPC and no SoftHSM. Each
test first shows the genuine case passing, so that a refusal means the forgery was seen.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from loginkit import Card, SoftwareAesGcm

from jukinet.biometrics import SyntheticSubject, enroll
from jukinet.domain.clock import ManualClock
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.operators import login_signing_input
from jukinet.domain.records import status_for
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki import SoftwareSigner, TrustStore, init_pki, issue_signing_certificate, issue_tls_certificate, seal
from jukinet.server.audit import Auditor, check_tree_head
from jukinet.server.changes import check_notices
from jukinet.server.login import OperatorAdministration, OperatorLogins, TemplateVault
from jukinet.server.national.legal_table import LegalTable
from jukinet.server.provision import Provision
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.sessions import SessionIssuer, SessionVerifier
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, identity_pb2, notice_pb2, operator_pb2

NODE = NodeId.cs("131148")
SITES = frozenset({"131148"})
A = audit_pb2
_END = b"-----END CERTIFICATE-----"


@dataclass
class Site:
    logins: OperatorLogins
    admin: OperatorAdministration
    storage: NodeStorage
    clock: ManualClock
    pki: Path
    desk: Caller  # the site's terminal
    other_desk: Caller  # another terminal of the same site
    rng: np.random.Generator

    def card(self, name: str) -> Card:
        operator_id = f"operator:131148:{name}"
        signer = SoftwareSigner()
        cert = issue_signing_certificate(self.pki, "operator", [operator_id], signer.public_key)
        return Card(operator_id, signer, cert.public_bytes(Encoding.DER), SyntheticSubject.create(self.rng))

    def enroll(self, card: Card, by: Caller) -> None:
        template = [float(x) for x in enroll(card.subject, self.rng)]
        self.admin.enroll(
            operator_pb2.EnrollOperatorRequest(
                operator_id=card.operator_id, card_certificate=card.certificate_der,
                roles=["administer-operators", "register-residents"],
                template=operator_pb2.BiometricSample(features=template),
            ),
            by,
        )  # fmt: skip

    def login(
        self,
        card: Card,
        *,
        begin_for: str | None = None,  # the operator the challenge is asked for
        begin_at: Caller | None = None,
        complete_at: Caller | None = None,
        signer: SoftwareSigner | None = None,
        certificate_der: bytes | None = None,
        wait: float = 0.0,
    ) -> operator_pb2.CompleteLoginResponse:
        """A login by ``card``'s operator; each keyword changes one thing an attacker would."""
        begin_at = begin_at or self.desk
        begun = self.logins.begin(begin_for or card.operator_id, begin_at)
        self.clock.advance(wait)
        signed = login_signing_input(begun.node_id, begun.challenge, begin_at.fingerprint)
        sample = [float(x) for x in card.subject.capture(self.rng)]
        request = operator_pb2.CompleteLoginRequest(
            challenge_id=begun.challenge_id, operator_id=card.operator_id,
            card_certificate=certificate_der or card.certificate_der, signature=(signer or card.signer).sign(signed),
            sample=operator_pb2.BiometricSample(features=sample),
        )  # fmt: skip
        return self.logins.complete(request, complete_at or self.desk)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    pki = tmp_path / "pki"
    init_pki(pki)
    clock = ManualClock()
    trust = TrustStore.load(pki, clock=clock)
    storage = NodeStorage.open(tmp_path / "data")
    node_key = SoftwareSigner()
    verifier = SessionVerifier(str(NODE), node_key.public_key, storage.operators.get, clock=clock)
    auditor, vault = Auditor(storage, clock), TemplateVault(SoftwareAesGcm())
    issuer = SessionIssuer(str(NODE), node_key, 900, clock)
    logins = OperatorLogins(NODE, SITES, storage, trust, vault, issuer, verifier, auditor, clock)

    def terminal(name: str) -> Caller:
        cert, _ = issue_tls_certificate(pki, "operator", [f"terminal:131148:{name}"], tmp_path / name)
        return Caller(trust.identify(cert.read_bytes().split(_END)[0] + _END + b"\n"), None, verifier)

    admin = OperatorAdministration(SITES, storage, trust, vault, auditor, clock)
    made = Site(logins, admin, storage, clock, pki, terminal("ops"), terminal("other"), np.random.default_rng(11))
    yield made
    storage.close()


@pytest.fixture
def clerk(site: Site) -> Card:
    """The site's first operator (enrolled as bootstrap), whose genuine login succeeds."""
    card = site.card("clerk")
    site.enroll(card, site.desk)
    assert site.login(card).claims.operator_id == card.operator_id
    return card


def _refused(fn, *args, **kwargs) -> Rejected:
    with pytest.raises(Rejected) as exc:
        fn(*args, **kwargs)
    assert exc.value.problem in (Problem.UNAUTHENTICATED, Problem.DENIED), exc.value
    return exc.value


# -- operator login: one forged factor at a time --------------------------------------------------------


def test_the_card_must_sign_the_challenge(site: Site, clerk: Card) -> None:
    """Card certificate and biometric are genuine; the signature is another key's: no card, no login."""
    err = _refused(site.login, clerk, signer=SoftwareSigner())
    assert "signature" in str(err)


def test_a_challenge_is_bound_to_its_operator(site: Site, clerk: Card) -> None:
    """A challenge asked for one operator cannot complete another's login."""
    other = site.card("other")
    session = site.login(clerk).session.SerializeToString()
    site.enroll(other, Caller(site.desk.identity, session, site.desk.sessions))
    _refused(site.login, clerk, begin_for=other.operator_id)


def test_a_challenge_is_bound_to_its_terminal(site: Site, clerk: Card) -> None:
    """A login begun (and signed by the card) at one terminal cannot be completed from another."""
    _refused(site.login, clerk, begin_at=site.desk, complete_at=site.other_desk)


def test_a_challenge_expires(site: Site, clerk: Card) -> None:
    assert site.login(clerk, wait=29).claims.operator_id == clerk.operator_id
    _refused(site.login, clerk, wait=31)


def test_only_the_enrolled_card_logs_in(site: Site, clerk: Card) -> None:
    """A second, valid card naming the same operator, never enrolled (say, reported lost and reissued)."""
    spare = site.card("clerk")
    _refused(site.login, Card(clerk.operator_id, spare.signer, spare.certificate_der, clerk.subject))


def test_the_card_must_name_the_operator(site: Site, clerk: Card) -> None:
    """Even if the record held another operator's card (written before enrollment checked it, or by a
    bug), that card does not log in as this operator."""
    stranger = site.card("stranger")

    def swap(record) -> None:
        record.card_certificate = stranger.certificate_der

    site.storage.env.write(lambda txn: site.storage.operators.update(txn, clerk.operator_id, swap))
    assert site.storage.operators.get(clerk.operator_id).card_certificate == stranger.certificate_der
    _refused(site.login, Card(clerk.operator_id, stranger.signer, stranger.certificate_der, clerk.subject))


def test_administration_wants_an_operator_id_of_the_site(site: Site, clerk: Card) -> None:
    """An empty id is no LMDB key: refused as INVALID_ARGUMENT, not an internal error."""
    session = site.login(clerk).session.SerializeToString()
    administrator = Caller(site.desk.identity, session, site.desk.sessions)
    for call in (lambda i: site.admin.show(i), lambda i: site.admin.unlock(i, administrator)):
        for operator_id in ("", "operator:131016:clerk"):
            with pytest.raises(Rejected) as exc:
                call(operator_id)
            assert exc.value.problem is Problem.INVALID


# -- ingest: the status follows from the reason -----------------------------------------------------------


def test_a_notice_whose_status_does_not_follow_from_its_reason_is_refused() -> None:
    today = datetime.date(2026, 1, 15)
    record = synthetic_resident(
        random.Random(3), "131148", identity_pb2.CHANGE_REASON_MOVE_IN, today=today, numbered=True
    )
    record.status = status_for(record.change_reason)
    notice = notice_pb2.ChangeNotice(origin="cs:131148", sequence=1, record=record)
    check_notices([(1, notice)], NODE, today)  # genuine
    notice.record.status = identity_pb2.RECORD_STATUS_REMOVED  # a move-in that claims a 除票
    with pytest.raises(ItemRefused, match="does not follow from the change reason") as exc:
        check_notices([(7, notice)], NODE, today)
    assert (exc.value.problem, exc.value.position) == (Problem.INVALID, 7)


def test_a_notice_must_name_its_sender_as_origin() -> None:
    """A CS's own resident, in a notice claiming to come from another CS: refused (history keeps origins)."""
    today = datetime.date(2026, 1, 15)
    record = synthetic_resident(
        random.Random(5), "131148", identity_pb2.CHANGE_REASON_MOVE_IN, today=today, numbered=True
    )
    record.status = status_for(record.change_reason)
    notice = notice_pb2.ChangeNotice(origin="cs:131148", sequence=1, record=record)
    check_notices([(1, notice)], NODE, today)  # genuine
    notice.origin = "cs:131016"
    with pytest.raises(ItemRefused, match="did not originate at cs:131148") as exc:
        check_notices([(2, notice)], NODE, today)
    assert (exc.value.problem, exc.value.position) == (Problem.DENIED, 2)


# -- provision: every answer has its audit entry --------------------------------------------------------


def test_a_provision_is_in_the_audit_log_before_it_is_answered(tmp_path: Path) -> None:
    (tmp_path / "table.toml").write_text(
        '[[row]]\nagency = "7123456789012"\nbusiness = "pension-benefit"\ntitle = "年金給付"\n', encoding="utf-8"
    )
    clock = ManualClock()
    storage = NodeStorage.open(tmp_path / "data")
    try:
        record = synthetic_resident(random.Random(9), "131148", numbered=True)  # as the national server holds it
        storage.env.write(lambda txn: storage.records.put(txn, record, None))
        table = LegalTable.load(tmp_path / "table.toml")
        provision = Provision(storage, lambda: table, Auditor(storage, clock), clock)
        provided = provision.by_resident_code(NodeId.parse("agency:7123456789012"), "pension-benefit",
                                              record.resident_code)  # fmt: skip
        entries = [A.AuditEntry.FromString(e) for e in storage.audit.entries(0, storage.audit.size())]
        assert [(e.action, e.outcome, e.actor, e.target) for e in entries] == [
            (A.AUDIT_ACTION_PROVIDE_IDENTITY, A.AUDIT_OUTCOME_SUCCESS, "agency:7123456789012", record.resident_code)
        ]
        assert f"provision #{provided.provision_id}" in entries[0].detail
    finally:
        storage.close()


# -- audit: a tree head is believed only with the node's signature -------------------------------------


def test_a_tree_head_needs_the_node_signature(tmp_path: Path) -> None:
    init_pki(tmp_path / "pki")
    key = SoftwareSigner()
    certificate = issue_signing_certificate(tmp_path / "pki", "node", ["cs:131148"], key.public_key)
    head = A.TreeHead(node_id="cs:131148", tree_size=3, root_hash=b"\x11" * 32)
    assert check_tree_head(seal(key, head), certificate, "cs:131148").root_hash == head.root_hash
    forged = seal(SoftwareSigner(), head)  # right payload, another key
    with pytest.raises(Rejected):
        check_tree_head(forged, certificate, "cs:131148")
    altered = seal(key, head)
    altered.payload = A.TreeHead(node_id="cs:131148", tree_size=3, root_hash=b"\x22" * 32).SerializeToString()
    with pytest.raises(Rejected):
        check_tree_head(altered, certificate, "cs:131148")
