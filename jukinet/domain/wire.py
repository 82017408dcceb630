"""Protobuf wire-format pieces for the bulk paths, which build or frame many encoded messages at once
instead of a message object per item (the batch answer, provision leaves, the provision index)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

_FRAMED_TABLE = 1 << 14  # lengths below this are framed from a table (a record or leaf is a few hundred bytes)


def varint(value: int) -> bytes:
    """Base-128 encoding of a non-negative integer."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class Framer:
    """Encoded messages as the repeated message (or bytes) field ``field`` of an enclosing message: tag,
    length and the bytes of each, joined — what that field's serialization would be, without building it."""

    def __init__(self, field: int) -> None:
        self.tag = varint(field << 3 | 2)
        self._heads = [self.tag + varint(n) for n in range(_FRAMED_TABLE)]

    def __call__(self, items: Sequence[bytes]) -> bytes:
        lengths = list(map(len, items))
        if lengths and max(lengths) >= _FRAMED_TABLE:
            heads = [self.tag + varint(n) for n in lengths]
        else:
            heads = list(map(self._heads.__getitem__, lengths))
        return b"".join(itertools.chain.from_iterable(zip(heads, items, strict=True)))
