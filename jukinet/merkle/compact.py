"""The right edge (frontier) of a Merkle tree: enough to append leaves and compute the root."""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import sha256
from itertools import repeat
from operator import methodcaller

from jukinet.merkle.hashing import EMPTY_ROOT, HASH_SIZE, node_hash

_NODE = b"\x01"  # RFC 6962 interior node prefix (hashing.node_hash, inlined in the bulk path)
_digest = methodcaller("digest")


def perfect_subtrees(size: int) -> list[tuple[int, int]]:
    """``(level, index)`` of the perfect aligned subtrees that make up leaves [0, size), largest first.

    A subtree ``(level, index)`` covers leaves [index * 2**level, (index + 1) * 2**level).
    """
    if size < 0:
        raise ValueError(f"tree size must not be negative, got {size}")
    out = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


class Frontier:
    """Hashes of the perfect subtrees that make up a tree of ``size`` leaves, largest first."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self._hashes = list(hashes)
        expected = len(perfect_subtrees(size))
        if len(self._hashes) != expected:
            raise ValueError(f"a frontier of size {size} has {expected} hashes, got {len(self._hashes)}")
        if any(len(h) != HASH_SIZE for h in self._hashes):
            raise ValueError(f"frontier hashes must be {HASH_SIZE} bytes")
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf; return ``(level, index, hash)`` of every subtree it completes, the leaf (level 0) first."""
        index = self._size
        h = leaf_hash
        level = 0
        done = [(0, index, h)]
        while index & 1:
            h = node_hash(self._hashes.pop(), h)
            index >>= 1
            level += 1
            done.append((level, index, h))
        self._hashes.append(h)
        self._size += 1
        return done

    def extend(self, leaf_hashes: Iterable[bytes], min_level: int = 0) -> list[tuple[int, int, bytes]]:
        """Add leaves; return ``(level, index, hash)`` of every subtree they complete at ``min_level`` or
        above (level by level, not in the order :meth:`append` would give them).

        Level by level over the whole run rather than leaf by leaf, so that each level's hashes are one
        C-level ``map`` (a thousand leaves cost about a thousand node hashes and no Python loop per leaf):
        at level L the new nodes start at index ``size >> L``; when that is odd, the frontier's subtree of
        level L is the left sibling of the first one; pairs make the next level; an odd one out is the
        new frontier's subtree of level L."""
        nodes = list(leaf_hashes)
        out: list[tuple[int, int, bytes]] = []
        stack = self._hashes
        start, level = self._size, 0
        self._size += len(nodes)
        kept: list[bytes] = []  # the new frontier's subtrees, lowest level first
        while nodes:
            if level >= min_level:
                out.extend(zip(repeat(level), range(start, start + len(nodes)), nodes, strict=False))
            if start & 1:
                nodes.insert(0, stack.pop())
                start -= 1
            if len(nodes) & 1:
                kept.append(nodes.pop())
            nodes = list(map(_digest, map(sha256, map(_NODE.__add__, map(bytes.__add__, nodes[0::2], nodes[1::2])))))
            start >>= 1
            level += 1
        stack.extend(reversed(kept))
        return out

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        root = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            root = node_hash(h, root)
        return root
