"""Change notices at the national server: CS batches relayed by their prefecture, verified end to end.

A prefecture hands over ``relayed_batch`` items, each a CS's own signed batch exactly as the CS sent
it. For every one, before anything is stored: the CS's signature verifies against a node certificate
that names the CS; the CS is in a prefecture the relaying server hosts, and its batch was addressed to
that prefecture; the batch continues the CS's queue exactly where the national server's record of it
ends (a re-delivered batch is a duplicate; one that skips ahead means the prefecture dropped or
withheld something); it carries only change notices, each the CS's own and valid, and blocks of codes the
national server designated to that CS (sealed by this server's token). Each notice's ownership — the code
designated to or owned by the origin, its My Number the one assigned to the code — is checked in the
write transaction (:class:`jukinet.server.changes.Ownership`). The prefecture's own
signature over the batch that carried them was checked by the intake. So a prefecture cannot insert a
notice, alter one, or drop one from the middle of a CS's sequence without the national server refusing
that relayed batch (as an :class:`ItemRefused`: the prefecture quarantines it, and every later batch of
the same CS then waits behind it, refused as out of order, while other CS nodes' batches flow).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lmdb

from jukinet.domain.clock import SYSTEM_CLOCK, Clock, today
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.pki import TrustStore
from jukinet.server.changes import ChangeWriter, Incoming, check_notices, grant_signer
from jukinet.server.code_blocks import verify_block
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.intake import Delivery, Item, Plan, open_batch, runs_by_kind
from jukinet.storage import NodeStorage

_FOR_GOOD = frozenset({Problem.INVALID, Problem.DENIED, Problem.UNAUTHENTICATED, Problem.OUT_OF_ORDER})


@dataclass(frozen=True)
class _Store:
    writer: ChangeWriter
    notices: list[Incoming]

    def apply(self, txn: lmdb.Transaction) -> None:
        if self.notices:
            self.writer.apply(txn, self.notices)


class RelayedChangeNotices:
    """ItemHandler for ``relayed_batch`` items at the national server."""

    kind = "relayed_batch"

    def __init__(self, trust: TrustStore, storage: NodeStorage, clock: Clock = SYSTEM_CLOCK) -> None:
        self._trust = trust
        self._storage = storage
        self._writer = ChangeWriter(storage, national=True)
        self._clock = clock

    def check(self, delivery: Delivery, items: Sequence[Item]) -> Plan:
        relay = delivery.sender
        if relay.kind is not NodeKind.PREFECTURE:
            raise Rejected(Problem.DENIED, f"{relay} is not a prefecture server; only they relay CS batches")
        hosted = {n.code for n in delivery.signer.node_ids if n.kind is NodeKind.PREFECTURE}
        day = today(self._clock)
        notices: list[Incoming] = []
        for position, envelope in items:
            try:
                inner, _ = open_batch(envelope, self._trust)
                origin = NodeId.parse(inner.sender)
                if origin.kind is not NodeKind.CS or origin.prefecture_code not in hosted:
                    raise Rejected(Problem.DENIED, f"{relay} may not relay batches of {origin}")
                if inner.destination != str(NodeId.prefecture(origin.prefecture_code)):
                    raise Rejected(
                        Problem.DENIED, f"{origin}'s batch was addressed to {inner.destination}, not its prefecture"
                    )
                fresh, _ = delivery.claim(inner)  # the CS's own queue, continued exactly
                for kind, run in runs_by_kind(fresh):
                    if kind == "code_block":  # designated here: nothing to learn, but it must be genuine
                        for _, signed in run:
                            verify_block(signed, self._trust, origin)
                        continue
                    if kind != "change_notice":
                        raise Rejected(
                            Problem.INVALID,
                            f"a relayed batch may carry change notices and code blocks only, not {kind}",
                        )
                    check_notices(run, origin, day)
                    notices.extend(Incoming(position, n, grant_signer(n, self._trust, position)) for _, n in run)
            except Rejected as exc:
                message = f"relayed batch #{position} from {relay}: {exc}"
                if exc.problem in _FOR_GOOD:  # the prefecture sets it aside and carries on with the rest
                    raise ItemRefused(exc.problem, message, position) from None
                raise Rejected(exc.problem, message) from None
        return _Store(self._writer, notices)


def relayed_change_notices(parts: NodeParts) -> RelayedChangeNotices:
    """What the national tier's intake accepts (see jukinet.server.assembly.TIERS)."""
    return RelayedChangeNotices(parts.trust, parts.storage, parts.clock)
