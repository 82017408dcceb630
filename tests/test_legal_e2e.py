"""Legal tables as data between real node processes: the national server and the prefecture server provide
under the tables of the signed directory they hold (a new version applies without a restart); anything
outside a table is PERMISSION_DENIED naming the agency and the business, nothing is provided and the
refusal is in the audit log; a business without my_number may not ask by My Number; a prefecture server
provides under its own 別表第5/第6 only; and a row naming residents by agency identifier (機関別符号) gets
an identifier derived in the national token instead of the numbers, per agency, stable across a restart,
accepted back from its own agency only.
"""

from __future__ import annotations

import time

import grpc
import pytest
from conftest import start, wait_until
from netutil import AGENCY, BUSINESS, agency, channel_with, counts, residents, rpc_error, terminal
from pkcs11 import Attribute

from jukinet.clients.agency import AgencyClient, BatchKind
from jukinet.clients.push import PushClient
from jukinet.devnet.topology import Topology
from jukinet.domain.legal import agency_identifier_problem
from jukinet.hsm import AGENCY_IDENTIFIER_KEY_LABEL
from jukinet.pki import issue_tls_certificate
from jukinet.v1 import audit_pb2, directory_pb2
from jukinet.v1 import identity_pb2 as R
from jukinet.v1 import provision_pb2 as P
from jukinet.v1 import subscription_pb2 as S

INSURER, TOKYO, OTHER = "2300000000001", "5400000000013", "4400000000014"
HEALTH = "health-insurance"
CS = "cs:131148"


@pytest.fixture(scope="module")
def private_network(tmp_path_factory, softhsm, worker):
    """A network of this module's own (it publishes directories and restarts the national server); the
    prefecture asks for a newer directory every second."""
    topology = Topology.default(free_ports=True).tuned(directory_refresh_s=1)
    with start(tmp_path_factory.mktemp("legal-network"), softhsm, worker, topology) as running:
        yield running


@pytest.fixture(scope="module")
def people(private_network):
    cs = terminal(private_network, CS)
    made = residents("131148", 2)
    for person in made:
        cs.record_change(person)
    for node in ("national", "pref:13"):
        wait_until(lambda n=node: counts(private_network, n)[0] >= 2, what=f"{node} to hold the residents")
    return made


def _client(running, node: str, corporate_number: str) -> AgencyClient:
    creds = running.network.agency(corporate_number)
    return AgencyClient(channel_with(running, node, creds.cert, creds.key))


def _denied(fn, *args) -> str:
    err = rpc_error(fn, *args)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED, (err.code(), err.details())
    return err.details()


def _audit(running, node: str) -> list[audit_pb2.AuditEntry]:
    desk = terminal(running, node)
    head = audit_pb2.TreeHead.FromString(desk.tree_head().tree_head.payload).tree_size
    return [audit_pb2.AuditEntry.FromString(e) for e in desk.audit_entries(0, head)]


def test_outside_the_table_is_denied_named_audited_and_nothing_provided(private_network, people) -> None:
    person = people[0]
    pension = agency(private_network)
    provided = counts(private_network, "national")[2]
    details = _denied(pension.by_resident_code, "tax-assessment", person.resident_code)
    assert f"agency:{AGENCY}" in details and "tax-assessment" in details
    # A lookup by My Number from a business whose row has no my_number: refused the same way.
    details = _denied(pension.by_my_number, BUSINESS, person.my_number)
    assert f"agency:{AGENCY}" in details and BUSINESS in details and "my_number" in details
    assert counts(private_network, "national")[2] == provided
    assert pension.by_my_number("pension-number-check", person.my_number).record.my_number == person.my_number
    # The Tokyo body's rows are the prefecture's, not 別表第1.
    _denied(_client(private_network, "national", TOKYO).by_resident_code, "tokyo-own-use", person.resident_code)

    def refusal() -> audit_pb2.AuditEntry | None:
        found = [
            e
            for e in _audit(private_network, "national")
            if e.action == audit_pb2.AUDIT_ACTION_PROVIDE_IDENTITY and e.outcome == audit_pb2.AUDIT_OUTCOME_DENIED
        ]
        return next((e for e in found if "tax-assessment" in e.detail), None)

    entry = wait_until(refusal, timeout=10, what="the refusal in the national audit log")
    assert entry.actor == f"agency:{AGENCY}"


