"""Card events checked against the card index (attack-report findings 4 and 5): a CS acts only on its own
cards' own certificates, an unknown card may only be set up, a serial of 160 bits never reaches the card
CA, and a revocation the card CA refuses is one refused item, never a stuck link. Without a network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jukinet.domain.card_lifecycle import event_for
from jukinet.domain.errors import ItemRefused, Problem
from jukinet.domain.node_ids import NodeId
from jukinet.pki import init_pki, revoke_all
from jukinet.pki import layout as pki_layout
from jukinet.server import card_events
from jukinet.server.card_events import NationalCardEvents, check_card_events
from jukinet.server.national.cards import CardEventForwarder, RelayedCardEvents
from jukinet.storage import NodeStorage
from jukinet.v1 import cards_pb2, identity_pb2

C = cards_pb2
HOME, ROGUE = NodeId.cs("131148"), NodeId.cs("131130")
SERIAL, RESIDENT = "0123456789abcdef", "12345678903"


class _Clock:
    def now_ms(self) -> int:
        return 0


def card(**kw: object) -> cards_pb2.CardRecord:
    fields = {
        "card_serial": SERIAL,
        "resident_code": RESIDENT,
        "municipality_code": HOME.code,
        "state": C.CARD_STATE_ISSUED,
        "auth_certificate_serial": "aa",
        "signature_certificate_serial": "bb",
    }
    return C.CardRecord(**(fields | kw))  # type: ignore[arg-type]


def resident(code: str = RESIDENT, municipality: str = "131148") -> identity_pb2.IdentityRecord:
    return identity_pb2.IdentityRecord(
        resident_code=code,
        address=identity_pb2.Address(municipality_code=municipality, text="1丁目1番"),
        status=identity_pb2.RECORD_STATUS_ACTIVE,
    )


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[NodeStorage]:
    s = NodeStorage.open(tmp_path / "data")

    def seed(txn) -> None:  # type: ignore[no-untyped-def]
        s.records.put(txn, resident(), None)
        s.records.put(txn, resident("23456789013", "131130"), None)
        s.cards.put(txn, card())

    s.env.write(seed)
    yield s
    s.close()


def national_apply(storage: NodeStorage, origin: NodeId, *events: cards_pb2.CardEvent) -> None:
    forwarder = CardEventForwarder(storage, ["jpki"], _Clock())  # type: ignore[arg-type]
    plan = RelayedCardEvents(forwarder).check(origin, list(enumerate(events)), 42)
    storage.env.write(plan.apply)


def national_refused(storage: NodeStorage, origin: NodeId, *events: cards_pb2.CardEvent) -> ItemRefused:
    with pytest.raises(ItemRefused) as info:
        national_apply(storage, origin, *events)
    assert (info.value.problem, info.value.position) == (Problem.DENIED, 42)
    with storage.env.read() as txn:  # nothing stored: the index is as seeded, nothing queued
        assert storage.cards.current(txn, SERIAL) == card()
    assert storage.queues.pending("jpki", 0, 10) == []
    return info.value


def test_a_rogue_cs_cannot_revoke_another_municipalitys_card(storage: NodeStorage) -> None:
    """a2: the rogue names its own municipality but the victim's card and certificate serials."""
    event = event_for(card(municipality_code=ROGUE.code), C.CARD_EVENT_KIND_REVOKED, str(ROGUE), 0)
    assert list(event.revoke_serials) == ["aa", "bb"]
    check_card_events([(0, event)], ROGUE)  # what the old check alone let through
    assert "card of municipality 131148" in str(national_refused(storage, ROGUE, event))


def test_no_second_set_up_and_no_events_for_unknown_cards(storage: NodeStorage) -> None:
    """a12: SET_UP with made-up serials over an indexed card; an event about a card never set up."""
    again = event_for(
        card(auth_certificate_serial="1234", signature_certificate_serial="5678"),
        C.CARD_EVENT_KIND_SET_UP,
        str(HOME),
        0,
    )
    assert "already set up" in str(national_refused(storage, HOME, again))
    unknown = event_for(card(card_serial="fedcba9876543210"), C.CARD_EVENT_KIND_REVOKED, str(HOME), 0)
    assert "not known here" in str(national_refused(storage, HOME, unknown))


def test_a_cs_revokes_only_its_cards_own_certificates(storage: NodeStorage) -> None:
    foreign = event_for(card(), C.CARD_EVENT_KIND_REVOKED, str(HOME), 0)
    del foreign.revoke_serials[:]
    foreign.revoke_serials.append("cafe")  # somebody else's certificate
    assert "not a certificate of card" in str(national_refused(storage, HOME, foreign))
    other_resident = event_for(card(resident_code="23456789013"), C.CARD_EVENT_KIND_SUSPENDED, str(HOME), 0)
    assert "not a card of resident" in str(national_refused(storage, HOME, other_resident))


