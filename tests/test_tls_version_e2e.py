"""A real TLS 1.2 client against a running node: the connection is made, and every call on it —
health included — is refused UNAUTHENTICATED (gRPC Python cannot set a minimum TLS version, so the
peer gate checks the negotiated one on every call).

gRPC's own client always negotiates TLS 1.3, so the test puts a relay in between: towards the node it
is a TLS client of Python's ssl module capped at ``maximum_version`` and presenting the caller's
certificate; towards the gRPC client it serves the node's own certificate (so the client's check of
the node's name passes). The same relay capped at TLS 1.3 is the control: the calls go through.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from netutil import address, rpc_error

from jukinet.clients import open_channel
from jukinet.domain.node_ids import NodeId
from jukinet.pki.layout import bundle_path
from jukinet.v1 import admin_pb2, admin_pb2_grpc

NODE = "cs:131148"


class TlsRelay:
    """Loopback relay: TLS server (``server_cert``) to its client, TLS client capped at ``version`` to the node."""

    def __init__(self, node: str, node_name: str, server_cert: Path, client_cert: Path, bundle: Path,
                 version: ssl.TLSVersion) -> None:  # fmt: skip
        self._node = node
        self._node_name = node_name
        self._inbound = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._inbound.load_cert_chain(server_cert, server_cert.with_suffix(".key"))
        self._inbound.set_alpn_protocols(["h2"])
        self._outbound = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._outbound.maximum_version = version
        self._outbound.load_verify_locations(bundle)
        self._outbound.load_cert_chain(client_cert, client_cert.with_suffix(".key"))
        self._outbound.set_alpn_protocols(["h2"])
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.versions: list[str | None] = []  # negotiated with the node, per connection
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(raw,), daemon=True).start()

    def _relay(self, raw: socket.socket) -> None:
        try:
            inbound = self._inbound.wrap_socket(raw, server_side=True)
            host, port = self._node.rsplit(":", 1)
            outbound = self._outbound.wrap_socket(
                socket.create_connection((host, int(port))), server_hostname=self._node_name
            )
        except (OSError, ssl.SSLError):
            raw.close()
            return
        self.versions.append(outbound.version())
        self._sockets += [inbound, outbound]
        threading.Thread(target=_pump, args=(outbound, inbound), daemon=True).start()
        _pump(inbound, outbound)

    def close(self) -> None:
        self._listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()


def _pump(source: ssl.SSLSocket, sink: ssl.SSLSocket) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.close()


@contextlib.contextmanager
def relayed(running, version: ssl.TLSVersion) -> Iterator[tuple[TlsRelay, grpc.Channel]]:
    net = running.network
    spec = net.topology.node(NODE)
    terminal = net.terminal(spec.site)
    relay = TlsRelay(address(running, NODE), NodeId.parse(NODE).tls_name, net.node_dir(spec) / "tls.pem",
                     terminal.cert, bundle_path(net.pki_dir), version)  # fmt: skip
    channel = open_channel(relay.address, NODE, terminal.cert, terminal.key, bundle_path(net.pki_dir))
    try:
        yield relay, channel
    finally:
        channel.close()
        relay.close()


def test_tls_1_2_is_refused_on_every_call(network):
    with relayed(network, ssl.TLSVersion.TLSv1_2) as (relay, channel):
        refused = rpc_error(admin_pb2_grpc.NodeAdminServiceStub(channel).GetStatus, admin_pb2.GetStatusRequest(),
                            timeout=10)  # fmt: skip
        health = rpc_error(health_pb2_grpc.HealthStub(channel).Check, health_pb2.HealthCheckRequest(), timeout=10)
        assert relay.versions and set(relay.versions) == {"TLSv1.2"}  # the node did accept the handshake
    for err in (refused, health):
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err
        assert "the connection uses TLSv1.2; JukiNet requires TLSv1.3" in err.details()


def test_the_same_relay_at_tls_1_3_goes_through(network):
    with relayed(network, ssl.TLSVersion.TLSv1_3) as (relay, channel):
        # wait_for_ready: a relayed handshake that fails on a loaded machine makes gRPC reconnect with backoff;
        # and the test's own relay may reset a connection under load (UNAVAILABLE "Connection reset by peer"),
        # so the control call is tried up to three times: what it proves is that TLS 1.3 gets through at all.
        for attempt in range(3):
            try:
                status = admin_pb2_grpc.NodeAdminServiceStub(channel).GetStatus(
                    admin_pb2.GetStatusRequest(), timeout=30, wait_for_ready=True
                )
                break
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == 2:
                    raise
        assert status.node_ids == [NODE]
        assert set(relay.versions) == {"TLSv1.3"}
