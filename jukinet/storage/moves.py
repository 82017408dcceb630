"""Moves between municipalities at a CS: the 転出 grants it issued (to close each member's move once its
転入通知 arrives; the latest per resident, so a resident has one open grant at a time) and the
転出証明書情報 it received (to register each member's 転入 once; held per origin until their last day). The rules
live in :mod:`jukinet.domain.moves`, :mod:`jukinet.cs_node.moves` and :mod:`jukinet.cs_node.move_intake`;
this module only reads and writes."""

from __future__ import annotations

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import (
    U64,
    Db,
    grant_key,
    move_expiry_key,
    move_expiry_prefix,
    moves_held,
    parse_move_expiry_key,
    parse_moves_held,
    resident_key,
)
from jukinet.v1 import moves_pb2


class MoveStore:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._outs = env.dbs[Db.MOVE_OUTS]
        self._received = env.dbs[Db.MOVES_RECEIVED]
        self._members = env.dbs[Db.MOVE_OUT_MEMBERS]
        self._expiry = env.dbs[Db.MOVES_EXPIRY]
        self._held = env.dbs[Db.MOVES_HELD]

    # -- at the old CS ---------------------------------------------------------------------------------

    def move_out(self, txn: lmdb.Transaction, grant_id: str) -> moves_pb2.MoveOutState | None:
        raw = txn.get(grant_key(grant_id), db=self._outs)
        return moves_pb2.MoveOutState.FromString(raw) if raw is not None else None

    def put_move_out(self, txn: lmdb.Transaction, grant_id: str, state: moves_pb2.MoveOutState) -> None:
        txn.put(grant_key(grant_id), state.SerializeToString(), db=self._outs)

    def last_grant_of(self, txn: lmdb.Transaction, resident_code: str) -> str | None:
        """The id of the latest 転出 granted here naming ``resident_code``, or None."""
        raw = txn.get(resident_key(resident_code), db=self._members)
        return bytes(raw).decode("ascii") if raw is not None else None

    def set_last_grant(self, txn: lmdb.Transaction, resident_code: str, grant_id: str) -> None:
        txn.put(resident_key(resident_code), grant_key(grant_id), db=self._members)

    # -- at the destination CS -------------------------------------------------------------------------

    def hold(
        self, txn: lmdb.Transaction, origin: str, grant_id: str, move: moves_pb2.ReceivedMove, last_day: int
    ) -> None:
        """Store a received 転出証明書情報 until ``last_day`` (a date ordinal), counted against its origin."""
        size = move.certificate.ByteSize()
        self.put_received(txn, grant_id, move)
        txn.put(move_expiry_key(last_day, grant_id), U64.pack(size), db=self._expiry)
        count, held = self.held(txn, origin)
        txn.put(origin.encode("ascii"), moves_held(count + 1, held + size), db=self._held)

    def held(self, txn: lmdb.Transaction, origin: str) -> tuple[int, int]:
        """(certificates, bytes) this CS holds from ``origin``."""
        return parse_moves_held(txn.get(origin.encode("ascii"), db=self._held))

    def get_held(self, origin: str) -> tuple[int, int]:
        with self._env.read() as txn:
            return self.held(txn, origin)

    def expired(self, txn: lmdb.Transaction, day: int, limit: int) -> list[tuple[int, str]]:
        """(last day, grant id) of at most ``limit`` held certificates whose last day is before ``day``,
        oldest first."""
        found: list[tuple[int, str]] = []
        cursor = txn.cursor(db=self._expiry)
        if cursor.first():
            for key in cursor.iternext(values=False):
                if bytes(key) >= move_expiry_prefix(day) or len(found) == limit:
                    break
                found.append(parse_move_expiry_key(key))
        return found

    def any_expired(self, day: int) -> bool:
        with self._env.read() as txn:
            cursor = txn.cursor(db=self._expiry)
            return cursor.first() and bytes(cursor.key()) < move_expiry_prefix(day)

    def forget(self, txn: lmdb.Transaction, last_day: int, grant_id: str) -> None:
        """Delete a held certificate (its window has closed) and give its origin's share back."""
        key = move_expiry_key(last_day, grant_id)
        raw = txn.get(key, db=self._expiry)
        if raw is None:
            return
        size = U64.unpack(raw)[0]
        txn.delete(key, db=self._expiry)
        txn.delete(grant_key(grant_id), db=self._received)
        origin = grant_id.partition("/")[0]
        count, held = self.held(txn, origin)
        if count <= 1:
            txn.delete(origin.encode("ascii"), db=self._held)
        else:
            txn.put(origin.encode("ascii"), moves_held(count - 1, max(0, held - size)), db=self._held)

    def received(self, txn: lmdb.Transaction, grant_id: str) -> moves_pb2.ReceivedMove | None:
        raw = txn.get(grant_key(grant_id), db=self._received)
        return moves_pb2.ReceivedMove.FromString(raw) if raw is not None else None

    def put_received(self, txn: lmdb.Transaction, grant_id: str, move: moves_pb2.ReceivedMove) -> None:
        txn.put(grant_key(grant_id), move.SerializeToString(), db=self._received)

    def get_received(self, grant_id: str) -> moves_pb2.ReceivedMove | None:
        with self._env.read() as txn:
            return self.received(txn, grant_id)

    def get_move_out(self, grant_id: str) -> moves_pb2.MoveOutState | None:
        with self._env.read() as txn:
            return self.move_out(txn, grant_id)

    def received_count(self) -> int:
        return self._env.entries(Db.MOVES_RECEIVED)
