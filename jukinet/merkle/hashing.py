"""RFC 6962 hashing: SHA-256 with domain separation between leaves (0x00) and interior nodes (0x01)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH of the empty tree: SHA-256 of the empty string."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Hash of one leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n`` >= 2): the RFC 6962 split point k."""
    if n < 2:
        raise ValueError(f"a tree of {n} leaves has no split point")
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH (RFC 6962 §2.1) of a list of leaf hashes, in O(n) hashing without recursion."""
    # Keep the roots of the perfect subtrees seen so far (the right edge); merge equal-sized
    # neighbours as they complete, then fold the remainder right to left.
    stack: list[bytes] = []
    for index, h in enumerate(hashes):
        n = index
        while n & 1:
            h = node_hash(stack.pop(), h)
            n >>= 1
        stack.append(h)
    if not stack:
        return EMPTY_ROOT
    root = stack.pop()
    while stack:
        root = node_hash(stack.pop(), root)
    return root
