"""Bad input and unauthorised callers get the right status, a clear message, and change nothing."""

from __future__ import annotations

import random

import grpc
import pytest
from cryptography import x509
from netutil import AGENCY, BUSINESS, agency, channel_with, counts, residents, rpc_error, terminal

from jukinet.clients import AgencyClient, TerminalClient
from jukinet.domain.codes import corporate_check_digit
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki import init_pki, issue_tls_certificate, revoke
from jukinet.pki.layout import bundle_path
from jukinet.v1 import identity_pb2

_rng = random.Random(17)


def _with_bad_my_number(municipality: str) -> identity_pb2.IdentityRecord:
    """A row as an operator might mistype it: a 住民票コード and a My Number typed in (well formed), the My
    Number's check digit wrong. The check digit is refused before anything asks whose numbers they are."""
    bad = synthetic_resident(_rng, municipality, numbered=True)
    last = int(bad.my_number[-1])
    bad.my_number = bad.my_number[:-1] + str((last + 1) % 10)
    return bad


def test_bad_check_digit_is_invalid_argument_and_stores_nothing(network):
    cs = terminal(network, "cs:131148")
    before = counts(network, "cs:131148")
    record = _with_bad_my_number("131148")
    err = rpc_error(cs.record_change, record)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "my_number" in err.details() and "check digit" in err.details()
    assert counts(network, "cs:131148") == before
    assert rpc_error(cs.resident, record.resident_code).code() == grpc.StatusCode.NOT_FOUND


def test_bulk_refuses_bad_rows_by_field_and_stores_the_others(network):
    cs = terminal(network, "cs:131148")
    good = residents("131148", 20)
    bad = _with_bad_my_number("131148")
    before = counts(network, "cs:131148")
    done = cs.register([*good[:9], bad, *good[9:]], chunk_size=10)
    assert (done.stored, done.already_stored, done.chunks, sorted(done.refused)) == (20, 0, 3, [9])
    (problem,) = done.refused[9]
    assert problem.field == "my_number" and "check digit" in problem.message
    assert counts(network, "cs:131148")[0] == before[0] + 20
    assert rpc_error(cs.resident, bad.resident_code).code() == grpc.StatusCode.NOT_FOUND

    again = cs.register([*good, bad], chunk_size=10)  # the same rows again: nothing applied twice
    assert (again.stored, again.already_stored, sorted(again.refused)) == (0, 20, [20])
    assert counts(network, "cs:131148")[:2] == (before[0] + 20, before[1] + 20)


def test_cs_refuses_another_municipalitys_resident(network):
    err = rpc_error(terminal(network, "cs:131148").record_change, residents("131016", 1)[0])
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "131016" in err.details()


def test_second_creation_of_an_active_resident_is_already_exists(network):
    cs = terminal(network, "cs:131148")
    record = residents("131148", 1)[0]
    cs.record_change(record)
    assert rpc_error(cs.record_change, record).code() == grpc.StatusCode.ALREADY_EXISTS
    # Another person with the first one's My Number: My Numbers come from the national server, so a typed
    # one that is not the new resident's is PERMISSION_DENIED (as tests/test_numbers_e2e.py decides).
    before = counts(network, "cs:131148")
    other = residents("131148", 1)[0]
    other.my_number = record.my_number
    err = rpc_error(cs.record_change, other)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "my_number" in err.details()
    assert counts(network, "cs:131148") == before
    assert cs.resident(record.resident_code).my_number == record.my_number


def test_agency_outside_the_legal_table_is_refused_and_nothing_logged(network, tmp_path):
    person = residents("131148", 1)[0]
    terminal(network, "cs:131148").record_change(person)
    logged = counts(network, "national")[2]
    err = rpc_error(agency(network).by_resident_code, "tax-assessment", person.resident_code)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "tax-assessment" in err.details()

    base = "100000000001"  # a valid agency with no row in the table at all
    stranger = f"{corporate_check_digit(base)}{base}"
    cert, key = issue_tls_certificate(network.network.pki_dir, "agency", [f"agency:{stranger}"], tmp_path)
    client = AgencyClient(channel_with(network, "national", cert, key))
    err = rpc_error(client.by_resident_code, BUSINESS, person.resident_code)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and stranger in err.details()
    assert counts(network, "national")[2] == logged


