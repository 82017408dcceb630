"""Moves between municipalities at a CS: the 転出 grants it issued (to close each member's move once its
転入通知 arrives) and the 転出証明書情報 it received (to register each member's 転入 once). The rules
live in :mod:`jukinet.domain.moves`, :mod:`jukinet.cs_node.moves` and :mod:`jukinet.cs_node.move_intake`;
this module only reads and writes."""

from __future__ import annotations

import lmdb

from jukinet.storage.environment import Environment
from jukinet.storage.layout import Db, grant_key
from jukinet.v1 import moves_pb2


class MoveStore:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._outs = env.dbs[Db.MOVE_OUTS]
        self._received = env.dbs[Db.MOVES_RECEIVED]

    # -- at the old CS ---------------------------------------------------------------------------------

    def move_out(self, txn: lmdb.Transaction, grant_id: str) -> moves_pb2.MoveOutState | None:
        raw = txn.get(grant_key(grant_id), db=self._outs)
        return moves_pb2.MoveOutState.FromString(raw) if raw is not None else None

    def put_move_out(self, txn: lmdb.Transaction, grant_id: str, state: moves_pb2.MoveOutState) -> None:
        txn.put(grant_key(grant_id), state.SerializeToString(), db=self._outs)

    # -- at the destination CS -------------------------------------------------------------------------

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
