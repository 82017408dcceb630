"""The provision log: every record provided to an agency, written before the answer leaves.

It is a Merkle log (RFC 6962, :class:`~jukinet.storage.merkle_log.MerkleLog`) of ``ProvisionEntry`` leaves,
so that a resident can be shown, with proofs, every provision of their data (開示). Provision id n is
leaf n − 1. Bulk paths append a chunk's entries in one transaction (:meth:`ProvisionLog.append_many`).

**The index from resident to leaf** is written behind the log, not in the provision's transaction: a
chunk of a thousand provisions for a thousand residents would otherwise dirty a thousand pages of a
B-tree keyed by resident at every commit. A follower (:meth:`ProvisionLog.index_step`, run in the
background by the node) reads the leaves not yet indexed, sorts them by resident and writes them as one
new *segment* — keys ``segment ‖ 住民票コード ‖ leaf`` in ascending order, so LMDB appends them to the
end of the tree. A resident's provisions are then one range per segment plus the few leaves not yet
indexed (:meth:`ProvisionLog.of_resident` reads both, so the index is never behind what it answers).
When :data:`MERGE_FANOUT` segments of one level exist, :meth:`index_step` merges them into one segment
of the next level, at most :data:`INDEX_STEP` keys per transaction, so lookups read O(log n) segments
and no step holds the node's writer for long.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice, repeat
from operator import attrgetter, itemgetter, methodcaller

import lmdb

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.wire import Framer, varint
from jukinet.storage.environment import Environment
from jukinet.storage.layout import Db
from jukinet.storage.merkle_log import PROVISION_DB_NAMES, MerkleLog
from jukinet.v1 import admin_pb2, log_view_pb2

_LAST_ID = 2**64 - 1  # provision ids are uint64 on the wire
STORED_FROM_LEVEL = 4
"""Subtree hashes stored from level 4 (16 leaves) up: one eighth of the writes of storing every level."""
INDEX_STEP = 16_384
"""At most this many index keys written (or merged) per transaction of the follower."""
MERGE_FANOUT = 8
"""This many segments of one level are merged into one of the next."""
MAX_TAIL_SCAN = 500_000
"""A resident lookup reads at most this many not-yet-indexed leaves; further behind, it is UNAVAILABLE
(the follower indexes hundreds of thousands a second: this only happens while it is stopped)."""

_SEGMENT = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_META = struct.Struct(">BQQ")  # level, keys, state (live; being written by a merge; merged, being deleted)
_UPTO = b"upto"
_TREE = b"tree"  # the Merkle tree's size: leaves are appended first and integrated behind (MerkleLog)
_SEG = b"seg:"
_MERGE = b"merge"  # the merge in progress: output segment ‖ its inputs ‖ the last key written
_CODE_CHARS = 11
_LIVE, _MERGING, _RETIRED = 0, 1, 2


@dataclass(frozen=True)
class IndexStep:
    """What one :meth:`ProvisionLog.index_step` did."""

    indexed: int  # leaves added to the index
    merged: int  # keys moved by a merge
    behind: int  # leaves still not indexed after the step


_ONE_BYTE = [bytes((n,)) for n in range(128)]
_RESIDENT = attrgetter("resident_code")
_WITHOUT_SEGMENT = itemgetter(slice(_SEGMENT.size, None))
_frame = Framer(log_view_pb2.ProvisionResidentViews.DESCRIPTOR.fields_by_name["entries"].number)
_ID_LOW = [b"\x08" + bytes((n | 0x80,)) for n in range(128)]  # field 1 (provision_id): tag, low 7 bits


def _id_fields(first: int, count: int) -> list[bytes]:
    """Field 1 (``provision_id``, tag and varint) of ids ``first`` .. ``first + count − 1``: within each run
    of 128 ids only the lowest varint byte changes, so each run is one C-level ``map``."""
    out: list[bytes] = []
    i, end = first, first + count
    while i < end:
        if i < 0x80:
            stop = min(end, 0x80)
            out.extend(b"\x08" + bytes((n,)) for n in range(i, stop))
        else:
            stop = min(end, (i >> 7) + 1 << 7)
            low = i & 0x7F
            out.extend(map(bytes.__add__, _ID_LOW[low : low + stop - i], repeat(varint(i >> 7), stop - i)))
        i = stop
    return out


def _template_parts(template: admin_pb2.ProvisionEntry) -> tuple[bytes, bytes]:
    """The template's serialized fields before the resident code (2–4) and after it (6 on)."""
    if template.provision_id or template.resident_code:
        raise ValueError("a provision template names neither an id nor a resident")
    head = admin_pb2.ProvisionEntry()
    head.CopyFrom(template)
    tail = admin_pb2.ProvisionEntry()
    tail.CopyFrom(template)
    for name in ("provided_at", "agency", "business_code"):
        tail.ClearField(name)
    for field in admin_pb2.ProvisionEntry.DESCRIPTOR.fields:
        if field.number > _RESIDENT_FIELD:
            head.ClearField(field.name)
    return head.SerializeToString(), tail.SerializeToString()


