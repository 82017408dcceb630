"""Every RPC family against a running network (real processes, mTLS, SoftHSM, LMDB): generated malformed,
boundary and oversized requests, wrong enums, bad codes, hostile text and bytes that are not even
protobuf (invalid UTF-8, such as an encoded lone surrogate, in string fields).

Properties, for each request: the answer comes before its gRPC deadline with a status that is neither
INTERNAL nor UNKNOWN (and OK only where the request changes nothing), a refusal has a message, the
node's counts (records, history, provisions, queued notices) are unchanged, and the node goes on
answering. Generated operator ids never name an enrolled operator, so no example can lock or log out the
administrators the other tests share.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from hostile_input import (
    _varint,
    bad_my_number,
    bad_resident_code,
    broken_record,
    valid_record,
    with_hostile_char,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from netutil import AGENCY, BUSINESS, channel_with, simulated, terminal
from propcount import ran

from jukinet.clients.transport import SESSION_METADATA_KEY
from jukinet.devnet.supervisor import RunningNetwork
from jukinet.domain.limits import request_limit
from jukinet.pki import issue_tls_certificate
from jukinet.v1 import (
    admin_pb2,
    audit_pb2,
    envelope_pb2,
    link_pb2,
    operator_pb2,
    provision_pb2,
    registry_pb2,
)

DEADLINE = 10.0
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
CS = "cs:131148"

REGISTRY = "/jukinet.v1.ResidentRegistryService/"
AUTH = "/jukinet.v1.OperatorAuthService/"
OPERATORS = "/jukinet.v1.OperatorAdminService/"
ADMIN = "/jukinet.v1.NodeAdminService/"
AUDIT = "/jukinet.v1.AuditService/"
GET_DIRECTORY = "/jukinet.v1.DirectoryService/GetDirectory"
PROVISION = "/jukinet.v1.IdentityProvisionService/"
DELIVER = "/jukinet.v1.LinkService/Deliver"
COPIES = "/jukinet.v1.CertifiedCopyService/"
EXCHANGE = "/jukinet.v1.CopyExchangeService/"
DV = "/jukinet.v1.DvMeasureService/"
STREAMING = {REGISTRY + "RegisterResidents": "stream_unary", DELIVER: "stream_stream"}
# Requests that change nothing, so OK is a fine answer to junk that happens to parse.
READ_ONLY = {OPERATORS + "ListLoginAttempts", ADMIN + "GetStatus",
             ADMIN + "ListProvisions", ADMIN + "ListQuarantine", REGISTRY + "GetResident",
             AUDIT + "GetSignedTreeHead", AUDIT + "GetInclusionProof", AUDIT + "GetConsistencyProof",
             AUDIT + "GetEntries", ADMIN + "RetryQuarantined", ADMIN + "DropQuarantined",
             GET_DIRECTORY, COPIES + "ListCopyIssuances", DV + "ListDvMeasures"}  # fmt: skip


@dataclass
class Caller:
    """A raw channel to one node as one identity, with an operator session or none."""

    channel: grpc.Channel
    session: bytes | None = None

    def call(self, method: str, payload: bytes) -> tuple[grpc.StatusCode, str]:
        metadata = ((SESSION_METADATA_KEY, self.session),) if self.session else None
        kind = STREAMING.get(method, "unary_unary")
        rpc = getattr(self.channel, kind)(method)
        try:
            if kind == "unary_unary":
                rpc(payload, timeout=DEADLINE, metadata=metadata)
            elif kind == "stream_unary":
                rpc(iter([payload]), timeout=DEADLINE, metadata=metadata)
            else:
                for _ in rpc(iter([payload]), timeout=DEADLINE, metadata=metadata):
                    pass
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
        return grpc.StatusCode.OK, ""


@dataclass
class Site:
    network: RunningNetwork
    admin: Caller  # the CS site terminal with its administrator's session (all roles)
    stranger: Caller  # another terminal of the CS site, no session
    national_admin: Caller
    agency: Caller  # an agency with rows in the legal table, at the national server
    cs_node: Caller  # a node identity of prefecture 13 that is not running, at pref:13
    operators: frozenset[str]  # every enrolled operator id (never generated)
    cs_peer: Caller | None = None  # that node identity at the CS (another CS: 広域交付)

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # hypothesis prints this, not the whole network
        printer.text("Site(the shared network)")

    def counts(self, node: str) -> tuple[int, int, int, int]:
        s = terminal(self.network, node).status()
        return s.records, s.history_entries, s.provisions, s.queued

    def check(self, node: str, caller: Caller, method: str, payload: bytes, allow_ok: bool = False) -> str:
        """Call, and check the properties; returns the refusal's message."""
        before = self.counts(node)
        code, details = caller.call(method, payload)
        assert code not in NEVER, (method, code, details)
        if code is grpc.StatusCode.OK:
            assert allow_ok or method in READ_ONLY, f"{method} accepted a request it had to refuse"
        else:
            assert details.strip(), (method, code)
        assert self.counts(node) == before, (method, code, details)
        return details


