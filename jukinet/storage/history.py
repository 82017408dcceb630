"""Every change notice a node stored, per resident, in the order stored; never deleted."""

from __future__ import annotations

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import Counter, Db, history_key, history_prefix
from jukinet.v1 import notice_pb2


class ChangeHistory:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._db = env.dbs[Db.HISTORY]

    def append(self, txn: lmdb.Transaction, resident_code: str, notice: bytes, position: int | None = None) -> None:
        """Append one serialized ChangeNotice; ``position`` from :meth:`reserve` when appending many."""
        if position is None:
            position = self.reserve(txn, 1)
        txn.put(history_key(resident_code, position), notice, db=self._db)

    def reserve(self, txn: lmdb.Transaction, count: int) -> int:
        """Positions for ``count`` entries about to be appended; returns the first."""
        return self._env.reserve(txn, Counter.HISTORY, count)

    def of(self, resident_code: str) -> list[notice_pb2.ChangeNotice]:
        prefix = history_prefix(resident_code)
        out = []
        with self._env.read() as txn:
            cursor = txn.cursor(db=self._db)
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    out.append(notice_pb2.ChangeNotice.FromString(value))
        return out

    def count(self) -> int:
        return self._env.entries(Db.HISTORY)
