"""Link batches on the wire: built from queue entries without re-encoding them.

Queue entries are already serialized ``LinkItem`` messages, so the ``LinkBatch`` payload is assembled
by writing each entry as a length-delimited field 5 between the serialized header (fields 1-4) and
trailer (field 6): valid protobuf, byte for byte what ``LinkBatch.SerializeToString`` would produce,
without parsing and re-encoding every item on the send path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from jukinet.v1 import link_pb2

BATCH_TYPE = link_pb2.LinkBatch.DESCRIPTOR.full_name
_ITEMS_TAG = bytes([(5 << 3) | 2])  # LinkBatch.items: field 5, length-delimited


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_link_batch(sender: str, destination: str, entries: Sequence[tuple[int, bytes]], sent_at_ms: int) -> bytes:
    """Serialized LinkBatch for queue ``entries`` [(position, LinkItem bytes)], contiguous and in order."""
    header = link_pb2.LinkBatch(
        sender=sender, destination=destination, first_sequence=entries[0][0], last_sequence=entries[-1][0]
    )
    trailer = link_pb2.LinkBatch()
    trailer.sent_at.FromMilliseconds(sent_at_ms)
    parts = [header.SerializeToString()]
    for _, item in entries:
        parts.append(_ITEMS_TAG + _varint(len(item)) + item)
    parts.append(trailer.SerializeToString())
    return b"".join(parts)


def batch_digest(payload: bytes) -> bytes:
    """What a receipt names: SHA-256 of the delivered LinkBatch payload."""
    return hashlib.sha256(payload).digest()