def test_a_prefecture_provides_under_its_own_tables_only(private_network, people) -> None:
    person = people[0]
    tokyo = _client(private_network, "pref:13", TOKYO)
    before = counts(private_network, "pref:13")[2]
    got = tokyo.by_resident_code("tokyo-education-grant", person.resident_code)
    assert got.record.resident_code == person.resident_code and got.record.my_number == ""
    assert got.record.name == person.name and got.provision_id > 0
    assert tokyo.by_my_number("tokyo-own-use", person.my_number).record.my_number == person.my_number
    details = _denied(tokyo.by_my_number, "tokyo-education-grant", person.my_number)
    assert f"agency:{TOKYO}" in details and "tokyo-education-grant" in details
    assert counts(private_network, "pref:13")[2] == before + 2
    # 別表第1's agency has no row of 東京都's tables.
    _denied(_client(private_network, "pref:13", AGENCY).by_resident_code, BUSINESS, person.resident_code)
    _denied(tokyo.by_agency_identifier, "tokyo-own-use", "A" * 32)
    assert counts(private_network, "pref:13")[2] == before + 2


def _identifier(running, corporate_number: str, business: str, person) -> str:
    """The agency's identifier of ``person``, as a pseudonymous row first learns it: by four items (asking
    by 住民票コード is refused to it)."""
    client = _client(running, "national", corporate_number)
    denied = rpc_error(client.by_resident_code, business, person.resident_code)
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED and "resident_code" in denied.details()
    answer = client.search(business, person.birth_date, person.sex, name=person.name.kanji)
    (got,) = [c for c in answer.candidates if c.record.name.kanji == person.name.kanji]
    assert got.record.resident_code == "" and got.record.my_number == ""  # never the numbers
    assert agency_identifier_problem(got.agency_identifier) is None
    return got.agency_identifier


def test_agency_identifiers_and_tables_that_change_without_a_restart(private_network, people, tmp_path) -> None:
    a, b = people
    insurer = _client(private_network, "national", INSURER)
    ia, ib = (_identifier(private_network, INSURER, HEALTH, p) for p in (a, b))
    assert ia != ib and _identifier(private_network, INSURER, HEALTH, a) == ia
    for identifier in (ia, ib):
        for person in people:
            assert person.resident_code not in identifier and person.my_number not in identifier
    back = insurer.by_agency_identifier(HEALTH, ia)
    assert (back.agency_identifier, back.record.name) == (ia, a.name)
    assert back.record.resident_code == "" and back.record.my_number == ""
    _denied(insurer.by_my_number, HEALTH, a.my_number)  # a pseudonymous row has no my_number
    _denied(agency(private_network).by_agency_identifier, BUSINESS, ia)  # its row names by resident_code
    # A batch (定期照会) of identifiers: answered by position, the records without either number.
    made_up = "A" * 32
    (answer,) = insurer.batch_lookup(HEALTH, [ib, made_up, ia], kind=BatchKind.AGENCY_IDENTIFIER)
    results = list(answer.results())
    assert [r.status for r in results] == [P.BATCH_STATUS_FOUND, P.BATCH_STATUS_NOT_FOUND, P.BATCH_STATUS_FOUND]
    assert [r.record.name for r in results if r.record is not None] == [b.name, a.name]
    assert all(r.record.resident_code == r.record.my_number == "" for r in results if r.record is not None)
    refused = rpc_error(lambda: list(insurer.batch_lookup(HEALTH, [a.resident_code])))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and "agency identifier" in refused.details()
    # Push notices to it name the resident by the same identifier, never by a number.
    creds = private_network.network.agency(INSURER)
    push = PushClient(channel_with(private_network, "national", creds.cert, creds.key))
    sub = push.subscribe(HEALTH, S.PUSH_MODE_EVERY_CHANGE, municipality_codes=["131148"])
    moved = R.IdentityRecord()
    moved.CopyFrom(a)
    moved.change_reason = R.CHANGE_REASON_RELOCATION
    terminal(private_network, CS).record_change(moved)
    receiver = push.receive(sub.subscription_id)
    try:
        pushed = []
        deadline = time.monotonic() + 20
        while not pushed and time.monotonic() < deadline:
            message = receiver.next(timeout=5)
            assert message is not None, receiver.error
            pushed = [r for r in message.records if r.record.change_reason == R.CHANGE_REASON_RELOCATION]
            receiver.acknowledge(message.last_position)
        (record,) = pushed
        assert record.agency_identifier == ia and record.record.name == a.name
        assert record.record.resident_code == record.record.my_number == ""
    finally:
        receiver.close()
        push.cancel(sub.subscription_id)

    # A new directory version adds a pseudonymous row for the pension agency and a 別表第6 row of
    # another prefecture: both apply at once, no node restarted.
    desk = terminal(private_network, "national")
    held = directory_pb2.NetworkDirectory.FromString(desk.directory(0).directory.payload)
    content = directory_pb2.NetworkDirectory(nodes=held.nodes, legal_table=held.legal_table)
    content.legal_table.add(table="別表第1", agency=AGENCY, business="pension-pseudonym", title="",
                            fields=["name"], identifier="agency_identifier")  # fmt: skip
    content.legal_table.add(table="別表第6", prefecture="pref:14", agency=OTHER, business="kanagawa-own-use",
                            title="", fields=["name"])  # fmt: skip
    published = desk.publish_directory(content)
    wait_until(lambda: terminal(private_network, "pref:13").status().directory.version >= published.version,
               what="pref:13 to hold the new directory")  # fmt: skip
    pension_a = _identifier(private_network, AGENCY, "pension-pseudonym", a)
    assert pension_a not in (ia, ib)  # two agencies: two unrelated identifiers for one resident
    # Each agency's identifier names nobody for the other: NOT_FOUND, as a made-up one.
    pension = agency(private_network)
    errors = [rpc_error(pension.by_agency_identifier, "pension-pseudonym", x) for x in (ia, made_up)]
    assert [e.code() for e in errors] == [grpc.StatusCode.NOT_FOUND] * 2
    assert errors[0].details().replace(ia, "X") == errors[1].details().replace(made_up, "X")
    err = rpc_error(insurer.by_agency_identifier, HEALTH, pension_a)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # A row of a prefecture this server does not host gives nothing.
    cert, key = issue_tls_certificate(private_network.network.pki_dir, "agency", [f"agency:{OTHER}"], tmp_path)
    with channel_with(private_network, "pref:13", cert, key) as channel:
        _denied(AgencyClient(channel).by_resident_code, "kanagawa-own-use", a.resident_code)

    # Stable across a restart of the national server (the store answers; the token key stays).
    spec = private_network.network.topology.node("national")
    private_network.stop_node(spec)
    private_network.start_node(spec)
    assert _identifier(private_network, INSURER, HEALTH, a) == ia
    assert _identifier(private_network, AGENCY, "pension-pseudonym", a) == pension_a
    assert _client(private_network, "national", INSURER).by_agency_identifier(HEALTH, ib).record.name == b.name


