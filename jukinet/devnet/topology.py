"""A network topology: which nodes run, where they listen, and which agencies and terminals exist.

Topology files are TOML::

    [national]
    listen = "127.0.0.1:50051"

    [[prefecture]]                 # one process; it may host several prefectures (a consolidated centre)
    codes = ["13"]
    listen = "127.0.0.1:50061"

    [[cs]]                         # its upstream is the prefecture server hosting its prefecture
    municipality = "131148"
    listen = "127.0.0.1:50071"

    [[agency]]
    corporate_number = "7123456789012"
    name = "日本年金機構 (demo identity)"

    [cards]                        # optional: the card-management service (card states)
    listen = "127.0.0.1:50041"

    [jpki]                         # optional: the JPKI service (revokes in the card CA)
    listen = "127.0.0.1:50042"

    legal_table = "legal-table.toml"   # top-level key; relative to this file; default: the bundled one

    [tuning]                       # optional; written into every node's configuration
    keepalive_ms = 20000
    streams_per_peer = 8
"""

from __future__ import annotations

import dataclasses
import socket
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from jukinet.domain.codes import corporate_number_problem
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId


def _bad(message: str) -> Rejected:
    return Rejected(Problem.INVALID, message)


@dataclass(frozen=True)
class Tuning:
    """Settings every node of the network gets (tests shorten timers with them)."""

    keepalive_ms: int = 20_000
    keepalive_timeout_ms: int = 10_000
    streams_per_peer: int = 8
    calls_per_peer: int = 32
    calls_per_second: int = 1000
    window: int = 4
    directory_refresh_s: int = 300  # nodes fetch the network directory this often
    directory_validity_s: int = 7 * 24 * 3600  # a published directory is valid this long


@dataclass(frozen=True)
class NodeSpec:
    node_ids: tuple[NodeId, ...]
    listen: str

    @property
    def name(self) -> str:
        """Directory-safe name, e.g. "cs-131148", "pref-13", "national"; a consolidated centre is named
        after its first prefecture ("pref-13-centre"), short enough for a token label however many it hosts."""
        first = str(self.node_ids[0]).replace(":", "-")
        return f"{first}-centre" if len(self.node_ids) > 1 else first

    @property
    def ids(self) -> list[str]:
        """The node ids as strings (the certificate's SAN identities)."""
        return [str(n) for n in self.node_ids]

    @property
    def site(self) -> str:
        return self.node_ids[0].site_code

    @property
    def node_id(self) -> NodeId:
        """The id the node acts as (the first)."""
        return self.node_ids[0]


@dataclass(frozen=True)
class AgencySpec:
    corporate_number: str
    name: str

    @property
    def node_id(self) -> NodeId:
        return NodeId.agency(self.corporate_number)


