"""mTLS channels for clients: a certificate chain and key from files, the JukiNet trust bundle, and
the node the client expects to reach (refused in the handshake if anyone else answers)."""

from __future__ import annotations

from pathlib import Path

import grpc

from jukinet.clients.transport import DEFAULT_KEEPALIVE, Keepalive, channel_options
from jukinet.domain.node_ids import NodeId


def open_channel(
    target: str,
    expected: NodeId | str,
    cert: Path,
    key: Path,
    trust_bundle: Path,
    keepalive: Keepalive = DEFAULT_KEEPALIVE,
) -> grpc.Channel:
    """A channel to the node ``expected`` at address ``target``, presenting the client certificate."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=trust_bundle.read_bytes(), private_key=key.read_bytes(), certificate_chain=cert.read_bytes()
    )
    return grpc.secure_channel(target, credentials, options=channel_options(expected, keepalive))
