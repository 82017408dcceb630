"""End to end: CS → prefecture → national over mTLS between real processes, and agency lookups."""

from __future__ import annotations

import random
import subprocess
import sys

import grpc
from conftest import wait_until
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from netutil import (
    AGENCY,
    BUSINESS,
    NUMBER_BUSINESS,
    agency,
    channel_with,
    counts,
    link,
    residents,
    rpc_error,
    run_cli,
    terminal,
)

from jukinet.domain.codes import generate_resident_code
from jukinet.v1 import admin_pb2, identity_pb2


def test_changes_propagate_to_prefecture_and_national(network):
    before = {n: counts(network, n) for n in ("pref:13", "national")}
    nakano = residents("131148", 3)
    chiyoda = residents("131016", 250)
    cs = terminal(network, "cs:131148")
    for record in nakano:
        reply = cs.record_change(record)
        assert reply.record.status == identity_pb2.RECORD_STATUS_ACTIVE
    summary = terminal(network, "cs:131016").register(chiyoda, chunk_size=100)
    assert (summary.stored, summary.chunks, summary.refused) == (250, 3, {})

    for node in ("pref:13", "national"):
        wait_until(
            lambda node=node: counts(network, node)[0] == before[node][0] + 253,
            what=f"253 new records at {node}",
        )
        assert counts(network, node)[1] == before[node][1] + 253  # one history entry each, none twice
    # The record that arrived is the one recorded, field for field (as far as the legal table allows).
    provided = agency(network).by_resident_code(BUSINESS, nakano[0].resident_code).record
    assert provided.name == nakano[0].name
    assert provided.birth_date == nakano[0].birth_date
    assert provided.address == nakano[0].address
    assert provided.change_reason == identity_pb2.CHANGE_REASON_MOVE_IN
    # The national server tracks each CS's own queue (the batches the prefecture relayed, CS-signed) as
    # well as the prefecture's queue to it.
    inbound = {
        (i.sender, i.destination): i.last_sequence for i in terminal(network, "national").status(inbound=True).inbound
    }
    assert inbound[("cs:131016", "pref:13")] >= 250 and inbound[("cs:131148", "pref:13")] >= 3
    assert inbound[("pref:13", "national")] >= 1
    # Each sender dropped its batches only against receipts, which it keeps.
    wait_until(lambda: link(network, "cs:131016", "pref:13").pending == 0, what="the CS queue to drain")
    cs_link = link(network, "cs:131016", "pref:13")
    assert cs_link.last_receipted_sequence >= 250 and cs_link.batches_delivered >= 1 and cs_link.connects == 1


def test_removal_keeps_a_removed_record(network):
    record = residents("131148", 1)[0]
    cs = terminal(network, "cs:131148")
    cs.record_change(record)
    death = identity_pb2.IdentityRecord()
    death.CopyFrom(record)
    death.change_reason = identity_pb2.CHANGE_REASON_DEATH
    assert cs.record_change(death).record.status == identity_pb2.RECORD_STATUS_REMOVED

    def removed_at_national() -> bool:
        try:
            provided = agency(network).by_resident_code(BUSINESS, record.resident_code)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND  # not arrived yet
            return False
        return provided.record.status == identity_pb2.RECORD_STATUS_REMOVED

    wait_until(removed_at_national, what="the 除票 at the national server")
    again = rpc_error(cs.record_change, death)
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "removed record" in again.details()


def test_lookups_by_resident_code_and_my_number_are_logged(network):
    person = residents("131148", 1)[0]
    terminal(network, "cs:131148").record_change(person)
    wait_until(lambda: _known(network, person.resident_code), what="the record at the national server")
    logged = counts(network, "national")[2]
    client = agency(network)
    by_code = client.by_resident_code(BUSINESS, person.resident_code)
    by_number = client.by_my_number(NUMBER_BUSINESS, person.my_number)
    assert by_code.record.resident_code == by_number.record.resident_code == person.resident_code
    assert by_code.record.my_number == ""  # the legal table row does not permit My Number
    assert by_number.provision_id == by_code.provision_id + 1
    assert counts(network, "national")[2] == logged + 2
    entries = terminal(network, "national").provisions(after_id=by_code.provision_id - 1, limit=2)
    assert [(e.agency, e.business_code, e.resident_code, e.query_kind) for e in entries] == [
        (f"agency:{AGENCY}", BUSINESS, person.resident_code, admin_pb2.QUERY_KIND_RESIDENT_CODE),
        (f"agency:{AGENCY}", NUMBER_BUSINESS, person.resident_code, admin_pb2.QUERY_KIND_MY_NUMBER),
    ]


