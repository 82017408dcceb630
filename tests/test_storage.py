"""jukinet.storage over real LMDB environments in tmp_path: the stores split by concern, one key layout,
group commit and map growth."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.synthetic import synthetic_resident
from jukinet.storage import NodeStorage, layout
from jukinet.storage.layout import Counter, Db
from jukinet.v1 import admin_pb2, identity_pb2, link_pb2, notice_pb2

MUNI = "131148"


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[NodeStorage]:
    s = NodeStorage.open(tmp_path / "db")
    yield s
    s.close()


@pytest.fixture
def rng() -> random.Random:
    return random.Random(20240601)


def _item(n: int) -> bytes:
    return link_pb2.LinkItem(change_notice=notice_pb2.ChangeNotice(origin="cs:131148", sequence=n)).SerializeToString()


def _write(storage: NodeStorage, fn):
    return storage.env.write(fn)


# -- layout ------------------------------------------------------------------------------------------


def test_every_database_is_in_the_layout_and_opened(storage: NodeStorage) -> None:
    assert set(storage.env.dbs) == {d.value for d in Db}
    assert layout.queue_key("pref:13", 1) < layout.queue_key("pref:13", 2) < layout.queue_key("pref:13", 256)
    assert layout.queue_position(layout.queue_key("national", 2**40)) == 2**40
    # One destination's keys never interleave with another's that shares a prefix.
    assert not layout.queue_key("pref:1", 9).startswith(layout.destination_prefix("pref:13"))
    assert layout.parse_inbox_key(layout.inbox_key("cs:131148", "pref:13")) == ("cs:131148", "pref:13")
    assert layout.parse_audit_node_key(layout.audit_node_key(3, 7)) == (3, 7)


def test_counters_start_at_one_and_persist(tmp_path: Path) -> None:
    storage = NodeStorage.open(tmp_path / "db")
    assert _write(storage, lambda txn: storage.env.reserve(txn, Counter.CHANGE, 5)) == 1
    assert _write(storage, lambda txn: storage.env.reserve(txn, Counter.CHANGE)) == 6
    assert _write(storage, lambda txn: storage.env.reserve(txn, Counter.MOVE_OUT)) == 1
    storage.close()
    storage = NodeStorage.open(tmp_path / "db")
    assert _write(storage, lambda txn: storage.env.reserve(txn, Counter.CHANGE)) == 7
    storage.close()


# -- records and history -----------------------------------------------------------------------------


def test_records_index_by_my_number_and_follow_a_change_of_number(storage: NodeStorage, rng: random.Random) -> None:
    record = synthetic_resident(rng, MUNI, numbered=True)
    _write(storage, lambda txn: storage.records.put(txn, record, None))
    assert storage.records.get(record.resident_code) == record
    assert storage.records.find_by_my_number(record.my_number) == record
    renumbered = identity_pb2.IdentityRecord()
    renumbered.CopyFrom(record)
    renumbered.my_number = synthetic_resident(rng, MUNI, numbered=True).my_number

    def change(txn: lmdb.Transaction) -> None:
        storage.records.put(txn, renumbered, storage.records.current(txn, record.resident_code))

    _write(storage, change)
    assert storage.records.find_by_my_number(record.my_number) is None
    assert storage.records.find_by_my_number(renumbered.my_number) == renumbered
    with storage.env.read() as txn:
        assert storage.records.holder_of(txn, renumbered.my_number) == record.resident_code
    assert storage.records.count() == 1


def test_history_keeps_every_notice_in_order(storage: NodeStorage, rng: random.Random) -> None:
    record = synthetic_resident(rng, MUNI, numbered=True)
    other = synthetic_resident(rng, MUNI, numbered=True)
    notices = [notice_pb2.ChangeNotice(origin="cs:131148", sequence=i, record=record) for i in (1, 2, 3)]

    def append(txn: lmdb.Transaction) -> None:
        first = storage.history.reserve(txn, 4)
        storage.history.append(txn, record.resident_code, notices[0].SerializeToString(), first)
        storage.history.append(txn, other.resident_code, notices[1].SerializeToString(), first + 1)
        storage.history.append(txn, record.resident_code, notices[2].SerializeToString(), first + 2)

    _write(storage, append)
    _write(storage, lambda txn: storage.history.append(txn, record.resident_code, notices[1].SerializeToString()))
    assert [n.sequence for n in storage.history.of(record.resident_code)] == [1, 3, 2]
    assert [n.sequence for n in storage.history.of(other.resident_code)] == [2]
    assert storage.history.count() == 4


# -- link queues -------------------------------------------------------------------------------------


def test_queues_are_per_destination_with_contiguous_positions(storage: NodeStorage) -> None:
    assert _write(storage, lambda txn: storage.queues.enqueue(txn, "pref:13", [_item(1), _item(2)])) == range(1, 3)
    assert _write(storage, lambda txn: storage.queues.enqueue(txn, "cs:131016", [_item(9)])) == range(1, 2)
    assert _write(storage, lambda txn: storage.queues.enqueue(txn, "pref:13", [_item(3)])) == range(3, 4)
    assert [p for p, _ in storage.queues.pending("pref:13", 0, 100)] == [1, 2, 3]
    assert [p for p, _ in storage.queues.pending("pref:13", 1, 100)] == [2, 3]
    assert [p for p, _ in storage.queues.pending("pref:13", 0, 2)] == [1, 2]
    assert storage.queues.pending("pref:13", 3, 100) == []
    assert storage.queues.pending("pref:13", 0, 0) == []
    assert [p for p, _ in storage.queues.pending("cs:131016", 0, 100)] == [1]
    assert {s.destination: s.pending for s in storage.queues.states()} == {"pref:13": 3, "cs:131016": 1}
    assert storage.queues.total_pending() == 4


def test_pending_is_cut_by_bytes_but_a_large_entry_still_goes_alone(storage: NodeStorage) -> None:
    big = b"x" * 5000
    _write(storage, lambda txn: storage.queues.enqueue(txn, "national", [big, _item(2), _item(3)]))
    assert [p for p, _ in storage.queues.pending("national", 0, 100, max_bytes=1000)] == [1]
    assert [p for p, _ in storage.queues.pending("national", 1, 100, max_bytes=1000)] == [2, 3]


def test_settling_drops_what_a_receipt_covers_and_keeps_the_receipt(storage: NodeStorage) -> None:
    _write(storage, lambda txn: storage.queues.enqueue(txn, "pref:13", [_item(i) for i in range(1, 6)]))
    assert _write(storage, lambda txn: storage.queues.settle(txn, "pref:13", 3, b"receipt-1..3")) == 3
    state = storage.queues.state("pref:13")
    assert (state.last_enqueued, state.last_receipted, state.pending) == (5, 3, 2)
    assert [p for p, _ in storage.queues.pending("pref:13", 0, 100)] == [4, 5]
    # A receipt of a re-delivery already settled changes nothing.
    assert _write(storage, lambda txn: storage.queues.settle(txn, "pref:13", 2, b"late")) == 0
    assert storage.queues.receipts("pref:13") == [(3, b"receipt-1..3")]
    with pytest.raises(Rejected, match="only 5 were queued") as exc:
        _write(storage, lambda txn: storage.queues.settle(txn, "pref:13", 6, b"too far"))
    assert exc.value.problem is Problem.BROKEN
    assert storage.queues.state("pref:13").last_receipted == 3  # the failed transaction left nothing
    _write(storage, lambda txn: storage.queues.settle(txn, "pref:13", 5, b"receipt-4..5"))
    assert storage.queues.pending("pref:13", 0, 100) == []
    assert [p for p, _ in storage.queues.receipts("pref:13")] == [3, 5]
    # New entries continue the positions.
    assert _write(storage, lambda txn: storage.queues.enqueue(txn, "pref:13", [_item(6)])) == range(6, 7)


def test_inbound_marks_per_sender_and_destination(storage: NodeStorage) -> None:
    def mark(txn: lmdb.Transaction) -> None:
        storage.inbox.set(txn, "cs:131148", "pref:13", 7)
        storage.inbox.set(txn, "pref:13", "national", 2)

    _write(storage, mark)
    with storage.env.read() as txn:
        assert storage.inbox.get(txn, "cs:131148", "pref:13") == 7
        assert storage.inbox.get(txn, "cs:131148", "pref:14") == 0
    assert sorted(storage.inbox.all()) == [("cs:131148", "pref:13", 7), ("pref:13", "national", 2)]


# -- provisions, group commit, growth ------------------------------------------------------------------


def _provision(storage: NodeStorage, resident: str, agency: str = "agency:7123456789012") -> int:
    entry = admin_pb2.ProvisionEntry(
        agency=agency,
        business_code="pension-benefit",
        resident_code=resident,
        query_kind=admin_pb2.QUERY_KIND_MY_NUMBER,
    )
    return storage.env.submit(lambda txn: storage.provisions.append(txn, entry)).result()


def test_group_commit_concurrent_provisions(storage: NodeStorage) -> None:
    threads_n, per_thread = 8, 50
    ids: list[list[int]] = [[] for _ in range(threads_n)]
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                ids[t].append(_provision(storage, f"{t:02d}{i:09d}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    assert sorted(i for per in ids for i in per) == list(range(1, threads_n * per_thread + 1))
    for per in ids:
        assert per == sorted(per)  # each thread's calls returned increasing ids
    paged: list[admin_pb2.ProvisionEntry] = []
    after = 0
    while page := storage.provisions.page(after, 64):
        assert len(page) <= 64
        paged.extend(page)
        after = page[-1].provision_id
    assert [e.provision_id for e in paged] == list(range(1, 401))
    by_id = {e.provision_id: e.resident_code for e in paged}
    for t, per in enumerate(ids):
        assert [by_id[i] for i in per] == [f"{t:02d}{i:09d}" for i in range(per_thread)]
    assert storage.provisions.page(400, 10) == [] and storage.provisions.page(0, 0) == []
    assert [e.query_kind for e in storage.provisions.page(398, 10)] == [admin_pb2.QUERY_KIND_MY_NUMBER] * 2


def test_group_commit_failing_job_does_not_undo_others(storage: NodeStorage) -> None:
    env = storage.env
    db = env.dbs[Db.COUNTERS]

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


def test_an_urgent_job_waits_for_one_job_in_progress_not_for_the_whole_group(storage: NodeStorage) -> None:
    """Nine slow jobs queued together form one group; an urgent job submitted while the group's first job
    runs commits right after that job (the group commits what it ran and keeps the rest, in order)."""
    env, db = storage.env, storage.env.dbs[Db.COUNTERS]
    order: list[str] = []
    hold, started, go = threading.Event(), threading.Event(), threading.Event()

    def job(name: str):
        def fn(txn):
            if name == "s0":
                hold.wait(10)  # the committer is busy while s1..s9 queue up: they form one group
            if name == "s1":
                started.set()
                go.wait(10)
            time.sleep(0.02)
            txn.put(name.encode(), b"v", db=db)
            order.append(name)
            return name

        return fn

    futures = [env.submit(job("s0"))]
    futures += [env.submit(job(f"s{i}")) for i in range(1, 10)]
    hold.set()
    assert started.wait(10)  # the group s1..s9 is running
    urgent = env.submit(lambda txn: order.append("urgent") or txn.put(b"u", b"v", db=db), urgent=True)
    go.set()
    assert urgent.result(timeout=10) is True
    assert [f.result(timeout=10) for f in futures] == [f"s{i}" for i in range(10)]
    assert order.index("urgent") == 2  # after s0 and s1, before s2..s9
    assert [n for n in order if n != "urgent"] == [f"s{i}" for i in range(10)]  # the others keep their order


@pytest.mark.parametrize("urgent", ["none", "all", "mixed"])
def test_a_long_group_commits_in_parts_and_every_job_ends_in_order(storage: NodeStorage, urgent: str) -> None:
    """Jobs of 20 ms queued together (urgent, not, or both): a group stops after 50 ms of work, commits what
    it ran and carries the rest; every job ends, in the order submitted among its kind, in more than one
    commit."""
    env, db = storage.env, storage.env.dbs[Db.COUNTERS]
    order: list[int] = []
    hold = threading.Event()
    commits: list[int] = []

    def job(i: int):
        def fn(txn):
            if i == 0:
                hold.wait(10)
            time.sleep(0.02)
            txn.put(b"j%d" % i, b"v", db=db)
            order.append(i)
            return i

        return fn

    kind = {"none": lambda i: False, "all": lambda i: True, "mixed": lambda i: i % 2 == 1}[urgent]
    futures = [env.submit(job(i), urgent=kind(i)) for i in range(12)]
    for f in futures:
        f.add_done_callback(lambda _f: commits.append(len(order)))
    hold.set()
    assert [f.result(timeout=20) for f in futures] == list(range(12))
    for k in (False, True):
        assert [i for i in order if kind(i) == k] == [i for i in range(12) if kind(i) == k]
    assert len(set(commits)) >= 3  # futures resolved at three or more different commits
    with env.read() as txn:
        assert all(txn.get(b"j%d" % i, db=db) == b"v" for i in range(12))


def test_map_grows_when_full(tmp_path: Path, rng: random.Random) -> None:
    initial = 1 << 20
    storage = NodeStorage.open(tmp_path / "db", map_size=initial)
    try:
        records = [synthetic_resident(rng, MUNI, numbered=True) for _ in range(12_000)]
        for i in range(0, len(records), 1000):

            def put(txn: lmdb.Transaction, chunk=records[i : i + 1000]) -> None:
                for record in chunk:
                    storage.records.put(txn, record, None)
                storage.queues.enqueue(txn, "pref:13", [r.SerializeToString() for r in chunk])

            _write(storage, put)
        assert storage.env.map_size >= 8 * initial  # grew (doubled) several times
        assert storage.records.count() == len(records)
        for rec in records[::97] + records[-1:]:
            assert storage.records.find_by_my_number(rec.my_number) == rec
        assert len(storage.queues.pending("pref:13", 0, 100_000)) == len(records)
    finally:
        storage.close()


def test_group_commit_grows_full_map(tmp_path: Path) -> None:
    storage = NodeStorage.open(tmp_path / "db", map_size=1 << 20)
    try:
        payload = "x" * 4000
        ids: list[int] = []
        lock = threading.Lock()

        def work(t: int) -> None:
            for i in range(40):
                pid = _provision(storage, f"{t:02d}{i:09d}", agency=payload)
                with lock:
                    ids.append(pid)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        assert sorted(ids) == list(range(1, 321))
        assert storage.env.map_size > 1 << 20
        assert all(e.agency == payload for e in storage.provisions.page(0, 1000))
    finally:
        storage.close()


def test_data_survives_close_and_reopen(tmp_path: Path, rng: random.Random) -> None:
    path = tmp_path / "db"
    storage = NodeStorage.open(path)
    record = synthetic_resident(rng, MUNI, numbered=True)

    def write(txn: lmdb.Transaction) -> None:
        storage.records.put(txn, record, None)
        storage.queues.enqueue(txn, "pref:13", [_item(1), _item(2)])
        storage.inbox.set(txn, "cs:131016", "pref:13", 4)

    _write(storage, write)
    pid = _provision(storage, record.resident_code)
    storage.close()
    storage.close()  # idempotent
    reopened = NodeStorage.open(path)
    try:
        assert reopened.records.get(record.resident_code) == record
        assert [p for p, _ in reopened.queues.pending("pref:13", 0, 10)] == [1, 2]
        assert reopened.inbox.all() == [("cs:131016", "pref:13", 4)]
        assert _provision(reopened, record.resident_code) == pid + 1
    finally:
        reopened.close()


def test_a_missing_environment_is_not_found_read_only(tmp_path: Path) -> None:
    with pytest.raises(Rejected, match="no LMDB environment") as exc:
        NodeStorage.open(tmp_path / "nothing", readonly=True)
    assert exc.value.problem is Problem.NOT_FOUND


def test_receipts_are_kept_for_a_bounded_horizon(storage: NodeStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    from jukinet.storage import queues

    monkeypatch.setattr(queues, "RECEIPT_HORIZON", 10)
    _write(storage, lambda txn: storage.queues.enqueue(txn, "pref:13", [_item(i) for i in range(1, 31)]))
    for through in (5, 10, 15, 20, 25, 30):
        _write(storage, lambda txn, t=through: storage.queues.settle(txn, "pref:13", t, f"r{t}".encode()))
    assert [p for p, _ in storage.queues.receipts("pref:13")] == [20, 25, 30]


def test_the_last_commit_is_read_without_waiting_for_a_map_resize(storage: NodeStorage) -> None:
    """The event loop's test for new commits never waits: while a resize waits for a reader, it answers None
    (the blocking form would wait for the resize); once the resize is done, the id again."""
    env = storage.env
    before = env.last_commit_now()
    assert before == env.last_commit()
    reading, release = threading.Event(), threading.Event()

    def reader() -> None:
        with env.read():
            reading.set()
            release.wait(10)

    threads = [threading.Thread(target=reader)]
    threads[0].start()
    assert reading.wait(10)
    size = env.map_size
    threads.append(threading.Thread(target=env._grow))  # waits for the reader to end
    threads[1].start()
    deadline = time.monotonic() + 10
    while env.last_commit_now() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert env.last_commit_now() is None  # the resize is waiting: no answer, and no wait either
    release.set()
    for thread in threads:
        thread.join(10)
    assert env.map_size == 2 * size and env.last_commit_now() == before
