"""Link Deliver, on the plain intake of a prefecture (no gRPC, no SoftHSM; as tests/test_intake.py):
malformed, forged, oversized, replayed and reordered batches.

Properties: a refused batch gets a problem other than BROKEN with a message that names what is wrong,
stores nothing (records, history, inbound marks, outbound queues unchanged), and the intake goes on
accepting the right batch after it; any order of deliveries of a queue's batches stores each notice
exactly once and in order — a batch that skips ahead is OUT_OF_ORDER, a re-delivered one is counted as
duplicates, never applied twice.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hostile_input import broken_record, hostile_char
from hypothesis import given
from hypothesis import strategies as st
from propcount import ran

from jukinet.devnet.simulated import SimulatedNode, change_items
from jukinet.domain.clock import ManualClock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki import SoftwareSigner, TrustStore, init_pki, open_certified, seal_payload
from jukinet.server.prefecture.notices import CsChangeNotices
from jukinet.server.runtime.batches import BATCH_TYPE
from jukinet.server.runtime.intake import LinkIntake
from jukinet.storage import NodeStorage
from jukinet.v1 import envelope_pb2, identity_pb2, link_pb2, notice_pb2

_END = b"-----END CERTIFICATE-----"
FAMILY = "link Deliver (intake)"


@dataclass
class Prefecture:
    """pref:13's intake and storage, and the CS that sends to it; ``mark`` is the last position stored."""

    intake: LinkIntake
    storage: NodeStorage
    trust: TrustStore
    cs: SimulatedNode
    stranger: SimulatedNode  # a node of another prefecture: valid certificate, wrong sender
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    mark: int = 0

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(f"Prefecture(mark={self.mark})")

    def peer(self, node: SimulatedNode):
        return self.trust.identify(node.tls_cert.read_bytes().split(_END)[0] + _END + b"\n")

    def state(self) -> tuple:
        s = self.storage
        return s.records.count(), s.history.count(), s.inbox.all(), s.queues.states()

    def items(self, n: int, first: int) -> list[bytes]:
        """``n`` new residents of the CS at positions ``first``…, their codes designated to it and known here
        as the prefecture learns them from the CS's code blocks (these properties are about the link;
        ownership has tests of its own, tests/test_numbers*.py)."""
        people = [synthetic_resident(self.rng, "131130", numbered=True) for _ in range(n)]

        def designate(txn) -> None:
            for person in people:
                self.storage.designations.put(txn, person.resident_code, self.cs.node_id, 1)

        self.storage.env.write(designate)
        return change_items(self.cs.node_id, people, first)

    def stored_mark(self) -> int:
        with self.storage.env.read() as txn:
            return self.storage.inbox.get(txn, self.cs.node_id, "pref:13")

    def receipt(self, envelope: envelope_pb2.Signed) -> link_pb2.Receipt:
        signed = self.intake.accept(envelope, self.peer(self.cs))
        receipt, _ = open_certified(signed, link_pb2.Receipt, self.trust, NodeId.parse("pref:13"))
        return receipt


@pytest.fixture(scope="module")
def pref(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prefecture]:
    base = tmp_path_factory.mktemp("prop-intake")
    pki = base / "pki"
    init_pki(pki)
    trust = TrustStore.load(pki)
    me = SimulatedNode.issue(pki, ["pref:13"], base / "pref-13")
    storage = NodeStorage.open(base / "data")
    handler = CsChangeNotices(frozenset({"13"}), storage, NodeId.national(), ManualClock())
    intake = LinkIntake([NodeId.parse("pref:13")], trust, storage, me.signer, me.certificate_der,
                        {"change_notice": handler}, ManualClock())  # fmt: skip
    cs = SimulatedNode.issue(pki, ["cs:131130"], base / "cs")
    stranger = SimulatedNode.issue(pki, ["cs:141305"], base / "stranger")
    yield Prefecture(intake, storage, trust, cs, stranger)
    storage.close()


def refused(pref: Prefecture, envelope: envelope_pb2.Signed, by: SimulatedNode | None = None) -> Rejected:
    before = pref.state()
    with pytest.raises(Rejected) as exc:
        pref.intake.accept(envelope, pref.peer(by or pref.cs))
    assert exc.value.problem is not Problem.BROKEN, exc.value
    message = str(exc.value)
    assert message.strip(), "a refusal says what is wrong"
    assert pref.state() == before, f"a refused batch stored something ({message})"
    return exc.value


