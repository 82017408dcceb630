"""Append-only logs as dense RFC 6962 Merkle trees stored in the node's LMDB environment.

A log shares the node's environment so that an action and its log entry commit in one transaction
(pass the action's ``txn`` to :meth:`MerkleLog.append`). Each log has three databases — leaves, perfect
subtree hashes, signed tree heads — described in :mod:`jukinet.storage.layout`: the audit log
(``audit_*``), the provision log (``provision_*``, :mod:`jukinet.storage.provisions`) and a CS's
copy-issuance log (``copy_issuance_*``, :mod:`jukinet.storage.copies`).

Appending leaf n writes every perfect subtree it completes at level ``stored_from`` or above, so any
root or proof needs O(log n) node reads plus at most 2^stored_from leaf reads per missing lower
subtree. The audit log stores every level (``stored_from`` 0); a log written a thousand leaves at a
time (provisions) stores from level 4 and so writes an eighth of the subtree hashes. The log size is
one past the last key of the leaves database, which is correct inside a transaction that has already
appended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import methodcaller

import lmdb

from jukinet import merkle
from jukinet.domain.errors import Problem, Rejected
from jukinet.storage.environment import Environment
from jukinet.storage.layout import U64 as _U64
from jukinet.storage.layout import Db, audit_node_key, parse_audit_node_key

AUDIT_DB_NAMES = (Db.AUDIT_LEAVES.value, Db.AUDIT_NODES.value, Db.AUDIT_HEADS.value)
PROVISION_DB_NAMES = (Db.PROVISION_LEAVES.value, Db.PROVISION_NODES.value, Db.PROVISION_HEADS.value)
COPY_ISSUANCE_DB_NAMES = (Db.COPY_ISSUANCE_LEAVES.value, Db.COPY_ISSUANCE_NODES.value, Db.COPY_ISSUANCE_HEADS.value)
_LEAF = b"\x00"  # RFC 6962 leaf prefix
_digest = methodcaller("digest")
_READ_CHUNK = 4096  # leaves (or heads) per read transaction in long walks, so map growth is not held up

CheckHead = Callable[[int, bytes, bytes], "str | None"]
Node = tuple[int, int, bytes]  # (level, index, subtree hash)


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :meth:`AuditLog.verify`: ``problem`` describes the first thing that did not fit."""

    size: int
    heads_checked: int
    problem: str | None = None
    first_bad_index: int | None = None
    log: str = "audit"

    @property
    def ok(self) -> bool:
        return self.problem is None

    def __str__(self) -> str:
        if self.ok:
            return f"{self.log} log ok: {self.size} entries, {self.heads_checked} tree heads checked"
        return f"{self.log} log damaged: {self.problem}"


