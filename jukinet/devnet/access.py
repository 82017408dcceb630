"""Clients of a provisioned network, with the credentials its state directory holds."""

from __future__ import annotations

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from jukinet.clients import AgencyClient, TerminalClient, open_channel
from jukinet.devnet.provision import Network
from jukinet.devnet.topology import NodeSpec
from jukinet.pki.layout import bundle_path


def terminal_for(net: Network, spec: NodeSpec) -> TerminalClient:
    """A client of ``spec`` using the operator terminal of its site."""
    creds = net.terminal(spec.site)
    certificate = x509.load_pem_x509_certificate(creds.cert.read_bytes())
    channel = open_channel(spec.listen, spec.node_id, creds.cert, creds.key, bundle_path(net.pki_dir))
    return TerminalClient(channel, certificate.fingerprint(hashes.SHA256()))


def agency_client(net: Network, corporate_number: str) -> AgencyClient:
    creds = net.agency(corporate_number)
    national = net.topology.national
    channel = open_channel(national.listen, national.node_id, creds.cert, creds.key, bundle_path(net.pki_dir))
    return AgencyClient(channel)


def portal_channel(net: Network, node_id: str) -> grpc.Channel:
    """The residents' portal's channel to ``node_id`` (the national server or a CS)."""
    creds = net.portal()
    spec = net.topology.node(node_id)
    return open_channel(spec.listen, node_id, creds.cert, creds.key, bundle_path(net.pki_dir))
