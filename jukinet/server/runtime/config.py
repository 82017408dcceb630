"""A node's configuration file (TOML), as written by the development network's provisioning.

Example::

    [node]
    ids = ["cs:131148"]             # a consolidated prefecture centre lists several: ["pref:13", "pref:14"]
    listen = "127.0.0.1:50071"
    data_dir = "data"
    map_size_mb = 1024
    workers = 16                    # threads for blocking work (LMDB, parsing, the token's answers)
    batch_readers = 2               # national server: processes reading batch chunks (0: in the node's own)

    [links]
    upstream = "pref:13"            # where change notices go (a CS: its prefecture; a prefecture: national)
    keepalive_ms = 20000            # clients ping idle links this often; servers accept pings twice as often
    keepalive_timeout_ms = 10000
    window = 4                      # batches in flight per link

    [peers]                         # bootstrap only: where nodes listen until the first network directory arrives
    "pref:13" = "127.0.0.1:50061"   # (the upstream's address is needed to fetch it)
    "national" = "127.0.0.1:50051"

    [directory]
    refresh_s = 300                 # fetch the network directory this often (from the upstream, else national)
    validity_s = 604800             # national server: a published directory is valid this long by default
    seed = "../../directory.toml"   # national server: publish from this file when it is new or has changed

    [limits]
    streams_per_peer = 8            # streaming calls one peer may hold open here
    calls_per_peer = 32             # calls of any kind one peer may have in progress here
    calls_per_second = 1000         # new calls one peer may start per second here

    [tls]
    cert = "tls.pem"
    key = "tls.key"

    [token]
    module = "/usr/lib/softhsm/libsofthsm2.so"
    label = "jn-0a1b2c-cs-131148"
    pin_file = "token.pin"
    key_label = "signing"
    certificate = "signing.pem"

    [pki]
    dir = "../../pki"
    softhsm_dir = "../../softhsm"   # holds softhsm2.conf and tokens/

    [operators]
    session_seconds = 900
    pending_logins = 10000          # logins begun and not completed, at the node
    pending_logins_per_terminal = 16  # ... and at one terminal (must be fewer)

    [audit]
    refusal_interval_s = 60         # refusals of callers without a session: first in full, the rest counted

    [national]
    legal_table = "../../legal-table.toml"   # optional, for reference: the tables' seed file; at run
                                             # time servers take the tables from the network directory

Relative paths are relative to the file's directory. Every value is checked here, once.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jukinet.clients.transport import Keepalive
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NODE_KINDS, NodeId, NodeKind
from jukinet.server.runtime.peers import PeerLimits

_NEEDS_UPSTREAM = frozenset({NodeKind.CS, NodeKind.PREFECTURE})  # where their change notices go


def _bad(path: Path, why: str) -> Rejected:
    return Rejected(Problem.INVALID, f"node configuration {path}: {why}")


MAX_BATCH_READERS = 16


@dataclass(frozen=True)
class NodeConfig:
    node_ids: tuple[NodeId, ...]
    listen: str
    data_dir: Path
    map_size: int
    workers: int
    upstream: NodeId | None
    peers: dict[str, str]
    keepalive: Keepalive
    window: int
    limits: PeerLimits
    tls_cert: Path
    tls_key: Path
    token_module: Path
    token_label: str
    token_pin_file: Path
    token_key_label: str
    signing_certificate: Path
    pki_dir: Path
    softhsm_dir: Path
    session_seconds: int
    legal_table: Path | None
    pending_logins: int = 10_000
    pending_logins_per_terminal: int = 16
    refusal_interval: int = 60
    directory_refresh_s: int = 300
    directory_validity_s: int = 7 * 24 * 3600
    directory_seed: Path | None = None
    batch_readers: int = 2

    @property
    def kind(self) -> NodeKind:
        return self.node_ids[0].kind

    @property
    def node_id(self) -> NodeId:
        """The id this node acts and sends as (the first one)."""
        return self.node_ids[0]

    @property
    def name(self) -> str:
        return ",".join(str(n) for n in self.node_ids)

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise _bad(path, f"cannot read it: {exc}") from exc
        base = path.parent

        def section(name: str, required: bool = True) -> dict[str, Any]:
            value = raw.get(name, None if required else {})
            if not isinstance(value, dict):
                raise _bad(path, f"missing [{name}] section")
            return value

        def value(sec: str, key: str, kind: type, default: Any = ...) -> Any:
            found = section(sec, required=default is ...).get(key, default)
            if found is ...:
                raise _bad(path, f"[{sec}] needs '{key}'")
            if kind is int and (isinstance(found, bool) or not isinstance(found, int) or found <= 0):
                raise _bad(path, f"[{sec}] {key} must be a positive integer, got {found!r}")
            if kind is str and not isinstance(found, str):
                raise _bad(path, f"[{sec}] {key} must be a string, got {found!r}")
            return found

        def rel(text: str) -> Path:
            p = Path(text)
            return p if p.is_absolute() else base / p

        ids = value("node", "ids", list)
        if not isinstance(ids, list):
            raise _bad(path, f"[node] ids must be a list of node ids, got {ids!r}")
        try:
            node_ids = tuple(NodeId.parse(str(i)) for i in ids)
            upstream_text = section("links", required=False).get("upstream")
            upstream = NodeId.parse(upstream_text) if upstream_text else None
            peers = {str(NodeId.parse(k)): str(v) for k, v in section("peers", required=False).items()}
        except Rejected as exc:
            raise _bad(path, str(exc)) from exc
        if not node_ids or len({n.kind for n in node_ids}) != 1 or node_ids[0].kind not in NODE_KINDS:
            raise _bad(path, "[node] ids must name one or more nodes (cs, pref, national, cards or jpki) of one kind")
        kind = node_ids[0].kind
        if kind in _NEEDS_UPSTREAM and upstream is None:
            raise _bad(path, f"[links] needs 'upstream' for a {kind.value} node")
        if upstream is not None and str(upstream) not in peers:
            raise _bad(path, f"[peers] has no address for the upstream {upstream}")
        legal_table = section("national", required=False).get("legal_table")  # kept for reference only
        pending = value("operators", "pending_logins", int, cls.pending_logins)
        per_terminal = value("operators", "pending_logins_per_terminal", int, cls.pending_logins_per_terminal)
        if per_terminal >= pending:
            raise _bad(path, "[operators] pending_logins_per_terminal must be below pending_logins")
        readers = section("node").get("batch_readers", cls.batch_readers)
        if isinstance(readers, bool) or not isinstance(readers, int) or not 0 <= readers <= MAX_BATCH_READERS:
            raise _bad(path, f"[node] batch_readers must be an integer from 0 to {MAX_BATCH_READERS}, got {readers!r}")
        return cls(
            node_ids=node_ids,
            listen=value("node", "listen", str),
            data_dir=rel(value("node", "data_dir", str)),
            map_size=value("node", "map_size_mb", int, 1024) * (1 << 20),
            workers=value("node", "workers", int, 16),
            batch_readers=readers,
            upstream=upstream,
            peers=peers,
            keepalive=Keepalive(
                time_ms=value("links", "keepalive_ms", int, Keepalive.time_ms),
                timeout_ms=value("links", "keepalive_timeout_ms", int, Keepalive.timeout_ms),
            ),
            window=value("links", "window", int, 4),
            limits=PeerLimits(
                streams_per_peer=value("limits", "streams_per_peer", int, PeerLimits.streams_per_peer),
                calls_per_peer=value("limits", "calls_per_peer", int, PeerLimits.calls_per_peer),
                calls_per_second=value("limits", "calls_per_second", int, int(PeerLimits.calls_per_second)),
            ),
            tls_cert=rel(value("tls", "cert", str)),
            tls_key=rel(value("tls", "key", str)),
            token_module=Path(value("token", "module", str)),
            token_label=value("token", "label", str),
            token_pin_file=rel(value("token", "pin_file", str)),
            token_key_label=value("token", "key_label", str, "signing"),
            signing_certificate=rel(value("token", "certificate", str)),
            pki_dir=rel(value("pki", "dir", str)),
            softhsm_dir=rel(value("pki", "softhsm_dir", str)),
            session_seconds=value("operators", "session_seconds", int, 900),
            legal_table=rel(legal_table) if legal_table else None,
            pending_logins=pending,
            pending_logins_per_terminal=per_terminal,
            refusal_interval=value("audit", "refusal_interval_s", int, cls.refusal_interval),
            directory_refresh_s=value("directory", "refresh_s", int, cls.directory_refresh_s),
            directory_validity_s=value("directory", "validity_s", int, cls.directory_validity_s),
            directory_seed=rel(seed) if (seed := value("directory", "seed", str, "")) else None,
        )
