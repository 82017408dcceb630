"""``jukinet directory show|publish``: the signed network directory a node holds, and a new version.

``show`` reads the directory over RPC as a terminal of the node's site (or, with ``--from-store``,
from the node's LMDB in the state directory, also while the node is stopped), checks it against the
network's PKI as a node would, and prints it. ``publish`` builds the next version's content from the
development network (topology, provisioned certificates, legal table) or a TOML file, and has the
national server sign and serve it — with the session ``jukinet operator login --node national`` left
(role 'administer-operators'; audited there).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from jukinet.cli.operators import session_terminal
from jukinet.devnet.access import terminal_for
from jukinet.devnet.directory import directory_toml
from jukinet.devnet.provision import Network, load_network
from jukinet.domain.directory import iso_ms
from jukinet.domain.errors import Problem, Rejected
from jukinet.pki.directory import DirectoryPolicy
from jukinet.server.national.directory import content_from_toml
from jukinet.storage import NodeStorage
from jukinet.v1 import directory_pb2, envelope_pb2


def _from_store(net: Network, node: str) -> tuple[envelope_pb2.Signed, str]:
    storage = NodeStorage.open(net.node_dir(net.topology.node(node)) / "data", readonly=True)
    try:
        cached = storage.directory.current()
    finally:
        storage.close()
    if cached is None:
        raise Rejected(Problem.NOT_FOUND, f"{node} has stored no network directory yet")
    fetched = iso_ms(cached.fetched_at.ToMilliseconds())
    return cached.envelope, f"{node}'s store (from {cached.source}, stored {fetched})"


def show(state: Path, node: str, from_store: bool) -> int:
    net = load_network(state)
    if from_store:
        envelope, where = _from_store(net, node)
    else:
        reply = terminal_for(net, net.topology.node(node)).directory(0)
        envelope, where = reply.directory, f"{node} (over RPC)"
    try:
        verified = DirectoryPolicy(net.trust()).verify(envelope, allow_expired=True)
    except Rejected as exc:
        print(f"the directory {where} holds does NOT verify: {exc}")
        return 2
    print("\n".join(describe(verified.directory.message, where, verified.signer.fingerprint, now_ms=None)))
    return 0


def describe(
    d: directory_pb2.NetworkDirectory, where: str, signer_sha256: bytes, now_ms: int | None = None
) -> list[str]:
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    expires = d.expires_at.ToMilliseconds()
    validity = "EXPIRED" if now >= expires else "valid"
    lines = [
        f"network directory version {d.version} held by {where}",
        f"  signed by national (signing certificate sha256:{signer_sha256.hex()[:16]}…), signature verified",
        f"  issued {iso_ms(d.issued_at.ToMilliseconds())}, expires {iso_ms(expires)} ({validity})",
        "",
        f"nodes ({len(d.nodes)}):",
    ]
    for n in d.nodes:
        belongs = f"  prefecture {n.prefecture}" if n.prefecture else ""
        lines.append(
            f"  {', '.join(n.node_ids):<24} {n.address:<22} tls sha256:{n.tls_certificate_sha256.hex()[:16]}…  "
            f"signing sha256:{n.signing_certificate_sha256.hex()[:16]}…{belongs}"
        )
    hosts = {p: n.node_ids[0] for n in d.nodes for p in n.node_ids if p.startswith("pref:")}
    lines += ["", "CS → prefecture (served by):"]
    lines += [f"  {n.node_ids[0]} → {n.prefecture} ({hosts.get(n.prefecture, '?')})" for n in d.nodes if n.prefecture]
    lines += ["", f"legal-table rows ({len(d.legal_table)}):"]
    lines += [
        f"  {r.table} agency {r.agency} business {r.business}: {r.title} [{', '.join(r.fields)}]" for r in d.legal_table
    ]
    lines += ["", f"designated-code blocks: {len(d.code_blocks)}"]
    return lines


def publish(state: Path, file: Path | None, validity_seconds: int) -> int:
    net = load_network(state)
    if file is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "directory.toml"
            path.write_text(directory_toml(net), encoding="utf-8")
            content = content_from_toml(path)
    else:
        content = content_from_toml(file)
    reply = session_terminal(net, "national").publish_directory(content, validity_seconds)
    print(
        f"published network directory version {reply.version}: {len(content.nodes)} nodes, "
        f"{len(content.legal_table)} legal-table rows, valid {iso_ms(reply.issued_at.ToMilliseconds())} "
        f"to {iso_ms(reply.expires_at.ToMilliseconds())}"
    )
    return 0
