"""Provisions a network's state directory: PKI, SoftHSM tokens and keys, certificates, node configs.

Layout (nothing here is ever committed; PINs and TLS keys are mode 0600)::

    state/
      pki/                       development PKI (jukinet.pki)
      softhsm/                   softhsm2.conf + tokens/ (one token per node)
      topology.toml              the topology this state was provisioned for (`jukinet status` reads it)
      legal-table.toml           the national server's 別表第1
      nodes/<name>/              node.toml, tls.pem/.key, signing.pem, token.pin, so.pin, data/ (LMDB)
      agencies/<corp-number>/    tls.pem/.key (agency CA)
      terminals/<site>-ops/      tls.pem/.key (operator CA): the operator terminal of each node's site
      logs/<name>.log            node process output

Every step is idempotent: an existing item is kept. Token keys are generated in a child process
because SoftHSM reads its configuration once per process, and the caller (a test run, a benchmark)
may already have loaded another one.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from jukinet.hsm import SoftHsmConfig
from jukinet.network.topology import NodeSpec, Topology
from jukinet.pki import TrustStore, init_pki, issue_signing_certificate, issue_tls_certificate


def _secret_file(path: Path, value: str | None = None) -> str:
    """Read a secret file, creating it (0600) with ``value`` or a random PIN if it does not exist."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    value = value or secrets.token_hex(8)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


@dataclass(frozen=True)
class Credentials:
    """A TLS identity on disk (cert chain + key) of a client or node."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Network:
    """A provisioned state directory and the topology it was made for."""

    state: Path
    topology: Topology

    @property
    def pki_dir(self) -> Path:
        return self.state / "pki"

    @property
    def softhsm(self) -> SoftHsmConfig:
        return SoftHsmConfig(self.state / "softhsm")

    def node_dir(self, spec: NodeSpec) -> Path:
        return self.state / "nodes" / spec.name

    def node_config(self, spec: NodeSpec) -> Path:
        return self.node_dir(spec) / "node.toml"

    def agency(self, corporate_number: str) -> Credentials:
        d = self.state / "agencies" / corporate_number
        return Credentials(d / "tls.pem", d / "tls.key")

    def terminal(self, site: str) -> Credentials:
        """The operator terminal of a site (municipality code, prefecture code or "national")."""
        d = self.state / "terminals" / f"{site}-ops"
        return Credentials(d / "tls.pem", d / "tls.key")

    def token_label(self, spec: NodeSpec) -> str:
        return f"jukinet-{spec.name}"

    def trust(self) -> TrustStore:
        return TrustStore.load(self.pki_dir)


def load_network(state: Path) -> Network:
    """The network provisioned in ``state`` (by ``jukinet up`` or ``jukinet network init``)."""
    path = state.resolve() / "topology.toml"
    if not path.exists():
        raise FileNotFoundError(f"{state} holds no provisioned network (no topology.toml); run `jukinet up` first")
    return Network(state.resolve(), Topology.load(path))


def provision(state: Path, topology: Topology) -> Network:
    """Create (or complete) everything the topology needs under ``state``."""
    state = state.resolve()
    net = Network(state, topology)
    state.mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(exist_ok=True)
    init_pki(net.pki_dir)
    softhsm = SoftHsmConfig.create(state / "softhsm")
    (state / "legal-table.toml").write_text(topology.legal_table_text, encoding="utf-8")
    (state / "topology.toml").write_text(topology.to_toml("legal-table.toml"), encoding="utf-8")

    needed: dict[str, str] = {}
    for spec in topology.nodes:
        node_dir = net.node_dir(spec)
        node_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        pin = _secret_file(node_dir / "token.pin")
        so_pin = _secret_file(node_dir / "so.pin")
        softhsm.init_token(net.token_label(spec), pin, so_pin)
        if not (node_dir / "signing.pem").exists():
            needed[net.token_label(spec)] = pin
    public_keys = _generate_token_keys(softhsm, needed) if needed else {}

    ids = lambda spec: [str(n) for n in spec.node_ids]  # noqa: E731
    for spec in topology.nodes:
        node_dir = net.node_dir(spec)
        label = net.token_label(spec)
        if label in public_keys:
            public_key = serialization.load_pem_public_key(public_keys[label].encode())
            cert = issue_signing_certificate(net.pki_dir, "node", ids(spec), public_key)  # type: ignore[arg-type]
            (node_dir / "signing.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if not (node_dir / "tls.pem").exists():
            issue_tls_certificate(net.pki_dir, "node", ids(spec), node_dir)
        _write_node_config(net, spec)
        terminal = net.terminal(spec.site)
        if not terminal.cert.exists():
            issue_tls_certificate(net.pki_dir, "operator", [f"terminal:{spec.site}:ops"], terminal.cert.parent)
    for agency in topology.agencies:
        creds = net.agency(agency.corporate_number)
        if not creds.cert.exists():
            issue_tls_certificate(net.pki_dir, "agency", [str(agency.node_id)], creds.cert.parent)
    return net


def _write_node_config(net: Network, spec: NodeSpec) -> None:
    upstream = net.topology.upstream_of(spec)
    node_ids = ", ".join(f'"{n}"' for n in spec.node_ids)
    lines = [
        "# Written by `jukinet` network provisioning; paths are relative to this file.",
        "[node]",
        f"ids = [{node_ids}]",
        f'listen = "{spec.listen}"',
        *([f'upstream = "{upstream.listen}"'] if upstream else []),
        'data_dir = "data"',
        "map_size_mb = 1024",
        "",
        "[tls]",
        'cert = "tls.pem"',
        'key = "tls.key"',
        "",
        "[token]",
        f'label = "{net.token_label(spec)}"',
        'pin_file = "token.pin"',
        'key_label = "signing"',
        'certificate = "signing.pem"',
        "",
        "[pki]",
        'dir = "../../pki"',
        'softhsm_dir = "../../softhsm"',
    ]
    if upstream is None:
        lines += ["", "[national]", 'legal_table = "../../legal-table.toml"']
    net.node_config(spec).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _generate_token_keys(softhsm: SoftHsmConfig, pins: dict[str, str]) -> dict[str, str]:
    """Generate (or read) each token's signing key in a child process; returns label -> public key PEM."""
    proc = subprocess.run(
        [sys.executable, "-m", "jukinet.network.token_keys"],
        input=json.dumps(pins),
        env={**os.environ, **softhsm.env()},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"generating token keys failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)
