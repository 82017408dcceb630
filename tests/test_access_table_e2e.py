"""The access table of docs/SECURITY.md, walked cell by cell against a running network.

The table is parsed from the document, so the document and the code cannot drift: for every RPC, at
every tier that serves it, every kind of caller makes the call with a minimal request. An allowed
caller must not be refused for access reasons (its minimal request may be INVALID_ARGUMENT or
NOT_FOUND); a refused one must get exactly the status the table names. The table must also list exactly
the services the nodes serve, each with all the methods of its descriptor and no others.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from netutil import AGENCY, BUSINESS, bare_terminal, channel_with, terminal

import jukinet.v1
from jukinet.devnet.operators import enroll_operator, issue_card, log_in
from jukinet.domain.operators import Role
from jukinet.pki import issue_tls_certificate, revoke
from jukinet.v1 import provision_pb2, subscription_pb2

SECURITY_MD = Path(__file__).resolve().parent.parent / "docs" / "SECURITY.md"
TIER_NODES = {"CS": "cs:131148", "prefecture": "pref:13", "national": "national"}
AGENCY_WITHOUT_ROW = "6100000000001"
# "agency with a row": at each tier an agency and a business of the tables that tier provides under.
AGENCY_ROWS = {
    "national": (AGENCY, BUSINESS),
    "prefecture": ("5400000000013", "tokyo-own-use"),
    "CS": (AGENCY, BUSINESS),
}
CODES = {"UNAUTH": grpc.StatusCode.UNAUTHENTICATED, "DENIED": grpc.StatusCode.PERMISSION_DENIED}
# What an allowed caller's minimal request may get: access passed, the content did not (or it did).
NOT_ACCESS = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
REFLECTION_METHODS = [m.name for m in reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].methods]
CALLER_COLUMNS = {
    "CS node": "cs",
    "prefecture": "pref",
    "national": "national",
    "agency with a row": "agency",
    "agency without a row": "agency-without-row",
    "terminal, no session": "terminal",
    **{role.value: role.value for role in Role},
    "portal": "portal",
    "revoked certificate": "revoked",
}
PIN = "604128"


# -- the table, from the document -------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    rpc: str  # "package.Service/Method"
    tiers: tuple[str, ...]
    cells: dict[str, str]  # caller key -> "allow" | "UNAUTH" | "DENIED"

    @property
    def service(self) -> str:
        return self.rpc.split("/")[0]

    @property
    def method(self) -> str:
        return self.rpc.split("/")[1]


def access_table(text: str) -> list[Row]:
    """The rows of the table under "## Who may call what" whose first header cell is "RPC"."""
    section = text.split("## Who may call what", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    start = next(i for i, line in enumerate(lines) if line.startswith("| RPC |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    assert header[:2] == ["RPC", "served at"], header
    assert set(header[2:]) == set(CALLER_COLUMNS), f"caller columns {header[2:]}"
    rows = []
    for line in lines[start + 2 :]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == len(header), line
        rpc = cells[0].strip("`")
        tiers = tuple(t.strip() for t in cells[1].split(","))
        assert set(tiers) <= set(TIER_NODES), f"{rpc}: unknown tier in {tiers}"
        values = {CALLER_COLUMNS[h]: v for h, v in zip(header[2:], cells[2:], strict=True)}
        assert set(values.values()) <= {"allow", *CODES}, f"{rpc}: {values}"
        rows.append(Row(rpc, tiers, values))
    return rows


TABLE = access_table(SECURITY_MD.read_text(encoding="utf-8"))


def _jukinet_services() -> dict[str, list[str]]:
    """Every service of the wire contract (jukinet/v1), with its methods, from the descriptors."""
    services: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules(jukinet.v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"jukinet.v1.{info.name}")
            for service in module.DESCRIPTOR.services_by_name.values():
                services[service.full_name] = [m.name for m in service.methods]
    return services


ALL_SERVICES = {
    **_jukinet_services(),
    "grpc.health.v1.Health": [m.name for m in health_pb2.DESCRIPTOR.services_by_name["Health"].methods],
    "grpc.reflection.v1.ServerReflection": REFLECTION_METHODS,
    "grpc.reflection.v1alpha.ServerReflection": REFLECTION_METHODS,
}


def test_the_table_names_methods_of_the_service_descriptors_each_once():
    """Once per tier: an RPC whose callers differ by tier has a row per tier."""
    rpcs = [(row.rpc, tier) for row in TABLE for tier in row.tiers]
    assert len(rpcs) == len(set(rpcs))
    for row in TABLE:
        assert row.method in ALL_SERVICES.get(row.service, ()), f"{row.rpc} is not a method of the contract"


# -- callers ------------------------------------------------------------------------------------------


@dataclass
class Callers:
    """Channels of every kind of caller to each tier's node, and the operators' sessions there."""

    channels: dict[tuple[str, str], grpc.Channel]  # (tier, caller key) -> channel
    sessions: dict[tuple[str, str], bytes]  # (tier, role) -> serialized session

    def call(self, tier: str, who: str, row: Row) -> grpc.StatusCode:
        channel = self.channels[tier, "terminal" if who in Role._value2member_map_ else who]
        session = self.sessions.get((tier, who))
        metadata = (("jukinet-session-bin", session),) if session else None
        return _call(channel, row, metadata, AGENCY_ROWS[tier][1])

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()


def _minimal_request(row: Row, business: str = BUSINESS):
    """The smallest request of the RPC's input type (None for a request stream: it sends nothing)."""
    if row.service.startswith("grpc.reflection."):
        return None
    if row.rpc == "grpc.health.v1.Health/List":
        return health_pb2.HealthListRequest()  # not served; the probe of what is served calls it
    if row.service == "grpc.health.v1.Health":
        return health_pb2.HealthCheckRequest()
    if row.rpc == "jukinet.v1.IdentityProvisionService/LookupByResidentCode":
        return provision_pb2.LookupByResidentCodeRequest(business_code=business)
    if row.rpc == "jukinet.v1.IdentityProvisionService/LookupByMyNumber":
        return provision_pb2.LookupByMyNumberRequest(business_code=business)
    if row.rpc == _BATCH:  # one chunk naming the business: its row is checked at the first chunk
        return provision_pb2.BatchLookupRequest(business_code=business)
    if row.rpc == "jukinet.v1.FourItemSearchService/SearchByFourItems":
        return provision_pb2.SearchByFourItemsRequest(business_code=business)
    if row.rpc == "jukinet.v1.IdentityProvisionService/LookupByAgencyIdentifier":
        return provision_pb2.LookupByAgencyIdentifierRequest(business_code=business)
    if row.rpc == "jukinet.v1.SubscriptionService/Subscribe":
        return subscription_pb2.SubscribeRequest(business_code=business)
    for info in pkgutil.iter_modules(jukinet.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"jukinet.v1.{info.name}")
        service = module.DESCRIPTOR.services_by_name.get(row.service.rsplit(".", 1)[1])
        if service is not None and service.full_name == row.service:
            method = service.methods_by_name[row.method]
            if method.client_streaming:
                return None
            return getattr(module, method.input_type.name)()
    raise AssertionError(f"no descriptor for {row.rpc}")