def _known(network, resident_code: str) -> bool:
    try:
        agency(network).by_resident_code(BUSINESS, resident_code)
        return True
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        return False


def test_lookup_of_unknown_resident_is_not_found_and_not_logged(network):
    logged = counts(network, "national")[2]
    unknown = generate_resident_code(random.Random(7))  # well formed, never designated
    err = rpc_error(agency(network).by_resident_code, BUSINESS, unknown)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert counts(network, "national")[2] == logged


def test_health_and_reflection_on_every_node(network):
    net = network.network
    for spec in net.topology.nodes:
        creds = net.terminal(spec.site)
        with channel_with(network, str(spec.node_ids[0]), creds.cert, creds.key) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            services = {s.name for a in answers for s in a.list_services_response.service}
            assert "jukinet.v1.NodeAdminService" in services and "grpc.health.v1.Health" in services
            if spec.node_ids[0].kind.value == "cs":
                assert "jukinet.v1.ResidentRegistryService" in services
            assert "jukinet.v1.IdentityProvisionService" not in services  # for agencies: see test_reflection_e2e


def test_cli_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "jukinet.cli.main", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("up", "demo", "pki", "network", "node", "status", "lookup"):
        assert command in out


def test_status_and_lookup_commands_read_the_provisioned_state(network):
    person = residents("131148", 1)[0]
    terminal(network, "cs:131148").record_change(person)
    state = str(network.network.state)
    run = [sys.executable, "-m", "jukinet.cli.main"]
    wait_until(
        lambda: "provision #" in subprocess.run(
            [*run, "lookup", "--state", state, "--agency", AGENCY, "--business", BUSINESS,
             "--resident-code", person.resident_code],
            capture_output=True, text=True,
        ).stdout,
        what="the CLI lookup to find the resident",
    )  # fmt: skip
    status = subprocess.run([*run, "status", "--state", state], capture_output=True, text=True, check=True).stdout
    assert "national" in status and "cs-131148" in status and "unreachable" not in status
    refused = subprocess.run(
        [*run, "lookup", "--state", state, "--agency", AGENCY, "--business", "tax-assessment",
         "--resident-code", person.resident_code],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2 and "PERMISSION_DENIED" in refused.stdout


def test_operator_commands(network):
    """PINs from a descriptor or the environment, never from arguments (tests/test_secrets_e2e.py watches)."""
    where = ["--state", str(network.network.state), "--node", "cs:131016"]
    admin_env = {"JUKINET_ADMIN_PIN": "123456"}  # the administrator enrolled by the fixture (bootstrap)

    def jukinet(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return run_cli("operator", *args, **kwargs)

    enrolled = jukinet(
        "enroll", *where, "--name", "clerk-cli", "--roles", "register-residents", "--admin", "admin",
        fds={"--pin-fd": "3333"}, env=admin_env,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    assert "enrolled operator:131016:clerk-cli: active, roles register-residents" in enrolled.stdout
    wrong = jukinet("login", *where, "--name", "clerk-cli", env={"JUKINET_PIN": "0000"})
    assert wrong.returncode == 1 and "wrong PIN" in wrong.stderr and "4 tries left" in wrong.stderr
    ok = jukinet("login", *where, "--name", "clerk-cli", fds={"--pin-fd": "3333"})
    assert ok.returncode == 0 and "logged in operator:131016:clerk-cli" in ok.stdout, ok.stderr
    assert jukinet("logout", *where[:-2], "--node", "cs:131016").returncode == 0
    shown = jukinet("show", *where, "--name", "clerk-cli", "--admin", "admin", fds={"--admin-pin-fd": "123456"})
    assert "operator:131016:clerk-cli: active" in shown.stdout and "0 consecutive failures" in shown.stdout
    short = jukinet(
        "enroll", *where, "--name", "x", "--roles", "register-residents", "--admin", "admin",
        fds={"--pin-fd": "1"}, env=admin_env,
    )  # fmt: skip
    assert short.returncode == 1 and "a card PIN has 4 to 255 characters" in short.stderr
    no_admin = {"JUKINET_PIN": "1234"}
    unauthorised = jukinet("enroll", *where, "--name", "x", "--roles", "register-residents", env=no_admin)
    assert unauthorised.returncode == 1 and "UNAUTHENTICATED" in unauthorised.stderr
    assert not (network.network.state / "operators" / "131016-x").exists()  # no card left behind
