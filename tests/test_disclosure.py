"""開示 without a network: the server's answers over a real LMDB provision log and copy-issuance log with a
software signing key certified by a real node CA, and the client's verifier refusing every tampered part
(entry, index, inclusion path, tree head, certificate, consistency, another resident's entry)."""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from jukinet import merkle
from jukinet.clients.cards import present_card
from jukinet.clients.disclosure import (
    DisclosureClient,
    DisclosureVerifier,
    SeenHead,
    SeenHeads,
    Verified,
    disclosure_query,
    entry_lines,
)
from jukinet.domain.clock import ManualClock
from jukinet.domain.codes import resident_code_check_digit
from jukinet.domain.disclosure import CARD_PURPOSE, COPY_ISSUANCE_LOG, PROVISION_LOG, parse_query
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.pki import (
    SoftwareSigner,
    generate_key,
    init_pki,
    issue_card_auth_certificate,
    issue_signing_certificate,
    issue_tls_certificate,
    sign_ecdsa_raw,
)
from jukinet.pki.card_presence import CardPresenceVerifier
from jukinet.pki.layout import ca_cert_path
from jukinet.pki.trust import TrustStore
from jukinet.server.audit import Auditor, seal_tree_head
from jukinet.server.disclosure import Disclosure
from jukinet.server.national.disclosure import ProvisionsDisclosed
from jukinet.storage import NodeStorage
from jukinet.v1 import admin_pb2, audit_pb2, cards_pb2, copies_pb2, disclosure_pb2

NATIONAL = NodeId.national()
CS = NodeId.cs("131148")
OPERATOR = "operator:131148:desk"


def _code(n: int) -> str:
    body = f"{n:010d}"
    return body + str(resident_code_check_digit(body))


A, B = _code(1234567), _code(7654321)


@dataclass
class Peer:  # the caller as the disclosure and the audit entry see it
    node_ids: tuple[NodeId, ...] = (CS,)
    actor: str = "cs:131148"

    @property
    def primary(self) -> NodeId:
        return self.node_ids[0]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pki")
    init_pki(path)
    return path


@dataclass
class Node:
    storage: NodeStorage
    disclosure: Disclosure
    signer: SoftwareSigner
    clock: ManualClock
    verifier: DisclosureVerifier

    def provide(self, *codes: str) -> None:
        def write(txn) -> None:
            for code in codes:
                entry = admin_pb2.ProvisionEntry(
                    agency="agency:7123456789012", business_code="pension-benefit", resident_code=code,
                    query_kind=admin_pb2.QUERY_KIND_RESIDENT_CODE, items=["name", "address"],
                )  # fmt: skip
                entry.provided_at.FromMilliseconds(self.clock.now_ms())
                self.storage.provisions.append(txn, entry)

        self.storage.env.write(write)

    def seal(self) -> None:
        while self.storage.provisions.log.integrate(10_000):  # the node's follower, before the head is sealed
            pass
        assert seal_tree_head(str(NATIONAL), self.storage.provisions.log, self.signer, self.clock)

    def ask(self, code: str = A, after: int = 0, limit: int = 0, known: int = 0) -> disclosure_pb2.DisclosureAnswer:
        request = disclosure_pb2.ListForResidentRequest(
            resident_code=code, after_id=after, limit=limit, known_tree_size=known
        )
        return self.disclosure.for_resident(request, Peer(), OPERATOR)  # type: ignore[arg-type]

    def verify(self, answer, seen: SeenHead | None = None, code: str | None = A, after: int = 0) -> Verified:
        return self.verifier.verify(answer, str(NATIONAL), PROVISION_LOG, seen, after, code)


@pytest.fixture
def node(tmp_path: Path, pki: Path) -> Node:
    clock = ManualClock()
    storage = NodeStorage.open(tmp_path / "data")
    signer = SoftwareSigner()
    cert = issue_signing_certificate(pki, "node", [str(NATIONAL)], signer.public_key).public_bytes(Encoding.DER)
    trust = TrustStore.load(pki, clock=clock)
    disclosure = Disclosure(
        NATIONAL, storage, ProvisionsDisclosed(storage.provisions), Auditor(storage, clock), cert,
        CardPresenceVerifier(trust, clock), clock,
    )  # fmt: skip
    node_ca = x509.load_pem_x509_certificate(ca_cert_path(pki, "node").read_bytes())
    yield Node(storage, disclosure, signer, clock, DisclosureVerifier(node_ca, clock))
    storage.close()


