"""The provision log (real LMDB in tmp_path): a Merkle log storing subtree hashes from level 4 up, and its
resident index written behind it in sorted segments that are merged in bounded steps."""

from __future__ import annotations

import base64
import contextlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from jukinet import merkle
from jukinet.domain.errors import Problem, Rejected
from jukinet.server import provision_index
from jukinet.server.runtime.readers import ReaderPool
from jukinet.storage import NodeStorage, provisions
from jukinet.storage.layout import Db
from jukinet.storage.merkle_log import PROVISION_DB_NAMES, MerkleLog
from jukinet.v1 import admin_pb2

VECTORS = Path(__file__).parent / "testvectors" / "rfc6962"
TREE = json.loads((VECTORS / "merkle_tree.json").read_text())
CODES = [f"{i:010d}" + str(i % 10) for i in range(1, 41)]  # 11 characters each, as 住民票コード are


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[NodeStorage]:
    s = NodeStorage.open(tmp_path / "db", map_size=256 << 20)
    yield s
    s.close()


def _entries(rng: random.Random, n: int) -> list[admin_pb2.ProvisionEntry]:
    return [
        admin_pb2.ProvisionEntry(
            agency="agency:7123456789012",
            business_code="pension-benefit",
            resident_code=rng.choice(CODES),
            query_kind=admin_pb2.QUERY_KIND_BATCH,
            items=["name", "address"],
        )
        for _ in range(n)
    ]


def _append(storage: NodeStorage, entries: list[admin_pb2.ProvisionEntry]) -> range:
    """Append, then integrate into the tree (as the node's follower does soon after)."""
    ids = storage.env.submit(lambda txn: storage.provisions.append_many(txn, entries)).result()
    while storage.provisions.log.integrate(1000):
        pass
    return ids


def _expected(storage: NodeStorage) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for entry in storage.provisions.page(0, storage.provisions.count()):
        out.setdefault(entry.resident_code, []).append(entry.provision_id)
    return out


def _all_of(storage: NodeStorage, code: str, page: int = 7) -> list[int]:
    """Every provision id of ``code``, read page by page."""
    ids: list[int] = []
    after = 0
    while True:
        entries, more = storage.provisions.of_resident(code, after, page)
        ids += [e.provision_id for e in entries]
        assert len(entries) <= page
        if not more:
            return ids
        after = entries[-1].provision_id


def test_the_rfc6962_vectors_hold_with_lower_levels_recomputed(storage: NodeStorage) -> None:
    log = MerkleLog(storage.env, "provision", PROVISION_DB_NAMES, stored_from=4)
    for k, case in enumerate(TREE, 1):
        storage.env.write(lambda txn, case=case: log.append(txn, case["leaf_data"].encode()))
        assert log.root() == base64.b64decode(case["root_hash"]), k