@pytest.fixture(scope="module")
def site(network: RunningNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    net = network.network
    base = tmp_path_factory.mktemp("prop-rpc")

    def session_caller(node: str) -> Caller:
        creds = net.terminal(net.topology.node(node).site)
        client = terminal(network, node)
        return Caller(channel_with(network, node, creds.cert, creds.key), client.session.SerializeToString())

    cert, key = issue_tls_certificate(net.pki_dir, "operator", ["terminal:131148:props"], base)
    agency_creds = net.agency(AGENCY)
    sim = simulated(network, ["cs:131130"], base / "cs-131130")
    operators = frozenset(f"operator:{spec.site}:admin" for spec in net.topology.nodes)
    channels = []
    s = Site(
        network,
        admin=session_caller(CS),
        stranger=Caller(channel_with(network, CS, cert, key)),
        national_admin=session_caller("national"),
        agency=Caller(channel_with(network, "national", agency_creds.cert, agency_creds.key)),
        cs_node=Caller(sim.channel(net.topology.node("pref:13").listen, "pref:13")),
        operators=operators,
        cs_peer=Caller(sim.channel(net.topology.node(CS).listen, CS)),
    )
    channels = [s.admin, s.stranger, s.national_admin, s.agency, s.cs_node, s.cs_peer]
    # Start from a quiet network: no notices of earlier tests still travelling.
    deadline = time.monotonic() + 60
    while any(s.counts(str(n.node_id))[3] for n in net.topology.nodes):
        assert time.monotonic() < deadline, "the network's links did not become idle"
        time.sleep(0.1)
    yield s
    for c in channels:
        c.channel.close()


def operator_ids(site: Site) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=60),
        st.builds(lambda t: "operator:131148:" + t, st.text(max_size=20)),
        with_hostile_char("operator:131148:admin"),
        st.integers(2_000, 70_000).map(lambda n: "o" * n),
    ).filter(lambda i: i not in site.operators)


