"""Outbound link queues: one durable queue per destination, with its cursor and its receipts.

Positions in a destination's queue start at 1 and are contiguous. An entry stays until a receipt
signed by the destination covers it; :meth:`LinkQueues.settle` then deletes it, stores the receipt
(the proof of hand-over) and advances the cursor, all in the caller's transaction. Receipts are kept
for the last ``RECEIPT_HORIZON`` positions of each queue (older ones are dropped as new ones come), so
the proof of recent hand-overs is at hand and the database does not grow without bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lmdb

from jukinet.domain.errors import Problem, Rejected
from jukinet.storage.environment import Environment
from jukinet.storage.layout import (
    Db,
    destination_key,
    destination_prefix,
    parse_queue_state,
    queue_key,
    queue_position,
    queue_state,
)

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

    def enqueue(self, txn: lmdb.Transaction, destination: str, items: Sequence[bytes]) -> range:
        """Append serialized LinkItems to ``destination``'s queue inside ``txn``; returns their positions."""
        key = destination_key(destination)
        last, receipted = parse_queue_state(txn.get(key, db=self._state))
        for position, item in enumerate(items, last + 1):
            txn.put(queue_key(destination, position), item, db=self._queue)
        txn.put(key, queue_state(last + len(items), receipted), db=self._state)
        return range(last + 1, last + 1 + len(items))

    def pending(self, destination: str, after: int, limit: int, max_bytes: int = 1 << 62) -> list[tuple[int, bytes]]:
        """Entries after position ``after``, in order: at most ``limit``, and past the first no more than
        ``max_bytes`` in all (so one large entry still goes, alone)."""
        out: list[tuple[int, bytes]] = []
        if limit <= 0:
            return out
        prefix = destination_prefix(destination)
        size = 0
        with self._env.read() as txn:
            cursor = txn.cursor(db=self._queue)
            if not cursor.set_range(queue_key(destination, after + 1)):
                return out
            for key, value in cursor:
                if not key.startswith(prefix):
                    break
                size += len(value)
                if out and size > max_bytes:
                    break
                out.append((queue_position(key), value))
                if len(out) >= limit:
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
        prefix = destination_prefix(destination)
        with self._env.read() as txn:
            cursor = txn.cursor(db=self._receipts)
            if not cursor.set_range(prefix):
                return []
            out = []
            for key, value in cursor:
                if not key.startswith(prefix):
                    break
                out.append((queue_position(key), value))
            return out

    def total_pending(self) -> int:
        return sum(s.pending for s in self.states())
