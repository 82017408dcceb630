"""Link batches and change notices on the wire, built from bytes already encoded.

Queue entries are already serialized ``LinkItem`` messages, so the ``LinkBatch`` payload is assembled
by writing each entry as a length-delimited field 5 between the serialized header (fields 1-4) and
trailer (fields 6-7; an empty entry is a position withdrawn into quarantine): valid protobuf, byte
for byte what ``LinkBatch.SerializeToString`` would produce,
without parsing and re-encoding every item on the send path. A CS builds each change notice and its
queue item the same way around the record bytes it stores anyway. Tests check the bytes are identical.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from jukinet.storage.layout import WITHDRAWN
from jukinet.v1 import link_pb2, notice_pb2

BATCH_TYPE = link_pb2.LinkBatch.DESCRIPTOR.full_name
_ITEMS_TAG = bytes([(5 << 3) | 2])  # LinkBatch.items: field 5, length-delimited
_ORIGIN_TAG = bytes([(1 << 3) | 2])  # ChangeNotice.origin: field 1
_SEQUENCE_TAG = bytes([2 << 3])  # ChangeNotice.sequence: field 2, varint
_RECORD_TAG = bytes([(3 << 3) | 2])  # ChangeNotice.record: field 3
_CHANGE_NOTICE_TAG = bytes([(1 << 3) | 2])  # LinkItem.change_notice: field 1


def varint(value: int) -> bytes:
    """A protobuf base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


BATCH_FRAMING = 96 << 10
"""Bytes a LinkBatch adds around its entries' bytes, at most: header and trailer (< 1 KB), withdrawn
positions (5,000 varints of up to 10 bytes: 50 KB), a field tag and length per item (5,000 × 4 bytes)."""


def describe_item(item: bytes) -> tuple[str, str]:
    """(kind, a one-line summary) of a serialized LinkItem, for the quarantine listing."""
    try:
        parsed = link_pb2.LinkItem.FromString(item)
    except Exception:  # the node's own queue entry: only a damaged store gets here
        return "undecodable", f"{len(item)} bytes"
    kind = parsed.WhichOneof("payload") or "empty"
    if kind == "change_notice":
        notice = parsed.change_notice
        return kind, f"{notice.origin}#{notice.sequence} resident {notice.record.resident_code}"
    if kind == "relayed_batch":
        try:
            inner = link_pb2.LinkBatch.FromString(parsed.relayed_batch.payload)
        except Exception:
            return kind, f"{len(item)} bytes"
        return kind, f"{inner.sender} → {inner.destination} #{inner.first_sequence}..{inner.last_sequence}"
    return kind, f"{len(item)} bytes"


def encode_link_batch(sender: str, destination: str, entries: Sequence[tuple[int, bytes]], sent_at_ms: int) -> bytes:
    """Serialized LinkBatch for queue ``entries`` [(position, LinkItem bytes or WITHDRAWN)], contiguous
    and in order, the last one an item."""
    header = link_pb2.LinkBatch(
        sender=sender, destination=destination, first_sequence=entries[0][0], last_sequence=entries[-1][0]
    )
    trailer = link_pb2.LinkBatch()
    trailer.sent_at.FromMilliseconds(sent_at_ms)
    parts = [header.SerializeToString()]
    for position, item in entries:
        if item == WITHDRAWN:
            trailer.withdrawn.append(position)
        else:
            parts.append(_field(_ITEMS_TAG, item))
    parts.append(trailer.SerializeToString())
    return b"".join(parts)


def batch_digest(payload: bytes) -> bytes:
    """What a receipt names: SHA-256 of the delivered LinkBatch payload."""
    return hashlib.sha256(payload).digest()


def _field(tag: bytes, value: bytes) -> bytes:
    return tag + varint(len(value)) + value


class ChangeNoticeEncoder:
    """Serialized ChangeNotices of one origin, recorded at one time, around serialized IdentityRecords
    (a CS records a whole chunk at once: the fixed parts are encoded once)."""

    def __init__(self, origin: str, recorded_at_ms: int) -> None:
        self._origin = _field(_ORIGIN_TAG, origin.encode()) if origin else b""
        trailer = notice_pb2.ChangeNotice()
        trailer.recorded_at.FromMilliseconds(recorded_at_ms)
        self._trailer = trailer.SerializeToString()

    def encode(self, sequence: int, record: bytes) -> bytes:
        sequence_field = _SEQUENCE_TAG + varint(sequence) if sequence else b""
        return self._origin + sequence_field + _field(_RECORD_TAG, record) + self._trailer


def encode_change_notice(origin: str, sequence: int, record: bytes, recorded_at_ms: int) -> bytes:
    """Serialized ChangeNotice around an already serialized IdentityRecord."""
    return ChangeNoticeEncoder(origin, recorded_at_ms).encode(sequence, record)


def change_notice_item(notice: bytes) -> bytes:
    """Serialized LinkItem carrying a serialized ChangeNotice."""
    return _field(_CHANGE_NOTICE_TAG, notice)
