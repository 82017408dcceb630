"""Inbound progress: per (sender, destination) queue, the highest position stored here.

A link delivers each queue in order, so the next position from a queue is always ``mark + 1``: one
at or below the mark is a re-delivery (changes nothing), one above ``mark + 1`` means something in
between was lost or withheld. Relayed batches keep their origin's queue identity, so the national
server tracks each CS's queue to its prefecture as well as the prefecture's own.
"""

from __future__ import annotations

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import Db, from_u64, inbox_key, parse_inbox_key, u64


class InboundMarks:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._db = env.dbs[Db.INBOX]

    def get(self, txn: lmdb.Transaction, sender: str, destination: str) -> int:
        raw = txn.get(inbox_key(sender, destination), db=self._db)
        return from_u64(raw) if raw is not None else 0

    def set(self, txn: lmdb.Transaction, sender: str, destination: str, position: int) -> None:
        txn.put(inbox_key(sender, destination), u64(position), db=self._db)

    def all(self) -> list[tuple[str, str, int]]:
        """(sender, destination, mark) for every queue this node has stored from."""
        with self._env.read() as txn:
            return [(*parse_inbox_key(k), from_u64(v)) for k, v in txn.cursor(db=self._db)]
