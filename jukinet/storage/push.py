"""Push subscriptions at the national server: the subscriptions, their durable cursors, stored cohorts,
and the commit time of each run of feed positions (so a pushed change carries when it was committed)."""

from __future__ import annotations

import lmdb

from jukinet.domain.limits import MAX_SUBSCRIPTION_ID_CHARS
from jukinet.storage.environment import Environment
from jukinet.storage.layout import (
    Counter,
    Db,
    agency_subscription_key,
    agency_subscriptions_prefix,
    from_u64,
    parse_push_cursor,
    push_cohort_key,
    push_cursor,
    subscription_key,
    u64,
)
from jukinet.v1 import subscription_pb2


class FeedTimes:
    """One entry per commit that appended to the feed: its first position → the commit time (ms)."""

    def __init__(self, env: Environment) -> None:
        self._db = env.dbs[Db.FEED_TIMES]

    def mark(self, txn: lmdb.Transaction, first_position: int, now_ms: int) -> None:
        txn.put(u64(first_position), u64(now_ms), db=self._db)

    def runs(self, txn: lmdb.Transaction, first: int, last: int) -> list[tuple[int, int]]:
        """(first position, commit ms) of the run holding ``first`` and of each run starting up to ``last``."""
        cursor = txn.cursor(db=self._db)
        out: list[tuple[int, int]] = []
        found = cursor.set_range(u64(first))
        if not (found and from_u64(cursor.key()) == first):
            if found:
                if cursor.prev():
                    out.append((from_u64(cursor.key()), from_u64(cursor.value())))
                cursor.next()
            elif cursor.last():
                out.append((from_u64(cursor.key()), from_u64(cursor.value())))
                return out
        if found:
            for key, value in cursor:
                position = from_u64(key)
                if position > last:
                    break
                out.append((position, from_u64(value)))
        return out


class SubscriptionStore:
    def __init__(self, env: Environment) -> None:
        self._env = env
        self._subs = env.dbs[Db.SUBSCRIPTIONS]
        self._by_agency = env.dbs[Db.SUBSCRIPTIONS_BY_AGENCY]
        self._cursors = env.dbs[Db.PUSH_CURSORS]
        self._cohorts = env.dbs[Db.PUSH_COHORTS]

    def next_id(self, txn: lmdb.Transaction) -> str:
        return f"sub-{self._env.reserve(txn, Counter.SUBSCRIPTION)}"

    def put(self, txn: lmdb.Transaction, sub: subscription_pb2.Subscription) -> None:
        """Store a new subscription (its cursor at its start position)."""
        stored = subscription_pb2.Subscription()
        stored.CopyFrom(sub)
        stored.ClearField("cursor")
        stored.ClearField("delivered")
        txn.put(subscription_key(sub.subscription_id), stored.SerializeToString(), db=self._subs)
        txn.put(agency_subscription_key(sub.agency, sub.subscription_id), b"", db=self._by_agency)
        txn.put(subscription_key(sub.subscription_id), push_cursor(sub.cursor, sub.delivered), db=self._cursors)

    def get(self, txn: lmdb.Transaction, subscription_id: str) -> subscription_pb2.Subscription | None:
        """The subscription (None also for an id that could not be one: empty, too long, not ASCII)."""
        if not 0 < len(subscription_id) <= MAX_SUBSCRIPTION_ID_CHARS or not subscription_id.isascii():
            return None
        key = subscription_key(subscription_id)
        raw = txn.get(key, db=self._subs)
        if raw is None:
            return None
        sub = subscription_pb2.Subscription.FromString(raw)
        sub.cursor, sub.delivered = parse_push_cursor(txn.get(key, db=self._cursors))
        return sub

    def of_agency(self, txn: lmdb.Transaction, agency: str) -> list[str]:
        prefix = agency_subscriptions_prefix(agency)
        out = []
        cursor = txn.cursor(db=self._by_agency)
        if cursor.set_range(prefix):
            for key in cursor.iternext(values=False):
                if not key.startswith(prefix):
                    break
                out.append(bytes(key[len(prefix) :]).decode("ascii"))
        return out

    def delete(self, txn: lmdb.Transaction, sub: subscription_pb2.Subscription) -> None:
        key = subscription_key(sub.subscription_id)
        txn.delete(key, db=self._subs)
        txn.delete(key, db=self._cursors)
        txn.delete(agency_subscription_key(sub.agency, sub.subscription_id), db=self._by_agency)
        cursor = txn.cursor(db=self._cohorts)
        prefix = key + b"\x00"
        while cursor.set_range(prefix) and cursor.key().startswith(prefix):
            cursor.delete()

    def cursor(self, txn: lmdb.Transaction, subscription_id: str) -> tuple[int, int]:
        """(acknowledged, delivered) feed positions."""
        return parse_push_cursor(txn.get(subscription_key(subscription_id), db=self._cursors))

    def set_cursor(self, txn: lmdb.Transaction, subscription_id: str, acknowledged: int, delivered: int) -> None:
        txn.put(subscription_key(subscription_id), push_cursor(acknowledged, delivered), db=self._cursors)

    def cohort(self, txn: lmdb.Transaction, subscription_id: str, month: int) -> subscription_pb2.PushCohort | None:
        raw = txn.get(push_cohort_key(subscription_id, month), db=self._cohorts)
        return subscription_pb2.PushCohort.FromString(raw) if raw is not None else None

    def put_cohort(
        self, txn: lmdb.Transaction, subscription_id: str, month: int, cohort: subscription_pb2.PushCohort
    ) -> None:
        txn.put(push_cohort_key(subscription_id, month), cohort.SerializeToString(), db=self._cohorts)
