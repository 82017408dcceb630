"""A node's persistent state: one LMDB environment, stores split by concern.

Every key layout is in :mod:`jukinet.storage.layout`. A state change and its consequences (history,
queue entries, audit entry) commit in one write transaction: the caller opens it with
``env.write(fn)`` (or ``env.submit(fn)`` for group commit) and passes ``txn`` to each store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jukinet.storage.cards import CardStore
from jukinet.storage.copies import CopyIssuanceLog, DvMeasureStore
from jukinet.storage.directory import DirectoryStore
from jukinet.storage.environment import DEFAULT_MAP_SIZE, Environment
from jukinet.storage.history import ChangeHistory
from jukinet.storage.inbox import InboundMarks
from jukinet.storage.layout import ALL_DBS
from jukinet.storage.local_data import LocalDataStore
from jukinet.storage.merkle_log import AuditLog, MerkleLog
from jukinet.storage.moves import MoveStore
from jukinet.storage.numbers import CodeReserve, Designations, NumberRegister
from jukinet.storage.operators import OperatorStore
from jukinet.storage.provisions import ProvisionLog
from jukinet.storage.push import FeedTimes, SubscriptionStore
from jukinet.storage.queues import LinkQueues, QueueState
from jukinet.storage.records import RecordStore

__all__ = [
    "AuditLog",
    "CardStore",
    "ChangeHistory",
    "CodeReserve",
    "CopyIssuanceLog",
    "Designations",
    "DirectoryStore",
    "DvMeasureStore",
    "Environment",
    "FeedTimes",
    "InboundMarks",
    "LinkQueues",
    "LocalDataStore",
    "MerkleLog",
    "MoveStore",
    "NodeStorage",
    "NumberRegister",
    "OperatorStore",
    "ProvisionLog",
    "QueueState",
    "RecordStore",
    "SubscriptionStore",
]


@dataclass(frozen=True)
class NodeStorage:
    env: Environment
    records: RecordStore
    history: ChangeHistory
    queues: LinkQueues
    inbox: InboundMarks
    provisions: ProvisionLog
    operators: OperatorStore
    audit: AuditLog
    local: LocalDataStore
    moves: MoveStore
    directory: DirectoryStore
    copies: CopyIssuanceLog
    dv_measures: DvMeasureStore
    cards: CardStore
    designations: Designations
    numbers: NumberRegister
    reserve: CodeReserve
    feed_times: FeedTimes
    subscriptions: SubscriptionStore

    @classmethod
    def open(cls, path: Path, map_size: int = DEFAULT_MAP_SIZE, readonly: bool = False) -> NodeStorage:
        env = Environment(path, ALL_DBS, map_size, readonly=readonly)
        storage = cls(
            env,
            RecordStore(env),
            ChangeHistory(env),
            LinkQueues(env),
            InboundMarks(env),
            ProvisionLog(env),
            OperatorStore(env),
            AuditLog(env),
            LocalDataStore(env),
            MoveStore(env),
            DirectoryStore(env),
            CopyIssuanceLog(env),
            DvMeasureStore(env),
            CardStore(env),
            Designations(env),
            NumberRegister(env),
            CodeReserve(env),
            FeedTimes(env),
            SubscriptionStore(env),
        )
        if not readonly:
            storage.provisions.log.track_tree()
        return storage

    def close(self) -> None:
        self.env.close()
