"""Node identities the harness plays itself: tests that attack a node, and load generators.

A :class:`SimulatedNode` holds what a real node of that identity would present — a TLS certificate from
the node CA and a signing key certified by it — but its signing key is a software key: a receiver cannot
tell where a key lives, only whose it is. It builds link batches exactly as a node does (or, for attack
tests, as a node must not) and hands them over on a real mTLS connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.clients import open_channel
from jukinet.clients.transport import channel_options
from jukinet.domain.node_ids import NodeId
from jukinet.domain.numbers import MAX_CODES_PER_BLOCK, MAX_NUMBERS_PER_REQUEST
from jukinet.pki import SoftwareSigner, issue_signing_certificate, issue_tls_certificate, seal_payload
from jukinet.pki.layout import bundle_path
from jukinet.server.runtime.batches import BATCH_TYPE, encode_link_batch
from jukinet.v1 import envelope_pb2, link_pb2, link_pb2_grpc, notice_pb2, numbers_pb2, numbers_pb2_grpc


def change_items(origin: str, records: Iterable, first_sequence: int = 1) -> list[bytes]:
    """Serialized LinkItems of change notices from ``origin`` (records get the status their reason gives)."""
    from jukinet.domain.records import status_for

    items = []
    for i, record in enumerate(records):
        record.status = status_for(record.change_reason)
        notice = notice_pb2.ChangeNotice(origin=origin, sequence=first_sequence + i, record=record)
        items.append(link_pb2.LinkItem(change_notice=notice).SerializeToString())
    return items


@dataclass
class SimulatedNode:
    node_ids: tuple[str, ...]
    tls_cert: Path
    tls_key: Path
    trust_bundle: Path
    signer: SoftwareSigner
    certificate_der: bytes

    @classmethod
    def issue(cls, pki_dir: Path, node_ids: Sequence[str], directory: Path) -> SimulatedNode:
        """A fresh identity: TLS certificate and key in ``directory``, a software key certified for signing."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = issue_tls_certificate(pki_dir, "node", list(node_ids), directory)
        signer = SoftwareSigner()
        certificate = issue_signing_certificate(pki_dir, "node", list(node_ids), signer.public_key)
        return cls(tuple(node_ids), cert, key, bundle_path(pki_dir), signer, certificate.public_bytes(Encoding.DER))

    @property
    def node_id(self) -> str:
        return self.node_ids[0]

    def batch(
        self,
        destination: str,
        items: Sequence[bytes],
        first: int = 1,
        *,
        sender: str | None = None,
        signer: SoftwareSigner | None = None,
        certificate_der: bytes | None = None,
        sent_at_ms: int = 1_790_000_000_000,
    ) -> envelope_pb2.Signed:
        """A signed LinkBatch of ``items`` at positions ``first``…; the keyword arguments forge one."""
        entries = [(first + i, item) for i, item in enumerate(items)]
        payload = encode_link_batch(sender or self.node_id, destination, entries, sent_at_ms)
        return seal_payload(
            signer or self.signer,
            BATCH_TYPE,
            payload,
            self.certificate_der if certificate_der is None else certificate_der,
        )

    def designate(self, national: str, count: int) -> tuple[list[bytes], list[tuple[str, str]]]:
        """``count`` 住民票コード designated to this identity by the national server at ``national`` (as a CS
        gets them: ``DesignateCodes``, blocks of at most 1,000) and the My Numbers it assigned to them.
        Returns the ``code_block`` LinkItems — queue them before any notice using their codes: they tell
        the prefecture the codes are this CS's — and the (code, My Number) pairs, in order."""
        items: list[bytes] = []
        pairs: list[tuple[str, str]] = []
        with self.channel(national, NodeId.national()) as channel:
            stub = numbers_pb2_grpc.NumberServiceStub(channel)
            while len(pairs) < count:
                n = min(MAX_CODES_PER_BLOCK, MAX_NUMBERS_PER_REQUEST, count - len(pairs))
                request = numbers_pb2.DesignateCodesRequest(request_id=f"{self.node_id}/{uuid.uuid4()}", count=n)
                signed = stub.DesignateCodes(request, timeout=60).block
                codes = list(numbers_pb2.CodeBlock.FromString(signed.payload).codes)
                answer = stub.AssignMyNumbers(numbers_pb2.AssignMyNumbersRequest(resident_codes=codes), timeout=60)
                items.append(link_pb2.LinkItem(code_block=signed).SerializeToString())
                pairs += [(a.resident_code, a.my_number) for a in answer.numbers]
        return items, pairs

    def channel(self, address: str, expected: NodeId | str) -> grpc.Channel:
        return open_channel(address, expected, self.tls_cert, self.tls_key, self.trust_bundle)

    def aio_channel(self, address: str, expected: NodeId | str) -> grpc.aio.Channel:
        credentials = grpc.ssl_channel_credentials(
            self.trust_bundle.read_bytes(), self.tls_key.read_bytes(), self.tls_cert.read_bytes()
        )
        return grpc.aio.secure_channel(address, credentials, options=channel_options(expected))

    def deliver(
        self, address: str, expected: NodeId | str, batches: Sequence[envelope_pb2.Signed], timeout: float = 10
    ) -> list[envelope_pb2.Signed]:
        """Hand ``batches`` over on one Deliver stream; returns the signed receipts (raises on refusal)."""
        with self.channel(address, expected) as channel:
            stub = link_pb2_grpc.LinkServiceStub(channel)
            requests = (link_pb2.DeliverRequest(batch=b) for b in batches)
            return [response.receipt for response in stub.Deliver(requests, timeout=timeout)]