def invalid_utf8(message: bytes, marker: bytes) -> st.SearchStrategy[bytes]:
    """``message`` with the bytes of ``marker`` (a string field's value) replaced by ones of the same
    length that are not UTF-8: an encoded lone surrogate, a stray continuation byte, an overlong NUL."""
    bad = st.sampled_from([b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\x80", b"\xc0\x80", b"\xff", b"\xf4\x90\x80\x80"])
    return bad.map(lambda b: message.replace(marker, (b + marker)[: len(marker)], 1))


# -- resident registry ----------------------------------------------------------------------------------


@given(case=broken_record("131148"))
def test_record_change_refuses_a_faulty_record(site: Site, case) -> None:
    ran("resident registry")
    field, record = case
    payload = registry_pb2.RecordChangeRequest(record=record).SerializeToString()
    details = site.check(CS, site.admin, REGISTRY + "RecordChange", payload)
    if len(payload) <= request_limit(REGISTRY + "RecordChange") and field not in ("date", "record"):
        assert field.split(".")[-1] in details, (field, details)


@given(record=valid_record("131016"))
def test_record_change_refuses_another_municipalitys_resident(site: Site, record) -> None:
    ran("resident registry")
    details = site.check(
        CS, site.admin, REGISTRY + "RecordChange", registry_pb2.RecordChangeRequest(record=record).SerializeToString()
    )
    assert "131016" in details


@given(data=st.data(), good=st.lists(valid_record("131148"), max_size=6), at=st.integers(0, 6))
def test_register_residents_refuses_exactly_the_faulty_row(site: Site, data, good, at: int) -> None:
    """Rows are decided one by one: the faulty row is refused by its fields, the others are stored (or
    found already stored, or refused by the change rules), and nothing else is written."""
    ran("resident registry")
    _, bad = data.draw(broken_record("131148"))
    at = min(at, len(good))
    records = [*good[:at], bad, *good[at:]]
    payload = registry_pb2.RegisterResidentsRequest(records=records).SerializeToString()
    before = site.counts(CS)
    register = site.admin.channel.stream_stream(
        REGISTRY + "RegisterResidents", response_deserializer=registry_pb2.RegisterResidentsResponse.FromString
    )
    metadata = ((SESSION_METADATA_KEY, site.admin.session),)
    try:
        [answer] = list(register(iter([payload]), timeout=DEADLINE, metadata=metadata))
    except grpc.RpcError as exc:  # the whole chunk refused (too large for its RPC): nothing stored
        assert exc.code() not in NEVER and exc.details().strip(), (exc.code(), exc.details())
        assert site.counts(CS) == before
        return
    refused = {row.index: row for row in answer.refused_rows}
    assert at in refused and all(p.message for p in refused[at].problems), answer
    assert answer.stored + answer.already_stored + len(refused) == len(records), answer
    records_now, history_now, provisions_now, _ = site.counts(CS)
    assert (records_now, history_now, provisions_now) == (
        before[0] + answer.stored,
        before[1] + answer.stored,
        before[2],
    ), answer


@given(record=valid_record("131148"), data=st.data())
def test_strings_that_are_not_utf8_are_invalid_argument(site: Site, record, data) -> None:
    ran("resident registry")
    record.name.kanji = "山田ＸＸＸＸＸ"
    marker = "ＸＸＸＸＸ".encode()
    payload = data.draw(invalid_utf8(registry_pb2.RecordChangeRequest(record=record).SerializeToString(), marker))
    code, _ = site.admin.call(REGISTRY + "RecordChange", payload)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    site.check(CS, site.admin, REGISTRY + "RecordChange", payload)


@given(code=st.one_of(bad_resident_code, st.text(max_size=40)))
def test_get_resident_with_a_bad_or_unknown_code(site: Site, code: str) -> None:
    ran("resident registry")
    payload = registry_pb2.GetResidentRequest(resident_code=code).SerializeToString()
    code_, details = site.admin.call(REGISTRY + "GetResident", payload)
    assert code_ in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}, (code_, details)
    site.check(CS, site.admin, REGISTRY + "GetResident", payload)


# -- operator authentication and administration ----------------------------------------------------------


def samples() -> st.SearchStrategy[operator_pb2.BiometricSample]:
    floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
    return st.builds(lambda f: operator_pb2.BiometricSample(features=f), st.lists(floats, max_size=300))


@given(data=st.data())
def test_begin_and_complete_login_with_junk(site: Site, data) -> None:
    ran("operator auth")
    operator_id = data.draw(operator_ids(site))
    payload = operator_pb2.BeginLoginRequest(operator_id=operator_id).SerializeToString()
    site.check(CS, site.stranger, AUTH + "BeginLogin", payload)
    complete = operator_pb2.CompleteLoginRequest(
        challenge_id=data.draw(st.binary(max_size=64)),
        operator_id=operator_id[:100],
        card_certificate=data.draw(st.binary(max_size=600)),
        signature=data.draw(st.binary(max_size=100)),
        sample=data.draw(samples()),
    ).SerializeToString()
    site.check(CS, site.stranger, AUTH + "CompleteLogin", complete)
    site.check(CS, site.stranger, AUTH + "Logout", operator_pb2.LogoutRequest().SerializeToString())


@given(data=st.data())
def test_operator_administration_with_junk(site: Site, data) -> None:
    ran("operator administration")
    operator_id = data.draw(operator_ids(site))
    enroll = operator_pb2.EnrollOperatorRequest(
        operator_id=operator_id,
        card_certificate=data.draw(st.binary(max_size=600)),  # never a certificate of the operator CA
        roles=data.draw(
            st.lists(st.one_of(st.text(max_size=30), st.sampled_from(["register-residents", "root"])), max_size=5)
        ),
        template=data.draw(samples()),
    ).SerializeToString()
    site.check(CS, site.admin, OPERATORS + "EnrollOperator", enroll)
    for method, message in (
        ("GetOperator", operator_pb2.GetOperatorRequest),
        ("ListLoginAttempts", operator_pb2.ListLoginAttemptsRequest),
        ("UnlockOperator", operator_pb2.UnlockOperatorRequest),
        ("RevokeSessions", operator_pb2.RevokeSessionsRequest),
    ):
        payload = message(operator_id=operator_id).SerializeToString()
        site.check(CS, site.admin, OPERATORS + method, payload, allow_ok=False)
        site.check(CS, site.stranger, OPERATORS + method, payload)  # no session at all


# -- node administration and audit -----------------------------------------------------------------------


uint64 = st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1))


