"""The movement report's counters and the position of the change feed they cover (national server).

The counters and the cursor are written in one transaction, so after a crash or restart the follower
resumes exactly after the last position it counted: nothing counted twice, nothing skipped. A report
reads one month's counters by prefix, never the feed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import lmdb

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.statistics import Count, Kind, Month
from jukinet.storage.environment import Environment
from jukinet.storage.layout import (
    MOVEMENT_CURSOR,
    Db,
    from_u64,
    movement_key,
    movement_prefix,
    parse_movement_key,
    u64,
)


class MovementCounts:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._counts = env.dbs[Db.MOVEMENT_COUNTS]
        self._cursor = env.dbs[Db.MOVEMENT_CURSOR]

    def position(self, txn: lmdb.Transaction) -> int:
        """The last change-feed position counted (0: none yet)."""
        raw = txn.get(MOVEMENT_CURSOR, db=self._cursor)
        return from_u64(raw) if raw else 0

    def add(self, txn: lmdb.Transaction, counts: Mapping[Count, int], read_from: int, read_to: int) -> None:
        """Add ``counts`` and move the cursor from ``read_from`` to ``read_to``, in ``txn``. BROKEN (nothing
        written) if the cursor is no longer at ``read_from``: another follower counted those entries."""
        at = self.position(txn)
        if at != read_from:
            raise Rejected(Problem.BROKEN, f"the movement cursor is at {at}, not {read_from}: counted elsewhere")
        if read_to < read_from:
            raise Rejected(Problem.BROKEN, f"the movement cursor may not go back from {read_from} to {read_to}")
        for count, n in sorted(counts.items()):
            key = movement_key(count.month.key, count.kind.value, count.a, count.b)
            raw = txn.get(key, db=self._counts)
            txn.put(key, u64((from_u64(raw) if raw else 0) + n), db=self._counts)
        txn.put(MOVEMENT_CURSOR, u64(read_to), db=self._cursor)

    def rows(self, txn: lmdb.Transaction, month: Month, kind: Kind) -> Iterator[tuple[str, str, int]]:
        """One month's counters of one kind, as (a, b, count), in key order. Read lazily: a caller that
        wants only the first N stops there."""
        prefix = movement_prefix(month.key, kind.value)
        cursor = txn.cursor(db=self._counts)
        if not cursor.set_range(prefix):
            return
        for key, value in cursor:
            if not key.startswith(prefix):
                return
            a, b = parse_movement_key(key)
            yield a, b, from_u64(value)

    def totals(self, txn: lmdb.Transaction, month: Month, kinds: Iterable[Kind]) -> dict[Kind, int]:
        """The sum of each kind's counters in the month."""
        return {kind: sum(n for _, _, n in self.rows(txn, month, kind)) for kind in kinds}
