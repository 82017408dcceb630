"""What both ends of a JukiNet connection must agree on: whom the client expects, keepalive, sizes.

A client names the node it expects (:attr:`jukinet.domain.node_ids.NodeId.tls_name`) as the TLS
target name, so the handshake fails unless the server's certificate carries that node's name; only
node certificates carry one, and only node certificates may serve (EKU serverAuth). The address to
dial is separate: it comes from the signed network directory (node.toml's peers until the first one).

Keepalive: a client pings an idle connection every ``time_ms``; the server accepts pings without
data at up to twice that rate (``grpc.http2.min_ping_interval_without_data_ms`` = time_ms / 2), so an
idle link is never told ``GOAWAY too_many_pings`` (gRPC's default on the server is one ping per five
minutes). Both sides take their settings from one :class:`Keepalive`.
"""

from __future__ import annotations

from dataclasses import dataclass

from jukinet.domain.limits import MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES
from jukinet.domain.node_ids import NodeId

SESSION_METADATA_KEY = "jukinet-session-bin"  # an operator session (a serialized Signed) on every operator RPC


@dataclass(frozen=True)
class Keepalive:
    time_ms: int = 20_000  # client: ping an idle connection this often
    timeout_ms: int = 10_000  # either side: drop the connection when a ping is not answered in time

    def client_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.keepalive_time_ms", self.time_ms),
            ("grpc.keepalive_timeout_ms", self.timeout_ms),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ]

    def server_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", max(1, self.time_ms // 2)),
            ("grpc.http2.max_ping_strikes", 2),
            ("grpc.keepalive_time_ms", max(self.time_ms * 3, 60_000)),  # the server's own probe of dead clients
            ("grpc.keepalive_timeout_ms", self.timeout_ms),
        ]


DEFAULT_KEEPALIVE = Keepalive()
# Both ends by the limits table (docs/LIMITS.md): a server buffers no request larger than the largest any
# RPC accepts, a client no response larger than any response is cut to.
_CLIENT_SIZES = [
    ("grpc.max_send_message_length", MAX_REQUEST_BYTES),
    ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
]
_SERVER_SIZES = [
    ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
    ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
]


def channel_options(expected: NodeId | str, keepalive: Keepalive = DEFAULT_KEEPALIVE) -> list[tuple[str, object]]:
    """Options for a channel that will talk only to ``expected`` (checked in the TLS handshake)."""
    node = expected if isinstance(expected, NodeId) else NodeId.parse(expected)
    return [("grpc.ssl_target_name_override", node.tls_name), *keepalive.client_options(), *_CLIENT_SIZES]


def server_options(keepalive: Keepalive = DEFAULT_KEEPALIVE) -> list[tuple[str, object]]:
    return [*keepalive.server_options(), *_SERVER_SIZES]
