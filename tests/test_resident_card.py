"""A resident's My Number card (jukinet.hsm.resident_card), its certificates from the card CA and its
presentation at a counter (jukinet.pki.card_presence), against real SoftHSM tokens and a real PKI.

Uses the process's one SoftHSM configuration and TokenWorker (tests/conftest.py).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11x

from jukinet.clients import present_card
from jukinet.devnet.provision import provision
from jukinet.devnet.resident_cards import issue_resident_card
from jukinet.devnet.topology import Topology
from jukinet.domain.cards import card_face_of, face_changed, presentation_input
from jukinet.domain.clock import ManualClock
from jukinet.domain.errors import Problem, Rejected
from jukinet.hsm import SoftHsmConfig, TokenError, TokenFailure, TokenWorker
from jukinet.hsm.resident_card import (
    ResidentCard,
    UnlockedResidentCard,
    create_resident_card,
    generate_resident_card_keys,
    resident_card_serial,
    store_resident_card_certificates,
    unlock_resident_card,
)
from jukinet.pki import (
    TrustStore,
    init_pki,
    issue_card_auth_certificate,
    issue_card_signature_certificate,
    issue_signing_certificate,
    revoke,
    sign_ecdsa_raw,
    verify_ecdsa_raw,
)
from jukinet.pki import layout as pki_layout
from jukinet.pki.card_presence import CardPresenceVerifier
from jukinet.pki.card_profile import card_face_of_certificate
from jukinet.v1 import cards_pb2, identity_pb2

PIN, SO_PIN, BAD = "1234", "567890", "0000"
NODE = "cs:131148"
PURPOSE = "special-move-in"
BINDING = b"the request this card goes with"
_DER = Encoding.DER
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def holder() -> identity_pb2.IdentityRecord:
    return identity_pb2.IdentityRecord(
        resident_code="12345678903",
        name=identity_pb2.PersonName(kanji="山田 花子", kana="ヤマダ ハナコ"),
        birth_date=identity_pb2.Date(year=1990, month=4, day=1),
        sex=identity_pb2.SEX_FEMALE,
        address=identity_pb2.Address(municipality_code="131148", text="中野一丁目1番1号"),
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pki_dir = tmp_path_factory.mktemp("resident-card-pki") / "pki"
    init_pki(pki_dir)
    return pki_dir


def issue(worker: TokenWorker, pki_dir: Path) -> tuple[ResidentCard, x509.Certificate, x509.Certificate]:
    label = f"rcard-{uuid.uuid4().hex[:12]}"
    create_resident_card(worker, label, PIN, SO_PIN)
    serial = resident_card_serial(worker, label)
    auth_pub, sign_pub = generate_resident_card_keys(worker, label, PIN)
    auth = issue_card_auth_certificate(pki_dir, serial, auth_pub)
    sign = issue_card_signature_certificate(pki_dir, serial, sign_pub, card_face_of(holder()))
    store_resident_card_certificates(worker, label, PIN, auth, sign)
    return ResidentCard(worker, label), auth, sign


@pytest.fixture
def card(worker: TokenWorker, pki: Path) -> tuple[ResidentCard, x509.Certificate, x509.Certificate]:
    return issue(worker, pki)


def refused(reason: TokenFailure, fn: Callable[..., object], *args: Any) -> TokenError:
    with pytest.raises(TokenError) as info:
        fn(*args)
    assert info.value.reason is reason, info.value
    return info.value


# -- the card ------------------------------------------------------------------------------------------------


def test_two_keys_two_certificates(card: tuple[ResidentCard, x509.Certificate, x509.Certificate], pki: Path) -> None:
    resident_card, auth, sign = card
    serial = resident_card.card_serial
    assert len(serial) == 16 and set(serial) <= set("0123456789abcdef")
    with resident_card.unlock(PIN) as unlocked:
        assert unlocked.card_serial == serial
        assert (unlocked.auth_certificate, unlocked.signature_certificate) == (auth, sign)
        verify_ecdsa_raw(auth.public_key(), b"present", unlocked.sign_auth(b"present"))  # type: ignore[arg-type]
        verify_ecdsa_raw(sign.public_key(), b"document", unlocked.sign(b"document"))  # type: ignore[arg-type]
        with pytest.raises(Rejected):  # the keys are distinct: the auth key's signature is no document signature
            verify_ecdsa_raw(sign.public_key(), b"x", unlocked.sign_auth(b"x"))  # type: ignore[arg-type]

    # the authentication certificate: the card serial and nothing personal
    assert auth.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == f"card:{serial}"
    san = auth.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.UniformResourceIdentifier(f"urn:jukinet:card:{serial}")]
    assert card_face_of_certificate(auth) is None
    ku = auth.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.content_commitment
    # the signature certificate: the card face
    assert card_face_of_certificate(sign) == card_face_of(holder())
    assert sign.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "山田 花子"
    assert sign.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment

    trust = TrustStore.load(pki)
    assert trust.identify(auth.public_bytes(_DER), expect="card", purpose="authentication").purpose == "authentication"
    assert trust.identify(sign.public_bytes(_DER), expect="card", purpose="signing").purpose == "signing"
    with pytest.raises(Rejected, match="not a tls certificate"):  # a card is never a TLS peer
        trust.identify(auth.public_bytes(_DER), purpose="tls")
    assert pki_layout.ca_cert_path(pki, "card").read_bytes() not in pki_layout.bundle_path(pki).read_bytes()
    assert b"JukiNet Card CA" not in trust.bundle_pem and len(trust.cas) == 4


def test_keys_are_not_extractable(
    card: tuple[ResidentCard, x509.Certificate, x509.Certificate], worker: TokenWorker
) -> None:
    label = card[0].label

    def inspect(session: Any) -> list[tuple[bool, bool, bool, bool, bool]]:
        out = []
        for key_label in ("auth", "sign"):
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label=key_label)
            try:
                key[Attribute.VALUE]
                readable = True
            except p11x.AttributeSensitive:
                readable = False
            out.append(
                (
                    key[Attribute.EXTRACTABLE],
                    key[Attribute.SENSITIVE],
                    key[Attribute.SIGN],
                    key[Attribute.DERIVE],
                    readable,
                )
            )
        return out

    def run() -> object:
        session = worker.acquire(label, PIN)
        try:
            return inspect(session)
        finally:
            worker.release(label)

    assert worker.call(run) == [(False, True, True, False, False)] * 2


def test_wrong_pins_counted_then_locked(
    card: tuple[ResidentCard, x509.Certificate, x509.Certificate], worker: TokenWorker
) -> None:
    resident_card = card[0]
    remaining = [refused(TokenFailure.PIN_INCORRECT, resident_card.unlock, BAD).remaining for _ in range(4)]
    assert remaining == [4, 3, 2, 1]
    error = refused(TokenFailure.CARD_LOCKED, resident_card.unlock, BAD)
    assert (error.problem, error.remaining) == (Problem.DENIED, 0)
    refused(TokenFailure.CARD_LOCKED, resident_card.unlock, PIN)  # the right PIN is not even tried
    refused(TokenFailure.CARD_LOCKED, generate_resident_card_keys, worker, resident_card.label, PIN)
    assert resident_card.status().locked
    refused(TokenFailure.PIN_INCORRECT, unlock_resident_card, worker, resident_card.label, "99999999")
    unlock_resident_card(worker, resident_card.label, SO_PIN)
    assert resident_card.status().failures == 0
    resident_card.unlock(PIN).close()


def test_certificates_of_another_card_or_key_are_refused(
    card: tuple[ResidentCard, x509.Certificate, x509.Certificate], worker: TokenWorker, pki: Path, tmp_path: Path
) -> None:
    resident_card, auth, sign = card
    _, other_auth, _ = issue(worker, pki)
    error = refused(
        TokenFailure.WRONG_KEY, store_resident_card_certificates, worker, resident_card.label, PIN, other_auth
    )
    assert "does not name resident card" in str(error)
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    init_pki(tmp_path / "other")  # the card CA itself certifies a card serial once (test_card_event_authority)
    wrong_key = issue_card_auth_certificate(tmp_path / "other", resident_card.card_serial, stranger)
    refused(TokenFailure.WRONG_KEY, store_resident_card_certificates, worker, resident_card.label, PIN, None, wrong_key)
    with resident_card.unlock(PIN) as unlocked:  # nothing was replaced
        assert (unlocked.auth_certificate, unlocked.signature_certificate) == (auth, sign)


def test_card_face_update_replaces_the_signature_certificate(
    card: tuple[ResidentCard, x509.Certificate, x509.Certificate], worker: TokenWorker, pki: Path
) -> None:
    resident_card, auth, _ = card
    moved = holder()
    moved.address.text = "中野二丁目2番2号"
    assert face_changed(holder(), moved)
    _, sign_pub = generate_resident_card_keys(worker, resident_card.label, PIN)
    new_sign = issue_card_signature_certificate(pki, resident_card.card_serial, sign_pub, card_face_of(moved))
    store_resident_card_certificates(worker, resident_card.label, PIN, None, new_sign)
    with resident_card.unlock(PIN) as unlocked:
        assert unlocked.auth_certificate == auth
        assert card_face_of_certificate(unlocked.signature_certificate).address == "中野二丁目2番2号"  # type: ignore[union-attr]


def test_missing_certificates(worker: TokenWorker) -> None:
    label = f"rcard-{uuid.uuid4().hex[:12]}"
    create_resident_card(worker, label, PIN, SO_PIN)
    refused(TokenFailure.NO_KEY, ResidentCard(worker, label).unlock, PIN)
    generate_resident_card_keys(worker, label, PIN)
    refused(TokenFailure.NO_CERTIFICATE, ResidentCard(worker, label).unlock, PIN)
    refused(TokenFailure.NO_TOKEN, ResidentCard(worker, "no-such-card").unlock, PIN)


def test_an_old_pki_gains_the_card_ca(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    init_pki(pki_dir)
    bundle = pki_layout.bundle_path(pki_dir).read_bytes()
    node_ca = pki_layout.ca_cert_path(pki_dir, "node").read_bytes()
    for path in (pki_layout.ca_cert_path(pki_dir, "card"), pki_layout.ca_key_path(pki_dir, "card")):
        path.unlink()
    init_pki(pki_dir)
    assert pki_layout.ca_cert_path(pki_dir, "card").exists()
    assert pki_layout.bundle_path(pki_dir).read_bytes() == bundle  # the TLS roots are unchanged
    assert pki_layout.ca_cert_path(pki_dir, "node").read_bytes() == node_ca
    TrustStore.load(pki_dir)


# -- presentation at a counter -------------------------------------------------------------------------------


@pytest.fixture
def unlocked(card: tuple[ResidentCard, x509.Certificate, x509.Certificate]) -> Any:
    with card[0].unlock(PIN) as u:
        yield u


def verifier(pki: Path) -> tuple[CardPresenceVerifier, ManualClock]:
    clock = ManualClock()
    return CardPresenceVerifier(TrustStore.load(pki, clock=clock), clock), clock


def refused_presentation(v: CardPresenceVerifier, p: cards_pb2.CardPresentation, match: str, **kw: Any) -> None:
    args = {"purpose": PURPOSE, "node_id": NODE, "binding": BINDING} | kw
    with pytest.raises(Rejected, match=match) as info:
        v.verify(p, **args)
    assert info.value.problem is Problem.UNAUTHENTICATED
    assert str(info.value).startswith("card presentation refused: ")


def test_presentation_verifies_once(unlocked: UnlockedResidentCard, pki: Path) -> None:
    v, clock = verifier(pki)
    p = present_card(unlocked, PURPOSE, NODE, BINDING, clock)
    presented = v.verify(p, PURPOSE, NODE, BINDING)
    assert presented.card_serial == unlocked.card_serial
    assert presented.certificate == unlocked.auth_certificate
    refused_presentation(v, p, "already used")
    # a re-encoded signature (s -> n - s) is another valid signature of the same input: still a replay
    r, s = p.signature[:32], int.from_bytes(p.signature[32:], "big")
    twin = cards_pb2.CardPresentation(
        auth_certificate=p.auth_certificate,
        signed_at_ms=p.signed_at_ms,
        signature=r + (P256_ORDER - s).to_bytes(32, "big"),
    )
    refused_presentation(v, twin, "already used")
    again = present_card(unlocked, PURPOSE, NODE, BINDING, _Later(clock, 1))
    assert v.verify(again, PURPOSE, NODE, BINDING).card_serial == unlocked.card_serial  # a new presentation is fine


class _Later:
    def __init__(self, clock: ManualClock, ms: int) -> None:
        self._clock, self._ms = clock, ms

    def now_ms(self) -> int:
        return self._clock.now_ms() + self._ms

    def monotonic(self) -> float:
        return self._clock.monotonic()


def test_presentations_for_something_else_are_refused(unlocked: UnlockedResidentCard, pki: Path) -> None:
    v, clock = verifier(pki)
    p = present_card(unlocked, PURPOSE, NODE, BINDING, clock)
    refused_presentation(v, p, "does not verify", purpose="wide-area-copy")
    refused_presentation(v, p, "does not verify", node_id="cs:131016")
    refused_presentation(v, p, "does not verify", binding=BINDING + b"!")
    tampered = cards_pb2.CardPresentation()
    tampered.CopyFrom(p)
    tampered.signature = bytes([p.signature[0] ^ 1]) + p.signature[1:]
    refused_presentation(v, tampered, "does not verify")
    tampered.CopyFrom(p)
    tampered.signed_at_ms += 1
    refused_presentation(v, tampered, "does not verify")
    tampered.CopyFrom(p)
    tampered.signature = p.signature[:63]
    refused_presentation(v, tampered, "does not verify")
    assert v.verify(p, PURPOSE, NODE, BINDING)  # none of the refusals consumed it


def test_stale_and_future_presentations_are_refused(unlocked: UnlockedResidentCard, pki: Path) -> None:
    v, clock = verifier(pki)
    p = present_card(unlocked, PURPOSE, NODE, BINDING, clock)
    clock.advance(121)
    refused_presentation(v, p, "121 s ago; at most 120 s")
    future = present_card(unlocked, PURPOSE, NODE, BINDING, _Later(clock, 121_000))
    refused_presentation(v, future, "in the future")
    edge = present_card(unlocked, PURPOSE, NODE, BINDING, _Later(clock, -120_000))
    assert v.verify(edge, PURPOSE, NODE, BINDING)


def test_revoked_card_is_refused(unlocked: UnlockedResidentCard, pki: Path) -> None:
    v, clock = verifier(pki)
    revoke(pki, "card", unlocked.auth_certificate.serial_number, x509.ReasonFlags.key_compromise)
    refused_presentation(v, present_card(unlocked, PURPOSE, NODE, BINDING, clock), "was revoked")


def test_other_certificates_are_refused(
    unlocked: UnlockedResidentCard, pki: Path, tmp_path: Path, worker: TokenWorker
) -> None:
    v, clock = verifier(pki)

    class WithCertificate:
        def __init__(self, der: bytes, sign: Callable[[bytes], bytes]) -> None:
            self.auth_certificate_der, self.sign_auth = der, sign

    # the signature certificate (and key) of the same card: not an authentication certificate
    by_sign_key = WithCertificate(unlocked.signature_certificate_der, unlocked.sign)
    refused_presentation(
        v, present_card(by_sign_key, PURPOSE, NODE, BINDING, clock), "not a authentication certificate"
    )
    # a card certificate of a foreign card CA (same names, other keys)
    foreign_pki = tmp_path / "foreign"
    init_pki(foreign_pki)
    key = ec.generate_private_key(ec.SECP256R1())
    forged = issue_card_auth_certificate(foreign_pki, unlocked.card_serial, key.public_key())
    impostor = WithCertificate(forged.public_bytes(_DER), lambda data: sign_ecdsa_raw(key, data))
    refused_presentation(v, present_card(impostor, PURPOSE, NODE, BINDING, clock), "foreign CA")
    # an operator's card certificate
    operator = issue_signing_certificate(pki, "operator", ["operator:131148:clerk"], key.public_key())
    wrong_ca = WithCertificate(operator.public_bytes(_DER), lambda data: sign_ecdsa_raw(key, data))
    refused_presentation(v, present_card(wrong_ca, PURPOSE, NODE, BINDING, clock), "expected card")
    # no certificate, garbage, oversized
    for der, why in (
        (b"", "no card certificate"),
        (b"\x30\x03junk", "not a parseable"),
        (b"\x30" * 9000, "at most 8192"),
    ):
        p = cards_pb2.CardPresentation(auth_certificate=der, signed_at_ms=clock.now_ms(), signature=b"\x00" * 64)
        refused_presentation(v, p, why)


def test_presentation_input_is_bound_to_each_part() -> None:
    base = presentation_input(PURPOSE, NODE, BINDING, 1)
    assert base.startswith(b"jukinet-card-presence-v1\x00special-move-in\x00cs:131148\x00")
    variants = {
        presentation_input("wide-area-copy", NODE, BINDING, 1),
        presentation_input(PURPOSE, "cs:131016", BINDING, 1),
        presentation_input(PURPOSE, NODE, b"other", 1),
        presentation_input(PURPOSE, NODE, BINDING, 2),
    }
    assert base not in variants and len(variants) == 4
    for purpose in ("", "Upper", "a\x00b", "x" * 33):
        with pytest.raises(Rejected) as info:
            presentation_input(purpose, NODE, BINDING, 1)
        assert info.value.problem is Problem.INVALID


def test_replay_cache_is_bounded(unlocked: UnlockedResidentCard, pki: Path) -> None:
    clock = ManualClock()
    v = CardPresenceVerifier(TrustStore.load(pki, clock=clock), clock, capacity=2)
    for i in range(2):
        v.verify(present_card(unlocked, PURPOSE, NODE, BINDING, _Later(clock, i)), PURPOSE, NODE, BINDING)
    with pytest.raises(Rejected) as info:
        v.verify(present_card(unlocked, PURPOSE, NODE, BINDING, _Later(clock, 2)), PURPOSE, NODE, BINDING)
    assert info.value.problem is Problem.EXHAUSTED
    clock.advance(241)  # what was remembered is stale by now, and forgotten
    assert v.verify(present_card(unlocked, PURPOSE, NODE, BINDING, clock), PURPOSE, NODE, BINDING)


def test_certificate_validity_dates(card: tuple[ResidentCard, x509.Certificate, x509.Certificate]) -> None:
    _, auth, sign = card
    for cert in (auth, sign):
        assert cert.not_valid_after_utc - cert.not_valid_before_utc >= datetime.timedelta(days=5 * 365)


def test_devnet_issues_a_resident_card(tmp_path: Path, softhsm: SoftHsmConfig, worker: TokenWorker) -> None:
    net = provision(tmp_path / "state", Topology.default(free_ports=True), softhsm_root=softhsm.root)
    kit = issue_resident_card(worker, net, None, PIN, holder())
    assert (kit.resident_code, len(kit.card_serial)) == ("12345678903", 16)
    assert card_face_of_certificate(kit.signature_certificate) == card_face_of(holder())
    v = CardPresenceVerifier(net.trust(), ManualClock())
    with kit.card(worker).unlock(PIN) as u:
        p = present_card(u, PURPOSE, NODE, BINDING)
    assert v.verify(p, PURPOSE, NODE, BINDING).card_serial == kit.card_serial


def test_a_home_cs_accepts_only_the_certificate_it_stored_before_using_a_slot(
    card: tuple[ResidentCard, x509.Certificate, x509.Certificate],
    unlocked: UnlockedResidentCard,
    pki: Path,
    tmp_path: Path,
) -> None:
    """Attack-report findings 1 and 11: a certificate for the victim card's serial made with another key
    (a clone) is refused at the home CS, and refused presentations never use a replay-cache slot."""
    from jukinet.cs_node.copy_cards import stored_certificate
    from jukinet.domain.node_ids import NodeId
    from jukinet.storage import NodeStorage

    _, auth, _ = card
    clock = ManualClock()
    v = CardPresenceVerifier(TrustStore.load(pki, clock=clock), clock, capacity=1)
    serial = (
        verifier(pki)[0]
        .verify(present_card(unlocked, PURPOSE, NODE, BINDING, clock), PURPOSE, NODE, BINDING)
        .card_serial
    )
    init_pki(tmp_path / "other")  # the card CA certifies a serial once; the clone's pair stands in for it
    victim = issue_card_auth_certificate(
        tmp_path / "other", serial, ec.generate_private_key(ec.SECP256R1()).public_key()
    )
    storage = NodeStorage.open(tmp_path / "data")
    try:
        stored = cards_pb2.CardRecord(
            card_serial=serial, resident_code="12345678903", municipality_code="131148",
            state=cards_pb2.CARD_STATE_ISSUED, auth_certificate=victim.public_bytes(Encoding.DER),
        )  # fmt: skip
        storage.env.write(lambda txn: storage.cards.put(txn, stored))
        accept = stored_certificate(storage.cards, NodeId.cs("131148"))
        for i in range(3):  # the clone: right serial, card CA certificate, but not the one stored
            p = present_card(unlocked, PURPOSE, NODE, BINDING, _Later(clock, i))
            refused_presentation(v, p, "not a card of a resident of cs:131148", accept=accept)
        stored.auth_certificate = auth.public_bytes(Encoding.DER)
        storage.env.write(lambda txn: storage.cards.put(txn, stored))
        p = present_card(unlocked, PURPOSE, NODE, BINDING, _Later(clock, 5))
        assert v.verify(p, PURPOSE, NODE, BINDING, accept).card_serial == serial  # the one slot was still free
        stored.state = cards_pb2.CARD_STATE_SUSPENDED
        storage.env.write(lambda txn: storage.cards.put(txn, stored))
        p = present_card(unlocked, PURPOSE, NODE, BINDING, _Later(clock, 6))
        refused_presentation(v, p, "may be presented now", accept=accept)
    finally:
        storage.close()