def deliver_next(pref: Prefecture, n: int = 1) -> None:
    """The node keeps serving: the right next batch is accepted and stored once."""
    first = pref.mark + 1
    records_before = pref.storage.records.count()
    receipt = pref.receipt(pref.cs.batch("pref:13", pref.items(n, first), first))
    assert (receipt.first_sequence, receipt.last_sequence, receipt.applied, receipt.duplicates) == (
        first, first + n - 1, n, 0,
    )  # fmt: skip
    assert pref.storage.records.count() == records_before + n
    pref.mark += n


def _raw(pref: Prefecture, batch: link_pb2.LinkBatch, signer: SimulatedNode | None = None) -> envelope_pb2.Signed:
    node = signer or pref.cs
    return seal_payload(node.signer, BATCH_TYPE, batch.SerializeToString(), node.certificate_der)


# Each forgery: (name, builder(pref, first, draw) → envelope, problems it may be refused with)
ENVELOPE_FORGERIES = ["flip-payload", "flip-signature", "type", "algorithm", "key-id", "no-certificate",
                      "garbage-certificate", "foreign-key", "garbage-payload", "truncated-signature"]  # fmt: skip
BATCH_FORGERIES = ["first-zero", "last-mismatch", "empty", "withdrawn-outside", "withdrawn-unsorted",
                   "withdrawn-last", "sender-text", "destination-text", "other-destination", "no-payload",
                   "relayed-item", "other-town", "other-origin", "stranger", "broken-record",
                   "too-many-positions", "unknown-kind-bytes"]  # fmt: skip


