"""The provision log: every record provided to an agency, written before the answer leaves."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

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

    def append_many(self, txn: lmdb.Transaction, entries: Iterable[admin_pb2.ProvisionEntry]) -> range:
        """Store ``entries`` inside ``txn`` under consecutive provision ids; returns the ids, in order.

        :class:`SharedEntries` (a chunk's entries, alike but for the resident) is encoded without building a
        message per entry; any other iterable of entries is numbered and serialized one by one."""
        if isinstance(entries, SharedEntries):
            first = self._first(txn, len(entries))
            ids = range(first, first + len(entries))
            cursor = txn.cursor(db=self._db)
            cursor.putmulti(zip(map(u64, ids), entries.encoded(first), strict=True), append=True)
            return ids
        items = list(entries)
        first = self._first(txn, len(items))
        for offset, entry in enumerate(items):
            entry.provision_id = first + offset
            txn.put(u64(entry.provision_id), entry.SerializeToString(), db=self._db, append=True)
        return range(first, first + len(items))

    def _first(self, txn: lmdb.Transaction, count: int) -> int:
        if not count:
            return self._env.peek(txn, Counter.PROVISION)
        return self._env.reserve(txn, Counter.PROVISION, count)

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


class SharedEntries(Sequence[admin_pb2.ProvisionEntry]):
    """Provision entries that differ only in their resident (one chunk of a batch: same agency, business,
    time, query kind, items and reference), as a sequence of entries (without ids until stored).

    :meth:`encoded` builds each entry's bytes from the template's encoded parts and the resident code,
    exactly as ``SerializeToString`` of the full entry would (fields in number order; tested), which costs
    a fraction of a message per record."""

    def __init__(self, template: admin_pb2.ProvisionEntry, resident_codes: Sequence[str]) -> None:
        if template.provision_id or template.resident_code:
            raise ValueError("the template of shared entries names no provision id and no resident")
        self._template = template
        self._codes = resident_codes
        head = admin_pb2.ProvisionEntry()
        head.CopyFrom(template)
        head.ClearField("query_kind")
        head.ClearField("items")
        head.ClearField("reference")
        tail = admin_pb2.ProvisionEntry(
            query_kind=template.query_kind, items=template.items, reference=template.reference
        )
        self._head = head.SerializeToString()  # fields 2..4: provided_at, agency, business_code
        self._tail = tail.SerializeToString()  # fields 6..8: query_kind, items, reference

    def __len__(self) -> int:
        return len(self._codes)

    @overload
    def __getitem__(self, index: int) -> admin_pb2.ProvisionEntry: ...
    @overload
    def __getitem__(self, index: slice) -> list[admin_pb2.ProvisionEntry]: ...
    def __getitem__(self, index: int | slice) -> admin_pb2.ProvisionEntry | list[admin_pb2.ProvisionEntry]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        entry = admin_pb2.ProvisionEntry()
        entry.CopyFrom(self._template)
        entry.resident_code = self._codes[index]
        return entry

    def encoded(self, first_id: int) -> Iterator[bytes]:
        """Each entry serialized, numbered from ``first_id``."""
        head, tail = self._head, self._tail
        high_of, high = -1, b""
        for provision_id, code in enumerate(self._codes, first_id):
            raw = code.encode()
            length = _LENGTH[len(raw)] if len(raw) < 0x80 else _varint(len(raw))
            if provision_id < 0x80:
                varint = _LOW_LAST[provision_id]
            else:  # the low 7 bits from a table, the rest once per 128 ids
                if provision_id >> 7 != high_of:
                    high_of = provision_id >> 7
                    high = _varint(high_of)
                varint = _LOW_MORE[provision_id & 0x7F] + high
            yield b"\x08" + varint + head + b"\x2a" + length + raw + tail


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_LOW_LAST = [bytes((b,)) for b in range(0x80)]  # a varint's last byte
_LOW_MORE = [bytes((b | 0x80,)) for b in range(0x80)]  # a varint's byte with more to follow
_LENGTH = _LOW_LAST  # a code's length (one byte below 128)
