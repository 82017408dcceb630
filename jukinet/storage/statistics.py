"""The movement report's counters and the position of the change feed they cover (national server).

The counters and the cursor are written in one transaction, so after a crash or restart the follower
resumes exactly after the last position it counted: nothing counted twice, nothing skipped. A report
reads one month's counters by prefix, never the feed.

The marks (``movement_marks``) say whose first birth and first death are already counted: one key per
resident and kind, written in the same transaction as the counters, so the follower decides "the first of
this resident" with one key read instead of reading the resident's history (which a clerk can make long).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping

import lmdb

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.statistics import Count, Kind, Month
from jukinet.storage.environment import Environment
from jukinet.storage.layout import (
    MOVEMENT_CURSOR,
    Db,
    from_u64,
    movement_key,
    movement_mark_key,
    movement_prefix,
    parse_movement_key,
    u64,
)


class MovementCounts:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._counts = env.dbs[Db.MOVEMENT_COUNTS]
        self._cursor = env.dbs[Db.MOVEMENT_CURSOR]
        self._marks = env.dbs[Db.MOVEMENT_MARKS]

    def position(self, txn: lmdb.Transaction) -> int:
        """The last change-feed position counted (0: none yet)."""
        raw = txn.get(MOVEMENT_CURSOR, db=self._cursor)
        return from_u64(raw) if raw else 0

    def marked(self, txn: lmdb.Transaction, resident_code: str, kind: Kind) -> bool:
        """Whether the resident's first ``kind`` (a birth or a death) has been seen by the follower."""
        return txn.get(movement_mark_key(resident_code, kind.value), db=self._marks) is not None

    def add(
        self,
        txn: lmdb.Transaction,
        counts: Mapping[Count, int],
        read_from: int,
        read_to: int,
        marks: Collection[tuple[str, Kind]] = (),
    ) -> None:
        """Add ``counts``, set ``marks`` (resident code, kind) and move the cursor from ``read_from`` to
        ``read_to``, in ``txn``. BROKEN (nothing written) if the cursor is no longer at ``read_from``: another
        follower counted those entries."""
        at = self.position(txn)
        if at != read_from:
            raise Rejected(Problem.BROKEN, f"the movement cursor is at {at}, not {read_from}: counted elsewhere")
        if read_to < read_from:
            raise Rejected(Problem.BROKEN, f"the movement cursor may not go back from {read_from} to {read_to}")
        for count, n in sorted(counts.items()):
            key = movement_key(count.month.key, count.kind.value, count.a, count.b)
            raw = txn.get(key, db=self._counts)
            txn.put(key, u64((from_u64(raw) if raw else 0) + n), db=self._counts)
        for code, kind in sorted(marks):
            txn.put(movement_mark_key(code, kind.value), b"", db=self._marks)
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
