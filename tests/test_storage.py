"""Tests for jukinet.storage: NodeStore over a real LMDB environment in tmp_path."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from jukinet.domain.codes import generate_my_number
from jukinet.domain.records import status_for
from jukinet.domain.synthetic import synthetic_resident
from jukinet.domain.transitions import ChangeRejected, check_local_transition
from jukinet.storage.node_store import NodeStore
from jukinet.v1 import admin_pb2, identity_pb2, notice_pb2

R = identity_pb2
CS_A = "cs:131148"
MUNI_A = "131148"
CS_B = "cs:131016"
MUNI_B = "131016"


def _ts(seconds: int = 1_700_000_000) -> Timestamp:
    return Timestamp(seconds=seconds)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[NodeStore]:
    s = NodeStore(tmp_path / "db")
    yield s
    s.close()


@pytest.fixture
def rng() -> random.Random:
    return random.Random(20240601)


def _copy(record: identity_pb2.IdentityRecord, **changes: object) -> identity_pb2.IdentityRecord:
    out = identity_pb2.IdentityRecord()
    out.CopyFrom(record)
    for name, value in changes.items():
        if name == "municipality_code":
            out.address.municipality_code = value  # type: ignore[assignment]
        else:
            setattr(out, name, value)
    return out


def _notice(origin: str, seq: int, record: identity_pb2.IdentityRecord) -> notice_pb2.ChangeNotice:
    rec = _copy(record)
    rec.status = status_for(rec.change_reason)
    n = notice_pb2.ChangeNotice(origin=origin, sequence=seq)
    n.record.CopyFrom(rec)
    n.recorded_at.CopyFrom(_ts(seq))
    return n


def _ingest(store: NodeStore, notices: list[notice_pb2.ChangeNotice], forward: bool = False):
    return store.ingest_notices(notices, len(notices), forward)


# -- local changes ----------------------------------------------------------------------------------


def test_local_changes_store_record_history_index_and_outbox(store: NodeStore, rng: random.Random) -> None:
    records = [synthetic_resident(rng, MUNI_A) for _ in range(3)]
    applied = store.record_local_changes(CS_A, records, _ts(), check_local_transition)
    assert (applied.first_sequence, applied.last_sequence, applied.count) == (1, 3, 3)
    counts = store.counts()
    assert counts["records"] == counts["by_my_number"] == counts["history"] == counts["outbox"] == 3

    for rec in records:
        stored = store.get_record(rec.resident_code)
        assert stored is not None
        assert stored.status == R.RECORD_STATUS_ACTIVE
        assert stored.my_number == rec.my_number
        assert store.find_by_my_number(rec.my_number) == stored
        (hist,) = store.history(rec.resident_code)
        assert hist.origin == CS_A
        assert hist.record == stored
        assert hist.recorded_at == _ts()

    out = store.outbox_after(0, 100)
    assert [seq for seq, _ in out] == [1, 2, 3]
    notices = [notice_pb2.ChangeNotice.FromString(raw) for _, raw in out]
    assert [n.sequence for n in notices] == [1, 2, 3]
    assert [n.record.resident_code for n in notices] == [r.resident_code for r in records]

    # A second group continues the outbox sequence.
    again = store.record_local_changes(CS_A, [synthetic_resident(rng, MUNI_A)], _ts(), check_local_transition)
    assert (again.first_sequence, again.last_sequence, again.count) == (4, 4, 1)


def test_rejected_change_leaves_nothing_of_the_group(store: NodeStore, rng: random.Random) -> None:
    existing = synthetic_resident(rng, MUNI_A)
    store.record_local_changes(CS_A, [existing], _ts(), check_local_transition)
    before = store.counts()

    fresh = [synthetic_resident(rng, MUNI_A) for _ in range(2)]
    # The 3rd record re-enters an already active resident: the check rejects it.
    duplicate_entry = _copy(existing, change_reason=R.CHANGE_REASON_MOVE_IN)
    with pytest.raises(ChangeRejected) as info:
        store.record_local_changes(CS_A, [*fresh, duplicate_entry], _ts(), check_local_transition)
    assert info.value.code == "already_exists"

    assert store.counts() == before
    for rec in fresh:
        assert store.get_record(rec.resident_code) is None
        assert store.find_by_my_number(rec.my_number) is None
        assert store.history(rec.resident_code) == []
    assert [seq for seq, _ in store.outbox_after(0, 100)] == [1]
    # The rejected group consumed no sequence numbers.
    nxt = store.record_local_changes(CS_A, fresh, _ts(), check_local_transition)
    assert nxt.first_sequence == 2


def test_check_rejects_change_without_record(store: NodeStore, rng: random.Random) -> None:
    rec = synthetic_resident(rng, MUNI_A, R.CHANGE_REASON_RELOCATION)
    with pytest.raises(ChangeRejected) as info:
        store.record_local_changes(CS_A, [rec], _ts(), check_local_transition)
    assert info.value.code == "not_found"
    assert store.counts()["records"] == 0


def test_death_sets_removed_status_and_keeps_history(store: NodeStore, rng: random.Random) -> None:
    rec = synthetic_resident(rng, MUNI_A)
    store.record_local_changes(CS_A, [rec], _ts(), check_local_transition)
    death = _copy(rec, change_reason=R.CHANGE_REASON_DEATH)
    death.status = R.RECORD_STATUS_ACTIVE  # ignored on input: the store sets it from the reason
    store.record_local_changes(CS_A, [death], _ts(), check_local_transition)

    stored = store.get_record(rec.resident_code)
    assert stored is not None
    assert stored.status == R.RECORD_STATUS_REMOVED
    assert stored.change_reason == R.CHANGE_REASON_DEATH
    hist = store.history(rec.resident_code)
    assert [h.record.change_reason for h in hist] == [R.CHANGE_REASON_MOVE_IN, R.CHANGE_REASON_DEATH]
    assert [h.record.status for h in hist] == [R.RECORD_STATUS_ACTIVE, R.RECORD_STATUS_REMOVED]
    assert [h.sequence for h in hist] == [1, 2]

    # A removed record may not be amended, but may be re-entered by a creating change.
    with pytest.raises(ChangeRejected) as info:
        store.record_local_changes(
            CS_A, [_copy(rec, change_reason=R.CHANGE_REASON_RELOCATION)], _ts(), check_local_transition
        )
    assert info.value.code == "failed_precondition"
    store.record_local_changes(CS_A, [_copy(rec)], _ts(), check_local_transition)
    assert store.get_record(rec.resident_code).status == R.RECORD_STATUS_ACTIVE  # type: ignore[union-attr]


def test_my_number_reassignment_updates_index(store: NodeStore, rng: random.Random) -> None:
    rec = synthetic_resident(rng, MUNI_A)
    store.record_local_changes(CS_A, [rec], _ts(), check_local_transition)
    new_number = generate_my_number(rng)
    assert new_number != rec.my_number
    changed = _copy(rec, my_number=new_number, change_reason=R.CHANGE_REASON_EX_OFFICIO_CORRECTION)
    store.record_local_changes(CS_A, [changed], _ts(), check_local_transition)

    assert store.find_by_my_number(rec.my_number) is None
    found = store.find_by_my_number(new_number)
    assert found is not None and found.resident_code == rec.resident_code
    assert store.counts()["by_my_number"] == 1
    assert store.counts()["records"] == 1


def test_my_number_of_another_resident_is_rejected(store: NodeStore, rng: random.Random) -> None:
    first = synthetic_resident(rng, MUNI_A)
    store.record_local_changes(CS_A, [first], _ts(), check_local_transition)
    before = store.counts()
    second = synthetic_resident(rng, MUNI_A)
    second.my_number = first.my_number
    with pytest.raises(ChangeRejected) as info:
        store.record_local_changes(CS_A, [second], _ts(), check_local_transition)
    assert info.value.code == "already_exists"
    assert first.resident_code in str(info.value)
    assert store.counts() == before
    assert store.get_record(second.resident_code) is None
    assert store.find_by_my_number(first.my_number).resident_code == first.resident_code  # type: ignore[union-attr]


def test_my_number_clash_within_one_group_is_rejected(store: NodeStore, rng: random.Random) -> None:
    a = synthetic_resident(rng, MUNI_A)
    b = synthetic_resident(rng, MUNI_A)
    b.my_number = a.my_number
    with pytest.raises(ChangeRejected) as info:
        store.record_local_changes(CS_A, [a, b], _ts(), check_local_transition)
    assert info.value.code == "already_exists"
    assert store.counts()["records"] == 0
    assert store.counts()["outbox"] == 0


# -- ingest -----------------------------------------------------------------------------------------


def test_ingest_dedups_by_origin_and_sequence(store: NodeStore, rng: random.Random) -> None:
    notices = [_notice(CS_A, seq, synthetic_resident(rng, MUNI_A)) for seq in range(1, 6)]
    first = _ingest(store, notices)
    assert (first.applied, first.duplicates) == (5, 0)
    counts = store.counts()
    assert counts["records"] == 5 and counts["history"] == 5
    assert counts["outbox"] == 0  # forward=False
    snapshot = {n.record.resident_code: store.get_record(n.record.resident_code) for n in notices}

    again = _ingest(store, notices)
    assert (again.applied, again.duplicates) == (0, 5)
    assert store.counts() == counts
    for code, rec in snapshot.items():
        assert store.get_record(code) == rec
        assert len(store.history(code)) == 1
    assert store.origin_marks() == {CS_A: 5}

    # Partly overlapping re-delivery: 4,5 are duplicates, 6,7 are new.
    more = notices[3:] + [_notice(CS_A, seq, synthetic_resident(rng, MUNI_A)) for seq in (6, 7)]
    mixed = _ingest(store, more)
    assert (mixed.applied, mixed.duplicates) == (2, 2)
    assert store.origin_marks() == {CS_A: 7}
    assert store.counts()["records"] == 7


def test_ingest_duplicate_within_one_batch(store: NodeStore, rng: random.Random) -> None:
    n1 = _notice(CS_A, 1, synthetic_resident(rng, MUNI_A))
    result = _ingest(store, [n1, n1])
    assert (result.applied, result.duplicates) == (1, 1)
    assert len(store.history(n1.record.resident_code)) == 1


def test_ingest_forward_enqueues_only_fresh_notices(store: NodeStore, rng: random.Random) -> None:
    notices = [_notice(CS_A, seq, synthetic_resident(rng, MUNI_A)) for seq in range(1, 4)]
    _ingest(store, notices[:2], forward=True)
    assert [seq for seq, _ in store.outbox_after(0, 100)] == [1, 2]

    result = _ingest(store, notices, forward=True)  # 1, 2 duplicates; 3 fresh
    assert (result.applied, result.duplicates) == (1, 2)
    out = store.outbox_after(0, 100)
    assert [seq for seq, _ in out] == [1, 2, 3]
    forwarded = [notice_pb2.ChangeNotice.FromString(raw) for _, raw in out]
    assert forwarded == notices  # forwarded unchanged, with the origin's own sequence
    assert _ingest(store, notices, forward=True).applied == 0
    assert store.counts()["outbox"] == 3


def test_ingest_tracks_origins_separately(store: NodeStore, rng: random.Random) -> None:
    a = [_notice(CS_A, seq, synthetic_resident(rng, MUNI_A)) for seq in (1, 2, 3)]
    b = [_notice(CS_B, seq, synthetic_resident(rng, MUNI_B)) for seq in (1, 2)]
    result = _ingest(store, [a[0], b[0], a[1], b[1], a[2]])
    assert (result.applied, result.duplicates) == (5, 0)
    assert store.origin_marks() == {CS_A: 3, CS_B: 2}

    # Sequence 3 from B is new even though A's mark is already 3.
    b3 = _notice(CS_B, 3, synthetic_resident(rng, MUNI_B))
    result = _ingest(store, [a[2], b3])
    assert (result.applied, result.duplicates) == (1, 1)
    assert store.origin_marks() == {CS_A: 3, CS_B: 3}
    assert store.get_record(b3.record.resident_code) is not None


def test_stale_removal_keeps_active_record_but_adds_history(store: NodeStore, rng: random.Random) -> None:
    at_a = synthetic_resident(rng, MUNI_A)
    moved_in_b = _copy(at_a, municipality_code=MUNI_B, change_reason=R.CHANGE_REASON_MOVE_IN)
    moved_out_a = _copy(at_a, change_reason=R.CHANGE_REASON_MOVE_OUT)

    _ingest(store, [_notice(CS_A, 1, at_a)])
    _ingest(store, [_notice(CS_B, 1, moved_in_b)])
    result = _ingest(store, [_notice(CS_A, 2, moved_out_a)])  # late 転出 from A
    assert (result.applied, result.duplicates) == (1, 0)

    current = store.get_record(at_a.resident_code)
    assert current is not None
    assert current.status == R.RECORD_STATUS_ACTIVE
    assert current.address.municipality_code == MUNI_B
    assert current.change_reason == R.CHANGE_REASON_MOVE_IN
    assert store.find_by_my_number(at_a.my_number) == current

    hist = store.history(at_a.resident_code)
    assert [(h.origin, h.sequence) for h in hist] == [(CS_A, 1), (CS_B, 1), (CS_A, 2)]
    assert hist[-1].record.status == R.RECORD_STATUS_REMOVED
    assert store.origin_marks() == {CS_A: 2, CS_B: 1}


def test_removal_from_same_municipality_is_applied(store: NodeStore, rng: random.Random) -> None:
    rec = synthetic_resident(rng, MUNI_A)
    _ingest(store, [_notice(CS_A, 1, rec), _notice(CS_A, 2, _copy(rec, change_reason=R.CHANGE_REASON_MOVE_OUT))])
    stored = store.get_record(rec.resident_code)
    assert stored is not None and stored.status == R.RECORD_STATUS_REMOVED


# -- outbox -----------------------------------------------------------------------------------------


def _fill_outbox(store: NodeStore, rng: random.Random, n: int) -> list[tuple[int, bytes]]:
    store.record_local_changes(CS_A, [synthetic_resident(rng, MUNI_A) for _ in range(n)], _ts())
    entries = store.outbox_after(0, 1000)
    assert [s for s, _ in entries] == list(range(1, n + 1))
    return entries


def test_outbox_after_limit_and_after_seq(store: NodeStore, rng: random.Random) -> None:
    entries = _fill_outbox(store, rng, 10)
    assert store.outbox_after(0, 3) == entries[:3]
    assert store.outbox_after(3, 3) == entries[3:6]
    assert store.outbox_after(8, 100) == entries[8:]
    assert store.outbox_after(10, 100) == []
    assert store.outbox_after(1000, 100) == []
    assert store.outbox_after(0, 1) == entries[:1]


def test_outbox_after_max_bytes(store: NodeStore, rng: random.Random) -> None:
    entries = _fill_outbox(store, rng, 10)
    sizes = [len(raw) for _, raw in entries]
    # Exactly the first three fit.
    budget = sum(sizes[:3])
    assert store.outbox_after(0, 100, max_bytes=budget) == entries[:3]
    assert store.outbox_after(0, 100, max_bytes=budget - 1) == entries[:2]
    assert store.outbox_after(0, 100, max_bytes=budget + sizes[3] - 1) == entries[:3]
    # One entry even if it alone exceeds the budget.
    assert store.outbox_after(0, 100, max_bytes=1) == entries[:1]
    assert store.outbox_after(5, 100, max_bytes=0) == entries[5:6]
    # Limit still applies when the budget is large.
    assert store.outbox_after(2, 4, max_bytes=1 << 30) == entries[2:6]


def test_acknowledge_outbox_deletes_through_sequence(store: NodeStore, rng: random.Random) -> None:
    entries = _fill_outbox(store, rng, 6)
    assert store.acknowledge_outbox(0) == 0
    assert store.acknowledge_outbox(2) == 2
    assert store.outbox_after(0, 100) == entries[2:]
    assert store.acknowledge_outbox(2) == 0  # already gone
    assert store.acknowledge_outbox(4) == 2
    assert store.outbox_after(0, 100) == entries[4:]
    assert store.acknowledge_outbox(6) == 2  # all remaining
    assert store.outbox_after(0, 100) == []
    assert store.counts()["outbox"] == 0
    assert store.acknowledge_outbox(6) == 0  # empty outbox
    # Records and history are untouched by acknowledgement.
    assert store.counts()["records"] == store.counts()["history"] == 6


def test_acknowledge_outbox_beyond_last(store: NodeStore, rng: random.Random) -> None:
    _fill_outbox(store, rng, 5)
    assert store.acknowledge_outbox(1_000_000) == 5
    assert store.counts()["outbox"] == 0
    # Sequences keep counting after a full acknowledgement.
    applied = store.record_local_changes(CS_A, [synthetic_resident(rng, MUNI_A)], _ts())
    assert applied.first_sequence == 6
    assert [s for s, _ in store.outbox_after(0, 10)] == [6]
    assert [s for s, _ in store.outbox_after(5, 10)] == [6]


# -- map growth, group commit, durability -----------------------------------------------------------


def test_map_grows_when_full(tmp_path: Path, rng: random.Random) -> None:
    initial = 1 << 20
    store = NodeStore(tmp_path / "db", map_size=initial)
    try:
        assert store.env.map_size == initial
        records = [synthetic_resident(rng, MUNI_A) for _ in range(12_000)]
        for i in range(0, len(records), 1000):
            store.record_local_changes(CS_A, records[i : i + 1000], _ts())
        assert store.env.map_size >= 8 * initial  # grew (doubled) several times
        counts = store.counts()
        assert counts["records"] == counts["history"] == counts["outbox"] == len(records)
        for rec in records[::97] + records[-1:]:
            stored = store.get_record(rec.resident_code)
            assert stored is not None and stored.my_number == rec.my_number
            assert store.find_by_my_number(rec.my_number) == stored
        assert len(store.outbox_after(0, 100_000)) == len(records)
    finally:
        store.close()


def test_group_commit_concurrent_provisions(store: NodeStore) -> None:
    threads_n, per_thread = 8, 50
    ids: list[list[int]] = [[] for _ in range(threads_n)]
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                entry = admin_pb2.ProvisionEntry(
                    agency="agency:7123456789012",
                    business_code="pension-benefit",
                    resident_code=f"{t:02d}{i:09d}",
                    query_kind="resident_code",
                )
                ids[t].append(store.log_provision_durably(entry))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    all_ids = [i for per in ids for i in per]
    assert sorted(all_ids) == list(range(1, threads_n * per_thread + 1))
    for per in ids:
        assert per == sorted(per)  # each thread's calls returned increasing ids

    paged: list[admin_pb2.ProvisionEntry] = []
    after = 0
    while True:
        page = store.provisions(after, 64)
        if not page:
            break
        assert len(page) <= 64
        paged.extend(page)
        after = page[-1].provision_id
    assert [e.provision_id for e in paged] == list(range(1, 401))
    by_id = {e.provision_id: e.resident_code for e in paged}
    for t, per in enumerate(ids):
        assert [by_id[i] for i in per] == [f"{t:02d}{i:09d}" for i in range(per_thread)]
    assert store.provisions(400, 10) == []
    assert [e.provision_id for e in store.provisions(398, 10)] == [399, 400]


def test_group_commit_failing_job_does_not_undo_others(store: NodeStore) -> None:
    env = store.env
    db = env.dbs["meta"]

    def ok(key: bytes):
        def fn(txn):
            txn.put(key, b"v", db=db)
            return key

        return fn

    def bad(txn):
        txn.put(b"bad", b"v", db=db)
        raise RuntimeError("job failed")

    futures = [env.submit(ok(b"k1")), env.submit(bad), env.submit(ok(b"k2"))]
    assert futures[0].result(timeout=10) == b"k1"
    with pytest.raises(RuntimeError, match="job failed"):
        futures[1].result(timeout=10)
    assert futures[2].result(timeout=10) == b"k2"
    with env.read() as txn:
        assert txn.get(b"k1", db=db) == b"v"
        assert txn.get(b"k2", db=db) == b"v"
        assert txn.get(b"bad", db=db) is None


def test_data_survives_close_and_reopen(tmp_path: Path, rng: random.Random) -> None:
    path = tmp_path / "db"
    store = NodeStore(path)
    records = [synthetic_resident(rng, MUNI_A) for _ in range(4)]
    store.record_local_changes(CS_A, records, _ts(), check_local_transition)
    _ingest(store, [_notice(CS_B, 1, synthetic_resident(rng, MUNI_B))])
    pid = store.log_provision_durably(admin_pb2.ProvisionEntry(agency="agency:7123456789012"))
    counts = store.counts()
    outbox = store.outbox_after(0, 100)
    store.close()
    store.close()  # idempotent

    reopened = NodeStore(path)
    try:
        assert reopened.counts() == counts
        assert reopened.outbox_after(0, 100) == outbox
        assert reopened.origin_marks() == {CS_B: 1}
        for rec in records:
            stored = reopened.get_record(rec.resident_code)
            assert stored is not None and stored.my_number == rec.my_number
        assert [e.provision_id for e in reopened.provisions(0, 10)] == [pid]
        # Counters continue where they left off.
        nxt = reopened.record_local_changes(CS_A, [synthetic_resident(rng, MUNI_A)], _ts())
        assert nxt.first_sequence == 5
        assert reopened.log_provision_durably(admin_pb2.ProvisionEntry()) == pid + 1
    finally:
        reopened.close()


def test_group_commit_grows_full_map(tmp_path: Path) -> None:
    initial = 1 << 20
    store = NodeStore(tmp_path / "db", map_size=initial)
    try:
        payload = "x" * 4000
        ids: list[int] = []
        lock = threading.Lock()

        def work(t: int) -> None:
            for i in range(40):
                pid = store.log_provision_durably(
                    admin_pb2.ProvisionEntry(agency=payload, resident_code=f"{t:02d}{i:09d}")
                )
                with lock:
                    ids.append(pid)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        assert sorted(ids) == list(range(1, 321))
        assert store.env.map_size > initial
        entries = store.provisions(0, 1000)
        assert [e.provision_id for e in entries] == list(range(1, 321))
        assert all(e.agency == payload for e in entries)
    finally:
        store.close()


def test_zero_limit_returns_nothing(store: NodeStore, rng: random.Random) -> None:
    _fill_outbox(store, rng, 3)
    store.log_provision_durably(admin_pb2.ProvisionEntry())
    assert store.outbox_after(0, 0) == []
    assert store.provisions(0, 0) == []