class MerkleLog:
    """Append-only Merkle log over three databases of ``env``: ``names`` = (leaves, nodes, heads)."""

    def __init__(
        self,
        env: Environment,
        name: str,
        names: tuple[str, str, str],
        stored_from: int = 0,
        integrated_at: tuple[str, bytes] | None = None,
    ) -> None:
        """``integrated_at`` (a database and a key in it) makes the log one whose leaves are appended first
        and integrated into the tree later (:meth:`integrate`); that key holds the tree's size."""
        missing = [db for db in names if db not in env.dbs]
        if missing:
            raise Rejected(Problem.BROKEN, f"environment at {env.path} lacks the {name} databases {missing}")
        self.name = name
        self.env = env
        self._leaves, self._nodes, self._heads = (env.dbs[name] for name in names)
        self._stored_from = stored_from
        self._integrated = None if integrated_at is None else (env.dbs[integrated_at[0]], integrated_at[1])

    # -- writing -------------------------------------------------------------------------------------

    def append(self, txn: lmdb.Transaction, leaf_data: bytes) -> int:
        """Append one entry inside ``txn``; returns its index."""
        return self.append_many(txn, (leaf_data,)).start

    def append_many(self, txn: lmdb.Transaction, leaves: Sequence[bytes]) -> range:
        """Append entries inside ``txn``; returns their indexes. The leaves go in with one ``putmulti``
        (appended: keys ascend past the last); a log integrated later stops there, any other puts the
        subtree hashes the leaves complete (hashed with one C-level ``map`` a level)."""
        first = self._size(txn)
        ids = range(first, first + len(leaves))
        frontier = None if self._integrated else self._frontier(txn, first)
        cursor = txn.cursor(db=self._leaves)
        _, added = cursor.putmulti(zip(map(_U64.pack, ids), leaves, strict=True), append=True)
        if added != len(leaves):
            raise Rejected(Problem.BROKEN, f"log entries {first}..{first + len(leaves) - 1}: {added} appended")
        if frontier is not None:
            self._put_nodes(txn, frontier.extend(_leaf_hashes(leaves), self._stored_from))
        return ids

    # -- integration (a log whose tree follows its leaves) --------------------------------------------

    def integrate(self, limit: int, compute: Callable[[int, int], list[Node]] | None = None) -> int:
        """Bring up to ``limit`` appended leaves into the tree; returns how many. The hashing reads a
        snapshot and may run anywhere that can open this environment (``compute(start, end)``, e.g. in
        another process; default :meth:`subtree_hashes` here); only the resulting subtree hashes and the
        new tree size go through the node's writer. One integrator at a time (a second one's write is
        refused, and changes nothing)."""
        if self._integrated is None:
            return 0
        with self.env.read() as txn:
            start = self._tree_size(txn)
            end = min(self._size(txn), start + limit)
        if end <= start:
            return 0
        nodes = (compute or self.subtree_hashes)(start, end)
        db, key = self._integrated

        def write(txn: lmdb.Transaction) -> None:
            if self._tree_size(txn) != start:
                raise Rejected(Problem.CONFLICT, f"the {self.name} log was integrated past {start} meanwhile")
            self._put_nodes(txn, nodes)
            txn.put(key, _U64.pack(end), db=db)

        self.env.submit(write).result()
        return end - start

    def subtree_hashes(self, start: int, end: int) -> list[Node]:
        """``(level, index, hash)`` of every stored subtree that leaves [start, end) complete, given the tree
        of the first ``start`` (read in one snapshot)."""
        with self.env.read() as txn:
            frontier = self._frontier(txn, start)
            cursor = txn.cursor(db=self._leaves)
            if not cursor.set_key(_U64.pack(start)):
                raise Rejected(Problem.BROKEN, f"{self.name} log entry {start} is missing")
            leaves = [value for _, value in islice(cursor.iternext(), end - start)]
        if len(leaves) != end - start:
            raise Rejected(Problem.BROKEN, f"{self.name} log entries {start}..{end - 1}: {len(leaves)} present")
        return frontier.extend(_leaf_hashes(leaves), self._stored_from)

    def track_tree(self) -> None:
        """For a log integrated later: start tracking its tree size if nothing does yet. A log written
        before integration existed hashed every leaf in its own transaction, so its tree is all of its
        leaves; a new log's is empty. (Called when the node opens its store for writing.)"""
        if self._integrated is None:
            return
        db, key = self._integrated

        def adopt(txn: lmdb.Transaction) -> None:
            if txn.get(key, db=db) is None:
                txn.put(key, _U64.pack(self._size(txn)), db=db)

        self.env.write(adopt)

    def integration_backlog(self) -> int:
        """Leaves appended and not yet in the tree."""
        with self.env.read() as txn:
            return self._size(txn) - self._tree_size(txn)

    def _put_nodes(self, txn: lmdb.Transaction, nodes: Iterable[Node]) -> None:
        put, db, node_key = txn.put, self._nodes, audit_node_key
        for level, index, h in nodes:
            put(node_key(level, index), h, db=db)

    def put_tree_head(self, txn: lmdb.Transaction | None, tree_size: int, sth_bytes: bytes) -> None:
        """Store the signed tree head for ``tree_size`` (in ``txn``, or in a transaction of its own)."""
        if txn is None:
            self.env.write(lambda t: self.put_tree_head(t, tree_size, sth_bytes))
            return
        size = self._tree_size(txn)
        if not 0 <= tree_size <= size:
            raise ValueError(f"tree head for size {tree_size} but the log has {size} entries in its tree")
        txn.put(_U64.pack(tree_size), bytes(sth_bytes), db=self._heads)

    # -- reading -------------------------------------------------------------------------------------

    def size(self) -> int:
        """Number of entries committed."""
        with self.env.read() as txn:
            return self._size(txn)

    def tree_size(self) -> int:
        """Number of entries in the Merkle tree: heads, roots and proofs cover at most these (all entries
        committed, but for a log integrated later)."""
        with self.env.read() as txn:
            return self._tree_size(txn)

    def size_in(self, txn: lmdb.Transaction) -> int:
        """Number of entries as ``txn`` sees them (its own appends included)."""
        return self._size(txn)

    def leaf_cursor(self, txn: lmdb.Transaction) -> lmdb.Cursor:
        """A cursor over the leaves (key: u64 index, value: leaf data), for followers that read in order."""
        return txn.cursor(db=self._leaves)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` entries (default: all), from O(log n) stored subtrees."""
        with self.env.read() as txn:
            current = self._tree_size(txn)
            if size is None:
                size = current
            _check_size(size, current)
            return self._frontier(txn, size).root()

    def subtree_hash(self, txn: lmdb.Transaction, start: int, end: int) -> bytes:
        """MTH of entries [start, end), read inside ``txn`` (for :mod:`jukinet.merkle`'s provers)."""
        size = self._tree_size(txn)
        if not 0 <= start < end <= size:
            raise ValueError(f"subtree [{start}, {end}) is not a non-empty range of the log's {size} entries")
        return self._subtree(txn, start, end)

    def inclusion_proof(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """``(leaf hash, audit path)`` of entry ``index`` in the tree of the first ``size`` entries."""
        with self.env.read() as txn:
            _check_size(size, self._tree_size(txn))
            path = merkle.inclusion_path(index, size, lambda s, e: self._subtree(txn, s, e))
            return self._node(txn, 0, index), path

    def leaf(self, index: int) -> bytes:
        """The data of entry ``index`` (NOT_FOUND beyond the log)."""
        with self.env.read() as txn:
            value = txn.get(_U64.pack(index), db=self._leaves)
            if value is None:
                raise Rejected(Problem.NOT_FOUND, f"log entry {index} does not exist")
            return bytes(value)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """Consistency proof from the tree of ``old`` entries to the tree of ``new`` entries."""
        with self.env.read() as txn:
            _check_size(new, self._tree_size(txn))
            return merkle.consistency_proof(old, new, lambda s, e: self._subtree(txn, s, e))

    def entries(self, start: int, end: int, max_bytes: int | None = None) -> list[bytes]:
        """Leaf data of entries [start, end); the caller bounds the range. With ``max_bytes``, stops before
        the entries' total would pass it (a page): the first entry is always returned, unless it alone is
        larger, which is refused as BROKEN (no entry written by this version is)."""
        with self.env.read() as txn:
            size = self._size(txn)
            if not 0 <= start <= end <= size:
                raise ValueError(f"entries [{start}, {end}) are not within the log's {size} entries")
            out: list[bytes] = []
            if start == end:
                return out
            cursor = txn.cursor(db=self._leaves)
            cursor.set_key(_U64.pack(start))
            total = 0
            for key, value in cursor:
                if len(out) == end - start:
                    break
                if max_bytes is not None:
                    total += len(value)
                    if total > max_bytes:
                        if not out:
                            raise Rejected(Problem.BROKEN, f"log entry {start} alone is over {max_bytes} bytes")
                        return out
                if _U64.unpack(key)[0] != start + len(out):
                    raise Rejected(Problem.BROKEN, f"log entry {start + len(out)} is missing")
                out.append(value)
            if len(out) != end - start:
                raise Rejected(Problem.BROKEN, f"log entry {start + len(out)} is missing")
            return out

    def latest_tree_head(self) -> tuple[int, bytes] | None:
        """``(tree size, STH bytes)`` of the largest stored tree head, or None."""
        with self.env.read() as txn:
            cursor = txn.cursor(db=self._heads)
            if not cursor.last():
                return None
            return _U64.unpack(cursor.key())[0], cursor.value()

    def tree_heads(self) -> Iterator[tuple[int, bytes]]:
        """All stored tree heads by increasing size (read in chunks, each in a short transaction)."""
        after: int | None = None
        while True:
            batch: list[tuple[int, bytes]] = []
            with self.env.read() as txn:
                cursor = txn.cursor(db=self._heads)
                found = cursor.first() if after is None else cursor.set_range(_U64.pack(after + 1))
                while found and len(batch) < _READ_CHUNK:
                    batch.append((_U64.unpack(cursor.key())[0], cursor.value()))
                    found = cursor.next()
            yield from batch
            if len(batch) < _READ_CHUNK:
                return
            after = batch[-1][0]

    # -- verification ----------------------------------------------------------------------------------

    def verify(self, check_head: CheckHead | None = None) -> VerifyReport:
        """Re-derive the whole stored tree from the entries and report the first thing that does not fit.

        Every leaf hash is recomputed from the stored entry, every stored interior node from its
        children, and for each stored tree head ``check_head(tree_size, sth_bytes, root)`` is called with
        the root recomputed from the entries; it returns a problem description or None. The walk reads
        in chunks of short transactions over the entries present when it starts.
        """
        size = self.tree_size()  # a log integrated later: its leaves beyond the tree are in no head yet
        heads = self.tree_heads()
        head = next(heads, None)
        checked = 0

        def check(tree_size: int, sth: bytes, root: bytes) -> str | None:
            nonlocal checked
            checked += 1
            if check_head is None:
                return None
            problem = check_head(tree_size, sth, root)
            return f"tree head for size {tree_size}: {problem}" if problem else None

        def fail(problem: str, index: int | None) -> VerifyReport:
            return VerifyReport(size, checked, problem, index, self.name)

        frontier = merkle.Frontier()
        while head is not None and head[0] == 0:
            if problem := check(0, head[1], merkle.EMPTY_ROOT):
                return fail(problem, None)
            head = next(heads, None)
        leaf_hash, node_key, leaf_key = merkle.leaf_hash, audit_node_key, _U64.pack
        for chunk_start in range(0, size, _READ_CHUNK):
            with self.env.read() as txn:
                get_leaf = txn.cursor(db=self._leaves).get
                get_node = txn.cursor(db=self._nodes).get
                for i in range(chunk_start, min(size, chunk_start + _READ_CHUNK)):
                    data = get_leaf(leaf_key(i))
                    if data is None:
                        return fail(f"entry {i}: leaf data is missing", i)
                    for level, index, h in frontier.append(leaf_hash(data)):
                        if level < self._stored_from:
                            continue
                        stored = get_node(node_key(level, index))
                        if stored == h:
                            continue
                        lo, hi = index << level, ((index + 1) << level) - 1
                        if level == 0:
                            if stored is None:
                                return fail(f"entry {i}: leaf hash is missing", i)
                            return fail(f"entry {i}: stored leaf data does not hash to the recorded leaf hash", i)
                        why = "missing" if stored is None else "mismatch"
                        return fail(f"entry {lo}..{hi}: subtree hash {why} at level {level}", lo)
                    while head is not None and head[0] == i + 1:
                        if problem := check(head[0], head[1], frontier.root()):
                            return fail(problem, None)
                        head = next(heads, None)
        if head is not None:
            return fail(f"tree head for size {head[0]}: beyond the log's {size} entries", None)
        with self.env.read() as txn:
            cursor = txn.cursor(db=self._nodes)
            for level in range(64):
                if cursor.set_range(node_key(level, size >> level)) and cursor.key()[0] == level:
                    index = parse_audit_node_key(cursor.key())[1]
                    return fail(f"stray node at level {level} index {index} beyond the log's {size} entries", None)
        return VerifyReport(size, checked, log=self.name)

    # -- internals -------------------------------------------------------------------------------------

    def _size(self, txn: lmdb.Transaction) -> int:
        cursor = txn.cursor(db=self._leaves)
        return _U64.unpack(cursor.key())[0] + 1 if cursor.last() else 0

    def _tree_size(self, txn: lmdb.Transaction) -> int:
        if self._integrated is None:
            return self._size(txn)
        raw = txn.get(self._integrated[1], db=self._integrated[0])
        return _U64.unpack(raw)[0] if raw else 0

    def _node(self, txn: lmdb.Transaction, level: int, index: int) -> bytes:
        if level < self._stored_from:  # not stored: from the leaves below (at most 2^stored_from reads)
            if level == 0:
                data = txn.get(_U64.pack(index), db=self._leaves)
                if data is None:
                    raise Rejected(Problem.BROKEN, f"log entry {index} is missing")
                return merkle.leaf_hash(bytes(data))
            return merkle.node_hash(self._node(txn, level - 1, 2 * index), self._node(txn, level - 1, 2 * index + 1))
        value = txn.get(audit_node_key(level, index), db=self._nodes)
        if value is None:
            raise Rejected(Problem.BROKEN, f"log node at level {level} index {index} is missing")
        return value

    def _frontier(self, txn: lmdb.Transaction, size: int) -> merkle.Frontier:
        return merkle.Frontier(size, [self._node(txn, lvl, idx) for lvl, idx in merkle.perfect_subtrees(size)])

    def _subtree(self, txn: lmdb.Transaction, start: int, end: int) -> bytes:
        """MTH of [start, end): one read for a perfect aligned range, else split per RFC 6962."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self._node(txn, n.bit_length() - 1, start // n)
        mid = start + merkle.largest_power_of_two_below(n)
        return merkle.node_hash(self._subtree(txn, start, mid), self._subtree(txn, mid, end))


class AuditLog(MerkleLog):
    """The node's audit log: every operator action, login attempt and provision (``audit_*``)."""

    def __init__(self, env: Environment) -> None:
        super().__init__(env, "audit", AUDIT_DB_NAMES)


def _leaf_hashes(leaves: Iterable[bytes]) -> list[bytes]:
    """merkle.leaf_hash of each, in one C-level map."""
    return list(map(_digest, map(hashlib.sha256, map(_LEAF.__add__, leaves))))


def _check_size(size: int, current: int) -> None:
    if not 0 <= size <= current:
        raise ValueError(f"tree size {size} is outside the log's {current} entries")
