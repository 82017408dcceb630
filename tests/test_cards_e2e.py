"""My Number cards across a running network with the card-management and JPKI services: the lifecycle at
the CS, events up through the prefecture and the national server, revocations in the card CA's CRL.

Real node processes, real SoftHSM cards, real LMDB, mutual TLS.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import grpc
import pytest
from conftest import start, wait_until
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from netutil import residents, rpc_error, terminal

from jukinet.clients import present_card
from jukinet.devnet.resident_cards import set_up_resident_card
from jukinet.devnet.supervisor import RunningNetwork
from jukinet.devnet.topology import Topology
from jukinet.domain.clock import SYSTEM_CLOCK
from jukinet.domain.codes import generate_resident_code
from jukinet.hsm import SoftHsmConfig, TokenWorker
from jukinet.hsm.resident_card import (
    ResidentCard,
    create_resident_card,
    generate_resident_card_keys,
    resident_card_serial,
    store_resident_card_certificates,
)
from jukinet.pki import TrustStore
from jukinet.pki.card_presence import CardPresenceVerifier
from jukinet.pki.card_profile import card_face_of_certificate
from jukinet.storage import NodeStorage
from jukinet.v1 import cards_pb2, identity_pb2

C = cards_pb2
CS = "cs:131148"
PIN, SO_PIN = "4321", "87654321"


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, softhsm: SoftHsmConfig, worker: TokenWorker
) -> Iterator[RunningNetwork]:
    topology = Topology.default(free_ports=True).with_card_services()
    with start(tmp_path_factory.mktemp("cards-network"), softhsm, worker, topology) as net:
        yield net


def spki(key: object) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]


def blank_card(worker: TokenWorker) -> tuple[str, str, bytes, bytes]:
    label = f"rcard-{uuid.uuid4().hex[:12]}"
    create_resident_card(worker, label, PIN, SO_PIN)
    auth, sign = generate_resident_card_keys(worker, label, PIN)
    return label, resident_card_serial(worker, label), spki(auth), spki(sign)


def service_card(running: RunningNetwork, service: str, serial: str) -> cards_pb2.CardRecord | None:
    """The card as a card service keeps it (its LMDB, read beside the running process)."""
    net = running.network
    storage = NodeStorage.open(net.node_dir(net.topology.node(service)) / "data", readonly=True)
    try:
        return storage.cards.holder_of(serial)
    finally:
        storage.close()


def revoked(trust: TrustStore, serial_hex: str) -> bool:
    return trust.is_revoked("card", int(serial_hex, 16))


def test_card_lifecycle_events_reach_the_card_services_and_the_crl(
    running: RunningNetwork, worker: TokenWorker
) -> None:
    cs = terminal(running, CS)
    holder = residents("131148", 1)[0]
    cs.record_change(holder)
    label, serial, auth_key, sign_key = blank_card(worker)

    card = cs.set_up_card(holder.resident_code, serial, auth_key, sign_key)  # 交付前設定
    assert card.state == C.CARD_STATE_SET_UP and card.municipality_code == "131148"
    auth_cert = x509.load_der_x509_certificate(card.auth_certificate)
    sign_cert = x509.load_der_x509_certificate(card.signature_certificate)
    assert card_face_of_certificate(sign_cert).name == holder.name.kanji  # type: ignore[union-attr]
    store_resident_card_certificates(worker, label, PIN, auth_cert, sign_cert)
    assert cs.change_card_state(serial, C.CARD_ACTION_ISSUE).state == C.CARD_STATE_ISSUED  # 交付

    # the holder presents the card at the counter
    trust = running.network.trust()
    with ResidentCard(worker, label).unlock(PIN) as unlocked:
        presentation = present_card(unlocked, "wide-area-copy", CS, b"request")
    assert CardPresenceVerifier(trust, SYSTEM_CLOCK).verify(presentation, "wide-area-copy", CS, b"request")
    assert [c.state for c in cs.cards(holder.resident_code)] == [C.CARD_STATE_ISSUED]

    for service in ("cards", "jpki"):  # the CS's events went CS → pref → national → each service
        wait_until(
            lambda s=service: (c := service_card(running, s, serial)) is not None and c.state == C.CARD_STATE_ISSUED,
            what=f"the card issued at {service}",
        )

    # 転居: the card face changes → the signature certificate is revoked, the authentication one is not
    moved = identity_pb2.IdentityRecord()
    moved.CopyFrom(holder)
    moved.address.text = "9丁目99番"
    moved.change_reason = identity_pb2.CHANGE_REASON_RELOCATION
    cs.record_change(moved)
    wait_until(lambda: revoked(trust, card.signature_certificate_serial), what="the signature certificate on the CRL")
    assert not revoked(trust, card.auth_certificate_serial)
    wait_until(
        lambda: (c := service_card(running, "cards", serial)) is not None and c.signature_revoked,
        what="the card service to record the revocation",
    )
    assert not service_card(running, "cards", serial).auth_revoked  # type: ignore[union-attr]

    # 券面事項の更新: a new signature certificate with the new address
    updated = cs.update_card_face(serial, sign_key)
    new_sign = x509.load_der_x509_certificate(updated.signature_certificate)
    assert card_face_of_certificate(new_sign).address == "9丁目99番"  # type: ignore[union-attr]
    assert updated.signature_certificate_serial != card.signature_certificate_serial
    wait_until(
        lambda: (
            service_card(running, "cards", serial).signature_certificate_serial  # type: ignore[union-attr]
            == updated.signature_certificate_serial
        ),
        what="the face update at the card service",
    )
    assert not revoked(trust, updated.signature_certificate_serial)

    # death: both certificates revoked
    died = identity_pb2.IdentityRecord()
    died.CopyFrom(moved)
    died.change_reason = identity_pb2.CHANGE_REASON_DEATH
    cs.record_change(died)
    wait_until(lambda: revoked(trust, card.auth_certificate_serial), what="the authentication certificate on the CRL")
    assert revoked(trust, updated.signature_certificate_serial)
    wait_until(
        lambda: service_card(running, "cards", serial).state == C.CARD_STATE_REVOKED,  # type: ignore[union-attr]
        what="the card revoked at the card service",
    )
    with ResidentCard(worker, label).unlock(PIN) as unlocked:
        presentation = present_card(unlocked, "wide-area-copy", CS, b"request")
    with pytest.raises(Exception, match="was revoked"):
        CardPresenceVerifier(trust, SYSTEM_CLOCK).verify(presentation, "wide-area-copy", CS, b"request")


def test_return_revokes_both_and_suspension_revokes_nothing(running: RunningNetwork, worker: TokenWorker) -> None:
    cs = terminal(running, CS)
    holder = residents("131148", 1)[0]
    cs.record_change(holder)
    _, serial, auth_key, sign_key = blank_card(worker)
    card = cs.set_up_card(holder.resident_code, serial, auth_key, sign_key)
    cs.change_card_state(serial, C.CARD_ACTION_ISSUE)
    assert cs.change_card_state(serial, C.CARD_ACTION_SUSPEND).state == C.CARD_STATE_SUSPENDED
    error = rpc_error(cs.change_card_state, serial, C.CARD_ACTION_SUSPEND)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "is CARD_STATE_SUSPENDED" in error.details()
    assert cs.change_card_state(serial, C.CARD_ACTION_RESUME).state == C.CARD_STATE_ISSUED
    returned = cs.change_card_state(serial, C.CARD_ACTION_RETURN)  # 返納
    assert (returned.state, returned.auth_revoked, returned.signature_revoked) == (C.CARD_STATE_RETURNED, True, True)
    trust = running.network.trust()
    wait_until(lambda: revoked(trust, card.auth_certificate_serial), what="the returned card's certificates revoked")
    assert revoked(trust, card.signature_certificate_serial)
    # a new card for the same resident may be set up once the old one is returned
    _, serial2, auth2, sign2 = blank_card(worker)
    assert cs.set_up_card(holder.resident_code, serial2, auth2, sign2).state == C.CARD_STATE_SET_UP


def test_bad_setups_are_refused_and_store_nothing(running: RunningNetwork, worker: TokenWorker) -> None:
    cs = terminal(running, CS)
    holder = residents("131148", 1)[0]
    cs.record_change(holder)
    _, serial, auth_key, sign_key = blank_card(worker)
    cases = [
        (
            (holder.resident_code, serial, b"not a key", sign_key),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not a DER public key",
        ),
        ((holder.resident_code, serial, auth_key, auth_key), grpc.StatusCode.INVALID_ARGUMENT, "must differ"),
        ((holder.resident_code, "XYZ", auth_key, sign_key), grpc.StatusCode.INVALID_ARGUMENT, "16 lowercase hex"),
        (
            (generate_resident_code(random.Random(186)), serial, auth_key, sign_key),  # well formed, nobody's
            grpc.StatusCode.NOT_FOUND,
            "no resident",
        ),
        ((holder.resident_code, serial, b"\x30" * 300, sign_key), grpc.StatusCode.INVALID_ARGUMENT, "at most 256"),
    ]
    for args, code, text in cases:
        error = rpc_error(cs.set_up_card, *args)
        assert error.code() == code and text in error.details(), (args[2][:8], error.details())
    assert cs.cards(holder.resident_code) == []
    other = residents("131016", 1)[0]  # a resident of another municipality
    terminal(running, "cs:131016").record_change(other)
    error = rpc_error(cs.set_up_card, other.resident_code, serial, auth_key, sign_key)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    cs.set_up_card(holder.resident_code, serial, auth_key, sign_key)
    _, serial2, auth2, sign2 = blank_card(worker)
    error = rpc_error(cs.set_up_card, holder.resident_code, serial2, auth2, sign2)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "already holds card" in error.details()
    error = rpc_error(cs.set_up_card, holder.resident_code, serial, auth_key, sign_key)
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert [c.card_serial for c in cs.cards(holder.resident_code)] == [serial]
    assert terminal(running, CS).status().records  # the node still serves


def test_devnet_sets_up_a_presentable_card(running: RunningNetwork, worker: TokenWorker) -> None:
    cs = terminal(running, CS)
    holder = residents("131148", 1)[0]
    cs.record_change(holder)
    kit = set_up_resident_card(worker, running.network, cs, holder, PIN)
    (card,) = cs.cards(card_serial=kit.card_serial)
    assert (card.resident_code, card.state) == (holder.resident_code, C.CARD_STATE_ISSUED)
    with kit.card(worker).unlock(PIN) as unlocked:
        assert unlocked.auth_certificate == kit.auth_certificate
