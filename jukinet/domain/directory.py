"""The network directory as the rest of the code sees it: who the nodes are, where to dial them, which
certificates are theirs, which prefecture each CS belongs to — and the one small interface,
:class:`PeerDirectory`, through which links and tier services ask for peers.

:meth:`Directory.from_message` checks a ``NetworkDirectory``'s structure (no I/O, no signatures: those
are :mod:`jukinet.pki.directory`'s): node ids parse and are nodes, fingerprints are 32 bytes, no node
appears twice, every CS names its own prefecture and exactly one prefecture process serves it, exactly
one national server, legal-table rows (:func:`jukinet.domain.legal.row_problem`) and code-block
summaries well formed. A directory that fails any
of these is refused whole: a node never acts on half of one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.legal import row_problem
from jukinet.domain.limits import MAX_DIRECTORY_NODES, MAX_DIRECTORY_ROWS
from jukinet.domain.node_ids import NODE_KINDS, NodeId, NodeKind
from jukinet.domain.quoting import quoted
from jukinet.v1 import directory_pb2

__all__ = ["Directory", "DirectoryEntry", "Fingerprints", "PeerDirectory", "StaticPeers", "iso_ms", "node_id_of"]

FINGERPRINT_BYTES = 32  # SHA-256
MAX_ADDRESS_CHARS = 255
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")


@dataclass(frozen=True)
class Fingerprints:
    """SHA-256 of the DER of a node's certificates, as the directory lists them."""

    tls: bytes
    signing: bytes


class PeerDirectory(Protocol):
    """Where the peers are: what links and tier services ask (CS→CS links for moves, calls for 広域交付,
    CS→national calls for numbers). Each method raises Rejected — UNAVAILABLE while the node's directory
    has expired, NOT_FOUND for a node the directory does not list — rather than guess."""

    @property
    def version(self) -> int:
        """The directory version in use; 0 while the node has none yet (peers from node.toml)."""
        ...

    def address(self, node_id: NodeId | str) -> str:
        """The address to dial for ``node_id``."""
        ...

    def fingerprints(self, node_id: NodeId | str) -> Fingerprints | None:
        """The certificate fingerprints listed for ``node_id``; None while the node has no directory yet."""
        ...

    def prefecture_server_of(self, cs: NodeId | str) -> NodeId:
        """The prefecture a CS belongs to (its link destination; :meth:`address` finds the process)."""
        ...

    def cs_nodes(self) -> tuple[NodeId, ...]:
        """Every CS of the network."""
        ...


class StaticPeers:
    """A :class:`PeerDirectory` from a fixed map of node id → address (version 0: nothing pinned) — what
    a node has before its first directory, and what unit tests hand a link set."""

    version = 0

    def __init__(self, peers: Mapping[str, str]) -> None:
        self._peers = dict(peers)

    def address(self, node_id: NodeId | str) -> str:
        found = self._peers.get(str(node_id))
        if found is None:
            raise Rejected(Problem.NOT_FOUND, f"no address known for {node_id}")
        return found

    def fingerprints(self, node_id: NodeId | str) -> Fingerprints | None:
        return None

    def prefecture_server_of(self, cs: NodeId | str) -> NodeId:
        return NodeId.prefecture(node_id_of(cs).prefecture_code)

    def cs_nodes(self) -> tuple[NodeId, ...]:
        return tuple(n for n in map(NodeId.parse, self._peers) if n.kind is NodeKind.CS)


def node_id_of(value: NodeId | str) -> NodeId:
    return value if isinstance(value, NodeId) else NodeId.parse(value)


