"""The provision log: every record provided to an agency, written before the answer leaves."""

from __future__ import annotations

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import Counter, Db, u64
from jukinet.v1 import admin_pb2

_LAST_ID = 2**64 - 1  # provision ids are uint64 on the wire


class ProvisionLog:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._db = env.dbs[Db.PROVISIONS]

    def append(self, txn: lmdb.Transaction, entry: admin_pb2.ProvisionEntry) -> int:
        """Give ``entry`` the next provision id and store it inside ``txn``; returns the id."""
        entry.provision_id = self._env.reserve(txn, Counter.PROVISION)
        txn.put(u64(entry.provision_id), entry.SerializeToString(), db=self._db)
        return entry.provision_id

    def append_many(self, txn: lmdb.Transaction, entries: list[admin_pb2.ProvisionEntry]) -> list[int]:
        """:meth:`append` each of ``entries`` in order inside ``txn`` (one counter update); returns their ids."""
        if not entries:
            return []
        first = self._env.reserve(txn, Counter.PROVISION, len(entries))
        for i, entry in enumerate(entries):
            entry.provision_id = first + i
            txn.put(u64(entry.provision_id), entry.SerializeToString(), db=self._db)
        return [e.provision_id for e in entries]

    def page(self, after_id: int, limit: int) -> list[admin_pb2.ProvisionEntry]:
        out: list[admin_pb2.ProvisionEntry] = []
        if limit <= 0 or after_id >= _LAST_ID:  # nothing comes after the last id (and after_id + 1 would not pack)
            return out
        with self._env.read() as txn:
            cursor = txn.cursor(db=self._db)
            if cursor.set_range(u64(after_id + 1)):
                for _, value in cursor:
                    out.append(admin_pb2.ProvisionEntry.FromString(value))
                    if len(out) >= limit:
                        break
        return out

    def count(self) -> int:
        return self._env.entries(Db.PROVISIONS)
