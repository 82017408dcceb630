"""開示 on a running network: residents of 中野区 (cs:131148) list, with their own My Number cards through the
residents' portal (portal:myna), every provision of their data made by two agencies' lookups at the national
server, and every 広域交付 copy of their record issued by their home CS; operators at the counter do the
same for a resident by 住民票コード. Every answer is verified by the client (node CA, signed tree head,
inclusion proofs, consistency with the head seen before).

Real parts throughout: node processes, SoftHSM node tokens and resident cards (PIN, authentication key),
LMDB, mutual TLS; the card is known to the national server through the card events the CS relays.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
from conftest import start, wait_until
from cryptography import x509
from netutil import AGENCY, BUSINESS, address, agency, residents, rpc_error, run_cli, simulated, terminal

from jukinet.clients import TerminalClient
from jukinet.clients.cards import present_card
from jukinet.clients.copies import CopyClient, copy_request, present_for_copy
from jukinet.clients.disclosure import DisclosureClient, DisclosureVerifier, SeenHeads, Verified, disclosure_query
from jukinet.devnet.access import agency_client, portal_channel, terminal_for
from jukinet.devnet.operators import enroll_operator, issue_card, log_in
from jukinet.devnet.resident_cards import ResidentCardKit, issue_resident_card, set_up_resident_card
from jukinet.devnet.supervisor import RunningNetwork
from jukinet.devnet.topology import AgencySpec, Topology
from jukinet.domain.disclosure import COPY_ISSUANCE_LOG, PROVISION_LOG
from jukinet.domain.operators import Role
from jukinet.pki.layout import ca_cert_path
from jukinet.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    cards_pb2,
    copies_pb2,
    copies_pb2_grpc,
    disclosure_pb2,
    disclosure_pb2_grpc,
    provision_pb2,
    provision_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
)

HOME, COUNTER = "cs:131148", "cs:131016"
PIN = "2468"
OPERATOR_PIN = "604128"
TAX_AGENCY, TAX = "9234567890123", "local-tax"
TAX_ROW = f"""
[[row]]
agency = "{TAX_AGENCY}"
business = "{TAX}"
title = "地方税の賦課徴収に関する事務 (test)"
fields = ["my_number", "name", "address"]
"""


@dataclass
class Disclosed:
    running: RunningNetwork
    tmp: Path
    r1: object  # IdentityRecord
    r2: object
    card1: ResidentCardKit
    card2: ResidentCardKit
    verifier: DisclosureVerifier

    def client(self, node: str, seen: str = "resident") -> DisclosureClient:
        channel = portal_channel(self.running.network, node)
        return DisclosureClient(channel, self.verifier, SeenHeads(self.tmp / f"{seen}.json"))

    def mine(self, kit: ResidentCardKit, node: str = "national", seen: str = "resident") -> list[Verified]:
        client = self.client(node, seen)
        log = PROVISION_LOG if node == "national" else COPY_ISSUANCE_LOG
        with kit.card(self.running.worker).unlock(PIN) as card:
            return list(client.mine(card, kit.resident_code, node, log))


def _entries(pages: list[Verified]) -> list:
    return [leaf for page in pages for _, leaf in page.entries]


@pytest.fixture(scope="module")
def disclosed(tmp_path_factory, softhsm, worker) -> Disclosed:
    base = Topology.default(free_ports=True)
    topology = dataclasses.replace(
        base,
        agencies=(*base.agencies, AgencySpec(TAX_AGENCY, "市税事務所 (test)")),
        legal_table_text=base.legal_table_text + TAX_ROW,
    )
    tmp = tmp_path_factory.mktemp("disclosure")
    with start(tmp / "state", softhsm, worker, topology) as running:
        r1, r2 = residents("131148", 2)
        home = terminal(running, HOME)
        for r in (r1, r2):
            home.record_change(r)
        kits = [set_up_resident_card(worker, running.network, home, r, PIN) for r in (r1, r2)]
        node_ca = x509.load_pem_x509_certificate(ca_cert_path(running.network.pki_dir, "node").read_bytes())
        made = Disclosed(running, tmp, r1, r2, kits[0], kits[1], DisclosureVerifier(node_ca))
        pension, tax = agency(running), agency_client(running.network, TAX_AGENCY)
        wait_until(lambda: _found(lambda: pension.by_resident_code(BUSINESS, r2.resident_code)), what="r2 upstream")
        pension.by_resident_code(BUSINESS, r1.resident_code)
        pension.by_resident_code(BUSINESS, r1.resident_code)
        tax.by_my_number(TAX, r1.my_number)
        yield made


def _found(call: Callable[[], object]) -> bool:
    try:
        call()
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return False
        raise
    return True


def _settled(disclosed: Disclosed, kit: ResidentCardKit, count: int, node: str = "national") -> list[Verified]:
    """The card holder's listing once it shows ``count`` entries, all covered by a signed tree head (the
    national server knows the card once the CS's card event has reached it)."""

    last: list[str] = []

    def probe() -> list[Verified] | None:
        try:
            pages = disclosed.mine(kit, node)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED and "holds no card" in (exc.details() or ""):
                last[:] = [exc.details() or ""]
                return None  # the card event is still on its way to the national server
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                last[:] = [exc.details() or ""]
                return None  # the first entry is logged, its tree head not sealed yet
            raise
        if len(_entries(pages)) == count and not pages[-1].newer_than_tree_head:
            return pages
        last[:] = [f"{len(_entries(pages))} entries, newer: {pages[-1].newer_than_tree_head}"]
        return None

    deadline = time.monotonic() + 30  # polled once a second: each poll is a request within the resident's rate
    while (pages := probe()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {count} disclosed entries; last: {last}")
        time.sleep(1.0)
    return pages


def _audited(client: TerminalClient, check: Callable[[audit_pb2.AuditEntry], bool]) -> audit_pb2.AuditEntry:
    def find() -> audit_pb2.AuditEntry | None:
        size = audit_pb2.TreeHead.FromString(client.tree_head().tree_head.payload).tree_size
        entries = map(audit_pb2.AuditEntry.FromString, client.audit_entries(0, size))
        found = [e for e in entries if e.action == audit_pb2.AUDIT_ACTION_DISCLOSE and check(e)]
        return found[-1] if found else None

    return wait_until(find, timeout=10, what="a disclosure audit entry")


# -- the resident, with their card -----------------------------------------------------------------------


def test_a_resident_lists_exactly_their_provisions_with_proofs_that_verify(disclosed: Disclosed):
    pages = _settled(disclosed, disclosed.card1, 3)
    entries = _entries(pages)
    assert {e.resident_code for e in entries} == {disclosed.r1.resident_code}
    assert [(e.agency, e.business_code, e.query_kind) for e in entries] == [
        (f"agency:{AGENCY}", BUSINESS, admin_pb2.QUERY_KIND_RESIDENT_CODE),
        (f"agency:{AGENCY}", BUSINESS, admin_pb2.QUERY_KIND_RESIDENT_CODE),
        (f"agency:{TAX_AGENCY}", TAX, admin_pb2.QUERY_KIND_MY_NUMBER),
    ]
    assert list(entries[2].items) == ["address", "my_number", "name"]
    assert pages[0].resident_code == disclosed.r1.resident_code and pages[-1].head.node_id == "national"
    entry = _audited(terminal(disclosed.running, "national"), lambda e: e.target == disclosed.r1.resident_code)
    assert entry.actor == f"card:{disclosed.card1.card_serial}" and entry.terminal == "portal:myna"


def test_a_later_listing_proves_the_log_only_grew_since_the_head_seen(disclosed: Disclosed):
    first = _settled(disclosed, disclosed.card1, 3)
    seen_size = first[-1].head.tree_size
    agency_client(disclosed.running.network, TAX_AGENCY).by_my_number(TAX, disclosed.r1.my_number)
    later = _settled(disclosed, disclosed.card1, 4)
    assert later[0].consistent_from == seen_size and later[-1].head.tree_size > seen_size
    assert _entries(later)[3].query_kind == admin_pb2.QUERY_KIND_MY_NUMBER


def test_another_residents_card_sees_none_of_them(disclosed: Disclosed):
    entries = _entries(_settled(disclosed, disclosed.card2, 1))
    assert [e.resident_code for e in entries] == [disclosed.r2.resident_code]


def test_a_presentation_for_another_node_purpose_or_request_is_refused(disclosed: Disclosed):
    stub = disclosure_pb2_grpc.DisclosureServiceStub(portal_channel(disclosed.running.network, "national"))
    _settled(disclosed, disclosed.card1, 4)  # the national server knows the card
    query, other = disclosure_query("national"), disclosure_query("national", limit=7)
    with disclosed.card1.card(disclosed.running.worker).unlock(PIN) as card:
        wrong = [
            present_card(card, "disclosure", HOME, query),  # for the home CS
            present_card(card, "wide-area-copy", "national", query),  # for 広域交付
            present_card(card, "disclosure", "national", other),  # over another query
        ]
        right = present_card(card, "disclosure", "national", query)
    for presentation in wrong:
        exc = rpc_error(stub.ListMine, disclosure_pb2.ListMineRequest(query=query, card=presentation))
        assert exc.code() == grpc.StatusCode.UNAUTHENTICATED, exc.details()
    request = disclosure_pb2.ListMineRequest(query=query, card=right)
    assert stub.ListMine(request).answer.resident_code == disclosed.r1.resident_code
    assert rpc_error(stub.ListMine, request).code() == grpc.StatusCode.UNAUTHENTICATED  # used once
    elsewhere = disclosure_query(HOME)
    with disclosed.card1.card(disclosed.running.worker).unlock(PIN) as card:
        presented = present_card(card, "disclosure", "national", elsewhere)
    exc = rpc_error(stub.ListMine, disclosure_pb2.ListMineRequest(query=elsewhere, card=presented))
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT  # the query asks another node


def test_a_card_the_node_does_not_hold_or_a_suspended_card_is_refused(disclosed: Disclosed):
    _settled(disclosed, disclosed.card1, 4)
    stranger = issue_resident_card(
        disclosed.running.worker, disclosed.running.network, None, PIN, residents("131148", 1)[0]
    )
    exc = rpc_error(disclosed.mine, stranger)
    assert exc.code() == grpc.StatusCode.UNAUTHENTICATED and "holds no card" in exc.details()
    home = terminal(disclosed.running, HOME)
    home.change_card_state(disclosed.card2.card_serial, cards_pb2.CARD_ACTION_SUSPEND)
    try:

        def refused() -> bool:
            try:
                disclosed.mine(disclosed.card2)
            except grpc.RpcError as exc:
                return exc.code() == grpc.StatusCode.UNAUTHENTICATED
            return False

        wait_until(refused, timeout=30, what="the suspension at the national server")
    finally:
        home.change_card_state(disclosed.card2.card_serial, cards_pb2.CARD_ACTION_RESUME)
    _settled(disclosed, disclosed.card2, 1)


def test_a_portal_can_call_nothing_else(disclosed: Disclosed):
    net = disclosed.running.network
    national, cs = portal_channel(net, "national"), portal_channel(net, HOME)
    calls = [
        lambda: provision_pb2_grpc.IdentityProvisionServiceStub(national).LookupByResidentCode(
            provision_pb2.LookupByResidentCodeRequest(business_code=BUSINESS, resident_code="12345678903")
        ),
        lambda: admin_pb2_grpc.NodeAdminServiceStub(national).GetStatus(admin_pb2.GetStatusRequest()),
        lambda: audit_pb2_grpc.AuditServiceStub(national).GetSignedTreeHead(audit_pb2.GetSignedTreeHeadRequest()),
        lambda: disclosure_pb2_grpc.DisclosureServiceStub(national).ListForResident(
            disclosure_pb2.ListForResidentRequest(resident_code=disclosed.r1.resident_code, operator_id="x")
        ),
        lambda: registry_pb2_grpc.ResidentRegistryServiceStub(cs).GetResident(
            registry_pb2.GetResidentRequest(resident_code=disclosed.r1.resident_code)
        ),
        lambda: copies_pb2_grpc.CertifiedCopyServiceStub(cs).ListCopyIssuances(
            copies_pb2.ListCopyIssuancesRequest(resident_code=disclosed.r1.resident_code)
        ),
        lambda: disclosure_pb2_grpc.DisclosureCounterServiceStub(cs).ListProvisionsForResident(
            disclosure_pb2.ListProvisionsForResidentRequest(resident_code=disclosed.r1.resident_code)
        ),
    ]
    for call in calls:
        assert rpc_error(call).code() == grpc.StatusCode.PERMISSION_DENIED
    head = disclosure_pb2_grpc.DisclosureServiceStub(national).GetTreeHead(disclosure_pb2.GetTreeHeadRequest())
    assert audit_pb2.TreeHead.FromString(head.tree_head.payload).log == PROVISION_LOG


def test_requests_are_bounded_before_and_after_they_are_parsed(disclosed: Disclosed):
    stub = disclosure_pb2_grpc.DisclosureServiceStub(portal_channel(disclosed.running.network, "national"))
    huge = disclosure_pb2.ListMineRequest(query=b"\x00" * 9000)
    assert rpc_error(stub.ListMine, huge).code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # the request's size
    padded = disclosure_pb2.ListMineRequest(query=disclosure_query("national") + b"\xfa\x3f\x85\x02" + b"x" * 261)
    exc = rpc_error(stub.ListMine, padded)
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 256" in exc.details()
    query = disclosure_query("national", limit=501)
    with disclosed.card1.card(disclosed.running.worker).unlock(PIN) as card:
        presented = present_card(card, "disclosure", "national", query)
    exc = rpc_error(stub.ListMine, disclosure_pb2.ListMineRequest(query=query, card=presented))
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit" in exc.details()


# -- at the counter --------------------------------------------------------------------------------------


def _operator(disclosed: Disclosed, node: str, name: str, roles: list[str]) -> TerminalClient:
    running = disclosed.running
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    site = running.network.topology.node(node).site
    kit = issue_card(running.worker, running.network, f"operator:{site}:{name}", OPERATOR_PIN, rng)
    enroll_operator(running.worker, terminal(running, node), kit, roles, rng)
    desk = terminal_for(running.network, running.network.topology.node(node))
    log_in(running.worker, desk, kit, rng=rng, attempts=3)
    return desk


def _counter(disclosed: Disclosed, desk: TerminalClient, seen: str) -> DisclosureClient:
    return DisclosureClient(desk.channel, disclosed.verifier, SeenHeads(disclosed.tmp / f"{seen}.json"), desk)


def test_the_counter_discloses_with_the_role_only_and_is_audited_at_both_nodes(disclosed: Disclosed):
    _settled(disclosed, disclosed.card1, 4)
    code = disclosed.r1.resident_code
    clerk = _operator(disclosed, HOME, "copies-only", [Role.ISSUE_COPIES.value])
    for rpc, request in (
        (
            disclosure_pb2_grpc.DisclosureCounterServiceStub(clerk.channel).ListProvisionsForResident,
            disclosure_pb2.ListProvisionsForResidentRequest(resident_code=code),
        ),
        (
            disclosure_pb2_grpc.DisclosureServiceStub(clerk.channel).ListForResident,
            disclosure_pb2.ListForResidentRequest(resident_code=code),
        ),
    ):
        exc = rpc_error(clerk.call, rpc, request)
        assert exc.code() == grpc.StatusCode.PERMISSION_DENIED, exc.details()
    desk = _operator(disclosed, HOME, "discloser", [Role.DISCLOSE_PROVISIONS.value])
    pages = list(_counter(disclosed, desk, "counter").for_resident(code, "national", PROVISION_LOG))
    assert len(_entries(pages)) == 4 and {e.resident_code for e in _entries(pages)} == {code}
    operator = "operator:131148:discloser"
    at_cs = _audited(terminal(disclosed.running, HOME), lambda e: e.target == code and "asked national" in e.detail)
    assert at_cs.actor == operator
    at_national = _audited(terminal(disclosed.running, "national"), lambda e: e.actor == operator)
    assert at_national.terminal == HOME and at_national.target == code and "4 entries" in at_national.detail


def test_a_cs_that_never_kept_the_resident_is_refused_by_the_national_server(disclosed: Disclosed):
    _settled(disclosed, disclosed.card1, 4)
    other = terminal(disclosed.running, COUNTER)  # 千代田区's administrator: every role, also disclose-provisions
    stub = disclosure_pb2_grpc.DisclosureCounterServiceStub(other.channel)
    request = disclosure_pb2.ListProvisionsForResidentRequest(resident_code=disclosed.r1.resident_code)
    exc = rpc_error(other.call, stub.ListProvisionsForResident, request)
    assert exc.code() == grpc.StatusCode.PERMISSION_DENIED and "national refused" in exc.details()
    # A CS that skips its own checks (its node identity, played here) still gets nothing it did not keep,
    # and may name only an operator of its own site.
    rogue = simulated(disclosed.running, [COUNTER], disclosed.tmp / "rogue")
    with rogue.channel(address(disclosed.running, "national"), "national") as channel:
        stub = disclosure_pb2_grpc.DisclosureServiceStub(channel)
        for operator, status in (
            ("operator:131016:desk", grpc.StatusCode.PERMISSION_DENIED),
            ("operator:131148:desk", grpc.StatusCode.INVALID_ARGUMENT),
            ("", grpc.StatusCode.INVALID_ARGUMENT),
        ):
            forged = disclosure_pb2.ListForResidentRequest(
                resident_code=disclosed.r1.resident_code, operator_id=operator
            )
            assert rpc_error(stub.ListForResident, forged).code() == status, operator


# -- 広域交付 copies, disclosed by the home CS ---------------------------------------------------------------


def test_copies_issued_by_the_home_cs_are_disclosed_the_same_way(disclosed: Disclosed):
    running = disclosed.running
    raw = copy_request(COUNTER, HOME, disclosed.r1.resident_code)
    with disclosed.card1.card(running.worker).unlock(PIN) as card:
        presentation = present_for_copy(card, raw)
    copy = CopyClient(terminal(running, COUNTER)).request_copy(raw, presentation).certified_copy
    pages = _settled(disclosed, disclosed.card1, 1, node=HOME)
    [issued] = _entries(pages)
    assert (issued.serial, issued.requesting_cs, issued.resident_code) == (
        copy.serial,
        COUNTER,
        disclosed.r1.resident_code,
    )
    assert pages[-1].head.node_id == HOME and pages[-1].log == COPY_ISSUANCE_LOG
    assert _entries(disclosed.mine(disclosed.card2, HOME, seen="r2")) == []
    desk = terminal(running, HOME)
    counter = list(
        _counter(disclosed, desk, "home-counter").for_resident(disclosed.r1.resident_code, HOME, COPY_ISSUANCE_LOG)
    )
    assert [c.serial for c in _entries(counter)] == [copy.serial]


def test_the_cli_prints_each_provision_and_what_it_verified(disclosed: Disclosed):
    _settled(disclosed, disclosed.card1, 4)
    state = str(disclosed.running.network.state)
    args = (
        "disclosure",
        "mine",
        "--state",
        state,
        "--card",
        disclosed.card1.card_serial,
        "--resident",
        disclosed.r1.resident_code,
    )
    first = run_cli(*args, fds={"--pin-fd": PIN})
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("provision #") == 4 and f"to agency:{TAX_AGENCY} for {TAX}" in first.stdout
    assert "inclusion: 4 entries verified against tree head size" in first.stdout
    agency(disclosed.running).by_resident_code(BUSINESS, disclosed.r1.resident_code)
    _settled(disclosed, disclosed.card1, 5)
    second = run_cli(*args, fds={"--pin-fd": PIN})
    assert second.returncode == 0, second.stderr
    assert "inclusion: 5 entries verified" in second.stdout and "→" in second.stdout and "consistency" in second.stdout


def test_the_cli_at_the_counter_prints_the_residents_provisions_and_copies(disclosed: Disclosed):
    _settled(disclosed, disclosed.card1, 5)
    net = disclosed.running.network
    desk = _operator(disclosed, HOME, "cli-desk", [Role.DISCLOSE_PROVISIONS.value])
    session = net.terminal(net.topology.node(HOME).site).cert.parent / "session.bin"  # as `operator login` leaves it
    session.write_bytes(desk.session.SerializeToString())
    state, code = str(net.state), disclosed.r1.resident_code
    try:
        provisions = run_cli("disclosure", "counter", "--state", state, "--node", HOME, "--resident", code)
        assert provisions.returncode == 0, provisions.stderr
        assert f"開示: 5 provisions of {code} at national" in provisions.stdout
        assert "inclusion: 5 entries verified against tree head size" in provisions.stdout
        copies = run_cli("disclosure", "counter", "--state", state, "--node", HOME, "--resident", code, "--copies")
        assert copies.returncode == 0, copies.stderr
        assert f"to {COUNTER}" in copies.stdout and "signed by cs:131148" in copies.stdout
    finally:
        session.unlink()
