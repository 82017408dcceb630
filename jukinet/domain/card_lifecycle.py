"""The life of a My Number card: which actions each state allows, which events they make, which
certificates each event revokes, and the events the national server derives from change notices.

No I/O: the CS (jukinet.cs_node.cards) applies actions, the national server (jukinet.server.national.cards)
derives and forwards events, the card-management service keeps states and the JPKI service revokes, all
by these rules.

States: SET_UP → (ISSUE) ISSUED ⇄ (SUSPEND / RESUME) SUSPENDED; any live state → (RETURN) RETURNED or
(REVOKE) REVOKED, both final with both certificates revoked. Only an ISSUED card whose authentication
certificate is not revoked may be presented (:func:`presentable_problem`). A change of the holder's
name, address, birth date or sex revokes the signature certificate and keeps the authentication one (a
card-face update then certifies a new signature key); the holder's death revokes both.
"""

from __future__ import annotations

from dataclasses import dataclass

from jukinet.domain.cards import face_changed
from jukinet.domain.errors import Problem, Rejected
from jukinet.v1 import cards_pb2, identity_pb2

__all__ = [
    "LIVE_STATES",
    "MAX_CARDS_PER_RESIDENT",
    "Transition",
    "apply_event",
    "derived_events",
    "event_for",
    "presentable_problem",
    "transition",
]

C = cards_pb2
MAX_CARDS_PER_RESIDENT = 16
"""Cards a resident may have had at one node (set up, issued, returned …); one live at a time."""
LIVE_STATES = frozenset({C.CARD_STATE_SET_UP, C.CARD_STATE_ISSUED, C.CARD_STATE_SUSPENDED})


@dataclass(frozen=True)
class Transition:
    allowed_from: frozenset[int]
    to: int
    event: int
    revokes_both: bool = False


_TRANSITIONS: dict[int, Transition] = {
    C.CARD_ACTION_ISSUE: Transition(frozenset({C.CARD_STATE_SET_UP}), C.CARD_STATE_ISSUED, C.CARD_EVENT_KIND_ISSUED),
    C.CARD_ACTION_SUSPEND: Transition(
        frozenset({C.CARD_STATE_ISSUED}), C.CARD_STATE_SUSPENDED, C.CARD_EVENT_KIND_SUSPENDED
    ),
    C.CARD_ACTION_RESUME: Transition(
        frozenset({C.CARD_STATE_SUSPENDED}), C.CARD_STATE_ISSUED, C.CARD_EVENT_KIND_RESUMED
    ),
    C.CARD_ACTION_RETURN: Transition(LIVE_STATES, C.CARD_STATE_RETURNED, C.CARD_EVENT_KIND_RETURNED, True),
    C.CARD_ACTION_REVOKE: Transition(LIVE_STATES, C.CARD_STATE_REVOKED, C.CARD_EVENT_KIND_REVOKED, True),
}
_STATE_OF_EVENT = {t.event: t.to for t in _TRANSITIONS.values()} | {C.CARD_EVENT_KIND_HOLDER_DIED: C.CARD_STATE_REVOKED}


def _name(enum: object, value: int) -> str:
    try:
        return enum.Name(value)  # type: ignore[attr-defined, no-any-return]
    except ValueError:
        return str(value)


def transition(card: cards_pb2.CardRecord, action: int) -> Transition:
    """The transition ``action`` makes from the card's state; Rejected INVALID for an unknown action,
    CONFLICT for one the state does not allow."""
    t = _TRANSITIONS.get(action)
    if t is None:
        raise Rejected(Problem.INVALID, f"card action {_name(C.CardAction, action)} is unspecified or unknown")
    if card.state not in t.allowed_from:
        raise Rejected(
            Problem.CONFLICT,
            f"card {card.card_serial} is {_name(C.CardState, card.state)}; "
            f"{_name(C.CardAction, action)} needs {' or '.join(sorted(_name(C.CardState, s) for s in t.allowed_from))}",
        )
    return t


