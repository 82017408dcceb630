"""The node's LMDB store: records, indexes, history, outbox, inbox de-duplication, provision log.

Named databases (keys are ASCII codes or 8-byte big-endian counters so that order is numeric):

=============  ===================================  ==========================================
database       key                                  value
=============  ===================================  ==========================================
records        住民票コード (11 ASCII digits)         IdentityRecord bytes (latest state)
by_my_number   個人番号 (12 ASCII digits)             住民票コード
history        住民票コード + u64 history seq         ChangeNotice bytes (never deleted)
outbox         u64 outbox seq                       ChangeNotice bytes, until acknowledged upstream
inbox          origin node id                       u64 highest sequence applied from that origin
provisions     u64 provision id                     ProvisionEntry bytes
meta           counter name                         u64
=============  ===================================  ==========================================

A change, its history entry, its index entries and its outbox entry always commit in one
transaction. Re-delivery is harmless: a notice whose (origin, sequence) is not above the origin's
high-water mark is counted as a duplicate and changes nothing. Notices from one origin arrive in
order because every hop forwards its outbox in sequence over one ordered stream, so a notice that
skips ahead (a gap) means loss or forgery: the whole batch is refused (SequenceGap).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lmdb
from google.protobuf.timestamp_pb2 import Timestamp

from jukinet.domain.records import status_for
from jukinet.domain.transitions import ChangeRejected, CheckTransition
from jukinet.storage.audit_log import AUDIT_DB_NAMES, AuditLog
from jukinet.storage.environment import DEFAULT_MAP_SIZE, Environment
from jukinet.storage.operator_store import OPERATOR_DB_NAMES, OperatorStore
from jukinet.v1 import admin_pb2, identity_pb2, notice_pb2

_U64 = struct.Struct(">Q")
_DB_NAMES = ("records", "by_my_number", "history", "outbox", "inbox", "provisions", "meta")
_ALL_DB_NAMES = (*_DB_NAMES, *OPERATOR_DB_NAMES, *AUDIT_DB_NAMES)
_REMOVED = identity_pb2.RECORD_STATUS_REMOVED
_ACTIVE = identity_pb2.RECORD_STATUS_ACTIVE


def u64(value: int) -> bytes:
    return _U64.pack(value)


def from_u64(raw: bytes) -> int:
    return _U64.unpack(raw)[0]


@dataclass(frozen=True)
class AppliedRange:
    """Outbox sequences given to a committed group of local changes."""

    first_sequence: int
    last_sequence: int
    count: int


class SequenceGap(Exception):
    """A notice skipped ahead of its origin's sequence: something in between was lost or forged."""

    def __init__(self, origin: str, expected: int, got: int) -> None:
        super().__init__(f"notice {origin}#{got} arrived but {origin}#{expected} is the next expected")
        self.origin, self.expected, self.got = origin, expected, got


@dataclass(frozen=True)
class IngestResult:
    applied: int
    duplicates: int


