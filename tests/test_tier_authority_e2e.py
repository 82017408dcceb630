"""The prefecture and national servers verify every batch before storing it.

A test-side sender holds a genuine CS identity of Tokyo that is not otherwise running (渋谷区,
cs:131130: a TLS certificate and a signing certificate from the node CA) and sends hand-made batches
to the prefecture server: ones it may send, and several it may not. Every rejection ends the stream
with the right status and stores nothing.
"""

from __future__ import annotations

import grpc
import pytest
from conftest import wait_until
from cryptography.hazmat.primitives.asymmetric import ec
from netutil import channel_with, counts, residents, rpc_error, terminal

from jukinet.node.batches import BatchSigner
from jukinet.pki import issue_signing_certificate, issue_tls_certificate, key_id
from jukinet.pki.keys import sign_ecdsa_raw
from jukinet.v1 import identity_pb2, notice_pb2, notice_pb2_grpc

SENDER = "cs:131130"
HOME = "131130"


class SoftwareSigner:
    """Stands in for the token: the receiver cannot tell where the key lives, only whose it is."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.public_key = self._key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return sign_ecdsa_raw(self._key, data)


def _signer_for(running, node_id: str) -> BatchSigner:
    soft = SoftwareSigner()
    cert = issue_signing_certificate(running.network.pki_dir, "node", [node_id], soft.public_key)
    return BatchSigner(node_id, soft, cert)  # type: ignore[arg-type]


def _notices(origin: str, records: list, first_sequence: int) -> list[tuple[int, bytes]]:
    out = []
    for i, record in enumerate(records):
        record.status = identity_pb2.RECORD_STATUS_ACTIVE
        notice = notice_pb2.ChangeNotice(origin=origin, sequence=first_sequence + i, record=record)
        out.append((first_sequence + i, notice.SerializeToString()))
    return out


def _deliver(running, tls_dir, target: str, batch: notice_pb2.SignedBatch) -> list:
    with channel_with(running, target, tls_dir / "tls.pem", tls_dir / "tls.key") as channel:
        stub = notice_pb2_grpc.NoticeServiceStub(channel)
        return list(stub.Deliver(iter([notice_pb2.DeliverRequest(batch=batch)]), timeout=10))


class Sender:
    """The test-side CS: its TLS identity, its signer, and the next sequence the prefecture expects."""

    def __init__(self, running, tmp_dir) -> None:
        self.running = running
        self.tls_dir = tmp_dir
        issue_tls_certificate(running.network.pki_dir, "node", [SENDER], tmp_dir)
        self.signer = _signer_for(running, SENDER)
        self.next_sequence = 1

    def batch(self, records: list, first_sequence: int | None = None) -> notice_pb2.SignedBatch:
        first = self.next_sequence if first_sequence is None else first_sequence
        return self.signer.sign(_notices(SENDER, records, first))

    def deliver(self, batch: notice_pb2.SignedBatch, target: str = "pref:13") -> list:
        return _deliver(self.running, self.tls_dir, target, batch)


@pytest.fixture(scope="module")
def sender(private_network, tmp_path_factory):
    return Sender(private_network, tmp_path_factory.mktemp("cs-131130"))


def test_a_correct_batch_from_a_cs_identity_is_accepted_once(private_network, sender):
    before = counts(private_network, "pref:13")
    batch = sender.batch(residents(HOME, 3))
    assert [(a.applied, a.duplicates) for a in sender.deliver(batch)] == [(3, 0)]
    sender.next_sequence += 3
    assert counts(private_network, "pref:13")[0] == before[0] + 3
    # Re-delivery of the same batch is harmless.
    assert [(a.applied, a.duplicates) for a in sender.deliver(batch)] == [(0, 3)]
    assert counts(private_network, "pref:13")[0] == before[0] + 3
    wait_until(lambda: counts(private_network, "national")[0] >= 3, what="forwarding to the national server")


def _rejected(running, sender: Sender, batch, target="pref:13") -> grpc.RpcError:
    before = counts(running, target)
    err = rpc_error(sender.deliver, batch, target)
    assert counts(running, target) == before, "a rejected batch must store nothing"
    return err


def test_cs_sending_another_municipalitys_record_is_permission_denied(private_network, sender):
    err = _rejected(private_network, sender, sender.batch(residents(HOME, 2) + residents("131016", 1)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not send records of municipality 131016" in err.details()


def test_tampered_signature_is_unauthenticated(private_network, sender):
    batch = sender.batch(residents(HOME, 2))
    batch.signature = bytes([batch.signature[0] ^ 1]) + batch.signature[1:]
    err = _rejected(private_network, sender, batch)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "signature" in err.details()


def test_payload_altered_after_signing_is_unauthenticated(private_network, sender):
    records = residents(HOME, 1)
    batch = sender.batch(records)
    batch.payload = batch.payload.replace(records[0].resident_code.encode(), b"12345678903")
    err = _rejected(private_network, sender, batch)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_batch_signed_by_another_node_is_permission_denied(private_network, sender):
    batch = _signer_for(private_network, "cs:131016").sign(_notices("cs:131016", residents("131016", 1), 1))
    err = _rejected(private_network, sender, batch)  # sent over cs:131130's TLS connection
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"signed by cs:131016 but sent by {SENDER}" in err.details()


def test_invalid_record_in_a_signed_batch_is_invalid_argument(private_network, sender):
    records = residents(HOME, 2)
    records[1].my_number = records[1].my_number[:-1] + str((int(records[1].my_number[-1]) + 1) % 10)
    err = _rejected(private_network, sender, sender.batch(records))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "notice 1" in err.details() and "my_number" in err.details()


def test_sequence_gap_is_failed_precondition(private_network, sender):
    batch = sender.batch(residents(HOME, 1), first_sequence=sender.next_sequence + 5)
    err = _rejected(private_network, sender, batch)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"{SENDER}#{sender.next_sequence} is the next expected" in err.details()


def test_cs_may_not_deliver_to_the_national_server(private_network, sender):
    err = _rejected(private_network, sender, sender.batch(residents(HOME, 1)), target="national")
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "not a prefecture server" in err.details()


def test_prefecture_keeps_serving_after_rejections(private_network, sender):
    before = counts(private_network, "national")[0]
    terminal(private_network, "cs:131148").register(residents("131148", 5))
    assert [(a.applied, a.duplicates) for a in sender.deliver(sender.batch(residents(HOME, 2)))] == [(2, 0)]
    wait_until(lambda: counts(private_network, "national")[0] == before + 7, what="7 more records at national")
