"""mTLS channels for clients: a certificate chain and key from files, the JukiNet trust bundle."""

from __future__ import annotations

from pathlib import Path

import grpc

from jukinet.node.grpc_runtime import TlsMaterial, secure_channel


def open_channel(target: str, cert: Path, key: Path, trust_bundle: Path) -> grpc.Channel:
    """A channel to ``target`` presenting the client certificate ``cert``/``key``."""
    return secure_channel(target, TlsMaterial.from_files(cert, key, trust_bundle.read_bytes()))
