"""The node's cached network directory: the last envelope it verified, where it came from, and (at the
national server) which seed file it last published from. This module only reads and writes."""

from __future__ import annotations

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import Db, DirectoryKey, directory_key
from jukinet.v1 import directory_pb2


class DirectoryStore:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._db = env.dbs[Db.DIRECTORY]

    def current(self) -> directory_pb2.CachedDirectory | None:
        with self._env.read() as txn:
            raw = txn.get(directory_key(DirectoryKey.CURRENT), db=self._db)
        return directory_pb2.CachedDirectory.FromString(raw) if raw is not None else None

    def put(self, txn: lmdb.Transaction, cached: directory_pb2.CachedDirectory) -> None:
        txn.put(directory_key(DirectoryKey.CURRENT), cached.SerializeToString(), db=self._db)

    def seed_digest(self) -> bytes:
        with self._env.read() as txn:
            raw = txn.get(directory_key(DirectoryKey.SEED_SHA256), db=self._db)
        return bytes(raw) if raw is not None else b""

    def set_seed_digest(self, txn: lmdb.Transaction, digest: bytes) -> None:
        txn.put(directory_key(DirectoryKey.SEED_SHA256), digest, db=self._db)
