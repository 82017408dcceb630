"""Change notices (and My Number card events) from the CS nodes of the prefectures this server hosts,
relayed to the national server.

A CS may hand its own notices only to the server of its own prefecture (the batch's destination is
``pref:<its prefecture>``), and only for residents of its own municipality. The prefecture stores them
and queues the CS's batch envelope, exactly as received, for the national server: the CS's signature
reaches the national server intact, so the prefecture cannot insert, alter or drop from the middle of
a CS's notices without the national server refusing (see :mod:`jukinet.server.national.notices`).
A batch that carries card events too is relayed once, whichever kind's handler sees it first; card events
are not stored here (the prefecture has no part in the card lifecycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lmdb

from jukinet.domain.clock import SYSTEM_CLOCK, Clock, today
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_ORIGIN_BATCH_BYTES
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.server.card_events import check_card_events
from jukinet.server.changes import ChangeWriter, check_notices
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.intake import Delivery, Item, Plan
from jukinet.storage import NodeStorage
from jukinet.v1 import link_pb2, notice_pb2


@dataclass(frozen=True)
class _StoreAndRelay:
    writer: ChangeWriter | None
    storage: NodeStorage
    notices: list[notice_pb2.ChangeNotice]
    national: str
    relay: bytes | None  # serialized LinkItem carrying the CS's envelope (None: another kind relays it)

    def apply(self, txn: lmdb.Transaction) -> None:
        if self.writer is not None and self.notices:
            self.writer.apply(txn, self.notices)
        if self.relay is not None:
            self.storage.queues.enqueue(txn, self.national, [self.relay])


def _check_cs_batch(delivery: Delivery, hosted: frozenset[str], what: str) -> None:
    """The batch comes from a CS of a hosted prefecture, for that prefecture, small enough to relay."""
    sender = delivery.sender
    if sender.kind is not NodeKind.CS:
        raise Rejected(Problem.DENIED, f"{sender} is not a CS; only CS nodes send {what} here")
    if sender.prefecture_code not in hosted:
        raise Rejected(
            Problem.DENIED, f"{sender} is not a CS of a prefecture served here ({', '.join(sorted(hosted))})"
        )
    home = NodeId.prefecture(sender.prefecture_code)
    if delivery.destination != home:
        raise Rejected(Problem.DENIED, f"{sender} hands its {what} to {home}, not {delivery.destination}")
    size = len(delivery.envelope.payload)
    if size > MAX_ORIGIN_BATCH_BYTES:  # relayed unchanged, it must fit a batch to the national server
        raise Rejected(
            Problem.EXHAUSTED,
            f"{sender}'s batch is {size} bytes; a CS batch may be at most {MAX_ORIGIN_BATCH_BYTES}",
        )


def _relay_once(delivery: Delivery) -> bytes | None:
    if delivery.relayed:
        return None
    delivery.relayed = True
    return link_pb2.LinkItem(relayed_batch=delivery.envelope).SerializeToString()


class CsChangeNotices:
    """ItemHandler for ``change_notice`` items at a prefecture server."""

    kind = "change_notice"

    def __init__(
        self,
        hosted: frozenset[str],
        storage: NodeStorage,
        national: NodeId,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._hosted = hosted  # 2-digit prefecture codes served here
        self._storage = storage
        self._writer = ChangeWriter(storage)
        self._national = str(national)
        self._clock = clock

    def check(self, delivery: Delivery, items: Sequence[Item]) -> Plan:
        _check_cs_batch(delivery, self._hosted, "change notices")
        check_notices(items, delivery.sender, today(self._clock))
        notices = [notice for _, notice in items]
        return _StoreAndRelay(self._writer, self._storage, notices, self._national, _relay_once(delivery))


class CsCardEvents:
    """ItemHandler for ``card_event`` items at a prefecture server: checked and relayed, not stored."""

    kind = "card_event"

    def __init__(self, hosted: frozenset[str], storage: NodeStorage, national: NodeId) -> None:
        self._hosted = hosted
        self._storage = storage
        self._national = str(national)

    def check(self, delivery: Delivery, items: Sequence[Item]) -> Plan:
        _check_cs_batch(delivery, self._hosted, "card events")
        check_card_events(items, delivery.sender)
        return _StoreAndRelay(None, self._storage, [], self._national, _relay_once(delivery))


def cs_card_events(parts: NodeParts) -> CsCardEvents:
    """What the prefecture tier's intake accepts (see jukinet.server.assembly.TIERS)."""
    hosted = frozenset(n.prefecture_code for n in parts.config.node_ids)
    return CsCardEvents(hosted, parts.storage, NodeId.national())


def cs_change_notices(parts: NodeParts) -> CsChangeNotices:
    """What the prefecture tier's intake accepts (see jukinet.server.assembly.TIERS)."""
    hosted = frozenset(n.prefecture_code for n in parts.config.node_ids)
    return CsChangeNotices(hosted, parts.storage, NodeId.national(), parts.clock)
