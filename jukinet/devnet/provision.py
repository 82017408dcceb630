"""Provisions a network's state directory: PKI, SoftHSM tokens and keys, certificates, node configs.

Layout (nothing here is ever committed; PINs and TLS keys are mode 0600)::

    state/
      pki/                       development PKI (jukinet.pki)
      softhsm/                   softhsm2.conf + tokens/ (one token per node)
      network.id                 random id carried by this network's token labels
      topology.toml              the topology this state was provisioned for (`jukinet status` reads it)
      legal-table.toml           the national server's 別表第1
      directory.toml             the network directory's content: the national server publishes it (its seed)
      nodes/<name>/              node.toml, tls.pem/.key, signing.pem, token.pin, so.pin, data/ (LMDB)
      agencies/<corp-number>/    tls.pem/.key (agency CA)
      portals/<name>/            tls.pem/.key (node CA, portal:<name>): the residents' portal (マイナポータル)
      terminals/<site>-ops/      tls.pem/.key (operator CA): the operator terminal of each node's site
    operators/<site>-<name>/   an operator's card label, SO PIN and emulated body (jukinet.devnet.operators)
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

from jukinet.devnet.directory import directory_toml
from jukinet.devnet.topology import NodeSpec, Topology
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.hsm import SoftHsmConfig, find_softhsm_module
from jukinet.pki import TrustStore, init_pki, issue_signing_certificate, issue_tls_certificate

PORTAL = "myna"
"""The name of the development network's residents' portal (``portal:myna``)."""


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
    softhsm_root: Path | None = None  # default: state/softhsm

    @property
    def pki_dir(self) -> Path:
        return self.state / "pki"

    @property
    def softhsm(self) -> SoftHsmConfig:
        """Node tokens and operator cards (the card reader, in development) share this SoftHSM."""
        return SoftHsmConfig(self.softhsm_root or self.state / "softhsm")

    def node_dir(self, spec: NodeSpec) -> Path:
        return self.state / "nodes" / spec.name

    def node_config(self, spec: NodeSpec) -> Path:
        return self.node_dir(spec) / "node.toml"

    def agency(self, corporate_number: str) -> Credentials:
        d = self.state / "agencies" / corporate_number
        return Credentials(d / "tls.pem", d / "tls.key")

    def portal(self, name: str = PORTAL) -> Credentials:
        """The residents' self-service portal (``portal:<name>``): it relays residents' card-authorised
        disclosure requests and may call nothing else."""
        d = self.state / "portals" / name
        return Credentials(d / "tls.pem", d / "tls.key")

    def terminal(self, site: str) -> Credentials:
        """The operator terminal of a site (municipality code, prefecture code or "national")."""
        d = self.state / "terminals" / f"{site}-ops"
        return Credentials(d / "tls.pem", d / "tls.key")

    @property
    def network_id(self) -> str:
        """A short random id of this state directory: token labels carry it, so that networks sharing
        one SoftHSM directory (as test runs do) never collide. Labels are at most 32 bytes."""
        return (self.state / "network.id").read_text().strip()

    def token_label(self, spec: NodeSpec) -> str:
        return f"jn-{self.network_id}-{spec.name}"

    def trust(self) -> TrustStore:
        return TrustStore.load(self.pki_dir)

    def environment(self) -> dict[str, str]:
        """The environment of this network's node processes (its SoftHSM configuration)."""
        return {**os.environ, **self.softhsm.env()}


def load_network(state: Path) -> Network:
    """The network provisioned in ``state`` (by ``jukinet up`` or ``jukinet network init``)."""
    path = state.resolve() / "topology.toml"
    if not path.exists():
        raise Rejected(
            Problem.NOT_FOUND, f"{state} holds no provisioned network (no topology.toml); run `jukinet up` first"
        )
    elsewhere = state.resolve() / "softhsm.location"
    softhsm_root = Path(elsewhere.read_text().strip()) if elsewhere.exists() else None
    return Network(state.resolve(), Topology.load(path), softhsm_root)


