"""Residents' My Number cards: what a card certifies and what a card presented at a counter signs.

A card holds two keys, as JPKI's: the user-authentication key (利用者証明用), whose certificate names the
card serial only, and the signature key (署名用), whose certificate carries the card face (券面事項:
name, address, birth date, sex). A change of any of those four makes the signature certificate wrong,
so it is revoked; the authentication certificate stays (:func:`face_changed`).

A card is presented at a counter by signing :func:`presentation_input` with its authentication key. The
input names why it is presented (``purpose``), the node it is presented to and what it is presented for
(``binding``, e.g. the serialized request), and when; so a presentation made for one request, node or
purpose is useless for any other, and the node also refuses one it has seen (single use) or one older
than :data:`PRESENCE_SKEW_MS`. No I/O here: terminals (jukinet.clients) build the same bytes.
"""

from __future__ import annotations

import datetime
import hashlib
import struct
from dataclasses import dataclass
from typing import Final

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.quoting import quoted
from jukinet.v1 import identity_pb2

__all__ = [
    "PRESENCE_CONTEXT",
    "PRESENCE_SKEW_MS",
    "CardFace",
    "card_face_of",
    "check_purpose",
    "face_changed",
    "presentation_input",
]

PRESENCE_CONTEXT: Final = b"jukinet-card-presence-v1"
PRESENCE_SKEW_MS: Final = 120_000
"""A presentation is accepted only if signed within ±120 s of the node's clock."""
MAX_PURPOSE_CHARS: Final = 32
_PURPOSE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_U64 = struct.Struct(">q")


def check_purpose(purpose: str) -> str:
    """``purpose`` if it is a purpose name (``[a-z0-9-]{1,32}``, e.g. ``special-move-in``), else Rejected
    (INVALID): purposes are fixed names in the code, never caller text, and contain no separator byte."""
    if not (isinstance(purpose, str) and 1 <= len(purpose) <= MAX_PURPOSE_CHARS and _PURPOSE_CHARS.issuperset(purpose)):
        raise Rejected(
            Problem.INVALID, f"card presentation purpose {quoted(str(purpose))} must match [a-z0-9-]{{1,32}}"
        )
    return purpose


def presentation_input(purpose: str, node_id: str, binding: bytes, signed_at_ms: int) -> bytes:
    """The exact bytes a card's authentication key signs to be presented:
    context 0x00 purpose 0x00 node id 0x00 SHA-256(binding) time (8 bytes, big-endian Unix ms).

    The purpose and node id contain no 0x00 (the purpose is checked; node ids are ``[a-z0-9:-]``), the
    digest and time have fixed sizes, so two different tuples never give the same bytes.
    """
    check_purpose(purpose)
    if not node_id or "\x00" in node_id or len(node_id) > 128:
        raise Rejected(Problem.INVALID, f"node id {quoted(node_id)} cannot be bound into a card presentation")
    if not -(2**63) <= signed_at_ms < 2**63:
        raise Rejected(Problem.INVALID, "signed_at_ms is out of range")
    return b"\x00".join(
        (
            PRESENCE_CONTEXT,
            purpose.encode(),
            node_id.encode(),
            hashlib.sha256(binding).digest() + _U64.pack(signed_at_ms),
        )
    )


@dataclass(frozen=True)
class CardFace:
    """券面事項: what the signature certificate certifies about its holder."""

    name: str  # 氏名 (kanji, as written)
    birth_date: datetime.date
    sex: int  # identity_pb2.Sex value
    municipality_code: str  # 住所: municipality …
    address: str  # … and the address below it

    @property
    def sex_code(self) -> str:
        """JIS X 0303 style: "1" male, "2" female, "9" not specified."""
        return {identity_pb2.SEX_MALE: "1", identity_pb2.SEX_FEMALE: "2"}.get(self.sex, "9")


def card_face_of(record: identity_pb2.IdentityRecord) -> CardFace:
    """The card face of a (valid) identity record."""
    d = record.birth_date
    try:
        birth = datetime.date(d.year, d.month, d.day)
    except ValueError:
        raise Rejected(Problem.INVALID, f"resident {record.resident_code} has no valid birth date") from None
    return CardFace(
        name=record.name.kanji,
        birth_date=birth,
        sex=int(record.sex),
        municipality_code=record.address.municipality_code,
        address=record.address.text,
    )


def face_changed(old: identity_pb2.IdentityRecord, new: identity_pb2.IdentityRecord) -> bool:
    """Whether a change makes the signature certificate wrong (name, address, birth date or sex differ)."""
    return (old.name.kanji, old.birth_date, old.sex, old.address) != (
        new.name.kanji,
        new.birth_date,
        new.sex,
        new.address,
    )