_BIDIRECTIONAL = (
    "jukinet.v1.LinkService/Deliver",
    "jukinet.v1.ResidentRegistryService/RegisterResidents",
    "jukinet.v1.SubscriptionService/Receive",
)
_BATCH = "jukinet.v1.BatchLookupService/BatchLookup"


def _call(channel: grpc.Channel, row: Row, metadata, business: str = BUSINESS) -> grpc.StatusCode:
    """Make the call; the status it ends with (a server stream: once its first message has arrived)."""
    request = _minimal_request(row, business)
    path = f"/{row.rpc}"
    encode, decode = (lambda m: m.SerializeToString()), (lambda b: b)
    try:
        if request is None:  # request streams: no message at all
            if row.service.startswith("grpc.reflection.") or row.rpc in _BIDIRECTIONAL:
                list(channel.stream_stream(path, encode, decode)(iter(()), timeout=10, metadata=metadata))
            else:
                channel.stream_unary(path, encode, decode)(iter(()), timeout=10, metadata=metadata)
        elif row.rpc == _BATCH:
            list(channel.stream_stream(path, encode, decode)(iter([request]), timeout=10, metadata=metadata))
        elif row.rpc == "grpc.health.v1.Health/Watch":
            stream = channel.unary_stream(path, encode, decode)(request, timeout=10, metadata=metadata)
            next(stream)
            stream.cancel()
        else:
            channel.unary_unary(path, encode, decode)(request, timeout=10, metadata=metadata)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def callers(network, worker, tmp_path_factory) -> Iterator[Callers]:
    net = network.network
    pki = net.pki_dir
    base = tmp_path_factory.mktemp("access")
    rng = np.random.default_rng(77)
    no_row = issue_tls_certificate(pki, "agency", [f"agency:{AGENCY_WITHOUT_ROW}"], base / "agency-without-row")
    nodes = {"cs": "cs:131016", "pref": "pref:13", "national": "national"}  # their own node certificates
    credentials = {who: (net.node_dir(net.topology.node(n)) / "tls.pem",) for who, n in nodes.items()}
    credentials = {who: (pem, pem.with_suffix(".key")) for who, (pem,) in credentials.items()}
    credentials["agency"] = (net.agency(AGENCY).cert, net.agency(AGENCY).key)
    credentials["agency-without-row"] = no_row
    credentials["portal"] = (net.portal().cert, net.portal().key)
    channels, sessions = {}, {}
    for tier, node in TIER_NODES.items():
        site = net.topology.node(node).site
        revoked = issue_tls_certificate(pki, "operator", [f"terminal:{site}:revoked"], base / f"revoked-{site}")
        revoke(pki, "operator", x509.load_pem_x509_certificate(revoked[0].read_bytes()).serial_number)
        at_tier = {
            **credentials,
            "terminal": (net.terminal(site).cert, net.terminal(site).key),
            "revoked": revoked,
            "agency": (net.agency(AGENCY_ROWS[tier][0]).cert, net.agency(AGENCY_ROWS[tier][0]).key),
        }
        for who, (cert, key) in at_tier.items():
            assert key.exists(), key
            channels[tier, who] = channel_with(network, node, cert, key)
        for role in Role:  # an operator with exactly this one role, logged in at the site's terminal
            kit = issue_card(worker, net, f"operator:{site}:only-{role.value}", PIN, rng)
            enroll_operator(worker, terminal(network, node), kit, [role.value], rng)
            desk = bare_terminal(network, node)
            claims = log_in(worker, desk, kit, rng=rng, attempts=3)
            assert list(claims.roles) == [role.value]
            sessions[tier, role.value] = desk.session.SerializeToString()
    made = Callers(channels, sessions)
    yield made
    made.close()