def provision(state: Path, topology: Topology, softhsm_root: Path | None = None) -> Network:
    """Create (or complete) everything the topology needs under ``state``.

    ``softhsm_root`` puts the tokens in another SoftHSM directory than ``state/softhsm`` (a test run
    whose process has already loaded SoftHSM with that configuration, and uses cards of the network).
    """
    state = state.resolve()
    net = Network(state, topology, softhsm_root.resolve() if softhsm_root else None)
    state.mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(exist_ok=True)
    if not (state / "network.id").exists():
        (state / "network.id").write_text(secrets.token_hex(3) + "\n")
    init_pki(net.pki_dir)
    softhsm = SoftHsmConfig.create(net.softhsm.root)
    if softhsm_root is not None:
        (state / "softhsm.location").write_text(str(softhsm.root))
    (state / "legal-table.toml").write_text(topology.legal_table_text, encoding="utf-8")
    (state / "topology.toml").write_text(topology.to_toml("legal-table.toml"), encoding="utf-8")

    needed: dict[str, dict[str, str | bool]] = {}
    for spec in topology.nodes:
        node_dir = net.node_dir(spec)
        node_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        needed[net.token_label(spec)] = {
            "pin": _secret_file(node_dir / "token.pin"),
            "so_pin": _secret_file(node_dir / "so.pin"),
            "my_number_key": spec.node_id.kind is NodeKind.NATIONAL,  # only the national token computes them
            "agency_identifier_key": spec.node_id.kind is NodeKind.NATIONAL,  # 機関別符号: the national token only
        }
    public_keys = _provision_tokens(softhsm, needed)  # idempotent: existing tokens and keys are kept

    for spec in topology.nodes:
        node_dir = net.node_dir(spec)
        if not (node_dir / "signing.pem").exists():
            public_key = serialization.load_pem_public_key(public_keys[net.token_label(spec)].encode())
            cert = issue_signing_certificate(net.pki_dir, "node", spec.ids, public_key)  # type: ignore[arg-type]
            (node_dir / "signing.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if not (node_dir / "tls.pem").exists():
            issue_tls_certificate(net.pki_dir, "node", spec.ids, node_dir)
        _write_node_config(net, spec)
        terminal = net.terminal(spec.site)
        if not terminal.cert.exists():
            issue_tls_certificate(net.pki_dir, "operator", [f"terminal:{spec.site}:ops"], terminal.cert.parent)
    for agency in topology.agencies:
        creds = net.agency(agency.corporate_number)
        if not creds.cert.exists():
            issue_tls_certificate(net.pki_dir, "agency", [str(agency.node_id)], creds.cert.parent)
    portal = net.portal()
    if not portal.cert.exists():
        issue_tls_certificate(net.pki_dir, "node", [str(NodeId.portal(PORTAL))], portal.cert.parent)
    (state / "directory.toml").write_text(directory_toml(net), encoding="utf-8")
    return net


def _write_node_config(net: Network, spec: NodeSpec) -> None:
    topology = net.topology
    upstream = topology.upstream_id(spec)
    tuning = topology.tuning
    node_ids = ", ".join(f'"{n}"' for n in spec.node_ids)
    peers = [f'"{node_id}" = "{address}"' for node_id, address in topology.addresses().items()]
    lines = [
        "# Written by `jukinet` network provisioning; paths are relative to this file.",
        "[node]",
        f"ids = [{node_ids}]",
        f'listen = "{spec.listen}"',
        'data_dir = "data"',
        "map_size_mb = 1024",
        "",
        "[links]",
        *([f'upstream = "{upstream}"'] if upstream else []),
        f"keepalive_ms = {tuning.keepalive_ms}",
        f"keepalive_timeout_ms = {tuning.keepalive_timeout_ms}",
        f"window = {tuning.window}",
        "",
        "[peers]  # bootstrap: used until the first network directory arrives",
        *peers,
        "",
        "[limits]",
        f"streams_per_peer = {tuning.streams_per_peer}",
        f"calls_per_peer = {tuning.calls_per_peer}",
        f"calls_per_second = {tuning.calls_per_second}",
        "",
        "[tls]",
        'cert = "tls.pem"',
        'key = "tls.key"',
        "",
        "[token]",
        f'module = "{find_softhsm_module()}"',
        f'label = "{net.token_label(spec)}"',
        'pin_file = "token.pin"',
        'key_label = "signing"',
        'certificate = "signing.pem"',
        "",
        "[pki]",
        'dir = "../../pki"',
        f'softhsm_dir = "{net.softhsm.root}"',
    ]
    lines += [
        "",
        "[directory]",
        f"refresh_s = {tuning.directory_refresh_s}",
        f"validity_s = {tuning.directory_validity_s}",
    ]
    if spec is topology.national:
        lines += ['seed = "../../directory.toml"', "", "[national]", 'legal_table = "../../legal-table.toml"']
    net.node_config(spec).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _provision_tokens(softhsm: SoftHsmConfig, tokens: dict[str, dict[str, str | bool]]) -> dict[str, str]:
    """Initialise each token and generate (or read) its keys in a child process; returns label -> public
    key PEM. The PINs go to the child on a pipe (its stdin), never as arguments."""
    proc = subprocess.run(
        [sys.executable, "-m", "jukinet.devnet.token_keys"],
        input=json.dumps({"softhsm_conf": str(softhsm.conf_path), "tokens": tokens}),
        env={**os.environ, **softhsm.env()},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise Rejected(Problem.UNAVAILABLE, f"provisioning the node tokens failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)
