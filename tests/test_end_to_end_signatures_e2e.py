"""A CS's signature reaches the national server intact; a dishonest prefecture cannot add to, alter or
drop from the middle of a CS's notices.

Against the real national server process: the test plays the server of 神奈川県 (pref:14, valid node
certificates: a compromised prefecture) and one of its CS nodes (横須賀市, cs:142018). The CS signs its batches;
the prefecture relays them — honestly, then not. The CS's residents carry 住民票コード designated to it and
the My Numbers assigned to them (its block of codes relayed first, as a CS queues it), so only the
forgery stands between each batch and the store. Every forgery is refused and stores nothing.
"""

from __future__ import annotations

import grpc
import pytest
from netutil import address, counts, designated, rpc_error, simulated, terminal

from jukinet.devnet.simulated import change_items
from jukinet.v1 import envelope_pb2, identity_pb2, link_pb2

CS, HOME = "cs:142018", "142018"


class Relay:
    """The test's prefecture and its CS, residents the CS may send, and the next positions the national
    server expects."""

    def __init__(self, running, tmp) -> None:
        self.running = running
        self.pref = simulated(running, ["pref:14"], tmp / "pref")
        self.cs = simulated(running, [CS], tmp / "cs")
        self.hop = 1  # pref:14 → national
        block, self._unused = designated(running, self.cs, 20, identity_pb2.CHANGE_REASON_MOVE_IN)
        self.relay(self.cs.batch("pref:14", [block], 1))  # cs:142018 → pref:14 #1: its designated codes
        self.origin = 2  # cs:142018 → pref:14

    def residents(self, n: int) -> list:
        """``n`` records of the CS's municipality with codes designated to it (each handed out once)."""
        records, self._unused = self._unused[:n], self._unused[n:]
        assert len(records) == n, "designate more codes for this module"
        return records

    def cs_batch(self, n: int, first: int | None = None) -> envelope_pb2.Signed:
        first = self.origin if first is None else first
        return self.cs.batch("pref:14", change_items(CS, self.residents(n), first), first)

    def relay(self, *envelopes: envelope_pb2.Signed, items: list[bytes] | None = None) -> list:
        items = items or [link_pb2.LinkItem(relayed_batch=e).SerializeToString() for e in envelopes]
        batch = self.pref.batch("national", items, self.hop)
        receipts = self.pref.deliver(address(self.running, "national"), "national", [batch])
        self.hop += len(items)
        return receipts


@pytest.fixture(scope="module")
def relay(network, tmp_path_factory) -> Relay:
    return Relay(network, tmp_path_factory.mktemp("kanagawa"))


def _refused(relay: Relay, *envelopes, items=None) -> grpc.RpcError:
    before = counts(relay.running, "national")
    hop = relay.hop
    err = rpc_error(relay.relay, *envelopes, items=items)
    relay.hop = hop
    assert counts(relay.running, "national") == before, "a refused batch must store nothing"
    return err


def test_an_honest_relay_is_stored_with_the_cs_queue_continued(network, relay):
    before = counts(network, "national")[0]
    first = relay.origin  # 2: #1 was the CS's block of codes
    relay.relay(relay.cs_batch(2), relay.cs_batch(3, first=first + 2))
    relay.origin = first + 5
    assert counts(network, "national")[0] == before + 5
    inbound = {
        (i.sender, i.destination): i.last_sequence for i in terminal(network, "national").status(inbound=True).inbound
    }
    assert inbound[(CS, "pref:14")] == first + 4


def test_a_notice_the_cs_never_signed_is_refused(network, relay):
    forged = relay.pref.batch("pref:14", change_items(CS, relay.residents(1), relay.origin), relay.origin, sender=CS)
    err = _refused(relay, forged)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "was signed by pref:14" in err.details()
    own = [link_pb2.LinkItem.FromString(i).SerializeToString() for i in change_items(CS, relay.residents(1))]
    err = _refused(relay, items=own)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "accepts no change_notice items" in err.details()


def test_an_altered_notice_is_refused(network, relay):
    genuine = relay.cs_batch(1)
    altered = envelope_pb2.Signed()
    altered.CopyFrom(genuine)
    altered.payload = altered.payload.replace(HOME.encode(), b"142019", 1)
    err = _refused(relay, altered)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "does not verify" in err.details()


def test_a_batch_dropped_from_the_middle_is_noticed(network, relay):
    later = relay.cs_batch(1, first=relay.origin + 1)  # #origin withheld, the next one passed on
    err = _refused(relay, later)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"#{relay.origin + 1} arrived but #{relay.origin} is the next expected" in err.details()
    before = counts(network, "national")[0]
    relay.relay(relay.cs_batch(1), later)  # in order, both go through
    relay.origin += 2
    assert counts(network, "national")[0] == before + 2
