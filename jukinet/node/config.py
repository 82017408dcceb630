"""A node's configuration file (TOML), as written by ``jukinet`` network provisioning.

Example::

    [node]
    id = "cs:131148"              # or "pref:13" (a centre may list several: ids = ["pref:13", "pref:14"])
    listen = "127.0.0.1:50071"
    upstream = "127.0.0.1:50061"  # where this node forwards its notices (CS, prefecture)
    data_dir = "nodes/cs-131148/data"
    map_size_mb = 1024
    workers = 128                 # RPC threads; each open notice stream holds one

    [tls]
    cert = "nodes/cs-131148/tls.pem"
    key = "nodes/cs-131148/tls.key"

    [token]
    label = "jukinet-cs-131148"
    pin_file = "nodes/cs-131148/token.pin"
    key_label = "signing"
    certificate = "nodes/cs-131148/signing.pem"

    [pki]
    dir = "pki"
    softhsm_dir = "softhsm"   # holds softhsm2.conf and tokens/

    [operators]
    session_seconds = 900              # lifetime of an operator session

    [national]
    legal_table = "legal-table.toml"   # national server only

Relative paths are relative to the file's directory.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from jukinet.domain.node_ids import NodeId, NodeKind


class ConfigError(Exception):
    """The configuration file is missing something or is malformed."""


@dataclass(frozen=True)
class NodeConfig:
    node_ids: tuple[NodeId, ...]
    listen: str
    upstream: str | None
    data_dir: Path
    map_size: int
    workers: int
    tls_cert: Path
    tls_key: Path
    token_label: str
    token_pin_file: Path
    token_key_label: str
    signing_certificate: Path
    pki_dir: Path
    softhsm_dir: Path
    legal_table: Path | None
    session_seconds: int = 900

    @property
    def kind(self) -> NodeKind:
        return self.node_ids[0].kind

    @property
    def name(self) -> str:
        return ",".join(str(n) for n in self.node_ids)

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read node configuration {path}: {exc}") from exc
        base = path.parent

        def section(name: str) -> dict:
            value = raw.get(name)
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: missing [{name}] section")
            return value

        def field(sec: str, key: str, default: object = ...) -> object:
            value = section(sec).get(key, default)
            if value is ...:
                raise ConfigError(f"{path}: [{sec}] needs '{key}'")
            return value

        def rel(value: object) -> Path:
            p = Path(str(value))
            return p if p.is_absolute() else base / p

        node = section("node")
        ids = node.get("ids") or [field("node", "id")]
        try:
            node_ids = tuple(NodeId.parse(str(i)) for i in ids)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        if len({n.kind for n in node_ids}) != 1:
            raise ConfigError(f"{path}: a node's ids must all be of one kind, got {ids}")
        kind = node_ids[0].kind
        if kind not in (NodeKind.CS, NodeKind.PREFECTURE, NodeKind.NATIONAL):
            raise ConfigError(f"{path}: {ids[0]} is not a node (cs, pref or national)")
        upstream = node.get("upstream")
        if kind is not NodeKind.NATIONAL and not upstream:
            raise ConfigError(f"{path}: [node] needs 'upstream' for a {kind.value} node")
        national = raw.get("national", {})
        legal_table = national.get("legal_table")
        if kind is NodeKind.NATIONAL and not legal_table:
            raise ConfigError(f"{path}: the national server needs [national] legal_table")
        return cls(
            node_ids=node_ids,
            listen=str(field("node", "listen")),
            upstream=str(upstream) if upstream else None,
            data_dir=rel(field("node", "data_dir")),
            map_size=int(node.get("map_size_mb", 1024)) * (1 << 20),
            workers=int(node.get("workers", 128)),
            tls_cert=rel(field("tls", "cert")),
            tls_key=rel(field("tls", "key")),
            token_label=str(field("token", "label")),
            token_pin_file=rel(field("token", "pin_file")),
            token_key_label=str(field("token", "key_label", "signing")),
            signing_certificate=rel(field("token", "certificate")),
            pki_dir=rel(field("pki", "dir")),
            softhsm_dir=rel(field("pki", "softhsm_dir")),
            legal_table=rel(legal_table) if legal_table else None,
            session_seconds=int(raw.get("operators", {}).get("session_seconds", 900)),
        )
