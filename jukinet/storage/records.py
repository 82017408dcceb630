"""Resident records (latest state) and the My Number index. The rules of what may change live in
:mod:`jukinet.domain.changes`; this module only reads and writes."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import Db, my_number_key, resident_key
from jukinet.v1 import identity_pb2

_MAX_KEY = 64  # characters: longer than any code, never a key (LMDB refuses keys over 511 bytes, 256 here at most)


class RecordStore:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._records = env.dbs[Db.RECORDS]
        self._by_my_number = env.dbs[Db.BY_MY_NUMBER]

    def current(self, txn: lmdb.Transaction, resident_code: str) -> identity_pb2.IdentityRecord | None:
        raw = txn.get(resident_key(resident_code), db=self._records)
        return identity_pb2.IdentityRecord.FromString(raw) if raw is not None else None

    def holder_of(self, txn: lmdb.Transaction, my_number: str) -> str | None:
        """The resident code that holds ``my_number`` now, or None (also for "", no number yet)."""
        if not my_number:
            return None
        raw = txn.get(my_number_key(my_number), db=self._by_my_number)
        return bytes(raw).decode("ascii") if raw is not None else None

    def put(
        self,
        txn: lmdb.Transaction,
        record: identity_pb2.IdentityRecord,
        previous: identity_pb2.IdentityRecord | None,
        encoded: bytes | None = None,
    ) -> None:
        """Store ``record`` (``encoded``: its serialized bytes, if the caller has them) as the latest state
        and keep the My Number index in step with it."""
        code = resident_key(record.resident_code)
        if previous is not None and previous.my_number and previous.my_number != record.my_number:
            txn.delete(my_number_key(previous.my_number), db=self._by_my_number)
        txn.put(code, encoded if encoded is not None else record.SerializeToString(), db=self._records)
        if record.my_number:  # empty while the national server's assignment is pending
            txn.put(my_number_key(record.my_number), code, db=self._by_my_number)

    def get(self, resident_code: str) -> identity_pb2.IdentityRecord | None:
        with self._env.read() as txn:
            return self.current(txn, resident_code)

    def find_by_my_number(self, my_number: str) -> identity_pb2.IdentityRecord | None:
        with self._env.read() as txn:
            holder = self.holder_of(txn, my_number)
            return self.current(txn, holder) if holder is not None else None

    def encoded_many(self, resident_codes: Sequence[str]) -> list[bytes | None]:
        """The stored bytes of each code's record (None: no record, or not a key at all), in one read
        transaction (a batch chunk)."""
        with self._env.read() as txn:
            return self.encoded_in(txn, resident_codes)

    def encoded_in(self, txn: lmdb.Transaction, resident_codes: Sequence[str]) -> list[bytes | None]:
        """:meth:`encoded_many` inside ``txn`` (a reader that resolved the codes in the same snapshot)."""
        lengths = list(map(len, resident_codes))
        get, db = txn.get, self._records
        if lengths and min(lengths) > 0 and max(lengths) <= _MAX_KEY:  # every one may be a key
            return list(map(functools.partial(get, db=db), map(str.encode, resident_codes)))
        return [get(c.encode(), db=db) if 0 < len(c) <= _MAX_KEY else None for c in resident_codes]

    def encoded_by_my_numbers(self, my_numbers: Sequence[str]) -> list[bytes | None]:
        """As :meth:`encoded_many`, by the My Number each record holds now."""
        out: list[bytes | None] = []
        with self._env.read() as txn:
            get, records, index = txn.get, self._records, self._by_my_number
            for number in my_numbers:
                code = get(number.encode(), db=index) if 0 < len(number) <= _MAX_KEY else None
                out.append(get(code, db=records) if code is not None else None)
        return out

    def count(self) -> int:
        return self._env.entries(Db.RECORDS)