class NodeStore:
    """All persistent state of one node, in one LMDB environment."""

    def __init__(self, path: Path, map_size: int = DEFAULT_MAP_SIZE, readonly: bool = False) -> None:
        self.env = Environment(path, _ALL_DB_NAMES, map_size, readonly=readonly)
        self._db = self.env.dbs
        self.operators = OperatorStore(self.env)
        self.audit = AuditLog(self.env)

    def close(self) -> None:
        self.env.close()

    # -- counters -----------------------------------------------------------------------------------

    def _next(self, txn: lmdb.Transaction, name: bytes, count: int = 1) -> int:
        """Reserve ``count`` values of counter ``name``; returns the first (counters start at 1)."""
        raw = txn.get(name, db=self._db["meta"])
        last = from_u64(raw) if raw else 0
        txn.put(name, u64(last + count), db=self._db["meta"])
        return last + 1

    # -- local changes (CS) ---------------------------------------------------------------------------

    def record_local_changes(
        self,
        origin: str,
        records: Sequence[identity_pb2.IdentityRecord],
        recorded_at: Timestamp,
        check: CheckTransition | None = None,
        audit_leaf: Callable[[AppliedRange], bytes] | None = None,
    ) -> AppliedRange:
        """Store changes recorded at this node and enqueue their notices, all in one transaction.

        ``check(current, new)`` may raise ChangeRejected; then nothing of the group is stored.
        ``audit_leaf(applied)`` gives the audit entry that commits with the changes.
        """

        def apply(txn: lmdb.Transaction) -> AppliedRange:
            first_seq = self._next(txn, b"outbox_seq", len(records))
            first_hist = self._next(txn, b"history_seq", len(records))
            notice = notice_pb2.ChangeNotice(origin=origin)
            notice.recorded_at.CopyFrom(recorded_at)
            for i, record in enumerate(records):
                current = self._current(txn, record.resident_code.encode())
                if check is not None:
                    check(current, record)
                self._check_my_number_free(txn, record)
                record.status = status_for(record.change_reason)
                notice.sequence = first_seq + i
                notice.record.CopyFrom(record)
                notice_bytes = notice.SerializeToString()
                self._store_record(txn, record, current, first_hist + i, notice_bytes)
                txn.put(u64(first_seq + i), notice_bytes, db=self._db["outbox"])
            applied = AppliedRange(first_seq, first_seq + len(records) - 1, len(records))
            if audit_leaf is not None:
                self.audit.append(txn, audit_leaf(applied))
            return applied

        return self.env.write(apply)

    def _check_my_number_free(self, txn: lmdb.Transaction, record: identity_pb2.IdentityRecord) -> None:
        holder = txn.get(record.my_number.encode(), db=self._db["by_my_number"])
        if holder is not None and holder != record.resident_code.encode():
            raise ChangeRejected(
                "already_exists",
                f"my_number {record.my_number} already belongs to resident {holder.decode()}",
            )

    def _current(self, txn: lmdb.Transaction, code: bytes) -> identity_pb2.IdentityRecord | None:
        raw = txn.get(code, db=self._db["records"])
        return identity_pb2.IdentityRecord.FromString(raw) if raw is not None else None

    def _store_record(
        self,
        txn: lmdb.Transaction,
        record: identity_pb2.IdentityRecord,
        current: identity_pb2.IdentityRecord | None,
        history_seq: int,
        notice_bytes: bytes,
    ) -> None:
        code = record.resident_code.encode()
        if current is not None and current.my_number != record.my_number:
            txn.delete(current.my_number.encode(), db=self._db["by_my_number"])
        txn.put(code, record.SerializeToString(), db=self._db["records"])
        txn.put(record.my_number.encode(), code, db=self._db["by_my_number"])
        txn.put(code + u64(history_seq), notice_bytes, db=self._db["history"])

    # -- notices from the tier below (prefecture, national) ---------------------------------------------

    def ingest_notices(
        self,
        notices: Iterable[notice_pb2.ChangeNotice],
        count: int,
        forward: bool,
    ) -> IngestResult:
        """Apply notices not seen before and (if ``forward``) enqueue them upstream, in one transaction."""

        def apply(txn: lmdb.Transaction) -> IngestResult:
            inbox = self._db["inbox"]
            first_hist = self._next(txn, b"history_seq", count)
            marks: dict[bytes, int] = {}
            fresh: list[bytes] = []
            duplicates = applied = 0
            for i, notice in enumerate(notices):
                origin = notice.origin.encode()
                mark = marks.get(origin)
                if mark is None:
                    raw = txn.get(origin, db=inbox)
                    mark = from_u64(raw) if raw else 0
                if notice.sequence <= mark:
                    duplicates += 1
                    continue
                if notice.sequence != mark + 1:
                    raise SequenceGap(notice.origin, mark + 1, notice.sequence)
                marks[origin] = notice.sequence
                applied += 1
                record = notice.record
                notice_bytes = notice.SerializeToString()
                current = self._current(txn, record.resident_code.encode())
                if _is_stale_removal(current, record):
                    # A removal (e.g. 転出) from the old municipality arriving after the move-in at the
                    # new one: keep it as history, keep the newer state.
                    txn.put(
                        record.resident_code.encode() + u64(first_hist + i),
                        notice_bytes,
                        db=self._db["history"],
                    )
                else:
                    self._store_record(txn, record, current, first_hist + i, notice_bytes)
                if forward:
                    fresh.append(notice_bytes)
            for origin, mark in marks.items():
                txn.put(origin, u64(mark), db=inbox)
            if fresh:
                first_seq = self._next(txn, b"outbox_seq", len(fresh))
                for i, notice_bytes in enumerate(fresh):
                    txn.put(u64(first_seq + i), notice_bytes, db=self._db["outbox"])
            return IngestResult(applied=applied, duplicates=duplicates)

        return self.env.write(apply)

    # -- outbox -------------------------------------------------------------------------------------------

    def outbox_after(self, after_seq: int, limit: int, max_bytes: int = 1 << 62) -> list[tuple[int, bytes]]:
        """Outbox entries with sequence > ``after_seq``, in order: at most ``limit`` of them and, past the
        first, no more than ``max_bytes`` in all."""
        out: list[tuple[int, bytes]] = []
        size = 0
        if limit <= 0:
            return out
        with self.env.read() as txn:
            cursor = txn.cursor(db=self._db["outbox"])
            if not cursor.set_range(u64(after_seq + 1)):
                return out
            for key, value in cursor:
                size += len(value)
                if out and size > max_bytes:
                    break
                out.append((from_u64(key), value))
                if len(out) >= limit:
                    break
        return out

    def acknowledge_outbox(self, through_seq: int) -> int:
        """Delete outbox entries up to and including ``through_seq`` (acknowledged upstream)."""

        def apply(txn: lmdb.Transaction) -> int:
            cursor = txn.cursor(db=self._db["outbox"])
            deleted = 0
            if cursor.first():
                while cursor.key() and from_u64(cursor.key()) <= through_seq:
                    cursor.delete()  # moves to the next entry (or past the end: key() is then empty)
                    deleted += 1
            return deleted

        return self.env.write(apply)

    # -- reads --------------------------------------------------------------------------------------------

    def get_record(self, resident_code: str) -> identity_pb2.IdentityRecord | None:
        with self.env.read() as txn:
            return self._current(txn, resident_code.encode())

    def find_by_my_number(self, my_number: str) -> identity_pb2.IdentityRecord | None:
        with self.env.read() as txn:
            code = txn.get(my_number.encode(), db=self._db["by_my_number"])
            return self._current(txn, code) if code is not None else None

    def history(self, resident_code: str) -> list[notice_pb2.ChangeNotice]:
        prefix = resident_code.encode()
        out = []
        with self.env.read() as txn:
            cursor = txn.cursor(db=self._db["history"])
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    out.append(notice_pb2.ChangeNotice.FromString(value))
        return out

    def origin_marks(self) -> dict[str, int]:
        with self.env.read() as txn:
            return {k.decode(): from_u64(v) for k, v in txn.cursor(db=self._db["inbox"])}

    def counts(self) -> dict[str, int]:
        with self.env.read() as txn:
            return {name: txn.stat(self._db[name])["entries"] for name in _DB_NAMES}

    # -- provision log ------------------------------------------------------------------------------------

    def log_provision_durably(
        self, entry: admin_pb2.ProvisionEntry, audit_leaf: Callable[[int], bytes] | None = None
    ) -> int:
        """Append a provision entry (and its audit entry, ``audit_leaf(provision_id)``) and return its id
        once both are on disk (group commit)."""

        def apply(txn: lmdb.Transaction) -> int:
            provision_id = self._next(txn, b"provision_id")
            entry.provision_id = provision_id
            txn.put(u64(provision_id), entry.SerializeToString(), db=self._db["provisions"])
            if audit_leaf is not None:
                self.audit.append(txn, audit_leaf(provision_id))
            return provision_id

        return self.env.submit(apply).result()

    def provisions(self, after_id: int, limit: int) -> list[admin_pb2.ProvisionEntry]:
        out: list[admin_pb2.ProvisionEntry] = []
        if limit <= 0:
            return out
        with self.env.read() as txn:
            cursor = txn.cursor(db=self._db["provisions"])
            if cursor.set_range(u64(after_id + 1)):
                for _, value in cursor:
                    out.append(admin_pb2.ProvisionEntry.FromString(value))
                    if len(out) >= limit:
                        break
        return out


def _is_stale_removal(current: identity_pb2.IdentityRecord | None, incoming: identity_pb2.IdentityRecord) -> bool:
    return (
        current is not None
        and current.status == _ACTIVE
        and incoming.status == _REMOVED
        and current.address.municipality_code != incoming.address.municipality_code
    )
