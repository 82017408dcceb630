"""Proof generation (RFC 6962 §2.1.1 PATH and §2.1.2 PROOF) over a caller-supplied subtree hash function.

``subtree(start, end)`` must return MTH of leaves [start, end). Every range requested is a node of the
RFC 6962 tree: ``start`` is a multiple of the smallest power of two >= ``end - start``, so a store of
perfect aligned subtrees answers each request with O(log n) reads.
"""

from __future__ import annotations

from collections.abc import Callable

from jukinet.merkle.hashing import largest_power_of_two_below

SubtreeHash = Callable[[int, int], bytes]


def inclusion_path(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree of the first ``size`` leaves, leaf side first."""
    if size < 1:
        raise ValueError(f"no inclusion proof in a tree of size {size}: the tree has no leaves")
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + largest_power_of_two_below(end - start)
        if index < mid:
            path.append(subtree(mid, end))
            end = mid
        else:
            path.append(subtree(start, mid))
            start = mid
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """Consistency proof between the trees of the first ``old_size`` and ``new_size`` leaves.

    Following RFC 9162 §2.1.4, the proof is empty when ``old_size`` is 0 (every tree extends the
    empty tree) or equals ``new_size``.
    """
    if old_size < 0 or new_size < 0:
        raise ValueError(f"tree sizes must not be negative, got {old_size} and {new_size}")
    if old_size > new_size:
        raise ValueError(f"old tree size {old_size} is larger than new tree size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []
    start, end = 0, new_size
    complete = True  # SUBPROOF's b: the old tree is still a complete left part of this subtree
    while end != old_size:
        mid = start + largest_power_of_two_below(end - start)
        if old_size <= mid:
            proof.append(subtree(mid, end))
            end = mid
        else:
            proof.append(subtree(start, mid))
            start = mid
            complete = False
    if not complete:
        proof.append(subtree(start, end))
    proof.reverse()
    return proof


def inclusion_path_length(index: int, size: int) -> int:
    """Number of hashes in the audit path of leaf ``index`` in a tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    count = 0
    start, end = 0, size
    while end - start > 1:
        mid = start + largest_power_of_two_below(end - start)
        start, end = (start, mid) if index < mid else (mid, end)
        count += 1
    return count


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """Number of hashes in the consistency proof from ``old_size`` to ``new_size``."""
    return len(consistency_proof(old_size, new_size, lambda start, end: b""))