@given(
    after=uint64,
    limit=st.integers(0, 2**32 - 1),
    destination=st.text(max_size=40),
    positions=st.lists(uint64, max_size=5),
)
def test_node_administration_with_boundary_values(
    site: Site, after: int, limit: int, destination: str, positions
) -> None:
    ran("node admin")
    for node, caller in ((CS, site.admin), ("national", site.national_admin)):
        site.check(
            node, caller, ADMIN + "GetStatus", admin_pb2.GetStatusRequest(inbound=bool(limit % 2)).SerializeToString()
        )
        site.check(
            node,
            caller,
            ADMIN + "ListProvisions",
            admin_pb2.ListProvisionsRequest(after_id=after, limit=limit).SerializeToString(),
        )
        site.check(
            node,
            caller,
            ADMIN + "ListQuarantine",
            admin_pb2.ListQuarantineRequest(destination=destination).SerializeToString(),
        )
        retry = admin_pb2.RetryQuarantinedRequest(destination=destination, positions=positions)
        drop = admin_pb2.DropQuarantinedRequest(destination=destination, positions=positions)
        site.check(node, caller, ADMIN + "RetryQuarantined", retry.SerializeToString())
        site.check(node, caller, ADMIN + "DropQuarantined", drop.SerializeToString())
    site.check(CS, site.stranger, ADMIN + "ListProvisions", admin_pb2.ListProvisionsRequest().SerializeToString())


@given(a=uint64, b=uint64)
def test_audit_reads_with_boundary_values(site: Site, a: int, b: int) -> None:
    ran("audit")
    for payload, method in (
        (audit_pb2.GetInclusionProofRequest(leaf_index=a, tree_size=b), "GetInclusionProof"),
        (audit_pb2.GetConsistencyProofRequest(first_tree_size=a, second_tree_size=b), "GetConsistencyProof"),
        (audit_pb2.GetEntriesRequest(start=a, end=b), "GetEntries"),
    ):
        site.check(CS, site.stranger, AUDIT + method, payload.SerializeToString())


# -- national provision ----------------------------------------------------------------------------------


@given(
    business=st.one_of(st.just(BUSINESS), st.text(max_size=40), with_hostile_char(BUSINESS)),
    resident_code=st.one_of(bad_resident_code, st.text(max_size=20)),
    my_number=bad_my_number,
)
def test_lookups_with_bad_codes_provide_nothing(site: Site, business: str, resident_code: str, my_number: str) -> None:
    ran("national provision")
    by_code = provision_pb2.LookupByResidentCodeRequest(business_code=business, resident_code=resident_code)
    by_number = provision_pb2.LookupByMyNumberRequest(business_code=business, my_number=my_number)
    site.check("national", site.agency, PROVISION + "LookupByResidentCode", by_code.SerializeToString())
    site.check("national", site.agency, PROVISION + "LookupByMyNumber", by_number.SerializeToString())


# -- link Deliver on the wire --------------------------------------------------------------------------------