_RESIDENT_FIELD = admin_pb2.ProvisionEntry.DESCRIPTOR.fields_by_name["resident_code"].number


class ProvisionLog:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self.log = MerkleLog(
            env, "provision", PROVISION_DB_NAMES, STORED_FROM_LEVEL, integrated_at=(Db.PROVISION_INDEX_STATE, _TREE)
        )
        self._index = env.dbs[Db.PROVISION_INDEX]
        self._state = env.dbs[Db.PROVISION_INDEX_STATE]

    # -- writing -----------------------------------------------------------------------------------------

    def append(self, txn: lmdb.Transaction, entry: admin_pb2.ProvisionEntry) -> int:
        """Give ``entry`` the next provision id and store it inside ``txn``; returns the id."""
        return self.append_many(txn, (entry,)).start

    def append_many(self, txn: lmdb.Transaction, entries: Sequence[admin_pb2.ProvisionEntry]) -> range:
        """Give each entry the next provision id, in order, and store them inside ``txn``; returns the ids."""
        first = self.log.size_in(txn) + 1
        leaves = []
        for i, entry in enumerate(entries, first):
            entry.provision_id = i
            leaves.append(entry.SerializeToString())
        self.log.append_many(txn, leaves)
        return range(first, first + len(leaves))

    def append_provided(
        self, txn: lmdb.Transaction, template: admin_pb2.ProvisionEntry, resident_codes: Sequence[str]
    ) -> range:
        """One entry per code, each ``template`` with that code and the next provision id, stored inside
        ``txn``; returns the ids. The bulk path (a chunk of a batch): each leaf is put together from the
        template's serialized fields around the id and the code, byte for byte what ``SerializeToString``
        of the whole entry gives (protobuf writes known fields in field-number order;
        tests/test_provision_log.py checks it), at a fraction of the cost of building a message per record."""
        head, tail = _template_parts(template)
        first = self.log.size_in(txn) + 1
        codes = [code.encode("ascii") for code in resident_codes]
        lengths = map(_ONE_BYTE.__getitem__, map(len, codes))  # a 住民票コード is 11 characters
        leaves = list(
            map(b"".join, zip(_id_fields(first, len(codes)), repeat(head + b"\x2a"), lengths, codes, repeat(tail)))
        )
        self.log.append_many(txn, leaves)
        return range(first, first + len(leaves))

    # -- reading -----------------------------------------------------------------------------------------

    def page(self, after_id: int, limit: int) -> list[admin_pb2.ProvisionEntry]:
        """Entries with ids after ``after_id``, at most ``limit``."""
        if limit <= 0 or after_id >= _LAST_ID:  # nothing comes after the last id (and after_id + 1 would not pack)
            return []
        size = self.log.size()
        if after_id >= size:
            return []
        end = min(size, after_id + limit)
        return [admin_pb2.ProvisionEntry.FromString(raw) for raw in self.log.entries(after_id, end)]

    def count(self) -> int:
        return self.log.size()

    def of_resident(
        self, resident_code: str, after_id: int = 0, limit: int = 1000
    ) -> tuple[list[admin_pb2.ProvisionEntry], bool]:
        """The resident's provisions with ids after ``after_id``, in id order, at most ``limit``; and whether
        more follow (:meth:`leaves_of_resident`, parsed)."""
        found, more = self.leaves_of_resident(resident_code, after_id, limit)
        return [entry for _, _, entry in found], more

    def leaves_of_resident(
        self, resident_code: str, after_id: int = 0, limit: int = 1000
    ) -> tuple[list[tuple[int, bytes, admin_pb2.ProvisionEntry]], bool]:
        """``(leaf index, leaf bytes as hashed, entry)`` of the resident's provisions with ids after
        ``after_id``, in id order, at most ``limit``; and whether more follow. Each live segment is read
        from ``segment ‖ code ‖ after_id`` on, at most ``limit + 1`` keys (enough to know whether more
        follow), so a page costs O(segments × limit) index reads however many provisions the resident has;
        an entry whose stored code is not ``resident_code`` is dropped (an index key naming the wrong leaf
        never discloses another resident's provision)."""
        key = resident_code.encode("ascii")
        if len(key) != _CODE_CHARS:
            raise Rejected(Problem.INVALID, f"a 住民票コード has {_CODE_CHARS} digits")
        with self._env.read() as txn:
            size = self.log.size_in(txn)
            upto = self._upto(txn)
            if size - upto > MAX_TAIL_SCAN:
                raise Rejected(
                    Problem.UNAVAILABLE, f"the provision index is {size - upto} entries behind; try again shortly"
                )
            leaves: set[int] = set()
            cursor = txn.cursor(db=self._index)
            start = _U64.pack(min(max(after_id, 0), _LAST_ID))
            for segment, _ in self._segments(txn):
                prefix = _SEGMENT.pack(segment) + key
                if not cursor.set_range(prefix + start):
                    continue
                for taken, k in enumerate(cursor.iternext(values=False), 1):
                    if not k.startswith(prefix):
                        break
                    leaves.add(_U64.unpack(k[-8:])[0])
                    if taken > limit:  # limit + 1 keys of this segment: enough to know more follow
                        break
            leaf_cursor = self.log.leaf_cursor(txn)
            if upto < size and leaf_cursor.set_key(_U64.pack(max(upto, after_id))):
                for k, raw in leaf_cursor:
                    if admin_pb2.ProvisionEntry.FromString(raw).resident_code == resident_code:
                        leaves.add(_U64.unpack(k)[0])
            get = leaf_cursor.get
            found: list[tuple[int, bytes, admin_pb2.ProvisionEntry]] = []
            for index in sorted(leaves):
                raw = get(_U64.pack(index))
                entry = admin_pb2.ProvisionEntry.FromString(raw) if raw is not None else None
                # defence in depth: only an entry of the code asked, whatever an index key says
                if entry is not None and entry.resident_code == resident_code:
                    found.append((index, bytes(raw), entry))
                if len(found) > limit:
                    break
            return found[:limit], len(found) > limit

    def index_behind(self) -> int:
        """Leaves not yet in the resident index."""
        return self.index_state()[1]

    def index_state(self) -> tuple[int, int]:
        """(leaves in the log, leaves not yet in the resident index): one short read."""
        with self._env.read() as txn:
            size = self.log.size_in(txn)
            return size, size - self._upto(txn)

    # -- the follower ---------------------------------------------------------------------------------------

    def index_step(self, compute: Callable[[int, int], list[bytes]] | None = None) -> IndexStep:
        """Index up to :data:`INDEX_STEP` new leaves as a new segment, or advance a merge, in one
        transaction through the node's writer (group commit). A new segment's keys are worked out from a
        read snapshot first (``compute(start, end)``, e.g. in another process; default
        :meth:`segment_keys` here), so the writer only appends them. One caller at a time."""
        maintained = self._env.submit(self._maintain).result()
        if maintained is not None:
            return maintained
        with self._env.read() as txn:
            size, upto = self.log.size_in(txn), self._upto(txn)
        end = min(size, upto + INDEX_STEP)
        if end == upto:
            return IndexStep(0, 0, 0)
        keys = (compute or self.segment_keys)(upto, end)
        return self._env.submit(lambda txn: self._add_segment(txn, upto, end, keys)).result()

    def segment_keys(self, start: int, end: int) -> list[bytes]:
        """``住民票コード ‖ leaf`` of leaves [start, end), sorted: a new segment's keys (one read snapshot; the
        leaves' codes read in one parse)."""
        with self._env.read() as txn:
            cursor = self.log.leaf_cursor(txn)
            cursor.set_key(_U64.pack(start))
            leaves = list(islice(cursor.iternext(), end - start))
        if len(leaves) != end - start:
            raise Rejected(Problem.BROKEN, f"provision log leaves {start}..{end - 1}: {len(leaves)} present")
        ids, raws = zip(*leaves, strict=True)
        views = log_view_pb2.ProvisionResidentViews.FromString(_frame(raws)).entries
        keys = list(map(bytes.__add__, map(methodcaller("encode", "ascii"), map(_RESIDENT, views)), ids))
        keys.sort()
        return keys

    def _maintain(self, txn: lmdb.Transaction) -> IndexStep | None:
        """Delete retired keys or advance the merge in progress, if any: a merge finishes before a new
        segment starts (its output is written by appending, so it must stay the highest segment)."""
        merged = self._delete_step(txn) or self._merge_step(txn)
        if not merged:
            return None
        return IndexStep(0, merged, self.log.size_in(txn) - self._upto(txn))

    def _add_segment(self, txn: lmdb.Transaction, start: int, end: int, keys: list[bytes]) -> IndexStep:
        if self._upto(txn) != start or txn.get(_MERGE, db=self._state) is not None:
            raise Rejected(Problem.CONFLICT, f"the provision index moved past {start} meanwhile")
        if len(keys) != end - start or any(len(k) != _CODE_CHARS + _U64.size for k in keys[:1]):
            raise Rejected(Problem.BROKEN, f"segment keys for leaves {start}..{end - 1} do not fit them")
        segment = self._new_segment(txn, 0, len(keys), _LIVE)
        self._append_keys(txn, _SEGMENT.pack(segment), keys, f"segment {segment}")
        txn.put(_UPTO, _U64.pack(end), db=self._state)
        self._plan_merge(txn)
        return IndexStep(end - start, 0, self.log.size_in(txn) - end)

    def _plan_merge(self, txn: lmdb.Transaction) -> None:
        """Start merging the oldest MERGE_FANOUT live segments of a level, when a level has that many."""
        if txn.get(_MERGE, db=self._state) is not None:
            return
        by_level: dict[int, list[int]] = {}
        for segment, (level, _keys, state) in self._segments(txn):
            if state == _LIVE:
                by_level.setdefault(level, []).append(segment)
        for level, segments in sorted(by_level.items()):
            if len(segments) >= MERGE_FANOUT:
                inputs = segments[:MERGE_FANOUT]
                total = sum(self._meta(txn, s)[1] for s in inputs)
                output = self._new_segment(txn, level + 1, total, _MERGING)
                plan = _SEGMENT.pack(output) + b"".join(_SEGMENT.pack(s) for s in inputs)
                txn.put(_MERGE, struct.pack(">B", len(inputs)) + plan, db=self._state)
                return

    def _merge_step(self, txn: lmdb.Transaction) -> int:
        """Move up to INDEX_STEP keys of the merge in progress into its output segment; 0 if none is."""
        plan = txn.get(_MERGE, db=self._state)
        if plan is None:
            return 0
        count = plan[0]
        output = _SEGMENT.unpack(plan[1:5])[0]
        inputs = [_SEGMENT.unpack(plan[5 + 4 * i : 9 + 4 * i])[0] for i in range(count)]
        resume = plan[5 + 4 * count :]  # the last code ‖ leaf written to the output (empty: none yet)
        out_prefix = _SEGMENT.pack(output)
        # Up to `per` keys after `resume` from each input: every key up to the smallest last key of an input
        # that gave `per` (one that gave fewer is exhausted) is among them, so that many go out in order.
        per = max(1, INDEX_STEP // len(inputs))
        runs = [self._keys_after(txn, s, resume, per) for s in inputs]
        merged = sorted(chain.from_iterable(runs))
        full = [run[-1] for run in runs if len(run) == per]
        if full:
            merged = merged[: bisect.bisect_right(merged, min(full))]
        self._append_keys(txn, out_prefix, merged, f"merge output {output}")
        if full:
            txn.put(_MERGE, plan[: 5 + 4 * count] + merged[-1], db=self._state)
            return len(merged)
        # Every key is in the output: the output goes live and the inputs are retired in the same commit
        # (lookups read either, never both); later steps delete the retired keys, INDEX_STEP at a time.
        for segment in inputs:
            level, keys, _ = self._meta(txn, segment)
            txn.put(_SEG + _SEGMENT.pack(segment), _META.pack(level, keys, _RETIRED), db=self._state)
        level, keys, _ = self._meta(txn, output)
        txn.put(_SEG + _SEGMENT.pack(output), _META.pack(level, keys, _LIVE), db=self._state)
        txn.delete(_MERGE, db=self._state)
        return max(len(merged), 1)

    def _append_keys(self, txn: lmdb.Transaction, prefix: bytes, keys: list[bytes], what: str) -> None:
        """``prefix ‖ key`` for each of ``keys`` (ascending), appended to the end of the index."""
        _, added = txn.cursor(db=self._index).putmulti(zip(map(prefix.__add__, keys), repeat(b"")), append=True)
        if added != len(keys):
            raise Rejected(Problem.BROKEN, f"provision index {what} is not the last segment")

    def _keys_after(self, txn: lmdb.Transaction, segment: int, after: bytes, limit: int) -> list[bytes]:
        """At most ``limit`` keys of ``segment`` after ``after`` (without the segment prefix), in order."""
        prefix = _SEGMENT.pack(segment)
        cursor = txn.cursor(db=self._index)
        if not cursor.set_range(prefix + after):
            return []
        keys = list(islice(cursor.iternext(values=False), limit + 1))
        keys = keys[: bisect.bisect_left(keys, _SEGMENT.pack(segment + 1))]  # this segment's only
        if keys and keys[0] == prefix + after:
            del keys[0]
        return list(map(_WITHOUT_SEGMENT, keys[:limit]))

    def _delete_step(self, txn: lmdb.Transaction) -> int:
        """Delete up to INDEX_STEP keys of retired segments; 0 if there are none."""
        retired = [s for s, meta in self._segments(txn, _RETIRED)]
        if not retired:
            return 0
        deleted = 0
        cursor = txn.cursor(db=self._index)
        for segment in retired:
            prefix = _SEGMENT.pack(segment)
            found = cursor.set_range(prefix)
            while found and cursor.key().startswith(prefix):
                if deleted == INDEX_STEP:
                    return deleted
                found = cursor.delete()  # moves to the next key
                deleted += 1
            txn.delete(_SEG + prefix, db=self._state)
        return max(deleted, 1)

    def _new_segment(self, txn: lmdb.Transaction, level: int, keys: int, state: int) -> int:
        cursor = txn.cursor(db=self._state)
        last = 0
        if cursor.set_range(_SEG):
            for k in cursor.iternext(values=False):
                if not k.startswith(_SEG):
                    break
                last = _SEGMENT.unpack(k[len(_SEG) :])[0]
        segment = last + 1
        txn.put(_SEG + _SEGMENT.pack(segment), _META.pack(level, keys, state), db=self._state)
        return segment

    def _meta(self, txn: lmdb.Transaction, segment: int) -> tuple[int, int, int]:
        raw = txn.get(_SEG + _SEGMENT.pack(segment), db=self._state)
        if raw is None:
            raise Rejected(Problem.BROKEN, f"provision index segment {segment} has no record")
        return _META.unpack(raw)

    def _segments(self, txn: lmdb.Transaction, state: int = _LIVE) -> Iterator[tuple[int, tuple[int, int, int]]]:
        """Segments in ``state``; lookups read the live ones (a merge's inputs stay live until its output
        is complete; then, in one commit, the output is live and the inputs retired)."""
        cursor = txn.cursor(db=self._state)
        if cursor.set_range(_SEG):
            for k, v in cursor:
                if not k.startswith(_SEG):
                    break
                meta = _META.unpack(v)
                if meta[2] == state:
                    yield _SEGMENT.unpack(k[len(_SEG) :])[0], meta

    def _upto(self, txn: lmdb.Transaction) -> int:
        raw = txn.get(_UPTO, db=self._state)
        return _U64.unpack(raw)[0] if raw else 0