def test_malformed_lookup_is_invalid_argument(network):
    err = rpc_error(agency(network).by_resident_code, BUSINESS, "12345")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "11" in err.details()
    err = rpc_error(agency(network).by_my_number, BUSINESS, "123456789010")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "check digit" in err.details()


def _no_certificate_client(network, node_id: str) -> TerminalClient:
    bundle = bundle_path(network.network.pki_dir).read_bytes()
    creds = grpc.ssl_channel_credentials(root_certificates=bundle)
    target = network.network.topology.node(node_id).listen
    channel = grpc.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", "localhost")])
    return TerminalClient(channel, timeout=5)


def test_client_without_certificate_cannot_connect(network):
    before = counts(network, "cs:131148")
    err = rpc_error(_no_certificate_client(network, "cs:131148").record_change, residents("131148", 1)[0])
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert counts(network, "cs:131148") == before


def test_certificate_from_a_foreign_ca_cannot_connect(network, tmp_path):
    foreign = tmp_path / "foreign-pki"
    init_pki(foreign)
    cert, key = issue_tls_certificate(foreign, "operator", ["terminal:131148:ops"], tmp_path)
    # It trusts our servers (our bundle), but our servers do not trust its CA.
    client = TerminalClient(channel_with(network, "cs:131148", cert, key), timeout=5)
    before = counts(network, "cs:131148")
    err = rpc_error(client.record_change, residents("131148", 1)[0])
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert counts(network, "cs:131148") == before
    terminal(network, "cs:131148").status()  # and the node keeps serving


@pytest.mark.parametrize(
    ("issuer", "identity", "node"),
    [
        ("operator", "terminal:131016:ops", "cs:131148"),  # a terminal of another municipality
        ("agency", f"agency:{AGENCY}", "cs:131148"),  # an agency at a CS counter RPC
        ("node", "cs:131016", "cs:131148"),  # a node is not an operator terminal
    ],
)
def test_wrong_kind_of_caller_is_permission_denied(network, tmp_path, issuer, identity, node):
    cert, key = issue_tls_certificate(network.network.pki_dir, issuer, [identity], tmp_path)
    client = TerminalClient(channel_with(network, node, cert, key), timeout=5)
    err = rpc_error(client.record_change, residents(node.split(":")[1], 1)[0])
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert identity in err.details()


def test_terminal_cannot_call_agency_lookup(network):
    net = network.network
    creds = net.terminal("national")
    client = AgencyClient(channel_with(network, "national", creds.cert, creds.key))
    well_formed = synthetic_resident(_rng, "131148", numbered=True).resident_code  # the caller is what is refused
    err = rpc_error(client.by_resident_code, BUSINESS, well_formed)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_revoked_terminal_certificate_is_unauthenticated(network, tmp_path):
    pki = network.network.pki_dir
    cert, key = issue_tls_certificate(pki, "operator", ["terminal:131148:revoked"], tmp_path)
    client = TerminalClient(channel_with(network, "cs:131148", cert, key), timeout=5)
    client.status()  # accepted while valid
    serial = x509.load_pem_x509_certificate(cert.read_bytes()).serial_number
    revoke(pki, "operator", serial)
    err = rpc_error(client.status)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in err.details()


def test_oversized_chunk_is_resource_exhausted(network):
    cs = terminal(network, "cs:131148")
    before = counts(network, "cs:131148")
    err = rpc_error(cs.register, residents("131148", 10_001), chunk_size=10_001)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert counts(network, "cs:131148") == before
    cs.status()