AGENCY_KEY = {
    Attribute.SIGN: True,
    Attribute.VERIFY: False,
    Attribute.ENCRYPT: False,
    Attribute.DECRYPT: False,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.NEVER_EXTRACTABLE: True,
    Attribute.LOCAL: True,
    Attribute.MODIFIABLE: False,
    Attribute.COPYABLE: False,
}


def test_the_agency_identifier_key_is_the_national_tokens_and_only_signs(private_network, worker) -> None:
    net = private_network.network

    def held(spec) -> dict | None:
        label, pin = net.token_label(spec), (net.node_dir(spec) / "token.pin").read_text().strip()

        def read() -> dict | None:
            session = worker.acquire(label, pin)
            try:
                found = list(session.get_objects({Attribute.LABEL: AGENCY_IDENTIFIER_KEY_LABEL}))
                return {a: found[0][a] for a in AGENCY_KEY} if found else None
            finally:
                worker.release(label)

        return worker.call(read)

    assert held(net.topology.national) == AGENCY_KEY
    for spec in (*net.topology.prefectures, *net.topology.municipalities):
        assert held(spec) is None, spec.name


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ({"table": "別表第6", "agency": INSURER, "business": "x", "fields": ["name"]}, "names its prefecture"),
        ({"table": "別表第9", "agency": INSURER, "business": "x", "fields": ["name"]}, "is not one of"),
        ({"table": "別表第1", "agency": INSURER, "business": "x", "fields": ["photo"]}, "unknown field groups"),
        (
            {
                "table": "別表第1",
                "agency": INSURER,
                "business": "x",
                "fields": ["my_number"],
                "identifier": "agency_identifier",
            },
            "may not permit my_number",
        ),
    ],
)
def test_a_directory_with_a_bad_row_is_refused_and_the_tables_stay(private_network, people, row, words) -> None:
    desk = terminal(private_network, "national")
    before = desk.status().directory.version
    held = directory_pb2.NetworkDirectory.FromString(desk.directory(0).directory.payload)
    content = directory_pb2.NetworkDirectory(nodes=held.nodes, legal_table=held.legal_table)
    content.legal_table.add(**row)
    err = rpc_error(desk.publish_directory, content)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and words in err.details(), err.details()
    assert desk.status().directory.version == before
    got = agency(private_network).by_resident_code(BUSINESS, people[0].resident_code)
    assert got.record.resident_code == people[0].resident_code