def test_set_up_only_for_the_origins_own_active_resident(storage: NodeStorage) -> None:
    new = card(card_serial="1111222233334444", resident_code="23456789013", state=C.CARD_STATE_SET_UP)
    event = event_for(new, C.CARD_EVENT_KIND_SET_UP, str(HOME), 0)
    with pytest.raises(ItemRefused) as info:
        national_apply(storage, HOME, event)
    assert "not a resident of cs:131148" in str(info.value)


def test_the_owner_s_own_events_still_flow(storage: NodeStorage) -> None:
    new = card(card_serial="1111222233334444", state=C.CARD_STATE_SET_UP, auth_certificate_serial="cc",
               signature_certificate_serial="dd")  # fmt: skip
    national_apply(storage, HOME, event_for(card(), C.CARD_EVENT_KIND_REVOKED, str(HOME), 0))
    national_apply(storage, HOME, event_for(new, C.CARD_EVENT_KIND_SET_UP, str(HOME), 0))
    with storage.env.read() as txn:
        assert storage.cards.current(txn, SERIAL).state == C.CARD_STATE_REVOKED  # type: ignore[union-attr]
        assert storage.cards.current(txn, "1111222233334444").state == C.CARD_STATE_SET_UP  # type: ignore[union-attr]
    assert len(storage.queues.pending("jpki", 0, 10)) == 2


def test_a_160_bit_serial_is_refused_before_the_card_ca(tmp_path: Path) -> None:
    """a3: revoke_serials=["f"*40] passed the format check and made revoke_all raise at the JPKI service."""
    poison = event_for(card(), C.CARD_EVENT_KIND_REVOKED, str(HOME), 0)
    del poison.revoke_serials[:]
    poison.revoke_serials.append("f" * 40)
    with pytest.raises(ItemRefused) as info:
        check_card_events([(3, poison)], HOME)
    assert (info.value.problem, info.value.position) == (Problem.INVALID, 3)
    pki = tmp_path / "pki"
    init_pki(pki)
    crl = pki_layout.crl_path(pki, "card").read_bytes()
    with pytest.raises(ValueError, match="below 2\\^159"):
        revoke_all(pki, "card", [0xAA, int("f" * 40, 16)])
    assert pki_layout.crl_path(pki, "card").read_bytes() == crl  # not even the good one: one CRL or none


def test_a_revocation_the_card_ca_refuses_is_one_refused_item(
    storage: NodeStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise ValueError("the CA said no")

    monkeypatch.setattr(card_events, "revoke_all", refuse)
    jpki = NationalCardEvents(storage, tmp_path / "pki")
    event = event_for(card(), C.CARD_EVENT_KIND_REVOKED, str(HOME), 0)
    plan = jpki.check(type("D", (), {"sender": NodeId.national()})(), [(5, event)])  # type: ignore[arg-type]
    with pytest.raises(ItemRefused) as info:
        storage.env.write(plan.apply)
    assert (info.value.problem, info.value.position) == (Problem.INVALID, 5)


def test_card_services_refuse_revocations_of_other_certificates(storage: NodeStorage, tmp_path: Path) -> None:
    jpki = NationalCardEvents(storage, tmp_path / "pki")
    sender = type("D", (), {"sender": NodeId.national()})()
    died = event_for(card(), C.CARD_EVENT_KIND_HOLDER_DIED, "national", 0)
    del died.revoke_serials[:]
    died.revoke_serials.append("cafe")
    plan = jpki.check(sender, [(1, died)])  # type: ignore[arg-type]
    with pytest.raises(ItemRefused) as info:
        storage.env.write(plan.apply)
    assert info.value.problem is Problem.DENIED


def test_the_card_ca_certifies_a_card_serial_once(tmp_path: Path) -> None:
    """a1: a clerk elsewhere had the victim card's serial certified with his own key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from jukinet.domain.errors import Rejected
    from jukinet.pki import issue_card_auth_certificate, revoke

    pki = tmp_path / "pki"
    init_pki(pki)
    first = issue_card_auth_certificate(pki, SERIAL, ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(Rejected) as info:
        issue_card_auth_certificate(pki, SERIAL, ec.generate_private_key(ec.SECP256R1()).public_key())
    assert info.value.problem is Problem.ALREADY_EXISTS
    revoke(pki, "card", first.serial_number)  # withdrawn (a set-up that failed): the serial may be certified again
    issue_card_auth_certificate(pki, SERIAL, ec.generate_private_key(ec.SECP256R1()).public_key())