def _refused(node: Node, answer, why: str, **kwargs) -> None:
    with pytest.raises(Rejected) as refused:
        node.verify(answer, **kwargs)
    assert refused.value.problem is Problem.UNAUTHENTICATED
    assert why in str(refused.value) and "not shown" in str(refused.value), str(refused.value)


# -- what the server answers ------------------------------------------------------------------------------


def test_a_resident_gets_exactly_their_entries_each_proved_against_the_signed_head(node: Node) -> None:
    node.provide(A, B, A, B, B, A)
    node.seal()
    answer = node.ask()
    verified = node.verify(answer)
    assert [i for i, _ in verified.entries] == [0, 2, 5]
    assert all(e.resident_code == A for _, e in verified.entries)
    assert verified.head.tree_size == 6 and not verified.more and not verified.newer_than_tree_head
    assert [i for i, _ in node.verify(node.ask(B), code=B).entries] == [1, 3, 4]
    other = _code(1111111)
    assert node.ask(other).entries == []  # a resident with no provisions: nothing, still proved against a head
    last = node.storage.audit.leaf(node.storage.audit.size() - 1)
    entry = audit_pb2.AuditEntry.FromString(last)
    assert (entry.action, entry.actor, entry.target) == (audit_pb2.AUDIT_ACTION_DISCLOSE, OPERATOR, other)
    lines = entry_lines([verified])
    assert lines[0].startswith("provision #1 ") and "agency:7123456789012 for pension-benefit" in lines[0]
    assert "inclusion: 3 entries verified against tree head size 6" in lines[-2]


def test_entries_newer_than_the_head_are_not_disclosed_and_pages_follow(node: Node) -> None:
    node.provide(A, A, A)
    node.seal()
    node.provide(A)  # logged, not yet covered by a signed head
    answer = node.ask()
    assert [e.leaf_index for e in answer.entries] == [0, 1, 2] and answer.newer_than_tree_head
    first = node.ask(limit=2)
    assert [e.leaf_index for e in first.entries] == [0, 1] and first.more
    second = node.ask(after=2, limit=2)
    assert [e.leaf_index for e in second.entries] == [2] and not second.more and second.newer_than_tree_head
    node.verify(second, after=2)
    _refused(node, first, "out of order", after=2)  # entries of another page than the one asked
    node.seal()
    assert [e.leaf_index for e in node.ask().entries] == [0, 1, 2, 3]


def test_the_page_and_the_known_head_are_bounded(node: Node) -> None:
    node.provide(A)
    with pytest.raises(Rejected) as none_yet:
        node.ask()
    assert none_yet.value.problem is Problem.NOT_FOUND  # no head sealed yet
    node.seal()
    for kwargs, problem in (({"limit": 501}, Problem.INVALID), ({"known": 2}, Problem.CONFLICT)):
        with pytest.raises(Rejected) as refused:
            node.ask(**kwargs)
        assert refused.value.problem is problem
    with pytest.raises(Rejected):
        node.ask("12345")
    with pytest.raises(Rejected) as elsewhere:
        parse_query(disclosure_pb2.DisclosureQuery(node_id="cs:131016").SerializeToString(), "national")
    assert elsewhere.value.problem is Problem.INVALID


def test_a_resident_is_limited_to_a_rate(node: Node) -> None:
    node.provide(A)
    node.seal()
    for _ in range(60):
        node.ask()
    with pytest.raises(Rejected) as flooded:
        node.ask()
    assert flooded.value.problem is Problem.EXHAUSTED
    node.ask(B)  # another resident is not held up
    node.clock.advance(60)
    node.ask()


# -- the resident's card decides whose entries --------------------------------------------------------------


