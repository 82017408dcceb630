"""The LMDB audit log: roots, proofs, transactions, verification and reopening (real LMDB in tmp_path)."""

from __future__ import annotations

import base64
import json
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest

from jukinet import merkle
from jukinet.domain.errors import Rejected
from jukinet.storage.environment import Environment
from jukinet.storage.merkle_log import AUDIT_DB_NAMES, AuditLog

VECTORS = Path(__file__).parent / "testvectors" / "rfc6962"
TREE = json.loads((VECTORS / "merkle_tree.json").read_text())


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Environment]:
    environment = Environment(tmp_path / "db", AUDIT_DB_NAMES, map_size=64 << 20)
    yield environment
    environment.close()


def _entries(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [f"entry {i}:".encode() + rng.randbytes(rng.randrange(0, 60)) for i in range(n)]


def _fill(log: AuditLog, leaves: list[bytes]) -> None:
    log.env.write(lambda txn: log.append_many(txn, leaves))


def _corrupt(env: Environment, db: str, key: bytes) -> None:
    def flip(txn: lmdb.Transaction) -> None:
        value = bytearray(txn.get(key, db=env.dbs[db]))
        value[len(value) // 2] ^= 0x01
        txn.put(key, bytes(value), db=env.dbs[db])

    env.write(flip)


def _leaf_key(index: int) -> bytes:
    return struct.pack(">Q", index)


def _node_key(level: int, index: int) -> bytes:
    return struct.pack(">BQ", level, index)


def test_roots_after_each_append_match_merkle_math_and_vectors(env: Environment) -> None:
    log = AuditLog(env)
    assert log.size() == 0
    assert log.root() == merkle.EMPTY_ROOT
    for k, case in enumerate(TREE, 1):
        index = env.write(lambda txn, case=case: log.append(txn, case["leaf_data"].encode()))
        assert index == k - 1
        assert log.size() == k
        assert log.root() == base64.b64decode(case["root_hash"])
    leaves = _entries(150)
    hashes = [merkle.leaf_hash(case["leaf_data"].encode()) for case in TREE]
    for data in leaves:
        env.write(lambda txn, data=data: log.append(txn, data))
        hashes.append(merkle.leaf_hash(data))
        assert log.root() == merkle.root_from_leaf_hashes(hashes)
    for size in range(len(hashes) + 1):
        assert log.root(size) == merkle.root_from_leaf_hashes(hashes[:size])
    with pytest.raises(ValueError, match="outside the log"):
        log.root(len(hashes) + 1)


def test_several_appends_in_one_transaction(env: Environment) -> None:
    log = AuditLog(env)
    leaves = _entries(77)

    def apply(txn: lmdb.Transaction) -> list[int]:
        got = [log.append(txn, leaves[0]), log.append(txn, leaves[1])]
        got += list(log.append_many(txn, leaves[2:40]))
        got += [log.append(txn, data) for data in leaves[40:]]
        return got

    assert env.write(apply) == list(range(77))
    assert log.entries(0, 77) == leaves
    assert log.root() == merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in leaves])
    assert env.write(lambda txn: log.append_many(txn, [])) == range(77, 77)


def test_proofs_from_storage_verify(env: Environment) -> None:
    log = AuditLog(env)
    leaves = _entries(200, seed=3)
    _fill(log, leaves[:100])
    _fill(log, leaves[100:])
    roots = [log.root(n) for n in range(201)]
    rng = random.Random(4)
    for size in [1, 2, 3, 7, 8, 9, 63, 64, 65, 127, 128, 129, 199, 200]:
        for index in sorted({0, size - 1, *rng.sample(range(size), min(size, 10))}):
            lh, path = log.inclusion_proof(index, size)
            assert lh == merkle.leaf_hash(leaves[index])
            merkle.verify_inclusion(lh, index, size, path, roots[size])
    for new in range(0, 201, 7):
        for old in sorted({0, new, *rng.sample(range(new + 1), min(new + 1, 8))}):
            merkle.verify_consistency(old, new, roots[old], roots[new], log.consistency_proof(old, new))
    with pytest.raises(ValueError):
        log.inclusion_proof(200, 200)
    with pytest.raises(ValueError):
        log.inclusion_proof(0, 201)
    with pytest.raises(ValueError):
        log.consistency_proof(5, 201)
    with pytest.raises(ValueError):
        log.consistency_proof(6, 5)


