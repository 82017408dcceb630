"""Proof verification (RFC 9162 §2.1.3.2 inclusion, §2.1.4.2 consistency)."""

from __future__ import annotations

from collections.abc import Sequence

from jukinet.domain.errors import Problem, Rejected
from jukinet.merkle.hashing import EMPTY_ROOT, HASH_SIZE, node_hash
from jukinet.merkle.proofs import consistency_proof_length, inclusion_path_length


class ProofError(Rejected):
    """A proof that does not prove what it claims; the message says what did not fit. (Problem.INVALID)"""

    def __init__(self, message: str) -> None:
        super().__init__(Problem.INVALID, message)


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise ProofError(f"{what} element {i} is not a {HASH_SIZE}-byte hash")


def verify_inclusion(leaf_hash: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``."""
    if size < 0 or index < 0:
        raise ProofError(f"leaf index {index} and tree size {size} must not be negative")
    if index >= size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes("inclusion path", path)
    _check_hashes("leaf hash / root", [leaf_hash, root])
    expected = inclusion_path_length(index, size)
    if len(path) != expected:
        raise ProofError(
            f"inclusion path has {len(path)} hashes; leaf {index} of a tree of size {size} needs {expected}"
        )
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for p in path:
        if sn == 0:
            raise ProofError("inclusion path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion path is shorter than the tree is deep")
    if r != root:
        raise ProofError(f"inclusion path for leaf {index} does not lead to the root of the tree of size {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree (``new_size``, ``new_root``) extends the tree (``old_size``, ``old_root``)."""
    if old_size < 0 or new_size < 0:
        raise ProofError(f"tree sizes {old_size} and {new_size} must not be negative")
    if old_size > new_size:
        raise ProofError(f"old tree size {old_size} is larger than new tree size {new_size}")
    _check_hashes("consistency proof", proof)
    _check_hashes("old / new root", [old_root, new_root])
    if old_size == new_size:
        if proof:
            raise ProofError(f"trees of equal size {old_size} need an empty proof, got {len(proof)} hashes")
        if old_root != new_root:
            raise ProofError(f"two trees of size {old_size} have different roots")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("the root of the empty tree must be SHA-256 of the empty string")
        return
    if old_size == 0:
        if proof:
            raise ProofError(f"a proof from the empty tree must be empty, got {len(proof)} hashes")
        if old_root != EMPTY_ROOT:
            raise ProofError("the root of the empty tree must be SHA-256 of the empty string")
        return
    expected = consistency_proof_length(old_size, new_size)
    if len(proof) != expected:
        raise ProofError(f"consistency proof has {len(proof)} hashes; sizes {old_size} -> {new_size} need {expected}")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # the old tree is a perfect subtree: its root is implied
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the new tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the new tree is deep")
    if fr != old_root:
        raise ProofError(f"consistency proof does not reproduce the old root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not reproduce the new root of size {new_size}")
