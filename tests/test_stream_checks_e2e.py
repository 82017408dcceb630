"""A stream is checked with every message, not only when it opens: a link whose TLS certificate is
revoked while its stream is open is cut at its next batch, and a message that does not decode ends
its call at once with INVALID_ARGUMENT (left alone, gRPC would keep such a stream, and the peer's
stream slot, forever)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from cryptography import x509
from netutil import designated, simulated, terminal

from jukinet.devnet.simulated import change_items
from jukinet.pki import revoke
from jukinet.v1 import link_pb2, link_pb2_grpc

PREF = "pref:13"
CS = "cs:131130"  # a municipality of prefecture 13 played by the test


def _inbound(running) -> int:
    status = terminal(running, PREF).status(inbound=True)
    return next((i.last_sequence for i in status.inbound if i.sender == CS), 0)


def test_a_certificate_revoked_mid_stream_ends_the_stream(private_network, tmp_path):
    cs = simulated(private_network, [CS], tmp_path / "cs")
    address = private_network.network.topology.node(PREF).listen
    serial = x509.load_pem_x509_certificate(cs.tls_cert.read_bytes()).serial_number
    block, people = designated(private_network, cs, 4)  # while its certificate is still good

    async def scenario() -> grpc.aio.AioRpcError:
        async with cs.aio_channel(address, PREF) as channel:
            outgoing: asyncio.Queue[link_pb2.DeliverRequest | None] = asyncio.Queue()

            async def requests():
                while (request := await outgoing.get()) is not None:
                    yield request

            call = link_pb2_grpc.LinkServiceStub(channel).Deliver(requests())
            first = cs.batch(PREF, [block, *change_items(CS, people[:2], 2)], 1)  # #1 the code block
            await outgoing.put(link_pb2.DeliverRequest(batch=first))
            assert (await call.read()).receipt.payload_type == "jukinet.v1.Receipt"
            revoke(private_network.network.pki_dir, "node", serial)
            second = cs.batch(PREF, change_items(CS, people[2:], 4), 4)
            await outgoing.put(link_pb2.DeliverRequest(batch=second))
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call.read()
            await outgoing.put(None)
            return refused.value

    refused = asyncio.run(scenario())
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in refused.details()
    assert _inbound(private_network) == 3  # the batch after the revocation was not stored


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "unary"])
def test_an_undecodable_message_ends_the_call_with_invalid_argument(private_network, tmp_path, streaming):
    cs = simulated(private_network, ["cs:131156"], tmp_path / "cs")
    address = private_network.network.topology.node(PREF).listen
    garbage = b"\xff\xfe\xfd"
    with cs.channel(address, PREF) as channel:
        if streaming:
            deliver = channel.stream_stream("/jukinet.v1.LinkService/Deliver")
            for _ in range(10):  # one after another, more than the peer's share of streams: none is held
                with pytest.raises(grpc.RpcError) as refused:
                    list(deliver(iter([garbage]), timeout=10))
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "does not decode" in refused.value.details()
        else:
            get_status = channel.unary_unary("/jukinet.v1.NodeAdminService/GetStatus")
            with pytest.raises(grpc.RpcError) as refused:
                get_status(garbage, timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "/jukinet.v1.NodeAdminService/GetStatus" in refused.value.details()
        # The same peer's well-formed calls are still served: nothing of it is held.
        block, people = designated(private_network, cs, 1)
        receipts = cs.deliver(address, PREF, [cs.batch(PREF, [block, *change_items("cs:131156", people, 2)])])
        assert len(receipts) == 1


def test_a_refusal_quoting_huge_input_is_cut_to_a_bounded_message(private_network):
    cs = terminal(private_network, "cs:131148")
    with pytest.raises(grpc.RpcError) as refused:
        cs.resident("1" * 60_000)  # under the 64 KiB request limit; the refusal quotes the code
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = refused.value.details()
    # Bounded where it is quoted (jukinet.domain.quoting), so the edge's cut to 1,000 characters is only a backstop.
    assert len(details) <= 1000 and "60000 characters, SHA-256 " in details, details[:200]
    assert cs.status().node_ids == ["cs:131148"]  # and the node serves on
