"""The card lifecycle rules (jukinet.domain.card_lifecycle) and the checks every tier makes of a card
event (jukinet.server.card_events), without a network."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from jukinet.cs_node.cards import CardLifecycle
from jukinet.domain.card_lifecycle import apply_event, derived_events, event_for, presentable_problem, transition
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.server.card_events import CS_EVENT_KINDS, NationalCardEvents, check_card_events
from jukinet.storage import NodeStorage
from jukinet.v1 import cards_pb2, identity_pb2

C = cards_pb2
CS = NodeId.cs("131148")
SERIAL = "0123456789abcdef"


def card(state: int = C.CARD_STATE_ISSUED, **kw: object) -> cards_pb2.CardRecord:
    fields = {
        "card_serial": SERIAL,
        "resident_code": "12345678903",
        "municipality_code": "131148",
        "state": state,
        "auth_certificate_serial": "aa",
        "signature_certificate_serial": "bb",
    }
    return C.CardRecord(**(fields | kw))  # type: ignore[arg-type]


def person(**kw: object) -> identity_pb2.IdentityRecord:
    r = identity_pb2.IdentityRecord(
        resident_code="12345678903",
        name=identity_pb2.PersonName(kanji="山田 花子", kana="ヤマダ ハナコ"),
        birth_date=identity_pb2.Date(year=1990, month=4, day=1),
        sex=identity_pb2.SEX_FEMALE,
        address=identity_pb2.Address(municipality_code="131148", text="1丁目1番"),
        change_reason=identity_pb2.CHANGE_REASON_RELOCATION,
    )
    for k, v in kw.items():
        setattr(r, k, v) if not isinstance(v, dict) else getattr(r, k).MergeFrom(type(getattr(r, k))(**v))
    return r


@pytest.mark.parametrize(
    ("state", "action", "to"),
    [
        (C.CARD_STATE_SET_UP, C.CARD_ACTION_ISSUE, C.CARD_STATE_ISSUED),
        (C.CARD_STATE_ISSUED, C.CARD_ACTION_SUSPEND, C.CARD_STATE_SUSPENDED),
        (C.CARD_STATE_SUSPENDED, C.CARD_ACTION_RESUME, C.CARD_STATE_ISSUED),
        (C.CARD_STATE_SUSPENDED, C.CARD_ACTION_RETURN, C.CARD_STATE_RETURNED),
        (C.CARD_STATE_SET_UP, C.CARD_ACTION_REVOKE, C.CARD_STATE_REVOKED),
    ],
)
def test_allowed_transitions(state: int, action: int, to: int) -> None:
    assert transition(card(state), action).to == to


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (C.CARD_STATE_SET_UP, C.CARD_ACTION_SUSPEND),
        (C.CARD_STATE_ISSUED, C.CARD_ACTION_ISSUE),
        (C.CARD_STATE_ISSUED, C.CARD_ACTION_RESUME),
        (C.CARD_STATE_RETURNED, C.CARD_ACTION_ISSUE),
        (C.CARD_STATE_REVOKED, C.CARD_ACTION_RETURN),
    ],
)
def test_refused_transitions(state: int, action: int) -> None:
    with pytest.raises(Rejected) as info:
        transition(card(state), action)
    assert info.value.problem is Problem.CONFLICT


def test_unknown_action() -> None:
    for action in (0, 99):
        with pytest.raises(Rejected) as info:
            transition(card(), action)
        assert info.value.problem is Problem.INVALID


def test_only_an_issued_card_with_its_auth_certificate_may_be_presented() -> None:
    assert presentable_problem(card(), SERIAL) is None
    for c in (card(C.CARD_STATE_SET_UP), card(C.CARD_STATE_SUSPENDED), card(C.CARD_STATE_RETURNED),
              card(auth_revoked=True), None):  # fmt: skip
        problem = presentable_problem(c, SERIAL)
        assert problem is not None and problem.problem is Problem.UNAUTHENTICATED


def test_derived_events() -> None:
    old = person()
    assert derived_events(old, person(), [card()], 0) == []  # nothing on the face changed
    assert derived_events(old, person(name={"kanji": "山田 花子", "kana": "ヤマダ ハナ"}), [card()], 0) == []
    for changed in (
        person(address={"municipality_code": "131148", "text": "2丁目2番"}),
        person(name={"kanji": "佐藤 花子"}),
        person(sex=identity_pb2.SEX_MALE),
        person(birth_date={"year": 1991, "month": 4, "day": 1}),
    ):
        (event,) = derived_events(old, changed, [card()], 0)
        assert (event.kind, list(event.revoke_serials), event.origin) == (
            C.CARD_EVENT_KIND_SIGNATURE_REVOKED,
            ["bb"],
            "national",
        )
    assert derived_events(old, person(address={"text": "x"}), [card(signature_revoked=True)], 0) == []
    (died,) = derived_events(
        old, person(change_reason=identity_pb2.CHANGE_REASON_DEATH), [card(), card(C.CARD_STATE_RETURNED)], 0
    )
    assert (died.kind, list(died.revoke_serials)) == (C.CARD_EVENT_KIND_HOLDER_DIED, ["aa", "bb"])


def test_apply_event_keeps_states_and_revocations() -> None:
    c = apply_event(None, event_for(card(C.CARD_STATE_SET_UP), C.CARD_EVENT_KIND_SET_UP, "cs:131148", 1))
    assert (c.state, c.auth_revoked, c.signature_revoked) == (C.CARD_STATE_SET_UP, False, False)
    c = apply_event(c, event_for(card(), C.CARD_EVENT_KIND_SIGNATURE_REVOKED, "national", 2))
    assert (c.signature_revoked, c.auth_revoked) == (True, False)
    c = apply_event(
        c, event_for(card(signature_certificate_serial="cc"), C.CARD_EVENT_KIND_FACE_UPDATED, "cs:131148", 3, "bb")
    )
    assert (c.signature_certificate_serial, c.signature_revoked) == ("cc", False)
    c = apply_event(c, event_for(c, C.CARD_EVENT_KIND_HOLDER_DIED, "national", 4))
    assert (c.state, c.auth_revoked, c.signature_revoked) == (C.CARD_STATE_REVOKED, True, True)


def refused(items: list, origin: NodeId = CS, kinds: frozenset[int] = CS_EVENT_KINDS) -> ItemRefused:
    with pytest.raises(ItemRefused) as info:
        check_card_events(items, origin, kinds)
    return info.value


def test_card_events_a_cs_may_not_send() -> None:
    good = event_for(card(), C.CARD_EVENT_KIND_ISSUED, "cs:131148", 0)
    check_card_events([(7, good)], CS)
    other = C.CardEvent()
    other.CopyFrom(good)
    other.municipality_code = "131016"
    assert refused([(7, other)]).problem is Problem.DENIED
    other.CopyFrom(good)
    other.origin = "cs:131016"
    assert refused([(7, other)]).problem is Problem.DENIED
    derived = event_for(card(), C.CARD_EVENT_KIND_HOLDER_DIED, "cs:131148", 0)
    assert refused([(7, derived)]).problem is Problem.DENIED  # only the national server derives
    for field, value in (("card_serial", "XYZ"), ("resident_code", "1"), ("auth_certificate_serial", "zz")):
        other.CopyFrom(good)
        setattr(other, field, value)
        error = refused([(7, other)])
        assert (error.problem, error.position) == (Problem.INVALID, 7)
    other.CopyFrom(good)
    other.revoke_serials.extend(["a", "b", "c"])
    assert refused([(7, other)]).problem is Problem.INVALID
    other.CopyFrom(good)
    other.municipality_code = "131148" + "x" * 2000
    assert "bytes encoded" in str(refused([(7, other)]))


def test_card_services_accept_events_from_the_national_server_only() -> None:
    handler = NationalCardEvents(storage=None)  # type: ignore[arg-type]
    cs_event = event_for(card(), C.CARD_EVENT_KIND_ISSUED, "cs:131148", 0)
    with pytest.raises(Rejected) as info:
        handler.check(SimpleNamespace(sender=CS), [(1, cs_event)])  # type: ignore[arg-type]
    assert info.value.problem is Problem.DENIED
    national = SimpleNamespace(sender=NodeId.national())
    handler.check(national, [(1, cs_event), (2, event_for(card(), C.CARD_EVENT_KIND_HOLDER_DIED, "national", 0))])  # type: ignore[arg-type]
    forged = event_for(card(), C.CARD_EVENT_KIND_HOLDER_DIED, "cs:131148", 0)  # a CS cannot have decided this
    with pytest.raises(ItemRefused):
        handler.check(national, [(1, forged)])  # type: ignore[arg-type]
    stranger = event_for(card(), C.CARD_EVENT_KIND_ISSUED, "pref:13", 0)
    with pytest.raises(ItemRefused):
        handler.check(national, [(1, stranger)])  # type: ignore[arg-type]


def test_presented_holder_asks_the_card_store(tmp_path: Path) -> None:
    storage = NodeStorage.open(tmp_path / "data")
    try:
        lifecycle = CardLifecycle(CS, NodeId.prefecture("13"), storage, auditor=None, issuer=None)  # type: ignore[arg-type]
        storage.env.write(lambda txn: storage.cards.put(txn, card()))
        assert lifecycle.presented_holder(SERIAL) == "12345678903"
        assert [c.card_serial for c in lifecycle.cards_of("12345678903")] == [SERIAL]
        storage.env.write(lambda txn: storage.cards.put(txn, card(C.CARD_STATE_SUSPENDED)))
        for serial in (SERIAL, "fedcba9876543210"):
            with pytest.raises(Rejected) as info:
                lifecycle.presented_holder(serial)
            assert info.value.problem is Problem.UNAUTHENTICATED
    finally:
        storage.close()
