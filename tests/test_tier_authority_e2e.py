"""The prefecture server verifies every batch before storing anything, and answers with a signed receipt.

The test plays a genuine CS identity of Tokyo that is not otherwise running (渋谷区, cs:131130: a TLS
certificate and a signing certificate from the node CA) and hands batches to the prefecture server:
ones it may send, and several it may not. Its residents carry 住民票コード the national server designated
to it and the My Numbers it assigned (the block is handed over first, as a CS queues it), so each
forged batch would be accepted but for its forgery. Every refusal ends the stream with the right status
and stores nothing.
"""

from __future__ import annotations

import grpc
import pytest
from conftest import wait_until
from netutil import address, counts, designated, residents, rpc_error, simulated, terminal

from jukinet.devnet.simulated import SimulatedNode, change_items
from jukinet.domain.node_ids import NodeId
from jukinet.pki import SoftwareSigner, TrustStore, open_certified
from jukinet.server.runtime.batches import batch_digest
from jukinet.v1 import identity_pb2, link_pb2

SENDER = "cs:131130"
HOME = "131130"


class Sender:
    """The test-side CS, residents it may send, and the next queue position the prefecture expects from it."""

    def __init__(self, running, node: SimulatedNode) -> None:
        self.running = running
        self.node = node
        block, self._unused = designated(running, node, 40, identity_pb2.CHANGE_REASON_MOVE_IN)
        (receipt,) = self.deliver(node.batch("pref:13", [block], 1))  # the prefecture learns the codes first
        assert receipt.applied == 1
        self.next = 2

    def residents(self, n: int) -> list:
        """``n`` records of its municipality with codes designated to it (each handed out once)."""
        records, self._unused = self._unused[:n], self._unused[n:]
        assert len(records) == n, "designate more codes for this module"
        return records

    def batch(self, records: list, first: int | None = None, **forge) -> object:
        first = self.next if first is None else first
        return self.node.batch("pref:13", change_items(SENDER, records, first), first, **forge)

    def deliver(self, batch, target: str = "pref:13") -> list[link_pb2.Receipt]:
        receipts = self.node.deliver(address(self.running, target), target, [batch])
        trust = TrustStore.load(self.running.network.pki_dir)
        return [open_certified(r, link_pb2.Receipt, trust, NodeId.parse(target))[0] for r in receipts]


@pytest.fixture(scope="module")
def sender(private_network, tmp_path_factory) -> Sender:
    return Sender(private_network, simulated(private_network, [SENDER], tmp_path_factory.mktemp("cs-131130")))


def test_a_correct_batch_is_stored_once_and_receipted(private_network, sender):
    before = counts(private_network, "pref:13")
    batch = sender.batch(sender.residents(3))
    (receipt,) = sender.deliver(batch)
    assert (receipt.receiver, receipt.sender, receipt.first_sequence, receipt.last_sequence) == (
        "pref:13", SENDER, sender.next, sender.next + 2,
    )  # fmt: skip
    assert receipt.batch_sha256 == batch_digest(batch.payload)
    assert (receipt.applied, receipt.duplicates) == (3, 0)
    assert counts(private_network, "pref:13")[0] == before[0] + 3
    # Re-delivery of the same batch is harmless, and receipted again.
    (again,) = sender.deliver(batch)
    assert (again.applied, again.duplicates) == (0, 3)
    sender.next += 3
    assert counts(private_network, "pref:13")[0] == before[0] + 3
    wait_until(lambda: counts(private_network, "national")[0] >= 3, what="forwarding to the national server")


def _refused(running, sender: Sender, batch, target="pref:13") -> grpc.RpcError:
    before = counts(running, target)
    err = rpc_error(sender.deliver, batch, target)
    assert counts(running, target) == before, "a refused batch must store nothing"
    return err


def test_cs_sending_another_municipalitys_record_is_permission_denied(private_network, sender):
    foreign = sender.residents(1)[0]
    foreign.address.municipality_code = "131016"  # a record of 千代田区, under a code designated to 渋谷区
    err = _refused(private_network, sender, sender.batch([*sender.residents(2), foreign]))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not send records of municipality 131016" in err.details()


def test_tampered_signature_is_unauthenticated(private_network, sender):
    batch = sender.batch(sender.residents(2))
    batch.signature = bytes([batch.signature[0] ^ 1]) + batch.signature[1:]
    err = _refused(private_network, sender, batch)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "does not verify" in err.details()


def test_payload_altered_after_signing_is_unauthenticated(private_network, sender):
    records = sender.residents(1)
    batch = sender.batch(records)
    batch.payload = batch.payload.replace(records[0].resident_code.encode(), b"12345678903")
    err = _refused(private_network, sender, batch)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_batch_signed_by_another_node_is_permission_denied(private_network, sender, tmp_path):
    other = simulated(private_network, ["cs:131016"], tmp_path)
    block, records = designated(private_network, other, 1)  # what cs:131016 may send, on its own connection
    batch = other.batch("pref:13", [block, *change_items("cs:131016", records, 2)])
    err = _refused(private_network, sender, batch)  # handed over on cs:131130's TLS connection
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "names cs:131016, not cs:131130" in err.details()


def test_a_key_its_certificate_does_not_certify_is_refused(private_network, sender):
    err = _refused(private_network, sender, sender.batch(sender.residents(1), signer=SoftwareSigner()))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "not signed by the expected key" in err.details()


def test_sender_field_not_matching_the_signer_is_permission_denied(private_network, sender):
    err = _refused(private_network, sender, sender.batch(sender.residents(1), sender="cs:131016"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "names sender cs:131016" in err.details()


def test_invalid_record_in_a_signed_batch_is_invalid_argument(private_network, sender):
    records = sender.residents(2)
    records[1].my_number = records[1].my_number[:-1] + str((int(records[1].my_number[-1]) + 1) % 10)
    err = _refused(private_network, sender, sender.batch(records))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"notice #{sender.next + 1}" in err.details() and "my_number" in err.details()


def test_sequence_gap_is_failed_precondition(private_network, sender):
    err = _refused(private_network, sender, sender.batch(sender.residents(1), first=sender.next + 5))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"#{sender.next} is the next expected" in err.details()


def test_a_batch_for_another_destination_is_refused(private_network, sender):
    batch = sender.node.batch("pref:14", change_items(SENDER, sender.residents(1), sender.next), sender.next)
    err = _refused(private_network, sender, batch)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "is for 'pref:14'" in err.details()


def test_cs_may_not_hand_notices_to_the_national_server(private_network, sender):
    batch = sender.node.batch("national", change_items(SENDER, sender.residents(1)))
    err = _refused(private_network, sender, batch, target="national")
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "national accepts no change_notice items" in err.details()


def test_prefecture_keeps_serving_after_refusals(private_network, sender):
    before = counts(private_network, "national")[0]
    terminal(private_network, "cs:131148").register(residents("131148", 5))
    (receipt,) = sender.deliver(sender.batch(sender.residents(2)))
    sender.next += 2
    assert receipt.applied == 2
    wait_until(lambda: counts(private_network, "national")[0] == before + 7, what="7 more records at national")
