"""What must survive a node's crash — the inbound marks (a batch the receiver stored but whose receipt
was lost is counted on re-delivery, never applied twice) and logouts (an ended session stays ended) —
and what a receipt must prove before a sender drops anything.

The test plays a Tokyo CS not otherwise running (新宿区, cs:131041) towards the prefecture server, so
it can re-deliver a batch exactly as a sender does when it never saw the receipt; and it plays the
prefecture itself, with a signing key genuinely certified for pref:13, answering with a receipt for a
batch other than the one sent.
"""

from __future__ import annotations

from concurrent import futures

import grpc
import numpy as np
from conftest import wait_until
from netutil import address, bare_terminal, counts, designated, link, residents, rpc_error, simulated, terminal

from jukinet.devnet.operators import enroll_operator, issue_card, log_in
from jukinet.devnet.simulated import change_items
from jukinet.domain.node_ids import NodeId
from jukinet.pki import TrustStore, open_certified, seal
from jukinet.server.runtime.batches import batch_digest
from jukinet.v1 import link_pb2, link_pb2_grpc

SENDER = "cs:131041"
PREF = "pref:13"
CS = "cs:131016"
_rng = np.random.default_rng(41)


def _receipts(running, node, batch) -> list[link_pb2.Receipt]:
    signed = node.deliver(address(running, PREF), PREF, [batch])
    trust = TrustStore.load(running.network.pki_dir)
    return [open_certified(r, link_pb2.Receipt, trust, NodeId.parse(PREF))[0] for r in signed]


def test_a_batch_stored_before_a_crash_is_not_applied_again(private_network, tmp_path):
    node = simulated(private_network, [SENDER], tmp_path / "cs-131041")
    block, people = designated(private_network, node, 4)
    # #1 the block of codes designated to the sender, #2-#4 three residents with codes from it
    batch = node.batch(PREF, [block, *change_items(SENDER, people[:3], 2)], 1)
    before = counts(private_network, PREF)
    (stored,) = _receipts(private_network, node, batch)
    assert (stored.applied, stored.duplicates) == (4, 0)
    after = counts(private_network, PREF)
    assert after[:2] == (before[0] + 3, before[1] + 3)
    # The receiver crashes after its commit; the sender never saw the receipt, and sends the batch again.
    spec = private_network.network.topology.node(PREF)
    private_network.kill_node(spec)
    private_network.start_node(spec)
    (again,) = _receipts(private_network, node, batch)
    assert (again.first_sequence, again.last_sequence, again.applied, again.duplicates) == (1, 4, 0, 4)
    assert counts(private_network, PREF)[:2] == after[:2]  # no record and no history entry twice
    # and the sender's queue goes on where it was
    (next_one,) = _receipts(private_network, node, node.batch(PREF, change_items(SENDER, people[3:], 5), 5))
    assert (next_one.applied, next_one.duplicates) == (1, 0)


def test_a_logout_survives_a_restart(private_network, worker):
    site = private_network.network.topology.node(CS).site
    kit = issue_card(worker, private_network.network, f"operator:{site}:leaver", "739164", _rng)
    enroll_operator(worker, terminal(private_network, CS), kit, ["register-residents"], _rng)
    ended, kept = bare_terminal(private_network, CS), bare_terminal(private_network, CS)
    log_in(worker, ended, kit, rng=_rng, attempts=3)
    log_in(worker, kept, kit, rng=_rng, attempts=3)
    token = ended.session
    ended.logout()
    spec = private_network.network.topology.node(CS)
    private_network.kill_node(spec)
    private_network.start_node(spec)
    ended.session = token  # the ended session, presented again after the restart
    err = rpc_error(ended.record_change, residents("131016", 1)[0])
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "logout" in err.details()
    kept.record_change(residents("131016", 1)[0])  # the other session of the same operator still works


class WrongReceipts(link_pb2_grpc.LinkServiceServicer):
    """Plays pref:13 with its own node-CA identity; every receipt names the batch's range but another digest."""

    def __init__(self, running, directory) -> None:
        self.node = simulated(running, [PREF], directory)
        self.batches = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        link_pb2_grpc.add_LinkServiceServicer_to_server(self, self.server)
        tls = grpc.ssl_server_credentials(
            [(self.node.tls_key.read_bytes(), self.node.tls_cert.read_bytes())],
            self.node.trust_bundle.read_bytes(),
            True,
        )
        assert self.server.add_secure_port(address(running, PREF), tls)
        self.server.start()

    def Deliver(self, request_iterator, context):
        for request in request_iterator:
            self.batches += 1
            batch = link_pb2.LinkBatch.FromString(request.batch.payload)
            receipt = link_pb2.Receipt(
                receiver=PREF, sender=batch.sender, first_sequence=batch.first_sequence,
                last_sequence=batch.last_sequence, batch_sha256=batch_digest(b"another batch"),
                applied=len(batch.items),
            )  # fmt: skip
            yield link_pb2.DeliverResponse(receipt=seal(self.node.signer, receipt, self.node.certificate_der))


def test_a_receipt_for_another_batch_drops_nothing(private_network, tmp_path):
    spec = private_network.network.topology.node(PREF)
    private_network.stop_node(spec)
    try:
        terminal(private_network, "cs:131148").register(residents("131148", 3))
        before = link(private_network, "cs:131148", PREF)
        assert before.pending >= 3
        prefecture = WrongReceipts(private_network, tmp_path / "pref")
        try:
            status = wait_until(
                lambda: prefecture.batches >= 2 and (s := link(private_network, "cs:131148", PREF)).last_error and s,
                timeout=30,
                what="the CS to hand a batch over and judge its receipt",
            )
            assert "not the batch sent" in status.last_error, status.last_error
            after = link(private_network, "cs:131148", PREF)
            assert (after.pending, after.last_receipted_sequence) == (before.pending, before.last_receipted_sequence)
        finally:
            prefecture.server.stop(None).wait()
    finally:
        private_network.start_node(spec)
    wait_until(lambda: link(private_network, "cs:131148", PREF).pending == 0, what="the CS queue to drain")
