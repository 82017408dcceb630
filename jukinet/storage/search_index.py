"""The national server's four-item search index: folded name / reading ‖ birth date ‖ sex → 住民票コード.

Two databases (``search_names`` for 氏名, ``search_kana`` for the reading), keyed as
:func:`jukinet.storage.layout.search_key` says, values empty. :meth:`FourItemsIndex.update` runs in the
write transaction that stores a record (:class:`jukinet.server.changes.ChangeWriter`, national only): a
record's old keys go when its name, reading, birth date or sex changes, its new keys come, and a removed
record (除票) keeps its keys — it stays findable, marked removed by the search.

Records stored before the index existed, or indexed with other folds (a new table), are indexed by a
rebuild (:meth:`start_rebuild`, then :meth:`rebuild_step` in bounded transactions) that resumes where it
stopped after a restart; until it ends, :meth:`ready` is False and the search refuses to answer rather
than miss a candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import lmdb

from jukinet.domain.kana import fold
from jukinet.storage.environment import Environment
from jukinet.storage.layout import (
    Db,
    SearchState,
    search_code,
    search_key,
    search_prefix,
    search_state_key,
)
from jukinet.v1 import identity_pb2

_DIGEST = 32  # a fold version
SearchKeys = tuple[bytes | None, bytes | None]  # (name key, reading key) of one record


@dataclass(frozen=True)
class RebuildProgress:
    indexed: int  # records indexed by this step
    done: bool


class FourItemsIndex:
    def __init__(self, env: Environment, version: bytes) -> None:
        """``version``: :func:`jukinet.domain.kana.fold_version`, the folds the keys are made with."""
        self._env = env
        self._version = version
        self._names = env.dbs[Db.SEARCH_NAMES]
        self._kana = env.dbs[Db.SEARCH_KANA]
        self._state = env.dbs[Db.SEARCH_STATE]
        self._records = env.dbs[Db.RECORDS]

    # -- keys -------------------------------------------------------------------------------------------

    @staticmethod
    def keys(record: identity_pb2.IdentityRecord) -> SearchKeys:
        """(name key, reading key); None for an item the record lacks (or that folds to nothing). Pure:
        the national intake works them out while checking a batch, outside the write transaction."""
        b, code = record.birth_date, record.resident_code
        out: list[bytes | None] = []
        for text in (record.name.kanji, record.name.kana):
            folded = fold(text) if text else ""
            out.append(search_key(folded, b.year, b.month, b.day, record.sex, code) if folded else None)
        return out[0], out[1]

    def update(
        self,
        txn: lmdb.Transaction,
        record: identity_pb2.IdentityRecord,
        previous: identity_pb2.IdentityRecord | None,
        keys: SearchKeys | None = None,
    ) -> None:
        """Keep the index in step with ``record`` replacing ``previous`` (None: a new code), inside ``txn``;
        ``keys``: :meth:`keys` of ``record``, if already worked out. A change that leaves the keyed items
        alone (a 転居, most changes) reuses the new keys as the old ones, and writes nothing."""
        new = keys if keys is not None else self.keys(record)
        if previous is None:
            old: SearchKeys = (None, None)
        elif _same_keyed_items(previous, record):
            old = new
        else:
            old = self.keys(previous)
        for db, before, after in ((self._names, old[0], new[0]), (self._kana, old[1], new[1])):
            if before == after:  # stored already (a rebuild under way reaches it in code order): no page dirtied
                continue
            if before is not None:
                txn.delete(before, db=db)
            if after is not None:
                txn.put(after, b"", db=db)

    def codes(
        self, txn: lmdb.Transaction, reading: bool, folded: str, birth: identity_pb2.Date, sex: int, limit: int
    ) -> list[str]:
        """At most ``limit`` codes keyed by this folded name (``reading``: the kana index), birth date, sex."""
        prefix = search_prefix(folded, birth.year, birth.month, birth.day, sex)
        cursor = txn.cursor(db=self._kana if reading else self._names)
        out: list[str] = []
        if cursor.set_range(prefix):
            for key in cursor.iternext(keys=True, values=False):
                if not bytes(key).startswith(prefix) or len(out) >= limit:
                    break
                out.append(search_code(key, prefix))
        return out

    # -- built, or being rebuilt --------------------------------------------------------------------------

    def ready(self, txn: lmdb.Transaction) -> bool:
        return txn.get(search_state_key(SearchState.BUILT), db=self._state) == self._version

    def start_rebuild(self, txn: lmdb.Transaction) -> bool:
        """Unless the index is built with this version, or a rebuild with it is under way: empty the index
        and start one. True if a rebuild is (now) needed."""
        if self.ready(txn):
            return False
        building = txn.get(search_state_key(SearchState.BUILDING), db=self._state)
        if building is not None and bytes(building[:_DIGEST]) == self._version:
            return True  # resume after a restart
        txn.drop(self._names, delete=False)
        txn.drop(self._kana, delete=False)
        txn.delete(search_state_key(SearchState.BUILT), db=self._state)
        txn.put(search_state_key(SearchState.BUILDING), self._version, db=self._state)
        return True

    def rebuild_step(self, txn: lmdb.Transaction, count: int) -> RebuildProgress:
        """Index up to ``count`` records after the last one indexed; the last step marks the index built.
        Records stored meanwhile were indexed by :meth:`update` already; indexing them again changes nothing."""
        building = txn.get(search_state_key(SearchState.BUILDING), db=self._state)
        if building is None or bytes(building[:_DIGEST]) != self._version:
            return RebuildProgress(0, self.ready(txn))
        after = bytes(building[_DIGEST:])
        cursor = txn.cursor(db=self._records)
        found = cursor.set_range(after)
        if found and after and bytes(cursor.key()) == after:
            found = cursor.next()
        indexed, last = 0, after
        while found and indexed < count:
            last = bytes(cursor.key())
            self.update(txn, identity_pb2.IdentityRecord.FromString(cursor.value()), None)
            indexed += 1
            found = cursor.next()
        if not found:
            txn.delete(search_state_key(SearchState.BUILDING), db=self._state)
            txn.put(search_state_key(SearchState.BUILT), self._version, db=self._state)
            return RebuildProgress(indexed, True)
        txn.put(search_state_key(SearchState.BUILDING), self._version + last, db=self._state)
        return RebuildProgress(indexed, False)

    def indexed_after(self, txn: lmdb.Transaction) -> str | None:
        """During a rebuild, the last code indexed ("" before the first); None when none is under way."""
        building = txn.get(search_state_key(SearchState.BUILDING), db=self._state)
        return bytes(building[_DIGEST:]).decode("ascii") if building is not None else None


def _same_keyed_items(a: identity_pb2.IdentityRecord, b: identity_pb2.IdentityRecord) -> bool:
    """Whether two records agree on everything the index keys are made of."""
    return (
        a.resident_code == b.resident_code
        and a.name.kanji == b.name.kanji
        and a.name.kana == b.name.kana
        and a.sex == b.sex
        and a.birth_date == b.birth_date
    )