# -- the walk -----------------------------------------------------------------------------------------


def test_the_table_lists_exactly_the_rpcs_each_tier_serves(callers):
    """Every method of every service descriptor (the wire contract, health, reflection) is called at
    each tier: an RPC a node does not serve answers UNIMPLEMENTED before any check; any other answer
    means it is served, and then the table must list it at that tier (and the other way round)."""
    for tier in TIER_NODES:
        listed = {row.rpc for row in TABLE if tier in row.tiers}
        served = set()
        for service, methods in ALL_SERVICES.items():
            for method in methods:
                probe = Row(f"{service}/{method}", (tier,), {})
                if _call(callers.channels[tier, "terminal"], probe, None) != grpc.StatusCode.UNIMPLEMENTED:
                    served.add(probe.rpc)
        assert served == listed, f"{tier}: not in the table {served - listed}; not served {listed - served}"


def test_every_cell_of_the_access_table(callers):
    """Logout last: it ends the session it is called with."""
    order = sorted(TABLE, key=lambda row: row.rpc == "jukinet.v1.OperatorAuthService/Logout")
    wrong = []
    walked = 0
    for row in order:
        for tier in row.tiers:
            for who, expected in row.cells.items():
                got = callers.call(tier, who, row)
                walked += 1
                if expected == "allow" and got not in NOT_ACCESS:
                    wrong.append(f"{row.rpc} at {tier} as {who}: expected allow, got {got.name}")
                elif expected != "allow" and got != CODES[expected]:
                    wrong.append(f"{row.rpc} at {tier} as {who}: expected {CODES[expected].name}, got {got.name}")
    assert not wrong, f"{len(wrong)} of {walked} cells differ:\n" + "\n".join(wrong)
    assert walked == sum(len(row.tiers) * len(CALLER_COLUMNS) for row in TABLE)


def test_a_ca_vouches_only_for_its_own_kinds_at_the_gate(network, tmp_path):
    """A certificate of the agency CA naming a CS is not that CS (only the node CA vouches for nodes):
    refused at the gate, where the CS itself would be let in."""
    cert, key = issue_tls_certificate(network.network.pki_dir, "agency", ["cs:131016"], tmp_path)
    row = Row("jukinet.v1.LinkService/Deliver", ("prefecture",), {})
    with channel_with(network, TIER_NODES["prefecture"], cert, key) as channel:
        assert _call(channel, row, None) == grpc.StatusCode.UNAUTHENTICATED


def test_table_parser_rejects_a_cell_it_does_not_know():
    broken = SECURITY_MD.read_text(encoding="utf-8").replace("| allow |", "| maybe |", 1)
    with pytest.raises(AssertionError, match="maybe"):
        access_table(broken)
    assert re.search(r"\| `grpc\.health\.v1\.Health/Check` \|", SECURITY_MD.read_text(encoding="utf-8"))