def presentable_problem(card: cards_pb2.CardRecord | None, card_serial: str) -> Rejected | None:
    """Why this card may not be presented now (None: it may): only an issued card, not suspended,
    returned or revoked, whose authentication certificate stands."""
    if card is None:
        return Rejected(Problem.UNAUTHENTICATED, f"card {card_serial} is not a card of this municipality")
    if card.state != C.CARD_STATE_ISSUED or card.auth_revoked:
        state = "its authentication certificate is revoked" if card.auth_revoked else _name(C.CardState, card.state)
        return Rejected(Problem.UNAUTHENTICATED, f"card {card_serial} may not be presented: {state}")
    return None


def _unrevoked(card: cards_pb2.CardRecord, auth: bool, signature: bool) -> list[str]:
    serials = []
    if auth and not card.auth_revoked and card.auth_certificate_serial:
        serials.append(card.auth_certificate_serial)
    if signature and not card.signature_revoked and card.signature_certificate_serial:
        serials.append(card.signature_certificate_serial)
    return serials


def event_for(
    card: cards_pb2.CardRecord, kind: int, origin: str, at_ms: int, old_signature: str = ""
) -> cards_pb2.CardEvent:
    """The event of ``card`` (its state after the event) with the serials the event revokes."""
    if kind in (C.CARD_EVENT_KIND_RETURNED, C.CARD_EVENT_KIND_REVOKED, C.CARD_EVENT_KIND_HOLDER_DIED):
        revoke = _unrevoked(card, True, True)
    elif kind == C.CARD_EVENT_KIND_SIGNATURE_REVOKED:
        revoke = _unrevoked(card, False, True)
    elif kind == C.CARD_EVENT_KIND_FACE_UPDATED and old_signature:
        revoke = [old_signature]
    else:
        revoke = []
    event = C.CardEvent(
        kind=kind,
        card_serial=card.card_serial,
        resident_code=card.resident_code,
        municipality_code=card.municipality_code,
        auth_certificate_serial=card.auth_certificate_serial,
        signature_certificate_serial=card.signature_certificate_serial,
        revoke_serials=revoke,
        origin=origin,
    )
    event.at.FromMilliseconds(at_ms)
    return event


def apply_event(card: cards_pb2.CardRecord | None, event: cards_pb2.CardEvent) -> cards_pb2.CardRecord:
    """A node's record of the card after ``event`` (national index, card-management service). Events
    arrive in order per origin; one about an unknown card starts its record."""
    new = C.CardRecord()
    if card is not None:
        new.CopyFrom(card)
    else:
        new.card_serial, new.resident_code = event.card_serial, event.resident_code
    new.municipality_code = event.municipality_code or new.municipality_code
    kind = event.kind
    if kind == C.CARD_EVENT_KIND_SET_UP:
        new.state = C.CARD_STATE_SET_UP
    elif kind in _STATE_OF_EVENT:
        new.state = _STATE_OF_EVENT[kind]
    if event.auth_certificate_serial:
        new.auth_certificate_serial = event.auth_certificate_serial
    if event.signature_certificate_serial and event.signature_certificate_serial != new.signature_certificate_serial:
        new.signature_certificate_serial = event.signature_certificate_serial
        new.signature_revoked = False  # a new signature certificate (set-up, face update)
    revoked = set(event.revoke_serials)
    if new.auth_certificate_serial in revoked:
        new.auth_revoked = True
    if new.signature_certificate_serial in revoked:
        new.signature_revoked = True
    new.updated_at.CopyFrom(event.at)
    return new


def derived_events(
    old: identity_pb2.IdentityRecord | None,
    new: identity_pb2.IdentityRecord,
    cards: list[cards_pb2.CardRecord],
    at_ms: int,
) -> list[cards_pb2.CardEvent]:
    """What a change of a resident means for their live cards (national server): death revokes both
    certificates, a changed card face the signature certificate; anything else nothing."""
    if new.change_reason == identity_pb2.CHANGE_REASON_DEATH:
        kind = C.CARD_EVENT_KIND_HOLDER_DIED
    elif old is not None and face_changed(old, new):
        kind = C.CARD_EVENT_KIND_SIGNATURE_REVOKED
    else:
        return []
    events = []
    for card in cards:
        if card.state not in LIVE_STATES:
            continue
        event = event_for(card, kind, "national", at_ms)
        if event.revoke_serials or kind == C.CARD_EVENT_KIND_HOLDER_DIED:
            events.append(event)
    return events
