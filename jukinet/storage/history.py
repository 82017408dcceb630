"""The change history: every change notice a node stored, never deleted.

It is a feed in the order stored (keyed by position: appends touch only the end of the tree, and
followers — push subscriptions, disclosure, replication — read it by position), with a small index
from each resident to their positions. Keying the notices themselves by resident would scatter every
append over the whole tree, and each such page must be written again at commit.
"""

from __future__ import annotations

from collections.abc import Iterator

import lmdb

from jukinet.domain.errors import Problem, Rejected
from jukinet.storage.environment import Environment
from jukinet.storage.layout import Counter, Db, from_u64, history_index_key, queue_position, resident_key, u64
from jukinet.v1 import notice_pb2


class ChangeHistory:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._feed = env.dbs[Db.HISTORY]
        self._index = env.dbs[Db.HISTORY_INDEX]

    def append(self, txn: lmdb.Transaction, resident_code: str, notice: bytes, position: int | None = None) -> int:
        """Append one serialized ChangeNotice; ``position`` from :meth:`reserve` when appending many."""
        if position is None:
            position = self.reserve(txn, 1)
        if not txn.put(u64(position), notice, db=self._feed, append=True):
            raise Rejected(Problem.BROKEN, f"history position {position} is not after the end of the feed")
        txn.put(history_index_key(resident_code, position), b"", db=self._index)
        return position

    def index(self, txn: lmdb.Transaction, resident_code: str, position: int) -> None:
        """List an entry appended for another code among ``resident_code``'s too (a 住民票コード変更 notice
        belongs to the history of both codes)."""
        txn.put(history_index_key(resident_code, position), b"", db=self._index)

    def reserve(self, txn: lmdb.Transaction, count: int) -> int:
        """Positions for ``count`` entries about to be appended, in order; returns the first."""
        return self._env.reserve(txn, Counter.HISTORY, count)

    def next_position(self, txn: lmdb.Transaction) -> int:
        """The position the next :meth:`reserve` in ``txn`` will hand out first."""
        return self._env.peek(txn, Counter.HISTORY)

    def has_origin(self, txn: lmdb.Transaction, resident_code: str, origin: str) -> bool:
        """Whether any stored notice of the resident came from ``origin`` (a former owner's late removal)."""
        return any(n.origin == origin for n in self.stored(txn, resident_code))

    def stored(self, txn: lmdb.Transaction, resident_code: str) -> Iterator[notice_pb2.ChangeNotice]:
        """The resident's notices stored so far, in ``txn`` (the ones this transaction appended included)."""
        prefix = resident_key(resident_code)
        cursor = txn.cursor(db=self._index)
        if cursor.set_range(prefix):
            for key in cursor.iternext(values=False):
                if not key.startswith(prefix) or len(key) != len(prefix) + 8:
                    break
                raw = txn.get(u64(queue_position(key)), db=self._feed)
                if raw is not None:
                    yield notice_pb2.ChangeNotice.FromString(raw)

    def before(self, txn: lmdb.Transaction, resident_code: str, position: int) -> Iterator[notice_pb2.ChangeNotice]:
        """The resident's notices at feed positions before ``position``, in order (a follower's view of what
        it already read)."""
        prefix = resident_key(resident_code)
        cursor = txn.cursor(db=self._index)
        if cursor.set_range(prefix):
            for key in cursor.iternext(values=False):
                if not key.startswith(prefix) or len(key) != len(prefix) + 8 or queue_position(key) >= position:
                    break
                raw = txn.get(u64(queue_position(key)), db=self._feed)
                if raw is not None:
                    yield notice_pb2.ChangeNotice.FromString(raw)

    def of(self, resident_code: str) -> list[notice_pb2.ChangeNotice]:
        """A resident's notices, in the order stored."""
        prefix = resident_key(resident_code)
        out = []
        with self._env.read() as txn:
            cursor = txn.cursor(db=self._index)
            if cursor.set_range(prefix):
                for key in cursor.iternext(values=False):
                    if not key.startswith(prefix) or len(key) != len(prefix) + 8:
                        break
                    out.append(notice_pb2.ChangeNotice.FromString(txn.get(u64(queue_position(key)), db=self._feed)))
        return out

    def feed(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Feed entries after position ``after``, in order: (position, serialized ChangeNotice)."""
        out: list[tuple[int, bytes]] = []
        with self._env.read() as txn:
            cursor = txn.cursor(db=self._feed)
            if cursor.set_range(u64(after + 1)):
                for key, value in cursor:
                    out.append((from_u64(key), value))
                    if len(out) >= limit:
                        break
        return out

    def count(self) -> int:
        return self._env.entries(Db.HISTORY)
