"""The development network's directory content: every node of the topology with its address and the
fingerprints of the certificates provisioning issued it, and the legal table — as the TOML file the
national server publishes from (its seed) and `jukinet directory publish` sends."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.domain.node_ids import NodeKind

if TYPE_CHECKING:
    from jukinet.devnet.provision import Network


def certificate_sha256(pem_file: Path) -> str:
    """SHA-256 (hex) of the DER of the first certificate in ``pem_file`` (the leaf)."""
    certificate = x509.load_pem_x509_certificate(pem_file.read_bytes())
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def directory_toml(net: Network, addresses: dict[str, str] | None = None) -> str:
    """The directory content of ``net`` (``addresses``: node name → address, to announce moves)."""
    lines = [
        "# The network directory's content, written by `jukinet` network provisioning. The national server",
        "# publishes it (version, issue and expiry are set when it signs) when it is new or has changed.",
        "",
    ]
    for spec in net.topology.nodes:
        node_dir = net.node_dir(spec)
        ids = ", ".join(f'"{n}"' for n in spec.ids)
        address = (addresses or {}).get(spec.name, spec.listen)
        lines += [
            "[[node]]",
            f"ids = [{ids}]",
            f'address = "{address}"',
            f'tls_sha256 = "{certificate_sha256(node_dir / "tls.pem")}"',
            f'signing_sha256 = "{certificate_sha256(node_dir / "signing.pem")}"',
        ]
        if spec.node_id.kind is NodeKind.CS:
            lines.append(f'prefecture = "pref:{spec.node_id.prefecture_code}"')
        lines.append("")
    return "\n".join(lines) + "\n# 別表第1\n" + net.topology.legal_table_text
