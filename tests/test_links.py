"""The link runtime between real gRPC servers over mTLS, in one process: any number of outbound links,
one per destination, each with its own durable queue, cursor, receipts, back-off and status.

Two receivers (pref:13 and pref:14, each a real NodeServer with a LinkIntake and a peer gate) accept a
kind of item through a handler the test registers — a new payload kind plugs in without link code.
Signing keys are software keys here (the component under test is the link, not the token).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lmdb

from jukinet.devnet.simulated import SimulatedNode, change_items
from jukinet.devnet.topology import pick_free_ports
from jukinet.domain.node_ids import NodeId
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki import TrustStore, init_pki
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.intake import Delivery, Item, LinkIntake
from jukinet.server.runtime.link_service import LinkRpc
from jukinet.server.runtime.links import LinkContext, LinkSet, LinkSettings
from jukinet.server.runtime.peers import PeerAuthenticator, PeerGate, PeerLimits
from jukinet.server.runtime.server import NodeServer, TlsMaterial, bind
from jukinet.storage import NodeStorage
from jukinet.v1 import admin_pb2

UP, BACKING_OFF = admin_pb2.LINK_STATE_UP, admin_pb2.LINK_STATE_BACKING_OFF


@dataclass
class Recorder:
    """A handler of change_notice items that keeps what it stored (in the commit, so exactly once)."""

    kind: str = "change_notice"
    stored: list[tuple[str, int]] = field(default_factory=list)

    def check(self, delivery: Delivery, items: Sequence[Item]):
        notices = [(delivery.batch.sender, n.sequence) for _, n in items]
        recorder = self

        class Plan:
            def apply(self, txn: lmdb.Transaction) -> None:
                recorder.stored.extend(notices)

        return Plan()


class Receiver:
    def __init__(self, base: Path, pki: Path, node_id: str, port: int) -> None:
        self.node = SimulatedNode.issue(pki, [node_id], base / node_id.replace(":", "-"))
        self.trust = TrustStore.load(pki)
        self.storage = NodeStorage.open(base / f"data-{node_id.replace(':', '-')}")
        self.recorder = Recorder()
        self.address = f"127.0.0.1:{port}"
        self.server: NodeServer | None = None

    async def start(self) -> None:
        intake = LinkIntake([NodeId.parse(self.node.node_id)], self.trust, self.storage, self.node.signer,
                            self.node.certificate_der, {"change_notice": self.recorder})  # fmt: skip
        tls = TlsMaterial.from_files(self.node.tls_cert, self.node.tls_key, self.trust.bundle_pem)
        gate = PeerGate(PeerAuthenticator(self.trust), PeerLimits())
        self.server = NodeServer(self.address, tls, [bind(LinkRpc(intake, Blocking(4)))], gate)
        await self.server.start()

    async def stop(self) -> None:
        assert self.server is not None
        await self.server.stop(0)


async def until(probe, timeout: float = 20.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := probe()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return value


def _enqueue(storage: NodeStorage, destination: str, origin: str, first: int, n: int) -> None:
    rng = random.Random(first)
    records = [synthetic_resident(rng, "131148", numbered=True) for _ in range(n)]
    items = change_items(origin, records, first)
    storage.env.write(lambda txn: storage.queues.enqueue(txn, destination, items))


def test_one_link_per_destination_each_with_its_own_queue_cursor_and_back_off(tmp_path: Path) -> None:
    init_pki(tmp_path / "pki")
    pki = tmp_path / "pki"
    ports = pick_free_ports(2)
    a, b = Receiver(tmp_path, pki, "pref:13", ports[0]), Receiver(tmp_path, pki, "pref:14", ports[1])
    sender = SimulatedNode.issue(pki, ["cs:131148"], tmp_path / "cs")
    storage = NodeStorage.open(tmp_path / "data-cs")
    trust = TrustStore.load(pki)
    tls = TlsMaterial.from_files(sender.tls_cert, sender.tls_key, trust.bundle_pem)

    def links() -> LinkSet:
        ctx = LinkContext(NodeId.cs("131148"), sender.signer, sender.certificate_der, trust, storage,
                          tls.channel_credentials(), Blocking(4),
                          LinkSettings(max_items=7, backoff_start=0.05, backoff_max=0.2))  # fmt: skip
        return LinkSet(ctx, {"pref:13": a.address, "pref:14": b.address})

    def status(linkset: LinkSet) -> dict[str, admin_pb2.LinkStatus]:
        return {s.destination: s for s in linkset.statuses()}

    async def scenario() -> None:
        await a.start()
        await b.start()
        _enqueue(storage, "pref:13", "cs:131148", 1, 20)
        _enqueue(storage, "pref:14", "cs:131148", 1, 5)
        linkset = links()
        linkset.start()  # both destinations have work: both get a link
        await until(lambda: len(a.recorder.stored) == 20 and len(b.recorder.stored) == 5, what="both queues")
        await until(lambda: all(s.pending == 0 for s in status(linkset).values()), what="receipts settled")
        first = status(linkset)
        assert set(first) == {"pref:13", "pref:14"}
        assert first["pref:13"].batches_delivered == 3  # 7 + 7 + 6: batches cut at max_items
        assert (first["pref:13"].state, first["pref:13"].last_receipted_sequence) == (UP, 20)
        assert len(storage.queues.receipts("pref:13")) == 3 and len(storage.queues.receipts("pref:14")) == 1

        await b.stop()  # one destination goes away: its link backs off, the other carries on
        _enqueue(storage, "pref:14", "cs:131148", 6, 3)
        linkset.wake("pref:14")
        _enqueue(storage, "pref:13", "cs:131148", 21, 4)
        linkset.wake("pref:13")
        await until(lambda: len(a.recorder.stored) == 24, what="pref:13 while pref:14 is down")
        down = await until(lambda: (s := status(linkset)["pref:14"]).consecutive_failures >= 2 and s, what="retries")
        assert down.pending == 3 and down.last_error and down.state in (BACKING_OFF, admin_pb2.LINK_STATE_CONNECTING)
        assert status(linkset)["pref:13"].consecutive_failures == 0

        await linkset.stop()  # the sender restarts too; its queues are on disk
        await b.start()
        linkset = links()
        linkset.start()
        await until(lambda: status(linkset)["pref:14"].pending == 0, what="pref:14 to catch up")
        await linkset.stop()
        await a.stop()
        await b.stop()

    asyncio.run(scenario())
    # Exactly once per (origin, position), across the receiver's and the sender's restarts.
    assert a.recorder.stored == [("cs:131148", i) for i in range(1, 25)]
    assert b.recorder.stored == [("cs:131148", i) for i in range(1, 9)]
    for node in (a, b, storage):
        (node if isinstance(node, NodeStorage) else node.storage).close()
