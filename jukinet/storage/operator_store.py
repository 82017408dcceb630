"""Enrolled operators and revoked sessions, in the node's LMDB environment.

=================  ========================  ===============================================
database           key                       value
=================  ========================  ===============================================
operators          operator id (UTF-8)       OperatorRecord bytes
revoked_sessions   session id (16 bytes)     u64 expiry (Unix ms): kept until the session expires
=================  ========================  ===============================================

Failure counting and lockout are read-modify-write in one transaction, so concurrent failed
logins cannot lose a count.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import lmdb

from jukinet.domain.operators import MAX_CONSECUTIVE_FAILURES
from jukinet.storage.environment import Environment
from jukinet.v1 import node_state_pb2, operator_pb2

OPERATOR_DB_NAMES = ("operators", "revoked_sessions")
_ACTIVE = operator_pb2.OPERATOR_STATUS_ACTIVE
_LOCKED = operator_pb2.OPERATOR_STATUS_LOCKED


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class UnknownOperator(LookupError):
    pass


class OperatorStore:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self._operators = env.dbs["operators"]
        self._revoked = env.dbs["revoked_sessions"]

    def get_in(self, txn: lmdb.Transaction, operator_id: str) -> node_state_pb2.OperatorRecord | None:
        raw = txn.get(operator_id.encode(), db=self._operators)
        return node_state_pb2.OperatorRecord.FromString(raw) if raw is not None else None

    def get(self, operator_id: str) -> node_state_pb2.OperatorRecord | None:
        with self.env.read() as txn:
            return self.get_in(txn, operator_id)

    def count(self) -> int:
        with self.env.read() as txn:
            return txn.stat(self._operators)["entries"]

    def all(self) -> list[node_state_pb2.OperatorRecord]:
        with self.env.read() as txn:
            return [node_state_pb2.OperatorRecord.FromString(v) for _, v in txn.cursor(db=self._operators)]

    def put(self, txn: lmdb.Transaction, record: node_state_pb2.OperatorRecord) -> None:
        txn.put(record.info.operator_id.encode(), record.SerializeToString(), db=self._operators)

    def update(
        self,
        txn: lmdb.Transaction,
        operator_id: str,
        change: Callable[[node_state_pb2.OperatorRecord], None],
    ) -> node_state_pb2.OperatorRecord:
        """Read, change and write back one operator inside ``txn``; raises UnknownOperator."""
        record = self.get_in(txn, operator_id)
        if record is None:
            raise UnknownOperator(f"no operator {operator_id!r} is enrolled here")
        change(record)
        self.put(txn, record)
        return record

    @staticmethod
    def count_failure(record: node_state_pb2.OperatorRecord) -> None:
        """One more consecutive failure; the fifth locks the operator and revokes their sessions."""
        record.info.consecutive_failures += 1
        if record.info.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            record.info.status = _LOCKED
            record.sessions_valid_after_ms = now_ms()

    @staticmethod
    def reset_failures(record: node_state_pb2.OperatorRecord) -> None:
        record.info.consecutive_failures = 0

    @staticmethod
    def unlock(record: node_state_pb2.OperatorRecord) -> None:
        record.info.consecutive_failures = 0
        record.info.status = _ACTIVE

    @staticmethod
    def revoke_all_sessions(record: node_state_pb2.OperatorRecord) -> None:
        record.sessions_valid_after_ms = now_ms()

    def revoke_session(self, txn: lmdb.Transaction, session_id: bytes, expires_ms: int) -> None:
        txn.put(session_id, expires_ms.to_bytes(8, "big"), db=self._revoked)

    def revoked_sessions(self) -> dict[bytes, int]:
        """Revoked sessions not yet expired (expired ones are dropped: they fail on expiry anyway)."""
        now = now_ms()
        with self.env.read() as txn:
            entries = {bytes(k): int.from_bytes(v, "big") for k, v in txn.cursor(db=self._revoked)}
        return {k: exp for k, exp in entries.items() if exp > now}