class SoftCard:
    """A resident card's authentication key and certificate, in software (the card itself is tested in
    tests/test_resident_card.py; here what matters is what the node accepts)."""

    def __init__(self, pki: Path, serial: str) -> None:
        self._key = generate_key()
        self.certificate = issue_card_auth_certificate(pki, serial, self._key.public_key())
        self.auth_certificate_der = self.certificate.public_bytes(Encoding.DER)
        self.serial = serial

    def sign_auth(self, data: bytes) -> bytes:
        return sign_ecdsa_raw(self._key, data)


PORTAL = Peer((NodeId.portal("myna"),), "portal:myna")


def test_the_card_decides_whose_entries_only_as_the_node_recorded_it(node: Node, pki: Path) -> None:
    node.provide(A, B, A)
    node.seal()
    card = SoftCard(pki, secrets.token_hex(8))
    record = cards_pb2.CardRecord(
        card_serial=card.serial, resident_code=A, state=cards_pb2.CARD_STATE_ISSUED,
        auth_certificate_serial=format(card.certificate.serial_number, "x"),
    )  # fmt: skip

    def ask() -> disclosure_pb2.DisclosureAnswer:
        node.clock.advance(0.001)  # a new presentation (the same one twice is a replay)
        query = disclosure_query("national")
        presented = present_card(card, CARD_PURPOSE, "national", query, node.clock)
        return node.disclosure.mine(query, presented, PORTAL)  # type: ignore[arg-type]

    def refused(why: str) -> None:
        with pytest.raises(Rejected) as exc:
            ask()
        assert exc.value.problem is Problem.UNAUTHENTICATED and why in str(exc.value), str(exc.value)

    refused("holds no card")  # a card this node does not know
    for changed in (
        {"auth_certificate_serial": "1234"},  # the index holds another certificate for this serial (a clone)
        {"auth_certificate_serial": ""},
        {"auth_certificate": b"another certificate"},  # a CS keeps the DER: another one
        {"state": cards_pb2.CARD_STATE_SUSPENDED},
        {"auth_revoked": True},
    ):
        stored = cards_pb2.CardRecord()
        stored.CopyFrom(record)
        for field, value in changed.items():
            setattr(stored, field, value)
        node.storage.env.write(lambda txn, stored=stored: node.storage.cards.put(txn, stored))
        refused("holds no card")
    node.storage.env.write(lambda txn: node.storage.cards.put(txn, record))
    answer = ask()
    assert answer.resident_code == A and [e.leaf_index for e in answer.entries] == [0, 2]
    as_cs = cards_pb2.CardRecord()
    as_cs.CopyFrom(record)
    as_cs.auth_certificate = card.auth_certificate_der
    node.storage.env.write(lambda txn: node.storage.cards.put(txn, as_cs))
    assert ask().resident_code == A
    entry = audit_pb2.AuditEntry.FromString(node.storage.audit.leaf(node.storage.audit.size() - 1))
    assert (entry.actor, entry.terminal, entry.target) == (f"card:{card.serial}", "portal:myna", A)


# -- consistency with the head seen before ------------------------------------------------------------------


def test_consistency_with_the_head_seen_before(node: Node) -> None:
    node.provide(A, B, B)
    node.seal()
    first = node.verify(node.ask())
    seen = SeenHead(first.head.tree_size, bytes(first.head.root_hash))
    node.provide(B, A, B, B, A)
    node.seal()
    later = node.ask(known=seen.tree_size)
    verified = node.verify(later, seen)
    assert verified.consistent_from == 3 and verified.head.tree_size == 8
    assert [i for i, _ in verified.entries] == [0, 4, 7]
    assert "consistency 3 → 8 verified" in entry_lines([verified])
    _refused(node, later, "consistency", seen=SeenHead(3, b"\x01" * 32))  # a forked log: another root then
    _refused(node, later, "consistency", seen=SeenHead(9, bytes(later.consistency_proof[0])))  # rolled back
    broken = copy.deepcopy(later)
    broken.consistency_proof[0] = bytes(32)
    _refused(node, broken, "consistency", seen=seen)
    same = node.ask(known=8)
    assert not same.consistency_proof
    _refused(node, same, "two different roots", seen=SeenHead(8, seen.root))


