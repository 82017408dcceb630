"""Items from the CS nodes of the prefectures this server hosts, relayed to the national server.

A CS may hand its own items only to the server of its own prefecture (the batch's destination is
``pref:<its prefecture>``): change notices for residents of its own municipality, My Number card events
of its own municipality (checked and relayed, not stored: the prefecture has no part in the card
lifecycle), and the blocks of
住民票コード the national server designated to it (``code_block``, sealed by the national token; the
prefecture stores which CS each code belongs to, and for a 住民票コード変更 which code the new one replaces,
which its ownership check of later notices reads). The
prefecture stores them and queues the CS's batch envelope, exactly as received and once per batch, for
the national server: the CS's signature reaches the national server intact, so the prefecture cannot
insert, alter or drop from the middle of a CS's items without the national server refusing (see
:mod:`jukinet.server.national.notices`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lmdb

from jukinet.domain.clock import SYSTEM_CLOCK, Clock, today
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.limits import MAX_ORIGIN_BATCH_BYTES
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.pki import TrustStore
from jukinet.server.card_events import check_card_events
from jukinet.server.changes import ChangeWriter, Incoming, check_notices, verified_grant
from jukinet.server.code_blocks import verify_block
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.intake import Delivery, Item, Plan
from jukinet.storage import NodeStorage
from jukinet.v1 import envelope_pb2, link_pb2, numbers_pb2

_RELAYED = "relayed"


@dataclass(frozen=True)
class _Relay:
    storage: NodeStorage
    national: str
    relay: bytes | None  # serialized LinkItem carrying the CS's envelope (None: another run relays it)

    def enqueue(self, txn: lmdb.Transaction) -> None:
        if self.relay is not None:
            self.storage.queues.enqueue(txn, self.national, [self.relay])


@dataclass(frozen=True)
class _StoreAndRelay:
    writer: ChangeWriter
    notices: list[Incoming]
    relay: _Relay

    def apply(self, txn: lmdb.Transaction) -> None:
        self.writer.apply(txn, self.notices)
        self.relay.enqueue(txn)


@dataclass(frozen=True)
class _Designate:
    storage: NodeStorage
    blocks: list[numbers_pb2.CodeBlock]
    relay: _Relay

    def apply(self, txn: lmdb.Transaction) -> None:
        for block in self.blocks:
            for code in block.codes:
                self.storage.designations.put(txn, code, block.cs, block.block)
            if block.replaces:  # 住民票コード変更: the one code serves the change of this code only
                self.storage.numbers.link_change(txn, block.replaces, block.codes[0])
        self.relay.enqueue(txn)


class _FromHostedCs:
    """What every item kind from a CS shares: the sender is a CS of a hosted prefecture, addressing its
    own prefecture, in a batch that can be relayed whole; its envelope is relayed once."""

    kind: str

    def __init__(self, hosted: frozenset[str], storage: NodeStorage, national: NodeId) -> None:
        self._hosted = hosted  # 2-digit prefecture codes served here
        self._storage = storage
        self._national = str(national)

    def _admit(self, delivery: Delivery) -> _Relay:
        sender = delivery.sender
        if sender.kind is not NodeKind.CS:
            raise Rejected(Problem.DENIED, f"{sender} is not a CS; only CS nodes send {self.kind} items here")
        if sender.prefecture_code not in self._hosted:
            hosted = ", ".join(sorted(self._hosted))
            raise Rejected(Problem.DENIED, f"{sender} is not a CS of a prefecture served here ({hosted})")
        home = NodeId.prefecture(sender.prefecture_code)
        if delivery.destination != home:
            raise Rejected(Problem.DENIED, f"{sender} hands its items to {home}, not {delivery.destination}")
        size = len(delivery.envelope.payload)
        if size > MAX_ORIGIN_BATCH_BYTES:  # relayed unchanged, it must fit a batch to the national server
            raise Rejected(
                Problem.EXHAUSTED,
                f"{sender}'s batch is {size} bytes; a CS batch may be at most {MAX_ORIGIN_BATCH_BYTES}",
            )
        relay = None
        if not delivery.shared.get(_RELAYED):
            delivery.shared[_RELAYED] = True
            relay = link_pb2.LinkItem(relayed_batch=delivery.envelope).SerializeToString()
        return _Relay(self._storage, self._national, relay)


class CsChangeNotices(_FromHostedCs):
    """ItemHandler for ``change_notice`` items at a prefecture server."""

    kind = "change_notice"

    def __init__(
        self,
        hosted: frozenset[str],
        storage: NodeStorage,
        national: NodeId,
        clock: Clock = SYSTEM_CLOCK,
        trust: TrustStore | None = None,
    ) -> None:
        super().__init__(hosted, storage, national)
        self._writer = ChangeWriter(storage, hosted=hosted)
        self._clock = clock
        self._trust = trust

    def check(self, delivery: Delivery, items: Sequence[Item]) -> Plan:
        relay = self._admit(delivery)
        day = today(self._clock)
        check_notices(items, delivery.sender, day)
        trust = self._trust
        incoming = [Incoming(p, n, verified_grant(n, trust, p, day) if trust is not None else None) for p, n in items]
        return _StoreAndRelay(self._writer, incoming, relay)


class CsCodeBlocks(_FromHostedCs):
    """ItemHandler for ``code_block`` items at a prefecture server: learn which CS each code belongs to."""

    kind = "code_block"

    def __init__(self, hosted: frozenset[str], storage: NodeStorage, national: NodeId, trust: TrustStore) -> None:
        super().__init__(hosted, storage, national)
        self._trust = trust

    def check(self, delivery: Delivery, items: Sequence[Item]) -> Plan:
        relay = self._admit(delivery)
        return _Designate(self._storage, [open_code_block(s, self._trust, delivery.sender, p) for p, s in items], relay)


@dataclass(frozen=True)
class _RelayOnly:
    relay: _Relay

    def apply(self, txn: lmdb.Transaction) -> None:
        self.relay.enqueue(txn)


class CsCardEvents(_FromHostedCs):
    """ItemHandler for ``card_event`` items at a prefecture server: checked and relayed, not stored."""

    kind = "card_event"

    def check(self, delivery: Delivery, items: Sequence[Item]) -> Plan:
        relay = self._admit(delivery)
        check_card_events(items, delivery.sender)
        return _RelayOnly(relay)


def open_code_block(signed: envelope_pb2.Signed, trust: TrustStore, cs: NodeId, position: int) -> numbers_pb2.CodeBlock:
    """A CodeBlock sealed by the national server (its node certificate) and designated to ``cs``; else
    ItemRefused at ``position``."""
    try:
        return verify_block(signed, trust, cs)
    except Rejected as exc:
        raise ItemRefused(exc.problem, f"code block #{position} from {cs}: {exc}", position) from None


def _hosted(parts: NodeParts) -> frozenset[str]:
    return frozenset(n.prefecture_code for n in parts.config.node_ids)


def cs_change_notices(parts: NodeParts) -> CsChangeNotices:
    """What the prefecture tier's intake accepts (see jukinet.server.assembly.TIERS)."""
    return CsChangeNotices(_hosted(parts), parts.storage, NodeId.national(), parts.clock, parts.trust)


def cs_code_blocks(parts: NodeParts) -> CsCodeBlocks:
    """Designated code blocks from the CS nodes of the hosted prefectures (see assembly.TIERS)."""
    return CsCodeBlocks(_hosted(parts), parts.storage, NodeId.national(), parts.trust)


def cs_card_events(parts: NodeParts) -> CsCardEvents:
    """My Number card events from the CS nodes of the hosted prefectures (see assembly.TIERS)."""
    return CsCardEvents(_hosted(parts), parts.storage, NodeId.national())
