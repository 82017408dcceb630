"""広域交付 as plain objects: the rules of a copy (domain), the home CS's issuer over a real LMDB, and the
requesting CS's verification of what comes back. No gRPC, no tokens (software keys certified by a real
development PKI); resident cards are a stand-in here (the e2e tests use real cards)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.clients.copies import copy_request
from jukinet.cs_node.copies import CopyCounter, CopyIssuer, DvMeasures, IssuanceDisclosure
from jukinet.domain.clock import ManualClock
from jukinet.domain.copies import (
    certified_copy,
    check_fresh,
    copy_problem,
    dv_measure,
    parse_request,
    refusing_measure,
    request_digest,
)
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki import SoftwareSigner, TrustStore, init_pki, issue_signing_certificate, revoke, seal, seal_payload
from jukinet.server.audit import Auditor
from jukinet.server.runtime.guard import AlreadyAudited
from jukinet.server.runtime.policy import OtherNodes
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, cards_pb2, copies_pb2, identity_pb2, local_pb2

C = copies_pb2
HOME, COUNTER = NodeId.cs("131148"), NodeId.cs("131016")
LOCAL = local_pb2.LocalResidentData(
    head_of_household="中野 一郎",
    relationship="妻",
    registered_domicile="東京都中野区中野一丁目1番",
    head_of_family_register="中野 一郎",
)


@dataclass
class Peer:  # the caller as the issuer and the audit entry see it
    node_ids: tuple[NodeId, ...] = (COUNTER,)
    actor: str = "cs:131016"

    @property
    def primary(self) -> NodeId:
        return self.node_ids[0]

    @property
    def identity(self) -> str:
        return ",".join(map(str, self.node_ids))


@dataclass
class Cards:
    """Stand-in for the cards part: card serial -> holder; a presentation is its card serial in the signature
    field, valid only for the request it was made for."""

    holders: dict[str, str] = field(default_factory=dict)
    presented_for: dict[bytes, str] = field(default_factory=dict)

    def presented(self, card: cards_pb2.CardPresentation, home: NodeId, request: bytes) -> str:
        serial = self.presented_for.get(request)
        if serial is None or card.signature != serial.encode():
            raise Rejected(Problem.UNAUTHENTICATED, "the card presentation does not verify")
        return serial

    def holder(self, txn, card_serial: str) -> str | None:
        return self.holders.get(card_serial)

    def present(self, serial: str, request: bytes) -> cards_pb2.CardPresentation:
        self.presented_for[request] = serial
        return cards_pb2.CardPresentation(signature=serial.encode())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pki")
    init_pki(path)
    return path


@dataclass
class Home:
    issuer: CopyIssuer
    storage: NodeStorage
    cards: Cards
    clock: ManualClock
    signer: SoftwareSigner
    certificate: bytes
    resident: identity_pb2.IdentityRecord


@pytest.fixture
def home(tmp_path: Path, pki: Path) -> Home:
    clock = ManualClock()
    storage = NodeStorage.open(tmp_path / "data")
    signer = SoftwareSigner()
    cert = issue_signing_certificate(pki, "node", [str(HOME)], signer.public_key).public_bytes(Encoding.DER)
    resident = synthetic_resident(random.Random(8), HOME.code, numbered=True)
    resident.status = identity_pb2.RECORD_STATUS_ACTIVE

    def put(txn) -> None:
        storage.records.put(txn, resident, None)
        storage.local.put(txn, resident.resident_code, LOCAL)

    storage.env.write(put)
    cards = Cards({"card-1": resident.resident_code})
    issuer = CopyIssuer(HOME, storage, Auditor(storage, clock), signer, cert, cards, clock)
    yield Home(issuer, storage, cards, clock, signer, cert, resident)
    storage.close()


def _request(home: Home, **kwargs) -> bytes:
    kwargs.setdefault("now_ms", home.clock.now_ms())
    return copy_request(COUNTER, HOME, kwargs.pop("resident_code", home.resident.resident_code), **kwargs)


def _issue(home: Home, raw: bytes, serial: str = "card-1", caller: Peer | None = None):
    return home.issuer.issue(raw, home.cards.present(serial, raw), caller or Peer())


def _audit(storage: NodeStorage) -> list[audit_pb2.AuditEntry]:
    return [audit_pb2.AuditEntry.FromString(leaf) for leaf in storage.audit.entries(0, storage.audit.size())]


# -- the request ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field_named"),
    [
        ({"requesting_cs": "pref:13"}, "requesting_cs"),
        ({"requesting_cs": "cs:131149"}, "requesting_cs"),
        ({"home_cs": "cs:131016"}, "home_cs"),
        ({"resident_code": "12345678901"}, "resident_code"),
        ({"nonce": b"x" * 15}, "nonce"),
        ({"nonce": b"x" * 65}, "nonce"),
    ],
)
def test_a_malformed_request_is_refused_naming_the_field(change, field_named) -> None:
    request = C.CopyRequest.FromString(copy_request(COUNTER, HOME, "", now_ms=1))
    for name, value in change.items():
        setattr(request, name, value)
    with pytest.raises(Rejected) as refused:
        parse_request(request.SerializeToString())
    assert refused.value.problem is Problem.INVALID and str(refused.value).startswith(field_named)


def test_empty_garbage_oversized_and_timeless_requests_are_refused() -> None:
    timeless = C.CopyRequest.FromString(copy_request(COUNTER, HOME, now_ms=1))
    timeless.ClearField("requested_at")
    for raw in (b"", b"\xff\xff\xff", b"\x0a" + b"\x80" * 2000, timeless.SerializeToString()):
        with pytest.raises(Rejected) as refused:
            parse_request(raw)
        assert refused.value.problem is Problem.INVALID


def test_a_request_is_fresh_for_120_seconds_either_way() -> None:
    request = parse_request(copy_request(COUNTER, HOME, now_ms=1_000_000))
    check_fresh(request, 1_000_000 + 120_000)
    check_fresh(request, 1_000_000 - 120_000)
    for now in (1_000_000 + 120_001, 1_000_000 - 120_001):
        with pytest.raises(Rejected, match="requested_at"):
            check_fresh(request, now)


# -- what a copy holds ------------------------------------------------------------------------------------


def _copy(include_code: bool = False, include_number: bool = False) -> tuple[C.CertifiedCopy, C.CopyRequest, bytes]:
    resident = synthetic_resident(random.Random(3), HOME.code, numbered=True)
    raw = copy_request(COUNTER, HOME, resident.resident_code, include_resident_code=include_code,
                       include_my_number=include_number, now_ms=5)  # fmt: skip
    request = parse_request(raw)
    return certified_copy(resident, LOCAL, request, request_digest(raw), 7, 5), request, raw


def test_a_copy_holds_the_household_never_the_domicile_and_the_numbers_only_when_asked() -> None:
    copy, _, raw = _copy()
    assert (copy.head_of_household, copy.relationship) == ("中野 一郎", "妻")
    assert not copy.resident_code and not copy.my_number
    assert "registered_domicile" not in C.CertifiedCopy.DESCRIPTOR.fields_by_name
    assert LOCAL.registered_domicile.encode() not in copy.SerializeToString()
    assert (copy.serial, copy.issuer, copy.requesting_cs, copy.request_sha256) == (7, "cs:131148", "cs:131016",
                                                                                   request_digest(raw))  # fmt: skip
    both, _, _ = _copy(True, True)
    assert both.resident_code and both.my_number


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda c: setattr(c, "request_sha256", b"\x00" * 32), "another request"),
        (lambda c: setattr(c, "issuer", "cs:131016"), "issuer"),
        (lambda c: setattr(c, "requesting_cs", "cs:131041"), "issued to"),
        (lambda c: setattr(c.address, "municipality_code", "131016"), "municipality"),
        (lambda c: setattr(c, "my_number", "123456789018"), "個人番号"),
        (lambda c: setattr(c, "resident_code", "12345678903"), "住民票コード"),
        (lambda c: setattr(c, "serial", 0), "serial"),
    ],
)
def test_the_requesting_cs_refuses_a_copy_that_is_not_the_answer(change, why) -> None:
    copy, request, raw = _copy()
    assert copy_problem(copy, request, request_digest(raw), copy.ByteSize()) is None
    change(copy)
    assert why in (copy_problem(copy, request, request_digest(raw), copy.ByteSize()) or "")


# -- DV support measures ----------------------------------------------------------------------------------


def test_a_measure_is_checked_and_refuses_whom_it_names() -> None:
    code = synthetic_resident(random.Random(4), HOME.code, numbered=True).resident_code
    assert dv_measure(code, C.DV_SCOPE_ALL_REQUESTS, []) == (C.DV_SCOPE_ALL_REQUESTS, ())
    assert dv_measure(code, C.DV_SCOPE_MUNICIPALITIES, ["131016", "131016"])[1] == ("131016",)
    for scope, places in ((C.DV_SCOPE_ALL_REQUESTS, ["131016"]), (C.DV_SCOPE_MUNICIPALITIES, []),
                          (C.DV_SCOPE_MUNICIPALITIES, ["130001"]), (C.DV_SCOPE_MUNICIPALITIES, ["131017"]),
                          (C.DV_SCOPE_MUNICIPALITIES, ["131016"] * 65), (0, []), (9, [])):  # fmt: skip
        with pytest.raises(Rejected) as refused:
            dv_measure(code, scope, places)
        assert refused.value.problem is Problem.INVALID
    nakano_only = C.DvMeasure(scope=C.DV_SCOPE_MUNICIPALITIES, municipalities=["131041"])
    assert refusing_measure([nakano_only], COUNTER) is None
    assert refusing_measure([nakano_only], NodeId.cs("131041")) is nakano_only
    everyone = C.DvMeasure(scope=C.DV_SCOPE_ALL_REQUESTS)
    assert refusing_measure([nakano_only, everyone], COUNTER) is everyone
    assert refusing_measure([C.DvMeasure(scope=7)], COUNTER) is not None  # unknown scope: refuse


# -- the home CS ------------------------------------------------------------------------------------------


def test_a_copy_is_issued_logged_and_audited_in_one_transaction(home: Home) -> None:
    raw = _request(home, include_my_number=True)
    signed = _issue(home, raw)
    assert signed.certificate == home.certificate and signed.payload_type == "jukinet.v1.CertifiedCopy"
    copy = C.CertifiedCopy.FromString(signed.payload)
    assert copy.my_number == home.resident.my_number and not copy.resident_code
    [logged] = home.storage.copies.page(home.resident.resident_code, 0, 10)
    assert (logged.serial, logged.requesting_cs, logged.my_number_included, logged.resident_code_included) == (
        copy.serial, "cs:131016", True, False)  # fmt: skip
    [entry] = _audit(home.storage)
    assert entry.action == audit_pb2.AUDIT_ACTION_COPY_ISSUE and entry.outcome == audit_pb2.AUDIT_OUTCOME_SUCCESS
    assert entry.target == home.resident.resident_code and "個人番号" in entry.detail
    again = _issue(home, _request(home))
    assert C.CertifiedCopy.FromString(again.payload).serial == copy.serial + 1


def test_the_card_names_the_resident_when_no_code_is_given(home: Home) -> None:
    signed = _issue(home, _request(home, resident_code=""))
    assert C.CertifiedCopy.FromString(signed.payload).name == home.resident.name


def _refused(home: Home, raw: bytes, problem: Problem, serial: str = "card-1", caller: Peer | None = None) -> str:
    with pytest.raises(Rejected) as refused:
        _issue(home, raw, serial, caller)
    assert refused.value.problem is problem, refused.value
    assert home.storage.copies.page(home.resident.resident_code, 0, 10) == []  # nothing logged
    return str(refused.value)


def test_a_dv_measure_refuses_with_a_message_that_says_nothing_of_the_person(home: Home) -> None:
    DvMeasures(HOME, home.storage, Auditor(home.storage, home.clock), home.clock).register(
        C.RegisterDvMeasureRequest(
            resident_code=home.resident.resident_code, scope=C.DV_SCOPE_MUNICIPALITIES, municipalities=["131016"]
        ),
        Peer((NodeId.terminal("131148", "ops"),), "operator:131148:dv"),
    )
    with pytest.raises(AlreadyAudited) as refused:
        _issue(home, _request(home))
    message = str(refused.value)
    assert refused.value.problem is Problem.DENIED and "広域交付" in message
    for secret in (home.resident.resident_code, home.resident.name.kanji, home.resident.address.text, "DV", "131016"):
        assert secret not in message
    assert home.storage.copies.page(home.resident.resident_code, 0, 10) == []
    entry = _audit(home.storage)[-1]
    assert entry.outcome == audit_pb2.AUDIT_OUTCOME_DENIED and "DV support measure #1" in entry.detail


def test_the_card_must_be_the_residents_and_may_be_presented(home: Home) -> None:
    other = synthetic_resident(random.Random(11), HOME.code, numbered=True)
    home.cards.holders["card-2"] = other.resident_code
    assert "not the card of the resident" in _refused(home, _request(home), Problem.DENIED, "card-2")
    assert "not a card of a resident" in _refused(home, _request(home), Problem.UNAUTHENTICATED, "card-9")
    raw = _request(home)
    with pytest.raises(Rejected) as refused:  # a presentation made for another request
        home.issuer.issue(raw, home.cards.present("card-1", _request(home)), Peer())
    assert refused.value.problem is Problem.UNAUTHENTICATED


def test_only_a_current_resident_gets_a_copy(home: Home) -> None:
    removed = identity_pb2.IdentityRecord()
    removed.CopyFrom(home.resident)
    removed.status = identity_pb2.RECORD_STATUS_REMOVED
    home.storage.env.write(lambda txn: home.storage.records.put(txn, removed, home.resident))
    assert "除票" in _refused(home, _request(home), Problem.CONFLICT)


def test_the_request_must_be_the_callers_addressed_here_fresh_and_new(home: Home) -> None:
    assert "but cs:131041 sent it" in _refused(
        home, _request(home), Problem.DENIED, caller=Peer((NodeId.cs("131041"),))
    )
    elsewhere = copy_request(COUNTER, NodeId.cs("131041"), home.resident.resident_code, now_ms=home.clock.now_ms())
    assert "home_cs" in _refused(home, elsewhere, Problem.INVALID)
    assert "requested_at" in _refused(home, _request(home, now_ms=home.clock.now_ms() - 121_000), Problem.INVALID)
    raw = _request(home)
    _issue(home, raw)
    with pytest.raises(Rejected) as replayed:
        _issue(home, raw)
    assert replayed.value.problem is Problem.ALREADY_EXISTS
    assert len(home.storage.copies.page(home.resident.resident_code, 0, 10)) == 1


def test_disclosure_lists_a_residents_copies_in_order(home: Home) -> None:
    for _ in range(3):
        _issue(home, _request(home))
    disclosure = IssuanceDisclosure(HOME, home.storage, Auditor(home.storage, home.clock))
    desk = Peer((NodeId.terminal("131148", "ops"),), "operator:131148:disclosure")
    assert [i.serial for i in disclosure.issuances(home.resident.resident_code, 0, 0, desk)] == [1, 2, 3]
    assert [i.serial for i in disclosure.issuances(home.resident.resident_code, 1, 1, desk)] == [2]
    other = synthetic_resident(random.Random(12), HOME.code, numbered=True).resident_code
    assert disclosure.issuances(other, 0, 10, desk) == []
    with pytest.raises(Rejected):
        disclosure.issuances(home.resident.resident_code, 0, 1001, desk)
    assert _audit(home.storage)[-1].action == audit_pb2.AUDIT_ACTION_COPY_ISSUANCES_LIST


# -- the requesting CS's verification ---------------------------------------------------------------------


def _counter(pki: Path, clock: ManualClock) -> CopyCounter:
    return CopyCounter(COUNTER, TrustStore.load(pki, clock=clock), None, None, None, clock)  # type: ignore[arg-type]


def test_the_requesting_cs_verifies_signer_chain_and_bytes(home: Home, pki: Path) -> None:
    raw = _request(home)
    signed = _issue(home, raw)
    counter = _counter(pki, home.clock)
    request = parse_request(raw)
    assert counter.verify(signed, request, raw).copy.serial == 1

    def refused(envelope) -> str:
        with pytest.raises(Rejected) as exc:
            counter.verify(envelope, request, raw)
        assert exc.value.problem is Problem.UNAUTHENTICATED and "was not printed" in str(exc.value)
        return str(exc.value)

    tampered = type(signed)()
    tampered.CopyFrom(signed)
    flipped = bytearray(signed.payload)
    flipped[len(flipped) // 2] ^= 0x01
    tampered.payload = bytes(flipped)
    refused(tampered)
    impostor = SoftwareSigner()  # a key certified for another CS
    other_cert = issue_signing_certificate(pki, "node", ["cs:131016"], impostor.public_key).public_bytes(Encoding.DER)
    assert "names cs:131016" in refused(seal_payload(impostor, signed.payload_type, signed.payload, other_cert))
    assert "no signer certificate" in refused(seal_payload(home.signer, signed.payload_type, signed.payload))
    relabelled = seal_payload(home.signer, "jukinet.v1.CopyIssuance", signed.payload, home.certificate)
    assert "expected jukinet.v1.CertifiedCopy" in refused(relabelled)
    unrequested = C.CertifiedCopy.FromString(signed.payload)
    unrequested.my_number = home.resident.my_number
    assert "個人番号" in refused(seal(home.signer, unrequested, home.certificate))
    serial = x509.load_der_x509_certificate(home.certificate).serial_number
    revoke(pki, "node", serial)
    assert "revoked" in refused(signed)


def test_only_another_cs_may_ask_for_a_copy() -> None:
    policy = OtherNodes(NodeKind.CS, frozenset({HOME}))
    assert policy.deny(Peer((COUNTER,))) is None
    for who in ((HOME,), (NodeId.prefecture("13"),), (NodeId.national(),), (NodeId.terminal("131148", "ops"),),
                (NodeId.agency("7123456789012"),)):  # fmt: skip
        denial = policy.deny(Peer(who))
        assert denial is not None and denial.problem is Problem.DENIED, who
    assert "is this node" in str(policy.deny(Peer((HOME,))))
