"""広域交付 at the home CS: the log of copies issued (a Merkle log, indexed per resident), and DV support
measures per resident.
The rules (what a copy holds, which measure refuses whom) live in :mod:`jukinet.domain.copies`; this module
only reads and writes."""

from __future__ import annotations

import lmdb

from jukinet.domain.errors import Problem, Rejected
from jukinet.storage.environment import Environment
from jukinet.storage.layout import Counter, Db, resident_key, resident_serial_key, serial_of, u64
from jukinet.storage.merkle_log import COPY_ISSUANCE_DB_NAMES, MerkleLog
from jukinet.v1 import copies_pb2


class CopyIssuanceLog:
    """Every copy issued, as a Merkle log (RFC 6962; ``copy_issuance_*``) so that the home CS can disclose a
    resident's copies with proofs as the national server discloses provisions. Copy serial n is leaf n − 1.
    The index from resident to leaf (``copy_issuance_index``) is written in the issuance's own transaction:
    copies are issued at a counter's pace, so it costs nothing worth deferring."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self.log = MerkleLog(env, "copy-issuance", COPY_ISSUANCE_DB_NAMES)
        self._index = env.dbs[Db.COPY_ISSUANCE_INDEX]

    def next_serial(self, txn: lmdb.Transaction) -> int:
        """The serial the next copy gets (from 1; never handed out twice: the log only grows)."""
        return self.log.size_in(txn) + 1

    def append(self, txn: lmdb.Transaction, issuance: copies_pb2.CopyIssuance) -> int:
        """Log ``issuance`` (its serial: :meth:`next_serial` of ``txn``, or 0 to take it) and index it under its
        resident, in ``txn``; returns the serial."""
        serial = self.next_serial(txn)
        if issuance.serial not in (0, serial):
            raise Rejected(Problem.BROKEN, f"copy serial {issuance.serial} is not the next one ({serial})")
        issuance.serial = serial
        index = self.log.append(txn, issuance.SerializeToString())
        txn.put(resident_serial_key(issuance.resident_code, index), b"", db=self._index)
        return serial

    def answered(self, txn: lmdb.Transaction, resident_code: str, request_sha256: bytes, since_ms: int) -> bool:
        """Was a copy of the resident issued for this request at or after ``since_ms``? (Reads back from the
        resident's latest copy while they are recent, so the cost is bounded by the copies of a window.)"""
        cursor = txn.cursor(db=self._index)
        prefix = resident_key(resident_code)
        if not cursor.set_range(prefix + b"\xff" * 8):
            if not cursor.last():
                return False
        elif not cursor.prev():
            return False
        leaves = self.log.leaf_cursor(txn)
        while bytes(cursor.key()).startswith(prefix):
            raw = leaves.get(u64(serial_of(cursor.key())))
            if raw is None:
                raise Rejected(Problem.BROKEN, f"copy-issuance index names leaf {serial_of(cursor.key())}, not logged")
            issuance = copies_pb2.CopyIssuance.FromString(raw)
            if issuance.issued_at.ToMilliseconds() < since_ms:
                return False
            if issuance.request_sha256 == request_sha256:
                return True
            if not cursor.prev():
                return False
        return False

    def move(self, txn: lmdb.Transaction, old_code: str, new_code: str) -> int:
        """住民票コード変更: the resident's copies are listed under ``new_code`` (their disclosure follows). The
        leaves are the log's and keep the code they were issued under."""
        prefix = resident_key(old_code)
        keys = []
        cursor = txn.cursor(db=self._index)
        if cursor.set_range(prefix):
            for key in cursor.iternext(values=False):
                if not bytes(key).startswith(prefix) or len(key) != len(prefix) + 8:
                    break
                keys.append(bytes(key))
        for key in keys:
            txn.delete(key, db=self._index)
            txn.put(resident_serial_key(new_code, serial_of(key)), b"", db=self._index)
        return len(keys)

    def of_resident(self, resident_code: str, after_id: int, limit: int) -> tuple[list[tuple[int, bytes]], bool]:
        """The resident's copies with serials above ``after_id``, in order, at most ``limit``, as (leaf index,
        leaf bytes exactly as logged); and whether more follow."""
        out: list[tuple[int, bytes]] = []
        if limit <= 0 or after_id >= 2**64 - 1:
            return out, False
        prefix = resident_key(resident_code)
        with self._env.read() as txn:
            cursor = txn.cursor(db=self._index)
            leaves = self.log.leaf_cursor(txn)
            if cursor.set_range(resident_serial_key(resident_code, after_id)):
                for key in cursor.iternext(values=False):
                    if not bytes(key).startswith(prefix):
                        break
                    if len(out) >= limit:
                        return out, True
                    index = serial_of(key)
                    raw = leaves.get(u64(index))
                    if raw is None:
                        raise Rejected(Problem.BROKEN, f"copy-issuance index names leaf {index}, not logged")
                    out.append((index, bytes(raw)))
        return out, False

    def page(self, resident_code: str, after_serial: int, limit: int) -> list[copies_pb2.CopyIssuance]:
        entries, _ = self.of_resident(resident_code, after_serial, limit)
        return [copies_pb2.CopyIssuance.FromString(raw) for _, raw in entries]


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