def test_subtree_hash_for_any_range(env: Environment) -> None:
    log = AuditLog(env)
    leaves = _entries(40, seed=5)
    _fill(log, leaves)
    hashes = [merkle.leaf_hash(x) for x in leaves]
    with env.read() as txn:
        for start in range(40):
            for end in range(start + 1, 41):
                assert log.subtree_hash(txn, start, end) == merkle.root_from_leaf_hashes(hashes[start:end])
        with pytest.raises(ValueError):
            log.subtree_hash(txn, 3, 3)
        with pytest.raises(ValueError):
            log.subtree_hash(txn, 0, 41)


def test_proofs_reproduce_the_published_vectors(env: Environment) -> None:
    log = AuditLog(env)
    _fill(log, [case["leaf_data"].encode() for case in TREE])
    for case in json.loads((VECTORS / "inclusion-valid.json").read_text()):
        lh, path = log.inclusion_proof(case["leaf_index"], case["tree_size"])
        assert lh == base64.b64decode(case["leaf_hash"])
        assert path == [base64.b64decode(h) for h in case["inclusion_path"]]
        assert log.root(case["tree_size"]) == base64.b64decode(case["root_hash"])
    for case in json.loads((VECTORS / "consistency-valid.json").read_text()):
        proof = log.consistency_proof(case["old_size"], case["new_size"])
        assert proof == [base64.b64decode(h) for h in case["consistency_path"]]
        assert log.root(case["old_size"]) == base64.b64decode(case["old_root"])
        assert log.root(case["new_size"]) == base64.b64decode(case["new_root"])


def test_aborted_transaction_leaves_the_log_unchanged(env: Environment) -> None:
    log = AuditLog(env)
    _fill(log, _entries(10))
    root = log.root()

    def fail(txn: lmdb.Transaction) -> None:
        log.append_many(txn, _entries(50, seed=9))
        log.append(txn, b"one more")
        log.put_tree_head(txn, 61, b"sth")
        raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        env.write(fail)
    assert log.size() == 10
    assert log.root() == root
    assert log.latest_tree_head() is None
    assert log.verify().ok


def test_entries_and_tree_heads(env: Environment) -> None:
    log = AuditLog(env)
    leaves = _entries(30)
    _fill(log, leaves)
    assert log.entries(5, 12) == leaves[5:12]
    assert log.entries(30, 30) == []
    with pytest.raises(ValueError):
        log.entries(25, 31)
    assert log.latest_tree_head() is None
    log.put_tree_head(None, 10, b"head-10")
    env.write(lambda txn: log.put_tree_head(txn, 30, b"head-30"))
    log.put_tree_head(None, 0, b"head-0")
    assert log.latest_tree_head() == (30, b"head-30")
    assert list(log.tree_heads()) == [(0, b"head-0"), (10, b"head-10"), (30, b"head-30")]
    with pytest.raises(ValueError, match="log has 30 entries"):
        log.put_tree_head(None, 31, b"too far")


def test_verify_reports_ok_and_checks_every_head(env: Environment) -> None:
    log = AuditLog(env)
    leaves = _entries(300, seed=11)
    _fill(log, leaves)
    heads = {0: b"h0", 1: b"h1", 128: b"h128", 200: b"h200", 300: b"h300"}
    for size, sth in heads.items():
        log.put_tree_head(None, size, sth)
    seen: list[tuple[int, bytes, bytes]] = []

    def check(size: int, sth: bytes, root: bytes) -> str | None:
        seen.append((size, sth, root))
        return None

    report = log.verify(check)
    assert report.ok, report.problem
    assert report.size == 300 and report.heads_checked == 5
    hashes = [merkle.leaf_hash(x) for x in leaves]
    assert seen == [(n, heads[n], merkle.root_from_leaf_hashes(hashes[:n])) for n in heads]
    assert "ok" in str(report)
    assert AuditLog(env).verify().ok
    empty_env = Environment(env.path.parent / "empty", AUDIT_DB_NAMES, map_size=16 << 20)
    try:
        assert AuditLog(empty_env).verify().ok
    finally:
        empty_env.close()


@pytest.mark.parametrize("index", [0, 1, 17, 128, 299])
def test_verify_names_a_flipped_byte_in_leaf_data(env: Environment, index: int) -> None:
    log = AuditLog(env)
    _fill(log, _entries(300, seed=12))
    _corrupt(env, "audit_leaves", _leaf_key(index))
    report = log.verify()
    assert not report.ok
    assert report.first_bad_index == index
    assert report.problem == f"entry {index}: stored leaf data does not hash to the recorded leaf hash"