@given(data=st.data())
def test_deliver_refuses_malformed_batches_on_the_wire(site: Site, data) -> None:
    ran("link Deliver (wire)")
    kind = data.draw(st.sampled_from(["junk", "unsigned", "empty-batch", "foreign-type", "oversized"]))
    if kind == "junk":
        payload = data.draw(st.binary(min_size=1, max_size=400))
    elif kind == "unsigned":
        batch = link_pb2.LinkBatch(sender="cs:131130", destination="pref:13", first_sequence=1, last_sequence=1)
        envelope = envelope_pb2.Signed(payload_type="jukinet.v1.LinkBatch", payload=batch.SerializeToString())
        payload = link_pb2.DeliverRequest(batch=envelope).SerializeToString()
    elif kind == "empty-batch":
        payload = link_pb2.DeliverRequest().SerializeToString()
    elif kind == "foreign-type":
        envelope = envelope_pb2.Signed(
            payload_type=data.draw(st.text(max_size=50)), payload=data.draw(st.binary(max_size=100))
        )
        payload = link_pb2.DeliverRequest(batch=envelope).SerializeToString()
    else:
        size = request_limit(DELIVER) + data.draw(st.integers(1, 4096))
        payload = b"\x0a" + _varint(size) + b"\x00" * size
    site.check("pref:13", site.cs_node, DELIVER, payload)
    # A terminal is no node: Deliver is not its to call.
    code, _ = site.stranger.call(DELIVER, link_pb2.DeliverRequest().SerializeToString())
    assert code in {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED}


# -- any RPC, bytes that may not be protobuf at all ----------------------------------------------------------


EVERY_RPC = [
    (CS, "admin", REGISTRY + "RecordChange"), (CS, "admin", REGISTRY + "RegisterResidents"),
    (CS, "admin", REGISTRY + "GetResident"), (CS, "stranger", AUTH + "BeginLogin"),
    (CS, "stranger", AUTH + "CompleteLogin"), (CS, "stranger", AUTH + "Logout"),
    (CS, "admin", OPERATORS + "EnrollOperator"), (CS, "admin", OPERATORS + "UnlockOperator"),
    (CS, "admin", OPERATORS + "GetOperator"), (CS, "stranger", OPERATORS + "RevokeSessions"),
    (CS, "admin", OPERATORS + "ListLoginAttempts"),
    (CS, "admin", ADMIN + "GetStatus"), (CS, "admin", ADMIN + "ListProvisions"),
    (CS, "admin", ADMIN + "ListQuarantine"), (CS, "admin", ADMIN + "RetryQuarantined"),
    (CS, "admin", ADMIN + "DropQuarantined"), (CS, "stranger", AUDIT + "GetSignedTreeHead"),
    (CS, "stranger", AUDIT + "GetInclusionProof"), (CS, "stranger", AUDIT + "GetConsistencyProof"),
    (CS, "stranger", AUDIT + "GetEntries"), ("national", "agency", PROVISION + "LookupByResidentCode"),
    ("national", "agency", PROVISION + "LookupByMyNumber"), ("pref:13", "cs_node", DELIVER),
    (CS, "admin", GET_DIRECTORY), (CS, "admin", COPIES + "RequestCopy"), (CS, "admin", COPIES + "ListCopyIssuances"),
    (CS, "cs_peer", EXCHANGE + "IssueCopy"), (CS, "admin", DV + "RegisterDvMeasure"),
    (CS, "admin", DV + "ListDvMeasures"), (CS, "admin", DV + "RemoveDvMeasure"),
]  # fmt: skip


# Junk may parse to a request that asks for nothing: an empty chunk of residents registers none (OK).
ACCEPTS_EMPTY = {REGISTRY + "RegisterResidents"}


@pytest.mark.parametrize("target", EVERY_RPC, ids=[m.rsplit("/", 1)[1] for _, _, m in EVERY_RPC])
@settings(max_examples=max(5, settings.default.max_examples // 4))  # per RPC: 5 in CI, 100 in the long run
@given(data=st.data())
def test_any_bytes_to_any_rpc(site: Site, target, data) -> None:
    node, who, method = target
    ran("raw bytes (every RPC)")
    payload = data.draw(
        st.one_of(
            st.binary(max_size=300),
            st.integers(1, 4096).map(
                lambda n: b"\x0a" + _varint(request_limit(method) + n) + b"\x00" * (request_limit(method) + n)
            ),
        )
    )
    if method in READ_ONLY:
        site.check(node, getattr(site, who), method, payload, allow_ok=True)
    else:
        code, details = getattr(site, who).call(method, payload)
        assert code not in NEVER, (method, code, details)
        if code is grpc.StatusCode.OK:  # junk that parses to a request that changes nothing
            assert method in ACCEPTS_EMPTY, (method, details)
        site.check(node, getattr(site, who), method, payload, allow_ok=method in ACCEPTS_EMPTY)
