"""One LMDB environment per node: named databases, map growth, and group commit.

Writes go through :meth:`Environment.write` (one synchronous transaction, used by bulk paths that
already batch) or :meth:`Environment.submit` (group commit: concurrent small writes, such as one
provision-log entry per agency lookup, share one transaction and one fsync, each in its own nested
transaction so that one failing job does not undo the others).

Map growth: when a transaction hits ``MapFullError`` it is aborted, the map is doubled and the
transaction is re-run. LMDB only allows resizing while no transaction of this process is open, so
readers hold a shared lock and the resize takes it exclusively.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import lmdb

from jukinet.domain.errors import Problem, Rejected
from jukinet.storage.layout import ALL_DBS, U64, Counter, counter_key

T = TypeVar("T")

DEFAULT_MAP_SIZE = 1 << 30  # 1 GiB of address space; grows on demand
_GROUP_MAX_JOBS = 512
_GROUP_MAX_SECONDS = 0.05
"""A group stops taking further jobs once it has run this long: what it ran commits (one more fsync, about
a millisecond here), so no job waits for its commit behind a second of other jobs' work."""
_Job = tuple[Callable[[lmdb.Transaction], object], Future, bool]


class _SharedExclusiveLock:
    """Many readers or one resizer; a waiting resizer blocks new readers so it cannot starve."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._exclusive_waiting = 0
        self._exclusive = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._exclusive_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def shared_if_free(self) -> Iterator[bool]:
        """Like :meth:`shared`, but never waits for a resize: yields False (and holds nothing) while one is
        under way or waiting."""
        with self._cond:
            held = not (self._exclusive or self._exclusive_waiting)
            if held:
                self._readers += 1
        try:
            yield held
        finally:
            if held:
                with self._cond:
                    self._readers -= 1
                    if not self._readers:
                        self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._exclusive_waiting += 1
            while self._exclusive or self._readers:
                self._cond.wait()
            self._exclusive_waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class Environment:
    """An LMDB environment with named databases, opened by exactly one node process."""

    def __init__(
        self, path: Path, db_names: tuple[str, ...] = ALL_DBS, map_size: int = DEFAULT_MAP_SIZE, readonly: bool = False
    ) -> None:
        """``readonly`` opens an existing environment for inspection (e.g. `jukinet audit verify`) while its
        node may be running: LMDB allows readers in other processes."""
        if readonly and not (path / "data.mdb").exists():
            raise Rejected(Problem.NOT_FOUND, f"no LMDB environment at {path}")
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._env = lmdb.open(
                str(path),
                map_size=map_size,
                max_dbs=len(db_names) + 2,
                sync=True,
                metasync=True,
                readahead=False,
                max_readers=256,
                readonly=readonly,
            )
            self.dbs: dict[str, lmdb._Database] = {
                name: self._env.open_db(name.encode(), create=not readonly) for name in db_names
            }
        except lmdb.Error as exc:
            raise Rejected(Problem.UNAVAILABLE, f"cannot open LMDB environment at {path}: {exc}") from exc
        self.path = path
        self._lock = _SharedExclusiveLock()
        self._writer = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._committer: threading.Thread | None = None
        self._urgent_lock = threading.Lock()
        self._urgent_queued = 0  # urgent jobs submitted and not yet taken into a group
        self._closed = False

    @property
    def map_size(self) -> int:
        return self._env.info()["map_size"]

    @contextmanager
    def read(self) -> Iterator[lmdb.Transaction]:
        """A read-only snapshot; keep it short (it delays map growth)."""
        with self._lock.shared():
            try:
                txn = self._env.begin(buffers=False)
            except lmdb.MapResizedError:  # a reader in another process: the node grew the map
                self._env.set_mapsize(0)
                txn = self._env.begin(buffers=False)
            with txn:
                yield txn

    def write(self, fn: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``fn`` in one write transaction and commit durably; re-run after growing a full map."""
        while True:
            with self._writer:
                try:
                    with self._lock.shared():
                        txn = self._env.begin(write=True)
                        try:
                            result = fn(txn)
                        except BaseException:
                            txn.abort()
                            raise
                        txn.commit()
                    return result
                except lmdb.MapFullError:
                    self._grow()

    def submit(self, fn: Callable[[lmdb.Transaction], T], urgent: bool = False) -> Future[T]:
        """Queue ``fn`` for group commit; the future resolves after the fsync that made it durable. Urgent
        jobs (small ones someone waits on, e.g. a push message's provision entries) queued together with
        others commit first, in a group of their own, rather than after a large batch's writes."""
        if self._closed:
            raise Rejected(Problem.UNAVAILABLE, f"storage at {self.path} is closed")
        if self._committer is None:
            with self._writer:
                if self._committer is None:
                    self._committer = threading.Thread(target=self._commit_loop, name="lmdb-group-commit", daemon=True)
                    self._committer.start()
        future: Future[T] = Future()
        if urgent:
            with self._urgent_lock:
                self._urgent_queued += 1
        self._jobs.put((fn, future, urgent))
        return future

    def _commit_loop(self) -> None:
        """Groups of queued jobs, one transaction (one fsync) each. Urgent jobs queued with others commit
        first, in a group of their own; and a group of other jobs ends early — committing the jobs it ran,
        keeping the rest, in order, for the next group — when an urgent job is queued meanwhile or after
        :data:`_GROUP_MAX_SECONDS` of work, so an urgent job waits for at most one job in progress, and
        any job's commit for little more than its own work (the national server's intake of a relayed
        batch takes a few hundred milliseconds; a group of them, a second)."""
        carried: list[_Job] = []
        while True:
            if carried:
                group, carried = carried, []
            else:
                job = self._jobs.get()
                if job is None:
                    return
                group = [job]
                self._taken(job)
            while len(group) < _GROUP_MAX_JOBS:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._jobs.put(None)
                    break
                group.append(nxt)
                self._taken(nxt)
            urgent = [j for j in group if j[2]]
            others = [j for j in group if not j[2]]
            if urgent and others:
                left = self._run_group(urgent)
                carried = left + others if left else self._run_group(others, yield_to_urgent=True)
            else:
                carried = self._run_group(group, yield_to_urgent=not urgent)

    def _taken(self, job: _Job) -> None:
        """A job left the queue (counted once, however often it is carried to a later group)."""
        if job[2]:
            with self._urgent_lock:
                self._urgent_queued -= 1

    def _run_group(self, group: list[_Job], yield_to_urgent: bool = False) -> list[_Job]:
        """Run and commit ``group``; returns the jobs not run (an urgent job was queued meanwhile)."""
        left: list[_Job] = []

        def run_all(txn: lmdb.Transaction) -> list[tuple[Future, object, BaseException | None]]:
            outcomes = []
            left.clear()
            began = time.monotonic()
            for i, (fn, future, _) in enumerate(group):
                if i and (
                    (yield_to_urgent and self._urgent_queued > 0) or time.monotonic() - began > _GROUP_MAX_SECONDS
                ):
                    left.extend(group[i:])
                    break
                child = self._env.begin(write=True, parent=txn)
                try:
                    value = fn(child)
                except lmdb.MapFullError:
                    child.abort()
                    raise
                except Exception as exc:  # the job's own failure; others still commit
                    child.abort()
                    outcomes.append((future, None, exc))
                    continue
                child.commit()
                outcomes.append((future, value, None))
            return outcomes

        try:
            outcomes = self.write(run_all)
        except Exception as exc:
            for _, future, _ in group:
                future.set_exception(exc)
            return []
        for future, value, error in outcomes:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)
        return left

    def reserve(self, txn: lmdb.Transaction, counter: Counter, count: int = 1) -> int:
        """Hand out ``count`` values of ``counter`` inside ``txn``; returns the first (counters start at 1)."""
        db = self.dbs["counters"]
        raw = txn.get(counter_key(counter), db=db)
        last = U64.unpack(raw)[0] if raw else 0
        txn.put(counter_key(counter), U64.pack(last + count), db=db)
        return last + 1

    def peek(self, txn: lmdb.Transaction, counter: Counter) -> int:
        """The first value the next :meth:`reserve` of ``counter`` in ``txn`` will hand out (for a writer that
        learns how many it needs only as it goes, and reserves them at the end)."""
        raw = txn.get(counter_key(counter), db=self.dbs["counters"])
        return (U64.unpack(raw)[0] if raw else 0) + 1

    def last_commit(self) -> int:
        """The id of the last committed write transaction (no transaction opened): a reader's cheap test
        for whether anything was written since it last looked."""
        with self._lock.shared():  # not while the map is being resized
            return int(self._env.info()["last_txnid"])

    def last_commit_now(self) -> int | None:
        """:meth:`last_commit` for an event loop, which must not wait: None while the map is being resized."""
        with self._lock.shared_if_free() as held:
            return int(self._env.info()["last_txnid"]) if held else None

    def entries(self, db: str) -> int:
        """Number of entries in one named database."""
        with self.read() as txn:
            return txn.stat(self.dbs[db])["entries"]

    def _grow(self) -> None:
        with self._lock.exclusive():
            new_size = self.map_size * 2
            self._env.set_mapsize(new_size)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._committer is not None:
            self._jobs.put(None)
            self._committer.join(timeout=10)
        self._env.close()