def test_seen_heads_are_kept_in_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "seen.json"
    heads = SeenHeads(path)
    heads.put("national", PROVISION_LOG, SeenHead(12, b"\xab" * 32))
    again = SeenHeads(path)
    assert again.get("national", PROVISION_LOG) == SeenHead(12, b"\xab" * 32)
    assert again.get("cs:131148", COPY_ISSUANCE_LOG) is None
    path.write_text("[1, 2]")
    with pytest.raises(Rejected):
        SeenHeads(path)


# -- tampered answers ----------------------------------------------------------------------------------------


def _tampered(answer: disclosure_pb2.DisclosureAnswer, change) -> disclosure_pb2.DisclosureAnswer:
    out = copy.deepcopy(answer)
    change(out)
    return out


def test_a_tampered_entry_index_or_path_is_refused(node: Node) -> None:
    node.provide(A, B, A, B, A, B, B, B, A)
    node.seal()
    answer = node.ask()
    node.verify(answer)

    def other_agency(a) -> None:
        entry = admin_pb2.ProvisionEntry.FromString(a.entries[1].leaf)
        entry.agency = "agency:6100000000001"
        a.entries[1].leaf = entry.SerializeToString()

    def moved(a) -> None:
        a.entries[1].leaf_index += 1

    def path(a) -> None:
        a.entries[0].inclusion_path[2] = bytes(32)

    def short_path(a) -> None:
        del a.entries[0].inclusion_path[-1]

    def garbage(a) -> None:
        a.entries[0].leaf = b"\xff" + a.entries[0].leaf

    for change in (other_agency, moved, path, short_path, garbage):
        _refused(node, _tampered(answer, change), "inclusion")


def test_another_residents_entry_is_refused_even_with_a_valid_proof(node: Node) -> None:
    node.provide(A, B)
    node.seal()
    answer, theirs = node.ask(), node.ask(B)
    smuggled = _tampered(answer, lambda a: a.entries.append(theirs.entries[0]))
    _refused(node, smuggled, f"of {B}")
    renamed = _tampered(theirs, lambda a: setattr(a, "resident_code", A))
    _refused(node, renamed, f"of {B}")
    _refused(node, theirs, "not " + A)  # the counter asked for A


def test_a_tampered_or_foreign_tree_head_is_refused(node: Node, pki: Path, tmp_path: Path) -> None:
    node.provide(A, B, A)
    node.seal()
    answer = node.ask()

    def grown(a) -> None:
        head = audit_pb2.TreeHead.FromString(a.tree_head.payload)
        head.tree_size += 1
        a.tree_head.payload = head.SerializeToString()

    def signature(a) -> None:
        a.tree_head.signature = bytes(64)

    def no_certificate(a) -> None:
        a.signer_certificate = b""

    _refused(node, _tampered(answer, grown), "signature does not verify")
    _refused(node, _tampered(answer, signature), "signature does not verify")
    _refused(node, _tampered(answer, no_certificate), "does not parse")
    _refused(node, _tampered(answer, lambda a: setattr(a, "log", COPY_ISSUANCE_LOG)), "log")
    _refused(node, _tampered(answer, lambda a: setattr(a.tree_head, "payload_type", "jukinet.v1.Receipt")), "holds")

    # A head signed by another node's key (certified by the node CA, naming cs:131148) is not national's.
    other = SoftwareSigner()
    cs_cert = issue_signing_certificate(pki, "node", [str(CS)], other.public_key).public_bytes(Encoding.DER)
    seal_tree_head(str(NATIONAL), node.storage.audit, other, node.clock)  # any head, signed by the other key
    forged = _tampered(answer, lambda a: setattr(a, "signer_certificate", cs_cert))
    _refused(node, forged, "does not name national")
    # A foreign CA's certificate naming national.
    foreign = tmp_path / "foreign"
    init_pki(foreign)
    fake = issue_signing_certificate(foreign, "node", [str(NATIONAL)], node.signer.public_key)
    _refused(node, _tampered(answer, lambda a: setattr(a, "signer_certificate", fake.public_bytes(Encoding.DER))),
             "not issued by the node CA")  # fmt: skip
    # The node's TLS certificate is not a signing certificate.
    tls_pem, _ = issue_tls_certificate(pki, "node", [str(NATIONAL)], tmp_path / "tls")
    tls = x509.load_pem_x509_certificate(tls_pem.read_bytes()).public_bytes(Encoding.DER)
    _refused(node, _tampered(answer, lambda a: setattr(a, "signer_certificate", tls)), "not a signing certificate")


