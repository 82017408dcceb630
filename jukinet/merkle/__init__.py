"""RFC 6962 / RFC 9162 Merkle tree math (pure, no I/O): hashing, roots, proof generation and verification.

Conventions: SHA-256; leaf hash = H(0x00 || data); node hash = H(0x01 || left || right); the root of
the empty tree is H(""). A consistency proof from size 0 is empty (every tree extends the empty tree);
its verifier requires the old root to be H("").
"""

from jukinet.merkle.compact import Frontier, perfect_subtrees
from jukinet.merkle.hashing import (
    EMPTY_ROOT,
    HASH_SIZE,
    largest_power_of_two_below,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
)
from jukinet.merkle.proofs import (
    SubtreeHash,
    consistency_proof,
    consistency_proof_length,
    inclusion_path,
    inclusion_path_length,
)
from jukinet.merkle.verify import ProofError, verify_consistency, verify_inclusion

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "ProofError",
    "SubtreeHash",
    "consistency_proof",
    "consistency_proof_length",
    "inclusion_path",
    "inclusion_path_length",
    "largest_power_of_two_below",
    "leaf_hash",
    "node_hash",
    "perfect_subtrees",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]