@given(data=st.data(), forgery=st.sampled_from(ENVELOPE_FORGERIES + BATCH_FORGERIES))
def test_a_malformed_or_forged_batch_is_refused_and_stores_nothing(pref: Prefecture, data, forgery: str) -> None:
    ran(FAMILY)
    first = pref.mark + 1
    good = pref.cs.batch("pref:13", pref.items(2, first), first)
    env = envelope_pb2.Signed()
    env.CopyFrom(good)
    by = pref.cs
    batch = link_pb2.LinkBatch.FromString(good.payload)
    expect: set[Problem] = {Problem.INVALID, Problem.DENIED, Problem.UNAUTHENTICATED}
    words: tuple[str, ...] = ()
    if forgery == "flip-payload":
        at = data.draw(st.integers(0, 2**16)) % len(env.payload)
        env.payload = (
            env.payload[:at] + bytes([env.payload[at] ^ data.draw(st.integers(1, 255))]) + env.payload[at + 1 :]
        )
        words = ("signature",)
    elif forgery == "flip-signature":
        at = data.draw(st.integers(0, 2**16)) % len(env.signature)
        sig = bytearray(env.signature)
        sig[at] ^= data.draw(st.integers(1, 255))
        env.signature = bytes(sig)
        words = ("signature",)
    elif forgery == "truncated-signature":
        env.signature = env.signature[: data.draw(st.integers(0, 2**16)) % len(env.signature)]
        words = ("signature",)
    elif forgery == "type":
        env.payload_type = data.draw(st.text(max_size=60).filter(lambda t: t != good.payload_type))
        words = ("expected jukinet.v1.LinkBatch",)
    elif forgery == "algorithm":
        env.algorithm = data.draw(st.integers(-(2**31), 2**31 - 1).filter(lambda a: a != good.algorithm))
        words = ("algorithm",)
    elif forgery == "key-id":
        env.key_id = data.draw(st.binary(max_size=40).filter(lambda k: k != good.key_id))
        words = ("expected key",)
    elif forgery == "no-certificate":
        env.certificate = b""
        words = ("certificate",)
    elif forgery == "garbage-certificate":
        env.certificate = data.draw(st.binary(min_size=1, max_size=300))
        words = ("certificate",)
    elif forgery == "foreign-key":  # signed by a key the certificate does not certify
        env = pref.cs.batch("pref:13", pref.items(1, first), first, signer=SoftwareSigner())
        words = ("expected key",)
    elif forgery == "garbage-payload":  # properly signed bytes that are not a LinkBatch
        junk = data.draw(st.binary(min_size=1, max_size=200))
        env = seal_payload(pref.cs.signer, BATCH_TYPE, junk, pref.cs.certificate_der)
        expect |= {Problem.OUT_OF_ORDER}  # junk that happens to parse may name positions ahead
    elif forgery == "first-zero":
        batch.first_sequence, batch.last_sequence = 0, len(batch.items) - 1
        env, words = _raw(pref, batch), ("positions",)
    elif forgery == "last-mismatch":
        batch.last_sequence = (first + 1 + data.draw(st.integers(1, 2**63))) % 2**64
        env, words = _raw(pref, batch), ("positions",)
    elif forgery == "empty":
        del batch.items[:]
        batch.last_sequence = first - 1
        env, words = _raw(pref, batch), ("empty",)
    elif forgery in ("withdrawn-outside", "withdrawn-unsorted", "withdrawn-last"):
        batch.last_sequence = first + 2
        batch.withdrawn[:] = {
            "withdrawn-outside": [(first + 2 + data.draw(st.integers(1, 2**63))) % 2**64],
            "withdrawn-unsorted": [first + 1, first + 1] if data.draw(st.booleans()) else [first + 1, first],
            "withdrawn-last": [first + 2],
        }[forgery]
        if forgery == "withdrawn-unsorted":
            batch.last_sequence = first + 1 + len(batch.withdrawn)
        env = _raw(pref, batch)
    elif forgery == "sender-text":
        batch.sender = data.draw(st.one_of(st.text(max_size=80), st.builds(lambda c: "cs:1311" + c, hostile_char)))
        env = _raw(pref, batch)
    elif forgery == "destination-text":
        batch.destination = data.draw(st.text(max_size=80).filter(lambda d: d != "pref:13"))
        env = _raw(pref, batch)
    elif forgery == "other-destination":
        env = pref.cs.batch(
            data.draw(st.sampled_from(["pref:14", "national", "cs:131148"])), pref.items(1, first), first
        )
        words = ("is for",)
    elif forgery == "no-payload":
        batch.items[data.draw(st.integers(0, 1))].Clear()
        env, words = _raw(pref, batch), ("carries no payload",)
    elif forgery == "relayed-item":
        item = link_pb2.LinkItem(relayed_batch=good).SerializeToString()
        env, words = pref.cs.batch("pref:13", [item], first), ("accepts no relayed_batch",)
    elif forgery == "other-town":
        record = synthetic_resident(pref.rng, data.draw(st.sampled_from(["131016", "131148", "141305"])))
        env, words = pref.cs.batch("pref:13", change_items(pref.cs.node_id, [record], first), first), ("131",)
    elif forgery == "other-origin":
        batch.items[0].change_notice.origin = data.draw(st.sampled_from(["cs:131016", "pref:13", "", "cs:131130 "]))
        env = _raw(pref, batch)
    elif forgery == "stranger":  # a valid node of another prefecture, sending its own batch
        env = pref.stranger.batch("pref:13", pref.items(1, 1), 1)  # its own queue starts at #1
        by, words = pref.stranger, ("not a CS of a prefecture served here",)
    elif forgery == "broken-record":
        fault, record = data.draw(broken_record("131130", numbered=True))
        if record.change_reason in identity_pb2.ChangeReason.values() and record.change_reason:
            items = change_items(pref.cs.node_id, [record], first)
        else:  # change_items derives the status from the reason: set the notice up by hand
            notice = notice_pb2.ChangeNotice(origin=pref.cs.node_id, sequence=first, record=record)
            items = [link_pb2.LinkItem(change_notice=notice).SerializeToString()]
        env = pref.cs.batch("pref:13", items, first)
        words = (fault.split(".")[0] if fault != "date" else "_date",)
    elif forgery == "too-many-positions":
        batch.withdrawn[:] = list(range(first + 2, first + 5_002))
        batch.last_sequence = first + 5_002
        batch.items.append(batch.items[0])
        env, words = _raw(pref, batch), ("positions",)
        expect |= {Problem.EXHAUSTED}
    elif forgery == "unknown-kind-bytes":  # an item of a kind this build does not know (unknown field only)
        unknown = b"\xfa\x3e\x03abc"
        env = pref.cs.batch("pref:13", [unknown], first)
        words = ("carries no payload",)
    exc = refused(pref, env, by)
    assert exc.problem in expect, (forgery, exc.problem, str(exc))
    if forgery == "broken-record" and "may not send records of municipality" in str(exc):
        words = ()  # a bad municipality code is refused first as not the sender's own
    for word in words:
        assert word in str(exc), (forgery, str(exc))
    deliver_next(pref)


