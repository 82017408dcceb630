"""Enrolled operators and revoked sessions. What a failure, an unlock or a revocation does to an
operator is a rule of :mod:`jukinet.domain.operators`; here it is read, changed and written back in one
transaction, so concurrent failed logins cannot lose a count."""

from __future__ import annotations

from collections.abc import Callable

import lmdb

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.quoting import quoted
from jukinet.storage.environment import Environment
from jukinet.storage.layout import Db, from_u64, operator_key, u64
from jukinet.v1 import node_state_pb2


class OperatorStore:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self._operators = env.dbs[Db.OPERATORS]
        self._revoked = env.dbs[Db.REVOKED_SESSIONS]

    def get_in(self, txn: lmdb.Transaction, operator_id: str) -> node_state_pb2.OperatorRecord | None:
        raw = txn.get(operator_key(operator_id), db=self._operators)
        return node_state_pb2.OperatorRecord.FromString(raw) if raw is not None else None

    def get(self, operator_id: str) -> node_state_pb2.OperatorRecord | None:
        with self.env.read() as txn:
            return self.get_in(txn, operator_id)

    def count_in(self, txn: lmdb.Transaction) -> int:
        return txn.stat(self._operators)["entries"]

    def count(self) -> int:
        with self.env.read() as txn:
            return self.count_in(txn)

    def all(self) -> list[node_state_pb2.OperatorRecord]:
        with self.env.read() as txn:
            return [node_state_pb2.OperatorRecord.FromString(v) for _, v in txn.cursor(db=self._operators)]

    def put(self, txn: lmdb.Transaction, record: node_state_pb2.OperatorRecord) -> None:
        txn.put(operator_key(record.info.operator_id), record.SerializeToString(), db=self._operators)

    def update(
        self,
        txn: lmdb.Transaction,
        operator_id: str,
        change: Callable[[node_state_pb2.OperatorRecord], None],
    ) -> node_state_pb2.OperatorRecord:
        """Read, change and write back one operator inside ``txn``; Rejected (NOT_FOUND) if not enrolled."""
        record = self.get_in(txn, operator_id)
        if record is None:
            raise Rejected(Problem.NOT_FOUND, f"no operator {quoted(operator_id)} is enrolled here")
        change(record)
        self.put(txn, record)
        return record

    def revoke_session(self, txn: lmdb.Transaction, session_id: bytes, expires_ms: int) -> None:
        txn.put(session_id, u64(expires_ms), db=self._revoked)

    def revoked_sessions(self, now_ms: int) -> dict[bytes, int]:
        """Revoked sessions not yet expired (expired ones fail on expiry anyway)."""
        with self.env.read() as txn:
            entries = {bytes(k): from_u64(v) for k, v in txn.cursor(db=self._revoked)}
        return {k: exp for k, exp in entries.items() if exp > now_ms}