# -- the copy-issuance log and the portal identity ----------------------------------------------------------


def test_the_copy_issuance_log_is_a_merkle_log_indexed_per_resident(tmp_path: Path) -> None:
    storage = NodeStorage.open(tmp_path / "data")
    clock = ManualClock()

    def issue(code: str) -> int:
        issuance = copies_pb2.CopyIssuance(resident_code=code, requesting_cs="cs:131016", request_sha256=bytes(32))
        issuance.issued_at.FromMilliseconds(clock.now_ms())
        return storage.env.write(lambda txn: storage.copies.append(txn, issuance))

    assert [issue(c) for c in (A, B, A, A)] == [1, 2, 3, 4]
    entries, more = storage.copies.of_resident(A, 0, 2)
    assert [i for i, _ in entries] == [0, 2] and more
    assert [c.serial for c in storage.copies.page(A, 1, 10)] == [3, 4]
    log = storage.copies.log
    assert log.name == COPY_ISSUANCE_LOG and log.size() == 4
    leaf_hash, path = log.inclusion_proof(2, 4)
    assert leaf_hash == merkle.leaf_hash(entries[1][1])
    merkle.verify_inclusion(leaf_hash, 2, 4, path, log.root())
    with storage.env.read() as txn:
        assert storage.copies.answered(txn, A, bytes(32), clock.now_ms() - 1)
        assert not storage.copies.answered(txn, A, b"\x01" * 32, 0)
    new = _code(2222222)
    storage.env.write(lambda txn: storage.copies.move(txn, A, new))
    assert storage.copies.page(A, 0, 10) == [] and [c.serial for c in storage.copies.page(new, 0, 10)] == [1, 3, 4]
    with pytest.raises(Rejected):
        storage.env.write(lambda txn: storage.copies.append(txn, copies_pb2.CopyIssuance(resident_code=A, serial=9)))
    storage.close()


def test_a_portal_is_a_node_ca_identity_that_serves_nothing(pki: Path, tmp_path: Path) -> None:
    portal = NodeId.parse("portal:myna")
    assert portal.kind is NodeKind.PORTAL and not portal.is_node and str(portal) == "portal:myna"
    for bad in ("portal:", "portal:My-Na", "portal:" + "a" * 33):
        with pytest.raises(Rejected):
            NodeId.parse(bad)
    cert_path, _ = issue_tls_certificate(pki, "node", [str(portal)], tmp_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]  # it may call, never serve
    assert (
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        == []
    )
    ident = TrustStore.load(pki).identify(cert_path.read_bytes(), expect="node")
    assert ident.node_ids == (portal,)


# -- rates that junk and invented names cannot escape or exhaust for others ----------------------------------


def _recorded_card(node: Node, pki: Path, code: str) -> SoftCard:
    card = SoftCard(pki, secrets.token_hex(8))
    record = cards_pb2.CardRecord(
        card_serial=card.serial, resident_code=code, state=cards_pb2.CARD_STATE_ISSUED,
        auth_certificate_serial=format(card.certificate.serial_number, "x"),
    )  # fmt: skip
    node.storage.env.write(lambda txn: node.storage.cards.put(txn, record))
    return card


def _mine(node: Node, card: SoftCard, portal: Peer = PORTAL) -> disclosure_pb2.DisclosureAnswer:
    node.clock.advance(0.001)
    query = disclosure_query("national")
    presented = present_card(card, CARD_PURPOSE, "national", query, node.clock)
    return node.disclosure.mine(query, presented, portal)  # type: ignore[arg-type]


