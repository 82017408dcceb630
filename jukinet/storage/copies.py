"""広域交付 at the home CS: the log of copies issued per resident, and DV support measures per resident.
The rules (what a copy holds, which measure refuses whom) live in :mod:`jukinet.domain.copies`; this module
only reads and writes."""

from __future__ import annotations

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import Counter, Db, resident_key, resident_serial_key, serial_of
from jukinet.v1 import copies_pb2


class CopyIssuanceLog:
    """Every copy issued, by resident then serial: a resident's copies are one range of keys."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._db = env.dbs[Db.COPY_ISSUANCES]

    def next_serial(self, txn: lmdb.Transaction) -> int:
        """Take the next copy serial (from 1; never handed out twice, also across restarts)."""
        return self._env.reserve(txn, Counter.COPY)

    def append(self, txn: lmdb.Transaction, issuance: copies_pb2.CopyIssuance) -> None:
        txn.put(resident_serial_key(issuance.resident_code, issuance.serial), issuance.SerializeToString(), db=self._db)

    def answered(self, txn: lmdb.Transaction, resident_code: str, request_sha256: bytes, since_ms: int) -> bool:
        """Was a copy of the resident issued for this request at or after ``since_ms``? (Reads back from the
        resident's latest copy while they are recent, so the cost is bounded by the copies of a window.)"""
        cursor = txn.cursor(db=self._db)
        prefix = resident_key(resident_code)
        if not cursor.set_range(prefix + b"\xff" * 8):
            if not cursor.last():
                return False
        elif not cursor.prev():
            return False
        while bytes(cursor.key()).startswith(prefix):
            issuance = copies_pb2.CopyIssuance.FromString(cursor.value())
            if issuance.issued_at.ToMilliseconds() < since_ms:
                return False
            if issuance.request_sha256 == request_sha256:
                return True
            if not cursor.prev():
                return False
        return False

    def move(self, txn: lmdb.Transaction, old_code: str, new_code: str) -> int:
        """住民票コード変更: the resident's copies are listed under ``new_code`` (their disclosure follows)."""
        return _move(txn, self._db, old_code, new_code, copies_pb2.CopyIssuance)

    def page(self, resident_code: str, after_serial: int, limit: int) -> list[copies_pb2.CopyIssuance]:
        out: list[copies_pb2.CopyIssuance] = []
        if limit <= 0 or after_serial >= 2**64 - 1:
            return out
        prefix = resident_key(resident_code)
        with self._env.read() as txn:
            cursor = txn.cursor(db=self._db)
            if cursor.set_range(resident_serial_key(resident_code, after_serial + 1)):
                for key, value in cursor:
                    if not bytes(key).startswith(prefix) or len(out) >= limit:
                        break
                    out.append(copies_pb2.CopyIssuance.FromString(value))
        return out


class DvMeasureStore:
    """DV support measures, by protected resident then measure id."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._db = env.dbs[Db.DV_MEASURES]

    def of(self, txn: lmdb.Transaction, resident_code: str) -> list[copies_pb2.DvMeasure]:
        prefix = resident_key(resident_code)
        out = []
        cursor = txn.cursor(db=self._db)
        if cursor.set_range(prefix):
            for key, value in cursor:
                if not bytes(key).startswith(prefix):
                    break
                out.append(copies_pb2.DvMeasure.FromString(value))
        return out

    def add(self, txn: lmdb.Transaction, measure: copies_pb2.DvMeasure) -> copies_pb2.DvMeasure:
        """Store ``measure`` under the next measure id (set on it)."""
        measure.measure_id = self._env.reserve(txn, Counter.DV_MEASURE)
        txn.put(
            resident_serial_key(measure.resident_code, measure.measure_id), measure.SerializeToString(), db=self._db
        )
        return measure

    def remove(self, txn: lmdb.Transaction, resident_code: str, measure_id: int) -> copies_pb2.DvMeasure | None:
        """Delete the measure; returns it as it was (None: there is no such measure of that resident)."""
        if not 0 < measure_id < 2**64:
            return None
        key = resident_serial_key(resident_code, measure_id)
        raw = txn.get(key, db=self._db)
        if raw is None:
            return None
        txn.delete(key, db=self._db)
        return copies_pb2.DvMeasure.FromString(raw)

    def move(self, txn: lmdb.Transaction, old_code: str, new_code: str) -> int:
        """住民票コード変更: the measures protect the resident under ``new_code`` (never lapse with the code)."""
        return _move(txn, self._db, old_code, new_code, copies_pb2.DvMeasure)

    def get(self, resident_code: str) -> list[copies_pb2.DvMeasure]:
        with self._env.read() as txn:
            return self.of(txn, resident_code)


def _move(txn: lmdb.Transaction, db: object, old_code: str, new_code: str, kind: type) -> int:
    """Re-key a resident's series (keys ``resident ‖ u64 serial``, values naming the resident) to a new code."""
    prefix = resident_key(old_code)
    entries = []
    cursor = txn.cursor(db=db)
    if cursor.set_range(prefix):
        for key, value in cursor:
            if not bytes(key).startswith(prefix) or len(key) != len(prefix) + 8:
                break
            entries.append((bytes(key), kind.FromString(value)))
    for key, entry in entries:
        txn.delete(key, db=db)
        entry.resident_code = new_code
        txn.put(resident_serial_key(new_code, serial_of(key)), entry.SerializeToString(), db=db)
    return len(entries)
