"""Resident-record items kept only at the resident's CS (世帯主, 続柄, 本籍, 筆頭者): never in a change
notice, never at the prefecture or national server. This module only reads and writes."""

from __future__ import annotations

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import Db, resident_key
from jukinet.v1 import local_pb2


class LocalDataStore:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._db = env.dbs[Db.LOCAL_DATA]

    def current(self, txn: lmdb.Transaction, resident_code: str) -> local_pb2.LocalResidentData | None:
        raw = txn.get(resident_key(resident_code), db=self._db)
        return local_pb2.LocalResidentData.FromString(raw) if raw is not None else None

    def put(self, txn: lmdb.Transaction, resident_code: str, data: local_pb2.LocalResidentData) -> None:
        txn.put(resident_key(resident_code), data.SerializeToString(), db=self._db)

    def get(self, resident_code: str) -> local_pb2.LocalResidentData | None:
        with self._env.read() as txn:
            return self.current(txn, resident_code)

    def move(self, txn: lmdb.Transaction, old_code: str, new_code: str) -> None:
        """住民票コード変更: the items are kept under ``new_code`` only."""
        data = self.current(txn, old_code)
        if data is not None:
            txn.delete(resident_key(old_code), db=self._db)
            self.put(txn, new_code, data)