def test_junk_presentations_do_not_stop_a_valid_resident(node: Node, pki: Path) -> None:
    node.provide(A, B)
    node.seal()
    card = _recorded_card(node, pki, A)
    stranger = SoftCard(pki, secrets.token_hex(8))  # a real card CA certificate this node holds no record of
    query = disclosure_query("national")
    junk = cards_pb2.CardPresentation(auth_certificate=b"x", signed_at_ms=node.clock.now_ms(), signature=b"y" * 64)
    problems = []
    for i in range(601):
        presented = junk if i % 2 else present_card(stranger, CARD_PURPOSE, "national", query, node.clock)
        with pytest.raises(Rejected) as refused:
            node.disclosure.mine(query, presented, PORTAL)  # type: ignore[arg-type]
        problems.append(refused.value.problem)
    assert set(problems[:600]) == {Problem.UNAUTHENTICATED}
    assert problems[600] is Problem.EXHAUSTED  # the portal's failures have a bucket of their own
    for _ in range(3):  # the residents the portal relays are still served
        assert [e.leaf_index for e in _mine(node, card).entries] == [0]
    for _ in range(57):
        _mine(node, card)
    with pytest.raises(Rejected) as flooded:  # a valid card is still limited per holder
        _mine(node, card)
    assert flooded.value.problem is Problem.EXHAUSTED and "for this resident" in str(flooded.value)
    other = _recorded_card(node, pki, B)
    assert [e.leaf_index for e in _mine(node, other).entries] == [1]


def test_a_cs_cannot_escape_its_rate_by_naming_new_operators(node: Node) -> None:
    node.provide(A)
    node.seal()
    codes = [_code(3_000_000 + i) for i in range(601)]  # each resident once: their own bucket stays full
    for i, code in enumerate(codes[:600]):
        request = disclosure_pb2.ListForResidentRequest(resident_code=code)
        node.disclosure.for_resident(request, Peer(), f"operator:131148:o{i}")  # type: ignore[arg-type]
    with pytest.raises(Rejected) as flooded:
        request = disclosure_pb2.ListForResidentRequest(resident_code=codes[600])
        node.disclosure.for_resident(request, Peer(), "operator:131148:never-seen")  # type: ignore[arg-type]
    assert flooded.value.problem is Problem.EXHAUSTED
    other_cs = Peer((NodeId.cs("131016"),), "cs:131016")  # another CS is not held up
    node.disclosure.for_resident(disclosure_pb2.ListForResidentRequest(resident_code=A), other_cs, OPERATOR)  # type: ignore[arg-type]


class _Portal:
    """What a dishonest portal hands the resident's client: the answer it chooses."""

    def __init__(self, answer: disclosure_pb2.DisclosureAnswer) -> None:
        self.answer = answer

    def ListMine(self, request, timeout=None) -> disclosure_pb2.ListMineResponse:
        return disclosure_pb2.ListMineResponse(answer=self.answer)


def test_the_resident_client_refuses_an_answer_for_another_or_spliced(node: Node, pki: Path, tmp_path: Path) -> None:
    node.provide(A, B, A, B)
    node.seal()
    card = SoftCard(pki, secrets.token_hex(8))
    mine, theirs = node.ask(A), node.ask(B)

    def listed(answer: disclosure_pb2.DisclosureAnswer) -> list[Verified]:
        client = DisclosureClient(grpc.insecure_channel("localhost:9"), node.verifier, SeenHeads(None))
        client._stub = _Portal(answer)  # type: ignore[assignment]
        return list(client.mine(card, A, str(NATIONAL), PROVISION_LOG, clock=node.clock))

    assert [i for page in listed(mine) for i, _ in page.entries] == [0, 2]
    for answer, why in (
        (theirs, f"it is for {B}, not {A}"),  # another resident's whole answer
        (_tampered(mine, lambda a: a.entries.append(theirs.entries[1])), f"of {B}"),  # an entry spliced in
    ):
        with pytest.raises(Rejected) as refused:
            listed(answer)
        assert refused.value.problem is Problem.UNAUTHENTICATED and why in str(refused.value), str(refused.value)
    # The one thing taken on the node's word (module docstring of jukinet.clients.disclosure): an entry of a
    # code the answer lists as a former code of this resident.
    former = _tampered(mine, lambda a: a.former_resident_codes.append(B))
    assert [i for page in listed(former) for i, _ in page.entries] == [0, 2]
