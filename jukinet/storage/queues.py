"""Outbound link queues: one durable queue per destination, with its cursor and its receipts.

Positions in a destination's queue start at 1 and are contiguous. An entry stays until a receipt
signed by the destination covers it; :meth:`LinkQueues.settle` then deletes it, stores the receipt
(the proof of hand-over) and advances the cursor, all in the caller's transaction. Receipts are kept
for the last ``RECEIPT_HORIZON`` positions of each queue (older ones are dropped as new ones come), so
the proof of recent hand-overs is at hand and the database does not grow without bound.

An entry its destination refuses for good is moved to the queue's quarantine (:meth:`withdraw`): its
position keeps an empty entry, sent as "withdrawn" so the receiver's count of positions goes on; the
operator later puts it back at the tail (:meth:`requeue`) or gives it up (:meth:`discard`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import lmdb

from jukinet.domain.errors import Problem, Rejected
from jukinet.storage.environment import Environment
from jukinet.storage.layout import (
    WITHDRAWN,
    Db,
    destination_key,
    destination_prefix,
    parse_queue_state,
    queue_key,
    queue_position,
    queue_state,
)
from jukinet.v1 import admin_pb2

RECEIPT_HORIZON = 1_000_000  # queue positions whose receipts are kept


@dataclass(frozen=True)
class QueueState:
    destination: str
    last_enqueued: int
    last_receipted: int  # the cursor: every position up to here was handed over against a receipt

    @property
    def pending(self) -> int:
        return self.last_enqueued - self.last_receipted


class LinkQueues:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._queue = env.dbs[Db.QUEUE]
        self._state = env.dbs[Db.QUEUE_STATE]
        self._receipts = env.dbs[Db.RECEIPTS]
        self._quarantine = env.dbs[Db.QUARANTINE]

    def enqueue(self, txn: lmdb.Transaction, destination: str, items: Sequence[bytes]) -> range:
        """Append serialized LinkItems to ``destination``'s queue inside ``txn``; returns their positions."""
        key = destination_key(destination)
        last, receipted = parse_queue_state(txn.get(key, db=self._state))
        for position, item in enumerate(items, last + 1):
            txn.put(queue_key(destination, position), item, db=self._queue)
        txn.put(key, queue_state(last + len(items), receipted), db=self._state)
        return range(last + 1, last + 1 + len(items))

    def pending(self, destination: str, after: int, limit: int, max_bytes: int = 1 << 62) -> list[tuple[int, bytes]]:
        """Entries after position ``after``, in order: at most ``limit`` items (and as many withdrawn
        positions), and past the first no more than ``max_bytes`` in all (so one large entry still goes,
        alone)."""
        out: list[tuple[int, bytes]] = []
        if limit <= 0:
            return out
        prefix = destination_prefix(destination)
        size = items = withdrawn = 0
        with self._env.read() as txn:
            cursor = txn.cursor(db=self._queue)
            if not cursor.set_range(queue_key(destination, after + 1)):
                return out
            for key, value in cursor:
                if not key.startswith(prefix):
                    break
                if value == WITHDRAWN:
                    withdrawn += 1
                    if withdrawn > limit:
                        break
                else:
                    size += len(value)
                    if items and size > max_bytes:
                        break
                    items += 1
                out.append((queue_position(key), value))
                if items >= limit:
                    break
        return out

    def settle(self, txn: lmdb.Transaction, destination: str, through: int, receipt: bytes) -> int:
        """Drop entries up to ``through`` (covered by ``receipt``), keep the receipt, advance the cursor.

        Returns the number of entries dropped (0 for a receipt of a re-delivery already settled).
        """
        key = destination_key(destination)
        last, receipted = parse_queue_state(txn.get(key, db=self._state))
        if through > last:
            raise Rejected(
                Problem.BROKEN, f"a receipt covers {destination} queue position {through}, but only {last} were queued"
            )
        if through <= receipted:
            return 0
        prefix = destination_prefix(destination)
        cursor = txn.cursor(db=self._queue)
        dropped = 0
        if cursor.set_range(queue_key(destination, receipted + 1)):
            while cursor.key().startswith(prefix) and queue_position(cursor.key()) <= through:
                cursor.delete()  # moves to the next entry (or past the end: key() is then empty)
                dropped += 1
        txn.put(queue_key(destination, through), receipt, db=self._receipts)
        txn.put(key, queue_state(last, through), db=self._state)
        old = txn.cursor(db=self._receipts)
        if old.set_range(prefix):
            while old.key().startswith(prefix) and queue_position(old.key()) + RECEIPT_HORIZON < through:
                old.delete()
        return dropped

    def state(self, destination: str) -> QueueState:
        with self._env.read() as txn:
            last, receipted = parse_queue_state(txn.get(destination_key(destination), db=self._state))
        return QueueState(destination, last, receipted)

    def states(self) -> list[QueueState]:
        """Every destination this node ever queued for."""
        with self._env.read() as txn:
            return [QueueState(bytes(k).decode("ascii"), *parse_queue_state(v)) for k, v in txn.cursor(db=self._state)]

    def receipts(self, destination: str) -> list[tuple[int, bytes]]:
        """Stored receipts for ``destination``: (last position covered, Signed Receipt bytes), in order."""
        with self._env.read() as txn:
            return [
                (queue_position(k), v)
                for k, v in _under(txn.cursor(db=self._receipts), destination_prefix(destination))
            ]

    def total_pending(self) -> int:
        return sum(s.pending for s in self.states())

    # -- quarantine ---------------------------------------------------------------------------------------

    def withdraw(
        self,
        txn: lmdb.Transaction,
        destination: str,
        position: int,
        why: Callable[[bytes], admin_pb2.QuarantinedItem],
    ) -> bool:
        """Move the entry at ``position`` to quarantine, described by ``why(item)`` (kind, summary, problem,
        reason, time); False if there is no such entry (already receipted or withdrawn)."""
        key = queue_key(destination, position)
        item = txn.get(key, db=self._queue)
        if not item:
            return False
        kept = why(bytes(item))
        kept.destination, kept.position, kept.item, kept.size = destination, position, bytes(item), len(item)
        txn.put(key, kept.SerializeToString(), db=self._quarantine)
        txn.put(key, WITHDRAWN, db=self._queue)
        return True

    def quarantined(self, destination: str | None = None) -> list[admin_pb2.QuarantinedItem]:
        """Quarantined items (of one destination, or all), in order of destination and position."""
        prefix = destination_prefix(destination) if destination else b""
        with self._env.read() as txn:
            return [admin_pb2.QuarantinedItem.FromString(v) for _, v in _under(txn.cursor(db=self._quarantine), prefix)]

    def quarantined_count(self, destination: str) -> int:
        with self._env.read() as txn:
            return sum(1 for _ in _under(txn.cursor(db=self._quarantine), destination_prefix(destination)))

    def take_quarantined(
        self, txn: lmdb.Transaction, destination: str, positions: Sequence[int]
    ) -> list[admin_pb2.QuarantinedItem]:
        """Remove the named items (all of ``destination``'s if none are named) from quarantine, in order;
        Rejected (NOT_FOUND) naming a position that is not quarantined."""
        if not positions:
            keys = [bytes(k) for k, _ in _under(txn.cursor(db=self._quarantine), destination_prefix(destination))]
        else:
            keys = [queue_key(destination, p) for p in sorted(set(positions))]
        taken = []
        for key in keys:
            raw = txn.get(key, db=self._quarantine)
            if raw is None:
                raise Rejected(
                    Problem.NOT_FOUND, f"{destination} queue position {queue_position(key)} is not in quarantine"
                )
            taken.append(admin_pb2.QuarantinedItem.FromString(raw))
            txn.delete(key, db=self._quarantine)
        return taken

    def requeue(
        self, txn: lmdb.Transaction, destination: str, positions: Sequence[int]
    ) -> tuple[list[admin_pb2.QuarantinedItem], range]:
        """Put quarantined items back at the tail of their queue, in order; returns them and their new positions."""
        taken = self.take_quarantined(txn, destination, positions)
        return taken, self.enqueue(txn, destination, [t.item for t in taken])


def _under(cursor: lmdb.Cursor, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every entry whose key starts with ``prefix``, in key order."""
    if not cursor.set_range(prefix):
        return
    for key, value in cursor:
        if not key.startswith(prefix):
            return
        yield key, value