def test_ids_roots_and_proofs_match_the_merkle_math(storage: NodeStorage) -> None:
    rng = random.Random(6962)
    first = _append(storage, _entries(rng, 5))
    second = _append(storage, _entries(rng, 300))
    assert list(first) == [1, 2, 3, 4, 5] and second.start == 6 and second.stop == 306
    log = storage.provisions.log
    leaves = [e.SerializeToString() for e in storage.provisions.page(0, 1000)]
    assert [admin_pb2.ProvisionEntry.FromString(x).provision_id for x in leaves] == list(range(1, 306))
    hashes = [merkle.leaf_hash(x) for x in leaves]
    for size in (1, 2, 15, 16, 17, 31, 33, 64, 100, 255, 305):
        root = log.root(size)
        assert root == merkle.root_from_leaf_hashes(hashes[:size])
        for index in {0, size // 2, size - 1}:
            leaf_hash, path = log.inclusion_proof(index, size)
            assert leaf_hash == hashes[index]
            merkle.verify_inclusion(leaf_hash, index, size, path, root)
        for old in {1, size // 3 or 1, size}:
            merkle.verify_consistency(old, size, log.root(old), root, log.consistency_proof(old, size))
    assert log.verify().ok and str(log.verify()).startswith("provision log ok")


def test_only_levels_from_four_up_are_stored(storage: NodeStorage) -> None:
    _append(storage, _entries(random.Random(1), 64))
    with storage.env.read() as txn:
        levels = {bytes(k)[0] for k, _ in txn.cursor(db=storage.env.dbs["provision_nodes"])}
    assert levels == {4, 5, 6}


def test_a_changed_leaf_is_found_by_verify(storage: NodeStorage) -> None:
    _append(storage, _entries(random.Random(2), 40))
    db = storage.env.dbs["provision_leaves"]

    def flip(txn) -> None:
        key = (7).to_bytes(8, "big")
        value = bytearray(txn.get(key, db=db))
        value[-1] ^= 1
        txn.put(key, bytes(value), db=db)

    storage.env.write(flip)
    report = storage.provisions.log.verify()
    assert not report.ok and report.first_bad_index is not None and report.first_bad_index <= 7


def test_a_resident_lookup_sees_unindexed_indexed_and_merged_provisions(
    storage: NodeStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provisions, "INDEX_STEP", 50)
    monkeypatch.setattr(provisions, "MERGE_FANOUT", 3)
    rng = random.Random(9)
    for _ in range(12):
        _append(storage, _entries(rng, rng.randrange(1, 120)))
        expected = _expected(storage)
        for code in CODES[:6]:
            assert _all_of(storage, code) == expected.get(code, [])  # the tail is scanned before indexing
        steps = 0
        while True:  # the follower, step by step; lookups stay exact between any two steps
            step = storage.provisions.index_step()
            steps += 1
            for code in CODES[:3]:
                assert _all_of(storage, code) == expected.get(code, [])
            if step.indexed == 0 and step.merged == 0:
                break
            assert step.indexed + step.merged <= 50
        assert steps > 1
    assert storage.provisions.index_behind() == 0
    with storage.env.read() as txn:
        metas = list(storage.provisions._segments(txn))
    assert any(meta[0] >= 1 for _, meta in metas), "segments were merged into higher levels"
    assert len(metas) < 12 * 3  # merged, not one segment per step
    expected = _expected(storage)
    for code in CODES:
        assert _all_of(storage, code, page=1000) == expected.get(code, [])


def test_the_index_survives_reopening_mid_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provisions, "INDEX_STEP", 40)
    monkeypatch.setattr(provisions, "MERGE_FANOUT", 2)
    storage = NodeStorage.open(tmp_path / "db", map_size=256 << 20)
    rng = random.Random(3)
    _append(storage, _entries(rng, 200))
    for _ in range(6):
        storage.provisions.index_step()
    expected = _expected(storage)
    storage.close()
    storage = NodeStorage.open(tmp_path / "db", map_size=256 << 20)
    try:
        while storage.provisions.index_step() != provisions.IndexStep(0, 0, 0):
            pass
        for code in CODES:
            assert _all_of(storage, code) == expected.get(code, [])
        with storage.env.read() as txn:
            keys = txn.stat(storage.env.dbs["provision_index"])["entries"]
        assert keys == 200, "retired segments were deleted; every leaf is indexed once"
    finally:
        storage.close()


def test_a_malformed_code_is_refused(storage: NodeStorage) -> None:
    with pytest.raises(Exception, match="11 digits"):
        storage.provisions.of_resident("123", 0, 10)


def test_the_bulk_path_stores_exactly_what_protobuf_would(storage: NodeStorage) -> None:
    template = admin_pb2.ProvisionEntry(
        agency="agency:7123456789012",
        business_code="pension-benefit",
        query_kind=admin_pb2.QUERY_KIND_BATCH,
        items=["name", "address", "birth_date"],
        reference="batch:agency:7123456789012/3",
    )
    template.provided_at.FromMilliseconds(1_764_000_000_123)
    _append(storage, _entries(random.Random(4), 126))  # ids cross the one-byte varint boundary below
    ids = storage.env.submit(lambda txn: storage.provisions.append_provided(txn, template, CODES[:5])).result()
    assert list(ids) == [127, 128, 129, 130, 131]
    for provision_id, code in zip(ids, CODES[:5], strict=True):
        expected = admin_pb2.ProvisionEntry()
        expected.CopyFrom(template)
        expected.provision_id, expected.resident_code = provision_id, code
        stored = storage.provisions.log.leaf(provision_id - 1)
        assert stored == expected.SerializeToString()
    with pytest.raises(ValueError):
        storage.provisions.append_provided(None, admin_pb2.ProvisionEntry(resident_code=CODES[0]), CODES[:1])


@pytest.mark.parametrize("first", [1, 127, 128, 16_383, 16_384, 2_097_100, 3_000_000, 2**35 - 5])
def test_the_id_fields_of_a_run_are_protobufs_encoding(first: int) -> None:
    for count in (0, 1, 127, 128, 129, 1000):
        encoded = [admin_pb2.ProvisionEntry(provision_id=i).SerializeToString() for i in range(first, first + count)]
        assert provisions._id_fields(first, count) == encoded


class _Counting:
    """A read transaction whose cursors over the resident index count the keys they yield."""

    def __init__(self, txn, index, counts: list[int]) -> None:
        self._txn, self._index, self._counts = txn, index, counts

    def cursor(self, db=None):
        cursor = self._txn.cursor(db=db)
        return _CountingCursor(cursor, self._counts) if db is self._index else cursor

    def __getattr__(self, name: str):
        return getattr(self._txn, name)


class _CountingCursor:
    def __init__(self, cursor, counts: list[int]) -> None:
        self._cursor, self._counts = cursor, counts

    def iternext(self, *args, **kwargs):
        for item in self._cursor.iternext(*args, **kwargs):
            self._counts.append(1)
            yield item

    def __getattr__(self, name: str):
        return getattr(self._cursor, name)


def test_a_page_of_a_resident_with_many_provisions_reads_a_bounded_number_of_index_keys(
    storage: NodeStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    many, other = CODES[0], CODES[1]
    template = admin_pb2.ProvisionEntry(agency="agency:7123456789012", business_code="pension-benefit")
    for chunk in range(4):  # 20,000 of one resident, 100 of another in between
        codes = [many] * 5_000 + ([other] * 25 if chunk % 2 else [])
        storage.env.submit(lambda txn, codes=codes: storage.provisions.append_provided(txn, template, codes)).result()
    while storage.provisions.index_step() != provisions.IndexStep(0, 0, 0):
        pass
    expected = _expected(storage)
    assert len(expected[many]) == 20_000
    with storage.env.read() as txn:
        segments = len(list(storage.provisions._segments(txn)))
    assert segments >= 2  # more than one segment is read
    real = storage.env
    counts: list[int] = []

    class Env:
        @contextlib.contextmanager
        def read(self):
            with real.read() as txn:
                yield _Counting(txn, storage.provisions._index, counts)

    monkeypatch.setattr(storage.provisions, "_env", Env())
    for code, after, limit in ((many, 15_000, 10), (many, 0, 10), (many, 19_990, 50), (other, 5_000, 3)):
        counts.clear()
        entries, more = storage.provisions.of_resident(code, after, limit)
        ids = [i for i in expected[code] if i > after]
        assert [e.provision_id for e in entries] == ids[:limit] and more == (len(ids) > limit)
        assert all(e.resident_code == code for e in entries)
        assert len(counts) <= segments * (limit + 2), f"{len(counts)} index keys read for a page of {limit}"


def test_an_index_key_naming_another_residents_leaf_discloses_nothing(storage: NodeStorage) -> None:
    _append(storage, _entries(random.Random(3), 30))
    while storage.provisions.index_step() != provisions.IndexStep(0, 0, 0):
        pass
    expected = _expected(storage)
    victim = next(c for c in CODES if c in expected)
    asker = next(c for c in CODES if c not in expected)
    leaf = expected[victim][0] - 1
    with storage.env.read() as txn:
        segment = next(iter(storage.provisions._segments(txn)))[0]
    key = provisions._SEGMENT.pack(segment) + asker.encode() + provisions._U64.pack(leaf)
    storage.env.write(lambda txn: txn.put(key, b"", db=storage.provisions._index))
    assert storage.provisions.of_resident(asker, 0, 10) == ([], False)
    assert [e.provision_id for e in storage.provisions.of_resident(victim, 0, 100)[0]] == expected[victim]


def test_leaves_come_first_and_the_tree_follows_them(storage: NodeStorage) -> None:
    """Provisions are appended as leaves only; the tree (its roots, proofs, heads) covers what was integrated,
    in steps that may hash in another process; a second integrator's write changes nothing."""
    log = storage.provisions.log
    entries = _entries(random.Random(8), 5000)
    storage.env.submit(lambda txn: storage.provisions.append_many(txn, entries)).result()
    assert (log.size(), log.tree_size(), log.integration_backlog()) == (5000, 0, 5000)
    with pytest.raises(ValueError):
        log.root(1)  # nothing is in the tree yet: no root, no proof, no head
    with pytest.raises(ValueError):
        log.put_tree_head(None, 1, b"head")
    readers = ReaderPool(storage, processes=1)
    try:
        assert log.integrate(1234, lambda s, e: readers.call(provision_index.provision_subtree_hashes, s, e)) == 1234
    finally:
        readers.close()

    def overtaken(start: int, end: int) -> list:
        nodes = log.subtree_hashes(start, end)
        assert log.integrate(100) == 100  # another integrator, meanwhile
        return nodes

    with pytest.raises(Rejected) as conflict:
        log.integrate(500, overtaken)
    assert conflict.value.problem is Problem.CONFLICT and log.tree_size() == 1334
    assert log.integrate(10_000) == 5000 - 1334
    hashes = [merkle.leaf_hash(raw) for raw in log.entries(0, 5000)]
    assert log.tree_size() == 5000 and log.root() == merkle.root_from_leaf_hashes(hashes)
    assert log.root(1234) == merkle.root_from_leaf_hashes(hashes[:1234])
    assert log.verify().ok


def test_a_segment_worked_out_elsewhere_is_appended_only_where_it_was_worked_out(storage: NodeStorage) -> None:
    """The follower may compute a segment's keys in a reader process; the writer appends them only if the
    index is still where they were computed from (else CONFLICT, nothing written)."""
    _append(storage, _entries(random.Random(9), 300))
    readers = ReaderPool(storage, processes=1)
    try:
        step = storage.provisions.index_step(lambda s, e: readers.call(provision_index.provision_segment_keys, s, e))
    finally:
        readers.close()
    assert (step.indexed, step.behind) == (300, 0)
    _append(storage, _entries(random.Random(10), 50))

    def overtaken(start: int, end: int) -> list[bytes]:
        keys = storage.provisions.segment_keys(start, end)
        assert storage.provisions.index_step().indexed == 50  # another follower, meanwhile
        return keys

    with pytest.raises(Rejected) as conflict:
        storage.provisions.index_step(overtaken)
    assert conflict.value.problem is Problem.CONFLICT and storage.provisions.index_behind() == 0
    expected = _expected(storage)
    assert {code: _all_of(storage, code) for code in expected} == expected


def test_a_log_written_before_integration_existed_is_a_whole_tree_when_reopened(tmp_path: Path) -> None:
    """A store whose provision log hashed every leaf in its own transaction (and tracks no tree size) is
    taken as a tree of all its leaves when the node opens it; a new store starts with an empty tree."""
    storage = NodeStorage.open(tmp_path / "db")
    assert storage.provisions.log.tree_size() == 0
    old_style = MerkleLog(storage.env, "provision", PROVISION_DB_NAMES, stored_from=4)  # hashes as it appends
    leaves = [e.SerializeToString() for e in _entries(random.Random(12), 77)]
    storage.env.write(lambda txn: old_style.append_many(txn, leaves))
    storage.env.write(lambda txn: txn.delete(b"tree", db=storage.env.dbs[Db.PROVISION_INDEX_STATE]))
    storage.close()
    reopened = NodeStorage.open(tmp_path / "db")
    try:
        log = reopened.provisions.log
        assert log.tree_size() == log.size() == 77
        assert log.root() == merkle.root_from_leaf_hashes([merkle.leaf_hash(raw) for raw in leaves])
        assert log.integrate(1000) == 0
    finally:
        reopened.close()