def test_verify_names_the_first_of_several_damaged_entries(env: Environment) -> None:
    log = AuditLog(env)
    _fill(log, _entries(100, seed=13))
    _corrupt(env, "audit_leaves", _leaf_key(70))
    _corrupt(env, "audit_leaves", _leaf_key(33))
    assert log.verify().first_bad_index == 33


def test_verify_finds_corrupted_internal_node(env: Environment) -> None:
    log = AuditLog(env)
    _fill(log, _entries(120, seed=14))
    _corrupt(env, "audit_nodes", _node_key(3, 5))
    report = log.verify()
    assert report.problem == "entry 40..47: subtree hash mismatch at level 3"
    assert report.first_bad_index == 40


def test_verify_finds_corrupted_leaf_hash_and_missing_data(env: Environment) -> None:
    log = AuditLog(env)
    _fill(log, _entries(50, seed=15))
    _corrupt(env, "audit_nodes", _node_key(0, 21))
    assert log.verify().problem == "entry 21: stored leaf data does not hash to the recorded leaf hash"
    env.write(lambda txn: txn.delete(_leaf_key(9), db=env.dbs["audit_leaves"]))
    assert log.verify().problem == "entry 9: leaf data is missing"
    env.write(lambda txn: txn.delete(_leaf_key(49), db=env.dbs["audit_leaves"]))  # a truncated tail
    assert log.size() == 49
    env.write(lambda txn: txn.put(_leaf_key(9), b"x", db=env.dbs["audit_leaves"]))
    env.write(lambda txn: txn.put(_node_key(0, 9), merkle.leaf_hash(b"x"), db=env.dbs["audit_nodes"]))
    report = log.verify()
    assert report.problem is not None and report.first_bad_index == 8  # the level-1 node over 8..9 no longer fits


def test_verify_surfaces_head_problems(env: Environment) -> None:
    log = AuditLog(env)
    leaves = _entries(130, seed=16)
    _fill(log, leaves)
    good_root = log.root(120)
    log.put_tree_head(None, 64, b"fine")
    log.put_tree_head(None, 120, b"claims another root")

    def check(size: int, sth: bytes, root: bytes) -> str | None:
        if sth == b"claims another root":
            assert root == good_root
            return "root does not match the entries"
        return None

    report = log.verify(check)
    assert report.problem == "tree head for size 120: root does not match the entries"
    assert report.heads_checked == 2
    assert "damaged" in str(report)


def test_verify_finds_heads_beyond_the_log_and_stray_nodes(env: Environment) -> None:
    log = AuditLog(env)
    _fill(log, _entries(20))
    env.write(lambda txn: txn.put(struct.pack(">Q", 25), b"sth", db=env.dbs["audit_heads"]))
    assert log.verify().problem == "tree head for size 25: beyond the log's 20 entries"
    env.write(lambda txn: txn.delete(struct.pack(">Q", 25), db=env.dbs["audit_heads"]))
    env.write(lambda txn: txn.put(_node_key(2, 5), b"\x00" * 32, db=env.dbs["audit_nodes"]))
    assert log.verify().problem == "stray node at level 2 index 5 beyond the log's 20 entries"


def test_data_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db"
    leaves = _entries(500, seed=17)
    first = Environment(path, AUDIT_DB_NAMES, map_size=64 << 20)
    log = AuditLog(first)
    _fill(log, leaves[:300])
    log.put_tree_head(None, 300, b"sth-300")
    root = log.root()
    first.close()

    second = Environment(path, AUDIT_DB_NAMES, map_size=64 << 20)
    try:
        log = AuditLog(second)
        assert log.size() == 300
        assert log.root() == root
        assert log.latest_tree_head() == (300, b"sth-300")
        _fill(log, leaves[300:])
        assert log.root() == merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in leaves])
        merkle.verify_consistency(300, 500, root, log.root(), log.consistency_proof(300, 500))
        assert log.entries(0, 500) == leaves
        assert log.verify().ok
    finally:
        second.close()


def test_requires_the_audit_databases(tmp_path: Path) -> None:
    other = Environment(tmp_path / "other", ("records",), map_size=16 << 20)
    try:
        with pytest.raises(Rejected, match="lacks the audit databases"):
            AuditLog(other)
    finally:
        other.close()