@dataclass(frozen=True)
class Topology:
    national: NodeSpec
    prefectures: tuple[NodeSpec, ...]
    municipalities: tuple[NodeSpec, ...]
    agencies: tuple[AgencySpec, ...]
    legal_table_text: str = field(repr=False)
    tuning: Tuning = Tuning()
    services: tuple[NodeSpec, ...] = ()  # the card-management and JPKI services, when the network has them

    def tuned(self, **settings: int) -> Topology:
        """The same network with other :class:`Tuning` settings."""
        return dataclasses.replace(self, tuning=dataclasses.replace(self.tuning, **settings))

    @property
    def nodes(self) -> tuple[NodeSpec, ...]:
        """Every node, upstream first (the order to start them in): the card services after the national
        server, whose directory they fetch (it forwards card events to them over its links, which wait)."""
        return (self.national, *self.services, *self.prefectures, *self.municipalities)

    def with_card_services(self) -> Topology:
        """The same network with the card-management and JPKI services (on free ports)."""
        if self.services:
            return self
        ports = pick_free_ports(2)
        services = (
            NodeSpec((NodeId.card_management(),), f"127.0.0.1:{ports[0]}"),
            NodeSpec((NodeId.jpki(),), f"127.0.0.1:{ports[1]}"),
        )
        return dataclasses.replace(self, services=services)

    def upstream_of(self, spec: NodeSpec) -> NodeSpec | None:
        first = spec.node_ids[0]
        if spec is self.national or spec in self.services:
            return None
        if spec in self.prefectures:
            return self.national
        for pref in self.prefectures:
            if any(p.code == first.code[:2] for p in pref.node_ids):
                return pref
        raise _bad(f"no prefecture server hosts prefecture {first.code[:2]} for {first}")

    def upstream_id(self, spec: NodeSpec) -> NodeId | None:
        """Where ``spec`` sends its change notices: a CS its own prefecture, a prefecture the national server."""
        upstream = self.upstream_of(spec)
        if upstream is None:
            return None
        if upstream is self.national:
            return NodeId.national()
        return NodeId.prefecture(spec.node_id.prefecture_code)

    def addresses(self) -> dict[str, str]:
        """Every node id of the network and the address it listens on."""
        return {str(n): spec.listen for spec in self.nodes for n in spec.node_ids}

    def node(self, node_id: str) -> NodeSpec:
        for spec in self.nodes:
            if any(str(n) == node_id for n in spec.node_ids):
                return spec
        raise _bad(f"no node {node_id} in the topology")

    def to_toml(self, legal_table: str = "legal-table.toml") -> str:
        """The topology as a file that :meth:`load` reads back (the legal table as a separate file)."""

        def quoted(items: list[str]) -> str:
            return ", ".join(f'"{i}"' for i in items)

        lines = ["[national]", f'listen = "{self.national.listen}"', ""]
        for pref in self.prefectures:
            codes = [n.code for n in pref.node_ids]
            lines += ["[[prefecture]]", f"codes = [{quoted(codes)}]", f'listen = "{pref.listen}"', ""]
        for cs in self.municipalities:
            lines += ["[[cs]]", f'municipality = "{cs.node_ids[0].code}"', f'listen = "{cs.listen}"', ""]
        for agency in self.agencies:
            lines += ["[[agency]]", f'corporate_number = "{agency.corporate_number}"', f'name = "{agency.name}"', ""]
        for service in self.services:
            lines += [f"[{service.node_id}]", f'listen = "{service.listen}"', ""]
        tuning = ["[tuning]", *(f"{k} = {v}" for k, v in dataclasses.asdict(self.tuning).items()), ""]
        return f'legal_table = "{legal_table}"\n\n' + "\n".join(lines + tuning)

    @classmethod
    def parse(cls, text: str, base: Path | None = None) -> Topology:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _bad(f"topology is not valid TOML: {exc}") from exc
        try:
            national = NodeSpec((NodeId.national(),), str(raw["national"]["listen"]))
            prefectures = tuple(
                NodeSpec(tuple(NodeId.prefecture(str(c)) for c in p["codes"]), str(p["listen"]))
                for p in raw.get("prefecture", [])
            )
            municipalities = tuple(
                NodeSpec((NodeId.cs(str(c["municipality"])),), str(c["listen"])) for c in raw.get("cs", [])
            )
            agencies = tuple(AgencySpec(str(a["corporate_number"]), str(a["name"])) for a in raw.get("agency", []))
            tuning = Tuning(**{k: int(v) for k, v in raw.get("tuning", {}).items()})
            services = tuple(
                NodeSpec((NodeId.parse(name),), str(raw[name]["listen"])) for name in ("cards", "jpki") if name in raw
            )
        except KeyError as exc:
            raise _bad(f"topology entry is missing {exc}") from exc
        except (TypeError, ValueError, Rejected) as exc:
            raise _bad(f"topology: {exc}") from exc
        for agency in agencies:
            problem = corporate_number_problem(agency.corporate_number)
            if problem:
                raise _bad(f"topology agency: {problem}")
        if "legal_table" in raw:
            path = Path(raw["legal_table"])
            if not path.is_absolute() and base is not None:
                path = base / path
            legal = path.read_text(encoding="utf-8")
        else:
            legal = resources.files("jukinet.devnet").joinpath("default-legal-table.toml").read_text("utf-8")
        topo = cls(national, prefectures, municipalities, agencies, legal, tuning, services)
        for spec in municipalities:
            topo.upstream_of(spec)
        listens = [n.listen for n in topo.nodes]
        if len(set(listens)) != len(listens):
            raise _bad("two nodes listen on the same address")
        return topo

    @classmethod
    def load(cls, path: Path) -> Topology:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise _bad(f"cannot read topology {path}: {exc}") from exc
        return cls.parse(text, path.parent)

    @classmethod
    def default(cls, free_ports: bool = False, bundled: str = "default") -> Topology:
        """A bundled network: ``default`` (national, 東京都, two CS nodes; what tests start) or ``demo`` (two
        prefectures in one centre, three CS nodes, the card services: what ``jukinet demo`` shows); with
        ``free_ports``, on ports free right now (tests, benchmarks)."""
        text = resources.files("jukinet.devnet").joinpath(f"{bundled}-topology.toml").read_text("utf-8")
        topo = cls.parse(text)
        if not free_ports:
            return topo
        ports = iter(pick_free_ports(len(topo.nodes)))

        def moved(spec: NodeSpec) -> NodeSpec:
            return NodeSpec(spec.node_ids, f"127.0.0.1:{next(ports)}")

        return dataclasses.replace(
            topo,
            national=moved(topo.national),
            prefectures=tuple(moved(p) for p in topo.prefectures),
            municipalities=tuple(moved(c) for c in topo.municipalities),
            services=tuple(moved(s) for s in topo.services),
        )


def pick_free_ports(count: int) -> list[int]:
    """Ports the kernel says are free now (bound together so they are distinct, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