@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=5),
    order=st.lists(st.integers(0, 9), min_size=1, max_size=12),
)
def test_replayed_and_reordered_batches_store_each_notice_once_in_order(pref: Prefecture, sizes, order) -> None:
    """Batches of one queue delivered in any order, any number of times (as after reconnects)."""
    ran(FAMILY)
    base, history = pref.mark, pref.storage.history.count()
    batches, first = [], base + 1
    for n in sizes:
        batches.append((first, n, pref.cs.batch("pref:13", pref.items(n, first), first)))
        first += n
    mark = base
    for pick in order:
        start, n, env = batches[pick % len(batches)]
        if start > mark + 1:
            exc = refused(pref, env)
            assert exc.problem is Problem.OUT_OF_ORDER and f"#{mark + 1} is the next expected" in str(exc)
            continue
        receipt = pref.receipt(env)
        fresh = max(0, start + n - 1 - mark)
        assert (receipt.applied, receipt.duplicates) == (fresh, n - fresh)
        mark = max(mark, start + n - 1)
        assert pref.stored_mark() == mark
    assert pref.storage.history.count() == history + (mark - base), "each position stored exactly once"
    # Whatever the order was, the queue goes on from where it stands.
    for start, n, env in batches:
        if start + n - 1 > mark:
            assert pref.receipt(env).applied == start + n - 1 - mark
            mark = start + n - 1
    assert pref.storage.history.count() == history + (mark - base)
    pref.mark = mark
    deliver_next(pref)


@given(positions=st.integers(2, 40), replays=st.integers(1, 3))
def test_history_grows_by_exactly_the_new_positions(pref: Prefecture, positions: int, replays: int) -> None:
    ran(FAMILY)
    first = pref.mark + 1
    history, records = pref.storage.history.count(), pref.storage.records.count()
    env = pref.cs.batch("pref:13", pref.items(positions, first), first)
    for i in range(replays):
        receipt = pref.receipt(env)
        assert (receipt.applied, receipt.duplicates) == ((positions, 0) if i == 0 else (0, positions))
    assert pref.storage.history.count() == history + positions
    assert pref.storage.records.count() == records + positions
    pref.mark += positions


def test_a_batch_of_exactly_the_maximum_positions_is_accepted(pref: Prefecture) -> None:
    """5,000 positions (one item after 4,999 withdrawn) is within MAX_BATCH_ITEMS; 5,001 is not."""
    first = pref.mark + 1
    for span, accepted in ((5_001, False), (5_000, True)):
        batch = link_pb2.LinkBatch.FromString(pref.cs.batch("pref:13", pref.items(1, first + span - 1), first).payload)
        batch.first_sequence, batch.last_sequence = first, first + span - 1
        batch.withdrawn[:] = range(first, first + span - 1)
        if accepted:
            assert pref.receipt(_raw(pref, batch)).applied == 1
        else:
            assert refused(pref, _raw(pref, batch)).problem is Problem.EXHAUSTED
    pref.mark = first + 4_999
    deliver_next(pref)


def test_two_deliveries_checked_against_the_same_mark_commit_once(pref: Prefecture) -> None:
    """A reconnect while the old stream lingers: both check batch N against mark N-1; the second commit
    finds the mark moved and is refused (CONFLICT), so nothing is applied twice."""
    first = pref.mark + 1
    envelope = pref.cs.batch("pref:13", pref.items(2, first), first)
    peer = pref.peer(pref.cs)
    one = pref.intake.prepare(envelope, peer, pref.intake.marks())
    two = pref.intake.prepare(envelope, peer, pref.intake.marks())
    history = pref.storage.history.count()
    pref.intake.commit(one).result()
    with pytest.raises(Rejected) as exc:
        pref.intake.commit(two).result()
    assert exc.value.problem is Problem.CONFLICT and "resend" in str(exc.value)
    assert pref.storage.history.count() == history + 2 and pref.stored_mark() == first + 1
    pref.mark = first + 1
    deliver_next(pref)
