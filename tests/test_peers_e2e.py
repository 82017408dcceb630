"""Peers are verified both ways: a CS hands its queue only to the prefecture it expects, and drops
nothing without a receipt signed by that prefecture's key.

The real prefecture server is stopped and an impostor listens at its address: one holding a valid
agency certificate, one a terminal certificate, one another node's certificate (all fail the TLS
handshake: nothing is sent), and one holding a genuine prefecture TLS certificate (a stolen TLS key)
but not the prefecture's signing key, which answers with receipts signed by another node. Each gets
nothing it can use and makes the CS delete nothing; when the real prefecture returns, every notice
arrives once.
"""

from __future__ import annotations

import threading
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from conftest import wait_until
from netutil import counts, link, residents, simulated, terminal

from jukinet.devnet.simulated import SimulatedNode
from jukinet.pki import issue_tls_certificate, seal
from jukinet.server.runtime.batches import batch_digest
from jukinet.v1 import link_pb2, link_pb2_grpc

CS = "cs:131148"


class Impostor(link_pb2_grpc.LinkServiceServicer):
    """Listens where the prefecture should be; with ``receipts_by``, answers every batch with a receipt."""

    def __init__(self, address: str, cert: Path, key: Path, bundle: Path, receipts_by: SimulatedNode | None = None):
        self.batches = 0
        self.receipts_by = receipts_by
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        link_pb2_grpc.add_LinkServiceServicer_to_server(self, self.server)
        creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())], bundle.read_bytes(), True)
        assert self.server.add_secure_port(address, creds)
        self.server.start()

    def Deliver(self, request_iterator, context):
        for request in request_iterator:
            with self._lock:
                self.batches += 1
            if self.receipts_by is None:
                continue
            batch = link_pb2.LinkBatch.FromString(request.batch.payload)
            receipt = link_pb2.Receipt(
                receiver="pref:13", sender=batch.sender, first_sequence=batch.first_sequence,
                last_sequence=batch.last_sequence, batch_sha256=batch_digest(request.batch.payload),
                applied=len(batch.items),
            )  # fmt: skip
            yield link_pb2.DeliverResponse(
                receipt=seal(self.receipts_by.signer, receipt, self.receipts_by.certificate_der)
            )

    def stop(self) -> None:
        self.server.stop(None).wait()


@pytest.fixture(scope="module")
def held(private_network):
    """The prefecture is down for the module; the CS holds what it records. Brought back at the end."""
    pref = private_network.network.topology.node("pref:13")
    private_network.stop_node(pref)
    yield pref
    private_network.start_node(pref)


def _impostor(running, tmp: Path, issuer: str, identity: str, receipts_by=None) -> Impostor:
    net = running.network
    cert, key = issue_tls_certificate(net.pki_dir, issuer, [identity], tmp)
    return Impostor(net.topology.node("pref:13").listen, cert, key, net.pki_dir / "trust-bundle.pem", receipts_by)


def _pending(running) -> int:
    return link(running, CS, "pref:13").pending


@pytest.mark.parametrize(
    ("issuer", "identity", "why"),
    [
        ("agency", "agency:7123456789012", "CERTIFICATE_VERIFY_FAILED"),  # no serverAuth: cannot serve
        ("operator", "terminal:13:ops", "CERTIFICATE_VERIFY_FAILED"),
        ("node", "cs:131016", "Hostname"),  # a node, but not the one expected
    ],
)
def test_an_impostor_gets_nothing_and_deletes_nothing(private_network, held, tmp_path, issuer, identity, why):
    terminal(private_network, CS).register(residents("131148", 5))
    before = _pending(private_network)
    failures = link(private_network, CS, "pref:13").consecutive_failures
    impostor = _impostor(private_network, tmp_path, issuer, identity)
    try:
        status = wait_until(
            lambda: (s := link(private_network, CS, "pref:13")).consecutive_failures >= failures + 2 and s,
            timeout=30,
            what="the CS to try the impostor twice",
        )
        assert why in status.last_error, status.last_error
        assert impostor.batches == 0  # the handshake failed: not one batch was sent
        assert _pending(private_network) == before  # and nothing was dropped
    finally:
        impostor.stop()


def test_receipts_not_signed_by_the_prefecture_delete_nothing(private_network, held, tmp_path):
    """A stolen prefecture TLS key is not enough: receipts must be signed by the prefecture's token key."""
    terminal(private_network, CS).register(residents("131148", 3))
    before = link(private_network, CS, "pref:13")
    other_node = simulated(private_network, ["cs:131016"], tmp_path / "signer")
    impostor = _impostor(private_network, tmp_path / "tls", "node", "pref:13", receipts_by=other_node)
    try:
        status = wait_until(
            lambda: impostor.batches >= 2 and (s := link(private_network, CS, "pref:13")).last_error and s,
            timeout=30,
            what="the CS to hand a batch to the impostor and judge its receipt",
        )
        assert "names cs:131016, not pref:13" in status.last_error
        after = link(private_network, CS, "pref:13")
        assert (after.pending, after.last_receipted_sequence) == (before.pending, before.last_receipted_sequence)
    finally:
        impostor.stop()


def test_when_the_prefecture_returns_everything_arrives_once(private_network, held):
    before_national = counts(private_network, "national")
    pending = _pending(private_network)
    assert pending >= 3 * 5 + 3
    private_network.start_node(held)
    try:
        wait_until(lambda: _pending(private_network) == 0, what="the CS queue to drain")
        wait_until(
            lambda: counts(private_network, "national")[0] == before_national[0] + pending,
            what="every held notice at the national server",
        )
        assert counts(private_network, "national")[1] == before_national[1] + pending  # none twice
    finally:
        private_network.stop_node(held)  # the fixture brings it back for the next module
