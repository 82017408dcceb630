"""The receiving end of links as plain objects (no gRPC, no SoftHSM): what the prefecture and the
national server accept, store, relay and receipt, and every forgery they refuse before storing anything.

Keys are software keys certified by a development PKI, stand-ins for tokens in this unit test only; the
end-to-end tests run the same checks between real node processes.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from jukinet.devnet.simulated import SimulatedNode, change_items
from jukinet.domain.clock import ManualClock
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki import TrustStore, init_pki, open_certified, seal_payload
from jukinet.server.national.notices import RelayedChangeNotices
from jukinet.server.prefecture.notices import CsChangeNotices
from jukinet.server.runtime.batches import (
    BATCH_TYPE,
    batch_digest,
    change_notice_item,
    encode_change_notice,
    encode_link_batch,
)
from jukinet.server.runtime.intake import LinkIntake
from jukinet.storage import NodeStorage
from jukinet.storage.layout import WITHDRAWN
from jukinet.v1 import envelope_pb2, link_pb2, notice_pb2

_rng = random.Random(31)
_END = b"-----END CERTIFICATE-----"


def residents(code: str, n: int) -> list:
    return [synthetic_resident(_rng, code) for _ in range(n)]


class Tier:
    """A receiving node (intake + storage) and the identities that send to it."""

    def __init__(self, base: Path, pki: Path, ids: list[str], handlers: dict) -> None:
        self.trust = TrustStore.load(pki)
        self.me = SimulatedNode.issue(pki, ids, base / ids[0].replace(":", "-"))
        self.storage = NodeStorage.open(base / f"data-{ids[0].replace(':', '-')}")
        built = {kind: make(self) for kind, make in handlers.items()}
        self.intake = LinkIntake([NodeId.parse(i) for i in ids], self.trust, self.storage, self.me.signer,
                                 self.me.certificate_der, built, ManualClock())  # fmt: skip

    def peer(self, node: SimulatedNode):
        """The TLS identity a node presents when it connects."""
        return self.trust.identify(node.tls_cert.read_bytes().split(_END)[0] + _END + b"\n")

    def accept(self, node: SimulatedNode, batch: envelope_pb2.Signed) -> link_pb2.Receipt:
        signed = self.intake.accept(batch, self.peer(node))
        receipt, _ = open_certified(signed, link_pb2.Receipt, self.trust, NodeId.parse(self.me.node_id))
        return receipt

    def refused(self, node: SimulatedNode, batch: envelope_pb2.Signed, problem: Problem, match: str) -> None:
        before = (self.storage.records.count(), self.storage.history.count(), self.storage.inbox.all(),
                  self.storage.queues.states())  # fmt: skip
        with pytest.raises(Rejected, match=match) as exc:
            self.intake.accept(batch, self.peer(node))
        assert exc.value.problem is problem, exc.value
        after = (self.storage.records.count(), self.storage.history.count(), self.storage.inbox.all(),
                 self.storage.queues.states())  # fmt: skip
        assert after == before, "a refused batch must store nothing"


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    init_pki(tmp_path / "pki")
    return tmp_path / "pki"


@pytest.fixture
def prefecture(tmp_path: Path, pki: Path) -> Tier:
    def handler(tier: Tier) -> CsChangeNotices:
        return CsChangeNotices(frozenset({"13"}), tier.storage, NodeId.national(), ManualClock())

    tier = Tier(tmp_path, pki, ["pref:13"], {"change_notice": handler})
    yield tier
    tier.storage.close()


@pytest.fixture
def national(tmp_path: Path, pki: Path) -> Tier:
    def handler(tier: Tier) -> RelayedChangeNotices:
        return RelayedChangeNotices(tier.trust, tier.storage, ManualClock())

    tier = Tier(tmp_path, pki, ["national"], {"relayed_batch": handler})
    yield tier
    tier.storage.close()


@pytest.fixture
def cs(tmp_path: Path, pki: Path) -> SimulatedNode:
    return SimulatedNode.issue(pki, ["cs:131130"], tmp_path / "cs-131130")


def notices(cs: SimulatedNode, n: int, first: int = 1, destination: str = "pref:13") -> envelope_pb2.Signed:
    return cs.batch(destination, change_items(cs.node_id, residents(cs.node_id[3:], n), first), first)


def signed_batch(node: SimulatedNode, batch: link_pb2.LinkBatch, destination: str = "pref:13") -> envelope_pb2.Signed:
    """A batch built field by field with protobuf (for shapes the queue encoder never produces)."""
    batch.sender, batch.destination = batch.sender or node.node_id, batch.destination or destination
    return seal_payload(node.signer, BATCH_TYPE, batch.SerializeToString(), node.certificate_der)


def with_withdrawn(cs: SimulatedNode, first: int, layout: str, destination: str = "pref:13") -> envelope_pb2.Signed:
    """A batch from position ``first`` with an item for each 'i' and a withdrawn position for each 'w'."""
    items = iter(change_items(cs.node_id, residents(cs.node_id[3:], layout.count("i")), first))
    entries = [(first + k, next(items) if c == "i" else WITHDRAWN) for k, c in enumerate(layout)]
    payload = encode_link_batch(cs.node_id, destination, entries, 1_790_000_000_000)
    return seal_payload(cs.signer, BATCH_TYPE, payload, cs.certificate_der)


# -- the wire form -----------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 130, 1000])
def test_batches_are_built_byte_for_byte_as_protobuf_would(count: int) -> None:
    items = [link_pb2.LinkItem(change_notice=notice_pb2.ChangeNotice(origin="cs:131148", sequence=i))
             for i in range(1, count + 1)]  # fmt: skip
    entries = [(10 + i, item.SerializeToString()) for i, item in enumerate(items)]
    batch = link_pb2.LinkBatch(sender="cs:131148", destination="pref:13", first_sequence=10,
                               last_sequence=9 + count, items=items)  # fmt: skip
    batch.sent_at.FromMilliseconds(1_790_000_000_123)
    assert encode_link_batch("cs:131148", "pref:13", entries, 1_790_000_000_123) == batch.SerializeToString()


# -- at a prefecture -----------------------------------------------------------------------------------


def test_a_cs_batch_is_stored_relayed_and_receipted(prefecture: Tier, cs: SimulatedNode) -> None:
    batch = notices(cs, 3)
    receipt = prefecture.accept(cs, batch)
    assert (receipt.receiver, receipt.sender, receipt.first_sequence, receipt.last_sequence) == (
        "pref:13", "cs:131130", 1, 3,
    )  # fmt: skip
    assert (receipt.applied, receipt.duplicates, receipt.batch_sha256) == (3, 0, batch_digest(batch.payload))
    assert prefecture.storage.records.count() == 3
    # The CS's envelope is queued for the national server exactly as it arrived.
    ((_, relayed),) = prefecture.storage.queues.pending("national", 0, 10)
    assert link_pb2.LinkItem.FromString(relayed).relayed_batch == batch


def test_re_delivery_and_overlap_store_each_notice_once(prefecture: Tier, cs: SimulatedNode) -> None:
    first = notices(cs, 3)
    prefecture.accept(cs, first)
    again = prefecture.accept(cs, first)
    assert (again.applied, again.duplicates) == (0, 3)
    assert len(prefecture.storage.queues.pending("national", 0, 10)) == 1  # nothing new: nothing relayed
    wider = cs.batch("pref:13", change_items(cs.node_id, residents("131130", 5)), 1)  # re-formed after a reconnect
    receipt = prefecture.accept(cs, wider)
    assert (receipt.applied, receipt.duplicates) == (2, 3)
    assert prefecture.storage.history.count() == 5
    assert len(prefecture.storage.queues.pending("national", 0, 10)) == 2


def test_prefecture_refusals(prefecture: Tier, cs: SimulatedNode, tmp_path: Path, pki: Path) -> None:
    prefecture.accept(cs, notices(cs, 2))
    prefecture.refused(cs, notices(cs, 1, first=5), Problem.OUT_OF_ORDER, "#5 arrived but #3 is the next expected")
    other_town = cs.batch("pref:13", change_items(cs.node_id, residents("131016", 1), 3), 3)
    prefecture.refused(cs, other_town, Problem.DENIED, "may not send records of municipality 131016")
    prefecture.refused(cs, notices(cs, 1, first=3, destination="pref:14"), Problem.DENIED, "is for 'pref:14'")
    kanagawa = SimulatedNode.issue(pki, ["cs:141305"], tmp_path / "k")
    prefecture.refused(kanagawa, notices(kanagawa, 1, destination="pref:13"), Problem.DENIED,
                       "not a CS of a prefecture served here")  # fmt: skip
    neighbour = SimulatedNode.issue(pki, ["cs:131016"], tmp_path / "n")
    prefecture.refused(cs, notices(neighbour, 1), Problem.DENIED, "names cs:131016, not cs:131130")
    prefecture.refused(neighbour, notices(cs, 1, first=3), Problem.DENIED, "names cs:131130, not cs:131016")
    forged_sender = cs.batch("pref:13", change_items("cs:131016", residents("131016", 1)), 1, sender="cs:131016")
    prefecture.refused(cs, forged_sender, Problem.DENIED, "names sender cs:131016")
    stray = cs.batch("pref:13", [link_pb2.LinkItem(relayed_batch=notices(cs, 1)).SerializeToString()], 3)
    prefecture.refused(cs, stray, Problem.DENIED, "accepts no relayed_batch items")
    empty = signed_batch(cs, link_pb2.LinkBatch(first_sequence=3, last_sequence=3, items=[link_pb2.LinkItem()]))
    prefecture.refused(cs, empty, Problem.INVALID, "carries no payload")
    prefecture.accept(cs, notices(cs, 1, first=3))  # and it keeps accepting what is right


# -- at the national server: end-to-end signatures through a prefecture -------------------------------


@pytest.fixture
def relay(tmp_path: Path, pki: Path) -> SimulatedNode:
    """A prefecture server, as the national server sees it (the test plays it, honest or not)."""
    return SimulatedNode.issue(pki, ["pref:13"], tmp_path / "relay")


class Relay:
    def __init__(self, node: SimulatedNode) -> None:
        self.node = node
        self.next = 1

    def batch(self, items: list[bytes]) -> envelope_pb2.Signed:
        batch = self.node.batch("national", items, self.next)
        self.next += len(items)
        return batch


def relayed(*envelopes: envelope_pb2.Signed) -> list[bytes]:
    return [link_pb2.LinkItem(relayed_batch=e).SerializeToString() for e in envelopes]


def test_relayed_cs_batches_reach_the_national_server_with_the_cs_signature(national, relay, cs) -> None:
    hop = Relay(relay)
    receipt = national.accept(relay, hop.batch(relayed(notices(cs, 3), notices(cs, 2, first=4))))
    assert (receipt.applied, receipt.receiver, receipt.sender) == (2, "national", "pref:13")
    assert national.storage.records.count() == 5
    marks = {(s, d): m for s, d, m in national.storage.inbox.all()}
    assert marks == {("pref:13", "national"): 2, ("cs:131130", "pref:13"): 5}


def test_a_prefecture_cannot_insert_alter_or_drop_notices(national, relay, cs, tmp_path, pki) -> None:
    hop = Relay(relay)
    national.accept(relay, hop.batch(relayed(notices(cs, 2))))
    # Insert: a batch "from" the CS that the CS never signed.
    forged = relay.batch("pref:13", change_items(cs.node_id, residents("131130", 1), 3), 3, sender=cs.node_id)
    national.refused(relay, relay.batch("national", relayed(forged), hop.next), Problem.DENIED,
                     "names sender cs:131130 but was signed by pref:13")  # fmt: skip
    # Insert, as the prefecture's own change notices: it has none to give.
    own = relay.batch("national", change_items(cs.node_id, residents("131130", 1), 3), hop.next)
    national.refused(relay, own, Problem.DENIED, "national accepts no change_notice items")
    # Alter: the CS's envelope with a changed record.
    genuine = notices(cs, 1, first=3)
    altered = envelope_pb2.Signed()
    altered.CopyFrom(genuine)
    altered.payload = altered.payload.replace(b"131130", b"131131", 1)
    national.refused(relay, relay.batch("national", relayed(altered), hop.next), Problem.UNAUTHENTICATED,
                     "does not verify")  # fmt: skip
    # Drop from the middle: #3 withheld, #4 passed on.
    national.refused(relay, relay.batch("national", relayed(notices(cs, 1, first=4)), hop.next),
                     Problem.OUT_OF_ORDER, "#4 arrived but #3 is the next expected")  # fmt: skip
    # Speak for a CS of another prefecture, or pass on a batch the CS addressed elsewhere.
    yokohama = SimulatedNode.issue(pki, ["cs:141003"], tmp_path / "y")
    national.refused(relay, relay.batch("national", relayed(notices(yokohama, 1, destination="pref:14")), hop.next),
                     Problem.DENIED, "may not relay batches of cs:141003")  # fmt: skip
    national.refused(relay, relay.batch("national", relayed(notices(cs, 1, first=3, destination="pref:14")),
                     hop.next), Problem.DENIED, "addressed to pref:14")  # fmt: skip
    nested = cs.batch("pref:13", relayed(notices(cs, 1, first=3)), 3)
    national.refused(relay, relay.batch("national", relayed(nested), hop.next), Problem.INVALID,
                     "may carry change_notice only, not relayed_batch")  # fmt: skip
    # The genuine batch, unaltered, still goes through.
    assert national.accept(relay, hop.batch(relayed(genuine))).applied == 1
    assert national.storage.records.count() == 3


def test_only_prefecture_servers_relay(national, cs) -> None:
    national.refused(cs, cs.batch("national", relayed(notices(cs, 1))), Problem.DENIED,
                     "not a prefecture server")  # fmt: skip


def test_a_cs_builds_notices_and_items_byte_for_byte_as_protobuf_would() -> None:
    record = residents("131148", 1)[0]
    notice = notice_pb2.ChangeNotice(origin="cs:131148", sequence=300, record=record)
    notice.recorded_at.FromMilliseconds(1_790_000_000_456)
    built = encode_change_notice("cs:131148", 300, record.SerializeToString(), 1_790_000_000_456)
    assert built == notice.SerializeToString()
    assert change_notice_item(built) == link_pb2.LinkItem(change_notice=notice).SerializeToString()


def test_withdrawn_positions_are_encoded_as_protobuf_would_and_move_the_mark(prefecture: Tier, cs) -> None:
    entries = [(7, change_item := change_items(cs.node_id, residents("131130", 1), 7)[0]), (8, WITHDRAWN),
               (9, WITHDRAWN), (10, change_item)]  # fmt: skip
    expected = link_pb2.LinkBatch(sender="a", destination="b", first_sequence=7, last_sequence=10, withdrawn=[8, 9],
                                  items=[link_pb2.LinkItem.FromString(change_item)] * 2)  # fmt: skip
    expected.sent_at.FromMilliseconds(5)
    assert encode_link_batch("a", "b", entries, 5) == expected.SerializeToString()

    prefecture.accept(cs, notices(cs, 2))
    receipt = prefecture.accept(cs, with_withdrawn(cs, 3, "iwwiw" + "i"))  # positions 3..8, 4, 5 and 7 withdrawn
    assert (receipt.first_sequence, receipt.last_sequence, receipt.applied) == (3, 8, 3)
    assert dict(((s, d), m) for s, d, m in prefecture.storage.inbox.all())[("cs:131130", "pref:13")] == 8
    assert prefecture.storage.records.count() == 5
    again = prefecture.accept(cs, with_withdrawn(cs, 6, "wwi"))  # a re-delivery that overlaps: nothing new
    assert (again.applied, again.duplicates) == (0, 1)


@pytest.mark.parametrize(
    ("first", "last", "withdrawn", "items", "why"),
    [
        (1, 3, [3], 2, "must ascend within 1..2"),  # the last position is always an item
        (1, 4, [2], 2, "do not fit its 2 items and 1 withdrawn"),
        (2, 5, [4, 3], 2, "must ascend"),
        (1, 4, [2, 2], 2, "must ascend"),
        (3, 5, [1], 2, "must ascend within 3..4"),
        (1, 5001, list(range(1, 5001)), 1, "at most 5000"),
    ],
)
def test_malformed_withdrawn_positions_are_refused(prefecture: Tier, cs, first, last, withdrawn, items, why) -> None:
    batch = link_pb2.LinkBatch(first_sequence=first, last_sequence=last, withdrawn=withdrawn)
    batch.items.extend(link_pb2.LinkItem.FromString(i) for i in change_items(cs.node_id, residents("131130", items)))
    problem = Problem.EXHAUSTED if "5000" in why else Problem.INVALID
    prefecture.refused(cs, signed_batch(cs, batch), problem, why)


def test_an_invalid_notice_is_refused_by_its_position(prefecture: Tier, cs) -> None:
    prefecture.accept(cs, notices(cs, 2))
    records = residents("131130", 3)
    records[1].name.kanji = "中野\u202e太郎"
    batch = cs.batch("pref:13", change_items(cs.node_id, records, 3), 3)
    with pytest.raises(ItemRefused, match="U\\+202E RIGHT-TO-LEFT OVERRIDE") as refused:
        prefecture.intake.accept(batch, prefecture.peer(cs))
    assert (refused.value.position, refused.value.problem) == (4, Problem.INVALID)
    # The sender withdraws #4 and resends: the others are stored, the mark passes #4.
    items = change_items(cs.node_id, records, 3)
    payload = encode_link_batch(cs.node_id, "pref:13", [(3, items[0]), (4, WITHDRAWN), (5, items[2])], 1)
    receipt = prefecture.accept(cs, seal_payload(cs.signer, BATCH_TYPE, payload, cs.certificate_der))
    assert (receipt.applied, prefecture.storage.records.count()) == (2, 4)


def test_a_relayed_batch_refused_at_the_national_server_names_its_position(national, relay, cs) -> None:
    hop = Relay(relay)
    national.accept(relay, hop.batch(relayed(notices(cs, 1))))
    first, second = notices(cs, 1, first=2), notices(cs, 1, first=3)
    altered = envelope_pb2.Signed()
    altered.CopyFrom(first)
    altered.signature = bytes(64)
    batch = relay.batch("national", relayed(altered, second), hop.next)
    with pytest.raises(ItemRefused) as refused:
        national.intake.accept(batch, national.peer(relay))
    assert refused.value.position == hop.next
    # The prefecture sets it aside; the CS's next batch then waits behind it (out of order), refused by position.
    payload = encode_link_batch("pref:13", "national", [(hop.next, WITHDRAWN), (hop.next + 1, relayed(second)[0])], 1)
    with pytest.raises(ItemRefused, match="#3 arrived but #2 is the next expected") as waiting:
        national.intake.accept(seal_payload(relay.signer, BATCH_TYPE, payload, relay.certificate_der),
                               national.peer(relay))  # fmt: skip
    assert (waiting.value.position, waiting.value.problem) == (hop.next + 1, Problem.OUT_OF_ORDER)
    # Put back in order (the genuine batch), both go through.
    retried = encode_link_batch("pref:13", "national", [(hop.next, WITHDRAWN), (hop.next + 1, WITHDRAWN),
                                (hop.next + 2, relayed(first)[0]), (hop.next + 3, relayed(second)[0])], 2)  # fmt: skip
    receipt = national.accept(relay, seal_payload(relay.signer, BATCH_TYPE, retried, relay.certificate_der))
    assert (receipt.applied, national.storage.records.count()) == (2, 3)


def test_a_stolen_tls_key_cannot_sign_a_batch(prefecture: Tier, cs: SimulatedNode) -> None:
    """TLS keys are files; only a signing key (in the node's token) may sign what a node hands over."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from jukinet.pki import SoftwareSigner, load_private_key

    tls_key = SoftwareSigner(load_private_key(cs.tls_key))
    tls_der = x509.load_pem_x509_certificate(cs.tls_cert.read_bytes()).public_bytes(Encoding.DER)
    forged = cs.batch("pref:13", change_items(cs.node_id, residents("131130", 1)), 1, signer=tls_key,
                      certificate_der=tls_der)  # fmt: skip
    prefecture.refused(cs, forged, Problem.UNAUTHENTICATED, "is a tls certificate, not a signing certificate")