def iso_ms(ms: int) -> str:
    """Unix ms as an ISO 8601 UTC time, for messages a person reads."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DirectoryEntry:
    node_ids: tuple[NodeId, ...]
    address: str
    fingerprints: Fingerprints
    prefecture: NodeId | None  # a CS's prefecture


@dataclass(frozen=True)
class Directory:
    """A structurally valid network directory (its signature is checked elsewhere, before this)."""

    version: int
    issued_at_ms: int
    expires_at_ms: int
    entries: tuple[DirectoryEntry, ...]
    message: directory_pb2.NetworkDirectory = field(repr=False, compare=False)
    _by_id: Mapping[str, DirectoryEntry] = field(repr=False, compare=False, default_factory=dict)

    def entry(self, node_id: NodeId | str) -> DirectoryEntry | None:
        return self._by_id.get(str(node_id))

    def expired(self, now_ms: int) -> bool:
        return now_ms >= self.expires_at_ms

    def cs_nodes(self) -> tuple[NodeId, ...]:
        return tuple(e.node_ids[0] for e in self.entries if e.node_ids[0].kind is NodeKind.CS)

    @classmethod
    def from_message(cls, message: directory_pb2.NetworkDirectory) -> Directory:
        """Check the structure of ``message``; Rejected (INVALID) naming the first thing wrong."""
        where = f"network directory version {message.version}"

        def bad(why: str) -> Rejected:
            return Rejected(Problem.INVALID, f"{where}: {why}")

        if message.version < 1:
            raise bad("the version must be at least 1")
        if not (message.HasField("issued_at") and message.HasField("expires_at")):
            raise bad("needs issued_at and expires_at")
        issued, expires = message.issued_at.ToMilliseconds(), message.expires_at.ToMilliseconds()
        if expires <= issued:
            raise bad(f"expires ({iso_ms(expires)}) no later than it is issued ({iso_ms(issued)})")
        if len(message.nodes) > MAX_DIRECTORY_NODES:
            raise bad(f"{len(message.nodes)} nodes; at most {MAX_DIRECTORY_NODES}")
        if len(message.legal_table) + len(message.code_blocks) > MAX_DIRECTORY_ROWS:
            raise bad(f"more than {MAX_DIRECTORY_ROWS} legal-table rows and code blocks")
        entries = tuple(_entry(node, f"nodes[{i}]", bad) for i, node in enumerate(message.nodes))
        by_id: dict[str, DirectoryEntry] = {}
        addresses: dict[str, str] = {}
        for entry in entries:
            for node_id in entry.node_ids:
                if str(node_id) in by_id:
                    raise bad(f"{node_id} is listed twice")
                by_id[str(node_id)] = entry
            first = str(entry.node_ids[0])
            if entry.address in addresses:
                raise bad(f"{first} and {addresses[entry.address]} share the address {entry.address}")
            addresses[entry.address] = first
        if sum(1 for e in entries if e.node_ids[0].kind is NodeKind.NATIONAL) != 1:
            raise bad("must list exactly one national server")
        for entry in entries:
            if entry.prefecture is not None:
                host = by_id.get(str(entry.prefecture))
                if host is None:
                    raise bad(f"{entry.node_ids[0]} belongs to {entry.prefecture}, which no prefecture process serves")
        _check_rows(message, by_id, bad)
        return cls(message.version, issued, expires, entries, message, by_id)


def _entry(node: directory_pb2.DirectoryNode, at: str, bad) -> DirectoryEntry:
    if not node.node_ids:
        raise bad(f"{at} names no node")
    try:
        ids = tuple(NodeId.parse(text) for text in node.node_ids)
    except Rejected as exc:
        raise bad(f"{at}: {exc}") from None
    kinds = {n.kind for n in ids}
    if len(kinds) != 1 or not kinds <= NODE_KINDS:
        raise bad(f"{at}: {', '.join(map(str, ids))} are not nodes of one kind (cs, pref or national)")
    kind = ids[0].kind
    if kind is not NodeKind.PREFECTURE and len(ids) != 1:
        raise bad(f"{at}: only a prefecture process serves several ids")
    at = f"{at} ({ids[0]})"
    if not (0 < len(node.address) <= MAX_ADDRESS_CHARS and _ADDRESS.match(node.address)):
        raise bad(f"{at}: address {quoted(node.address)} is not host:port")
    if not 0 < int(node.address.rsplit(":", 1)[1]) < 65536:
        raise bad(f"{at}: port of {quoted(node.address)} is out of range")
    for name in ("tls_certificate_sha256", "signing_certificate_sha256"):
        if len(getattr(node, name)) != FINGERPRINT_BYTES:
            raise bad(f"{at}: {name} must be {FINGERPRINT_BYTES} bytes, not {len(getattr(node, name))}")
    prefecture = None
    if kind is NodeKind.CS:
        expected = f"pref:{ids[0].prefecture_code}"
        if node.prefecture != expected:
            raise bad(f"{at}: belongs to prefecture {quoted(node.prefecture) or 'none'}, expected {expected}")
        prefecture = NodeId.parse(expected)
    elif node.prefecture:
        raise bad(f"{at}: only a CS belongs to a prefecture")
    fingerprints = Fingerprints(bytes(node.tls_certificate_sha256), bytes(node.signing_certificate_sha256))
    return DirectoryEntry(ids, node.address, fingerprints, prefecture)


def _check_rows(message: directory_pb2.NetworkDirectory, by_id: Mapping[str, DirectoryEntry], bad) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for i, row in enumerate(message.legal_table):
        at = f"legal_table[{i}]"
        problem = row_problem(row)
        if problem:
            raise bad(f"{at}: {problem}")
        key = (row.table, row.prefecture, row.agency, row.business)
        if key in seen:
            whose = f" of {row.prefecture}" if row.prefecture else ""
            raise bad(f"{at}: {row.table}{whose} lists agency {row.agency} for {quoted(row.business)} twice")
        seen.add(key)
    blocks: set[tuple[str, int]] = set()
    for i, block in enumerate(message.code_blocks):
        at = f"code_blocks[{i}]"
        entry = by_id.get(block.cs)
        if entry is None or entry.node_ids[0].kind is not NodeKind.CS:
            raise bad(f"{at}: {quoted(block.cs)} is not a CS of this directory")
        if block.count < 1 or len(block.codes_sha256) != FINGERPRINT_BYTES:
            raise bad(f"{at}: needs a count and a {FINGERPRINT_BYTES}-byte codes_sha256")
        if (block.cs, block.block) in blocks:
            raise bad(f"{at}: block {block.block} of {block.cs} is listed twice")
        blocks.add((block.cs, block.block))
