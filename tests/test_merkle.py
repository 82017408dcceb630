"""RFC 6962 / RFC 9162 Merkle math against the published C2SP vectors and random trees."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from jukinet import merkle
from jukinet.merkle import ProofError

VECTORS = Path(__file__).parent / "testvectors" / "rfc6962"


def _load(name: str) -> list[dict]:
    return json.loads((VECTORS / name).read_text())


def _b(value: str) -> bytes:
    return base64.b64decode(value)


def _bs(values: list[str]) -> list[bytes]:
    return [_b(v) for v in values]


TREE = _load("merkle_tree.json")
TREE_LEAF_HASHES = [merkle.leaf_hash(case["leaf_data"].encode()) for case in TREE]


def _memo_subtree(leaf_hashes: list[bytes]) -> Callable[[int, int], bytes]:
    """MTH of [start, end) of ``leaf_hashes``, memoised (independent of the tree size it is used for)."""

    @cache
    def subtree(start: int, end: int) -> bytes:
        assert 0 <= start < end <= len(leaf_hashes)
        return merkle.root_from_leaf_hashes(leaf_hashes[start:end])

    return subtree


VECTOR_SUBTREE = _memo_subtree(TREE_LEAF_HASHES)


# -- hashing and roots ----------------------------------------------------------------------------------


def test_empty_root_is_hash_of_empty_string() -> None:
    assert _b("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=") == merkle.EMPTY_ROOT
    assert merkle.root_from_leaf_hashes([]) == merkle.EMPTY_ROOT


def test_merkle_tree_vector_roots_after_each_append() -> None:
    frontier = merkle.Frontier()
    hashes: list[bytes] = []
    for k, case in enumerate(TREE, 1):
        h = merkle.leaf_hash(case["leaf_data"].encode())
        assert h == _b(case["leaf_hash"])
        hashes.append(h)
        frontier.append(h)
        assert merkle.root_from_leaf_hashes(hashes) == _b(case["root_hash"]), f"root after {k} leaves"
        assert frontier.root() == _b(case["root_hash"])


def test_root_matches_rfc_recursive_definition() -> None:
    def mth(hs: list[bytes]) -> bytes:
        if len(hs) == 1:
            return hs[0]
        k = merkle.largest_power_of_two_below(len(hs))
        return merkle.node_hash(mth(hs[:k]), mth(hs[k:]))

    rng = random.Random(1)
    hashes = [merkle.leaf_hash(rng.randbytes(8)) for _ in range(70)]
    for n in range(1, 71):
        assert merkle.root_from_leaf_hashes(hashes[:n]) == mth(hashes[:n])


def test_frontier_reports_completed_subtrees_and_restores() -> None:
    hashes = [merkle.leaf_hash(bytes([i])) for i in range(13)]
    frontier = merkle.Frontier()
    completed = [frontier.append(h) for h in hashes]
    assert [(lvl, idx) for lvl, idx, _ in completed[7]] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert completed[7][-1][2] == merkle.root_from_leaf_hashes(hashes[:8])
    assert merkle.perfect_subtrees(13) == [(3, 0), (2, 2), (0, 12)]
    restored = merkle.Frontier(13, frontier.hashes)
    assert restored.root() == merkle.root_from_leaf_hashes(hashes)
    with pytest.raises(ValueError, match="has 3 hashes"):
        merkle.Frontier(13, frontier.hashes[:2])


@pytest.mark.parametrize("min_level", [0, 1, 4])
def test_extending_by_runs_completes_the_subtrees_appending_one_by_one_does(min_level: int) -> None:
    rng = random.Random(min_level)
    for _ in range(40):
        start, run = rng.randrange(300), rng.choice([0, 1, 2, 3, 16, 17, rng.randrange(600)])
        hashes = [merkle.leaf_hash(rng.randbytes(8)) for _ in range(start + run)]
        one, bulk = merkle.Frontier(), merkle.Frontier()
        for h in hashes[:start]:
            one.append(h)
            bulk.append(h)
        expected = sorted(n for h in hashes[start:] for n in one.append(h) if n[0] >= min_level)
        assert sorted(bulk.extend(hashes[start:], min_level)) == expected
        assert (bulk.size, bulk.hashes, bulk.root()) == (one.size, one.hashes, one.root())
        assert bulk.root() == merkle.root_from_leaf_hashes(hashes)


# -- published vectors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _load("inclusion-valid.json"), ids=lambda c: f"{c['leaf_index']}of{c['tree_size']}")
def test_inclusion_valid_vectors(case: dict) -> None:
    index, size, path = case["leaf_index"], case["tree_size"], _bs(case["inclusion_path"])
    merkle.verify_inclusion(_b(case["leaf_hash"]), index, size, path, _b(case["root_hash"]))
    # The vectors refer to the tree of merkle_tree.json: same leaf hash, same root.
    assert TREE_LEAF_HASHES[index] == _b(case["leaf_hash"])
    assert merkle.root_from_leaf_hashes(TREE_LEAF_HASHES[:size]) == _b(case["root_hash"])
    assert merkle.inclusion_path(index, size, VECTOR_SUBTREE) == path


@pytest.mark.parametrize("case", _load("inclusion-invalid.json"), ids=lambda c: c.get("comment", ""))
def test_inclusion_invalid_vectors(case: dict) -> None:
    with pytest.raises(ProofError):
        merkle.verify_inclusion(
            _b(case["leaf_hash"]),
            case["leaf_index"],
            case["tree_size"],
            _bs(case["inclusion_path"]),
            _b(case["root_hash"]),
        )


@pytest.mark.parametrize("case", _load("consistency-valid.json"), ids=lambda c: f"{c['old_size']}to{c['new_size']}")
def test_consistency_valid_vectors(case: dict) -> None:
    old, new, proof = case["old_size"], case["new_size"], _bs(case["consistency_path"])
    merkle.verify_consistency(old, new, _b(case["old_root"]), _b(case["new_root"]), proof)
    assert merkle.root_from_leaf_hashes(TREE_LEAF_HASHES[:old]) == _b(case["old_root"])
    assert merkle.root_from_leaf_hashes(TREE_LEAF_HASHES[:new]) == _b(case["new_root"])
    assert merkle.consistency_proof(old, new, VECTOR_SUBTREE) == proof


@pytest.mark.parametrize("case", _load("consistency-invalid.json"), ids=lambda c: f"{c['old_size']}to{c['new_size']}")
def test_consistency_invalid_vectors(case: dict) -> None:
    with pytest.raises(ProofError):
        merkle.verify_consistency(
            case["old_size"],
            case["new_size"],
            _b(case["old_root"]),
            _b(case["new_root"]),
            _bs(case["consistency_path"]),
        )


# -- argument checking ----------------------------------------------------------------------------------


def test_prover_rejects_out_of_range_arguments() -> None:
    with pytest.raises(ValueError, match="outside a tree of size 3"):
        merkle.inclusion_path(3, 3, VECTOR_SUBTREE)
    with pytest.raises(ValueError, match="outside"):
        merkle.inclusion_path(-1, 3, VECTOR_SUBTREE)
    with pytest.raises(ValueError, match="no leaves"):
        merkle.inclusion_path(0, 0, VECTOR_SUBTREE)
    with pytest.raises(ValueError, match="larger than new tree size"):
        merkle.consistency_proof(5, 4, VECTOR_SUBTREE)
    with pytest.raises(ValueError, match="negative"):
        merkle.consistency_proof(-1, 4, VECTOR_SUBTREE)
    assert merkle.consistency_proof(0, 7, VECTOR_SUBTREE) == []
    assert merkle.consistency_proof(7, 7, VECTOR_SUBTREE) == []


def test_verifier_messages_say_what_did_not_fit() -> None:
    root = merkle.root_from_leaf_hashes(TREE_LEAF_HASHES[:10])
    path = merkle.inclusion_path(3, 10, VECTOR_SUBTREE)
    with pytest.raises(ProofError, match="has 5 hashes; leaf 3 of a tree of size 10 needs 4"):
        merkle.verify_inclusion(TREE_LEAF_HASHES[3], 3, 10, [*path, path[0]], root)
    with pytest.raises(ProofError, match="outside a tree of size 10"):
        merkle.verify_inclusion(TREE_LEAF_HASHES[3], 10, 10, path, root)
    with pytest.raises(ProofError, match="not a 32-byte hash"):
        merkle.verify_inclusion(TREE_LEAF_HASHES[3], 3, 10, [*path[:-1], b"short"], root)
    old = merkle.root_from_leaf_hashes(TREE_LEAF_HASHES[:6])
    proof = merkle.consistency_proof(6, 10, VECTOR_SUBTREE)
    with pytest.raises(ProofError, match="old root of size 6"):
        merkle.verify_consistency(6, 10, root, root, proof)
    with pytest.raises(ProofError, match="new root of size 10"):
        merkle.verify_consistency(6, 10, old, old, proof)
    with pytest.raises(ProofError, match="need 4"):
        merkle.verify_consistency(6, 10, old, root, proof[:-1])


# -- random trees ---------------------------------------------------------------------------------------

RNG = random.Random(6962)
RANDOM_LEAVES = [merkle.leaf_hash(RNG.randbytes(RNG.randrange(0, 40))) for _ in range(300)]
RANDOM_SUBTREE = _memo_subtree(RANDOM_LEAVES)
RANDOM_ROOTS = [merkle.root_from_leaf_hashes(RANDOM_LEAVES[:n]) for n in range(301)]


def _flip(h: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(h))
    return h[:i] + bytes([h[i] ^ (1 << rng.randrange(8))]) + h[i + 1 :]


def test_every_inclusion_proof_verifies_in_random_trees() -> None:
    rng = random.Random(1)
    for size in range(1, 301):
        root = RANDOM_ROOTS[size]
        for index in range(size):
            path = merkle.inclusion_path(index, size, RANDOM_SUBTREE)
            merkle.verify_inclusion(RANDOM_LEAVES[index], index, size, path, root)
        # A flipped byte anywhere (leaf, root, one path element) is caught.
        index = rng.randrange(size)
        path = merkle.inclusion_path(index, size, RANDOM_SUBTREE)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(_flip(RANDOM_LEAVES[index], rng), index, size, path, root)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(RANDOM_LEAVES[index], index, size, path, _flip(root, rng))
        if path:
            j = rng.randrange(len(path))
            bad = [*path[:j], _flip(path[j], rng), *path[j + 1 :]]
            with pytest.raises(ProofError):
                merkle.verify_inclusion(RANDOM_LEAVES[index], index, size, bad, root)
            with pytest.raises(ProofError):
                merkle.verify_inclusion(RANDOM_LEAVES[index], index, size, path[:-1], root)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(RANDOM_LEAVES[index], index, size, [*path, root], root)
        if size > 1:  # the same path does not prove the leaf at another index
            other = (index + 1) % size
            with pytest.raises(ProofError):
                merkle.verify_inclusion(RANDOM_LEAVES[index], other, size, path, root)


def test_consistency_proofs_verify_in_random_trees() -> None:
    rng = random.Random(2)
    pairs = [(old, new) for new in range(1, 301) for old in rng.sample(range(new + 1), min(new + 1, 12))]
    pairs += [(old, new) for new in range(1, 40) for old in range(new + 1)]  # exhaustive for small trees
    for old, new in pairs:
        proof = merkle.consistency_proof(old, new, RANDOM_SUBTREE)
        merkle.verify_consistency(old, new, RANDOM_ROOTS[old], RANDOM_ROOTS[new], proof)
        if 0 < old < new:
            with pytest.raises(ProofError):
                merkle.verify_consistency(old, new, _flip(RANDOM_ROOTS[old], rng), RANDOM_ROOTS[new], proof)
            with pytest.raises(ProofError):
                merkle.verify_consistency(old, new, RANDOM_ROOTS[old], _flip(RANDOM_ROOTS[new], rng), proof)
            j = rng.randrange(len(proof))
            bad = [*proof[:j], _flip(proof[j], rng), *proof[j + 1 :]]
            with pytest.raises(ProofError):
                merkle.verify_consistency(old, new, RANDOM_ROOTS[old], RANDOM_ROOTS[new], bad)
            with pytest.raises(ProofError):
                merkle.verify_consistency(old, new, RANDOM_ROOTS[old], RANDOM_ROOTS[new], [*proof, proof[0]])
            with pytest.raises(ProofError):
                merkle.verify_consistency(old, new, RANDOM_ROOTS[old], RANDOM_ROOTS[new], proof[:-1])
            if old + 1 < new:  # a proof for one old size does not prove another
                with pytest.raises(ProofError):
                    merkle.verify_consistency(old + 1, new, RANDOM_ROOTS[old + 1], RANDOM_ROOTS[new], proof)
