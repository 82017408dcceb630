"""Attacks on login and on the audit log, against a running node (real mTLS, SoftHSM, LMDB, processes).

One national server of its own with no operator yet, so the first test is the race for its first
enrollment; its winner administers the node in the tests after it (each test enrolls what else it needs).
Counted refusals are flushed every 2 s here (`[audit] refusal_interval_s`), 60 s by default.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from conftest import wait_until
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from netutil import rpc_error

from jukinet.biometrics import enroll
from jukinet.clients import TerminalClient, open_channel
from jukinet.devnet.operators import OperatorKit, enroll_operator, issue_card, log_in
from jukinet.devnet.provision import provision
from jukinet.devnet.supervisor import RunningNetwork, start_network
from jukinet.devnet.topology import Topology, pick_free_ports
from jukinet.merkle import leaf_hash, verify_inclusion
from jukinet.pki import issue_tls_certificate
from jukinet.pki.layout import bundle_path
from jukinet.server.audit import check_tree_head
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, operator_pb2, operator_pb2_grpc

A = audit_pb2
NODE = "national"
PIN = "246810"
INTERVAL = 2
_rng = np.random.default_rng(2027)
_first: dict[str, OperatorKit] = {}


@pytest.fixture(scope="module")
def lone(tmp_path_factory: pytest.TempPathFactory, softhsm) -> RunningNetwork:
    state = tmp_path_factory.mktemp("lone-node")
    (port,) = pick_free_ports(1)
    topology = Topology.parse(
        f'[national]\nlisten = "127.0.0.1:{port}"\n\n'
        '[[agency]]\ncorporate_number = "7123456789012"\nname = "an agency with no business here"\n'
    )
    net = provision(state, topology, softhsm_root=softhsm.root)
    config = net.node_config(topology.national)
    config.write_text(config.read_text() + f"\n[audit]\nrefusal_interval_s = {INTERVAL}\n")
    with start_network(net) as running:
        yield running


def _desk(running: RunningNetwork, name: str, kind: str = "operator", identity: str | None = None):
    """A client of the node presenting a certificate of its own: (channel, certificate fingerprint)."""
    net = running.network
    identity = identity or f"terminal:national:{name}"
    directory = net.state / "attackers" / name
    cert, key = (directory / "tls.pem", directory / "tls.key")
    if not cert.exists():
        issue_tls_certificate(net.pki_dir, kind, [identity], directory)
    fingerprint = x509.load_pem_x509_certificate(cert.read_bytes()).fingerprint(hashes.SHA256())
    spec = net.topology.national
    return open_channel(spec.listen, spec.node_id, cert, key, bundle_path(net.pki_dir)), fingerprint


def _terminal(running: RunningNetwork, name: str) -> TerminalClient:
    channel, fingerprint = _desk(running, name)
    return TerminalClient(channel, fingerprint)


def _log(running: RunningNetwork) -> list[bytes]:
    """The node's audit entries, read from its LMDB files (as `jukinet audit verify` does)."""
    store = NodeStorage.open(running.network.node_dir(running.network.topology.national) / "data", readonly=True)
    try:
        return store.audit.entries(0, store.audit.size())
    finally:
        store.close()


def _admin(running: RunningNetwork, worker) -> tuple[OperatorKit, TerminalClient]:
    """The node's first operator (the race's winner; enrolled here when this test runs alone)."""
    if "kit" not in _first:
        kit = issue_card(worker, running.network, "operator:national:first-solo", PIN, _rng)
        enroll_operator(worker, _terminal(running, "desk-solo"), kit, ["administer-operators"], _rng)
        _first["kit"], _first["desk"] = kit, "desk-solo"  # type: ignore[assignment]
    kit = _first["kit"]
    desk = _terminal(running, _first["desk"])  # type: ignore[arg-type]
    log_in(worker, desk, kit, rng=_rng, attempts=3)
    return kit, desk


def test_a_dozen_concurrent_first_enrollments_make_exactly_one_administrator(lone, worker):
    kits = [issue_card(worker, lone.network, f"operator:national:first-{i}", PIN, _rng) for i in range(12)]
    requests = []
    for kit in kits:
        with kit.card(worker).unlock(PIN) as card:
            template = [float(x) for x in enroll(kit.subject, _rng)]
            requests.append(operator_pb2.EnrollOperatorRequest(
                operator_id=kit.operator_id, card_certificate=card.certificate_der, roles=["administer-operators"],
                template=operator_pb2.BiometricSample(features=template),
            ))  # fmt: skip
    channels = [_desk(lone, f"desk-{i}")[0] for i in range(12)]
    stubs = [operator_pb2_grpc.OperatorAdminServiceStub(channel) for channel in channels]
    start = threading.Barrier(12)
    outcomes: list[tuple[int, grpc.StatusCode | None, str]] = []

    def enroll_first(i: int) -> None:
        grpc.channel_ready_future(channels[i]).result(timeout=10)  # connected: the calls leave together
        start.wait()
        try:
            stubs[i].EnrollOperator(requests[i], timeout=30)
            outcomes.append((i, None, ""))
        except grpc.RpcError as exc:
            outcomes.append((i, exc.code(), exc.details() or ""))

    threads = [threading.Thread(target=enroll_first, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, code, _ in outcomes if code is None]
    assert len(winners) == 1, outcomes
    for _, code, details in (o for o in outcomes if o[1] is not None):
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert "already has an operator" in details or "needs an operator session" in details, details
    _first["kit"], _first["desk"] = kits[winners[0]], f"desk-{winners[0]}"  # type: ignore[assignment]
    _, admin = _admin(lone, worker)
    for i, kit in enumerate(kits):
        if i == winners[0]:
            assert admin.operator(kit.operator_id).roles == ["administer-operators"]
        else:
            assert rpc_error(admin.operator, kit.operator_id).code() == grpc.StatusCode.NOT_FOUND
    entries = [A.AuditEntry.FromString(e) for e in _log(lone)]
    enrolled = [
        e for e in entries if e.action == A.AUDIT_ACTION_ENROLL_OPERATOR and e.outcome == A.AUDIT_OUTCOME_SUCCESS
    ]
    assert [e.target for e in enrolled] == [kits[winners[0]].operator_id]


def test_a_login_flood_takes_only_its_terminals_share(lone, worker):
    kit, _ = _admin(lone, worker)
    channel, _ = _desk(lone, "flood")
    begin = operator_pb2_grpc.OperatorAuthServiceStub(channel).BeginLogin
    before = len(_log(lone))
    codes: list[grpc.StatusCode] = []
    details: list[str] = []

    def flood() -> None:
        with ThreadPoolExecutor(8) as pool:
            calls = [pool.submit(_outcome, begin, kit.operator_id) for _ in range(2000)]
            for call in calls:
                code, detail = call.result()
                codes.append(code)
                details.append(detail.split(";")[0])

    flooding = threading.Thread(target=flood)
    started = time.monotonic()
    flooding.start()
    time.sleep(0.3)
    claims = log_in(worker, _terminal(lone, _first["desk"]), kit, rng=_rng, attempts=3)  # type: ignore[arg-type]
    flooding.join()
    took = time.monotonic() - started
    assert claims.operator_id == kit.operator_id  # the administrator logged in during the flood
    assert codes.count(grpc.StatusCode.OK) == 16
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 2000 - 16
    # Refused for its share at login; a fast machine may also meet the gate's per-peer call rate first.
    share = details.count("terminal:national:flood has 16 logins in progress, at most 16 per terminal")
    rate = sum(1 for d in details if "starts calls faster than" in d)
    assert share > 1000 and share + rate == 2000 - 16
    # 1,984 refusals: per interval, the first in full and one count when it ends. Every one is accounted for.
    flooder = "terminal:national:flood"
    wait_until(lambda: _accounting(lone, before, flooder)[1] == share, timeout=15, what="the last count")
    entries, _ = _accounting(lone, before, flooder)
    assert entries <= 2 * (took // INTERVAL + 2), (entries, took)
    _verify_served(lone, kit)


def _outcome(rpc, operator_id: str) -> tuple[grpc.StatusCode, str]:
    try:
        rpc(operator_pb2.BeginLoginRequest(operator_id=operator_id), timeout=30)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""


def _accounting(running: RunningNetwork, start: int, caller: str) -> tuple[int, int]:
    """(entries of ``caller`` since ``start``, refusals they account for): a count covers its first entry."""
    mine = {i: A.AuditEntry.FromString(e) for i, e in enumerate(_log(running)) if i >= start}
    mine = {i: e for i, e in mine.items() if e.actor == caller}
    counts = {i: e for i, e in mine.items() if f"{caller} refused " in e.detail}
    covered = {int(e.detail.split("the first is entry ")[1].split(";")[0]) for e in counts.values()}
    total = sum(int(e.detail.split(" refused ")[1].split(" ")[0]) for e in counts.values())
    return len(mine), total + len(set(mine) - set(counts) - covered)


def _verify_served(running: RunningNetwork, kit: OperatorKit) -> None:
    """Every entry is served to an auditor (paged) and proved against a signed tree head."""
    auditor = _terminal(running, "auditor")
    stored = _log(running)
    signing = x509.load_pem_x509_certificate(
        (running.network.node_dir(running.network.topology.national) / "signing.pem").read_bytes()
    )

    def head() -> A.TreeHead | None:
        signed = check_tree_head(auditor.tree_head().tree_head, signing, NODE)
        return signed if signed.tree_size >= len(stored) else None

    signed = wait_until(head, timeout=10, what="a signed head covering the log")
    served = list(auditor.audit_entries(0, signed.tree_size))
    assert served[: len(stored)] == stored
    for index in range(0, signed.tree_size, max(1, signed.tree_size // 20)):
        proof = auditor.audit.GetInclusionProof(
            A.GetInclusionProofRequest(leaf_index=index, tree_size=signed.tree_size)
        )
        verify_inclusion(leaf_hash(served[index]), index, signed.tree_size, list(proof.audit_path), signed.root_hash)


def test_huge_ids_and_callers_without_rights_grow_the_log_by_a_bounded_summary(lone, worker):
    kit, _ = _admin(lone, worker)
    channel, _ = _desk(lone, "huge")
    begin = operator_pb2_grpc.OperatorAuthServiceStub(channel).BeginLogin
    agency_channel, _ = _desk(lone, "agency", kind="agency", identity="agency:7123456789012")
    agency_begin = operator_pb2_grpc.OperatorAuthServiceStub(agency_channel).BeginLogin
    before = len(_log(lone))
    huge = "operator:national:" + "\x1b[2J" * 15_000  # 60 KiB: under the request limit, refused by the node
    started = time.monotonic()
    for i in range(300):
        code, detail = _outcome(begin, huge + str(i))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and len(detail) < 600 and "\x1b" not in detail
        code, detail = _outcome(agency_begin, kit.operator_id)
        assert code == grpc.StatusCode.PERMISSION_DENIED and "may not call this RPC" in detail
    took = time.monotonic() - started
    code, _ = _outcome(begin, "operator:national:" + "x" * (1 << 20))  # over the request limit: never parsed
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    for caller in ("terminal:national:huge", "agency:7123456789012"):
        wait_until(lambda c=caller: _accounting(lone, before, c)[1] == 300, timeout=15, what=f"{caller}'s count")
        entries, _ = _accounting(lone, before, caller)
        assert entries <= 2 * (took // INTERVAL + 2), (caller, entries, took)
    added = [A.AuditEntry.FromString(e) for e in _log(lone)[before:]]
    assert all(e.ByteSize() < 2_000 for e in added)  # 18 MB of hostile ids arrived; a few KB were written
    assert sum(e.ByteSize() for e in added) <= len(added) * 2_000
    counted = [e for e in added if "terminal:national:huge refused " in e.detail]
    assert counted and "for INVALID" in counted[-1].detail and "<U+001B>[2J" in counted[-1].detail
    _verify_served(lone, kit)


def test_a_terminal_without_the_card_backs_off_and_the_operator_still_logs_in(lone, worker):
    kit, admin = _admin(lone, worker)
    clerk = issue_card(worker, lone.network, "operator:national:clerk", PIN, _rng)
    enroll_operator(worker, admin, clerk, ["register-residents"], _rng)
    with clerk.card(worker).unlock(PIN) as card:
        certificate = card.certificate_der
    thief = operator_pb2_grpc.OperatorAuthServiceStub(_desk(lone, "thief")[0])
    for failures, delay in ((1, 1), (2, 2), (3, 4)):
        challenge = thief.BeginLogin(operator_pb2.BeginLoginRequest(operator_id=clerk.operator_id), timeout=10)
        forged = operator_pb2.CompleteLoginRequest(
            challenge_id=challenge.challenge_id, operator_id=clerk.operator_id, card_certificate=certificate,
            signature=bytes(64), sample=operator_pb2.BiometricSample(features=clerk.subject.capture(_rng).tolist()),
        )  # fmt: skip
        err = rpc_error(thief.CompleteLogin, forged, timeout=10)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert f"again in {delay} s (the operator is not locked)" in err.details()
        err = rpc_error(thief.BeginLogin, operator_pb2.BeginLoginRequest(operator_id=clerk.operator_id), timeout=10)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"{failures} consecutive failed logins of {clerk.operator_id} from terminal:national:thief" in (
            err.details()
        )
        assert "this terminal may try again in " in err.details()
        if failures < 3:
            time.sleep(delay + 0.1)
    info = admin.operator(clerk.operator_id)
    assert (info.status, info.consecutive_failures) == (operator_pb2.OPERATOR_STATUS_ACTIVE, 0)
    log_in(worker, _terminal(lone, "clerk-desk"), clerk, rng=_rng, attempts=3)  # the card holder is not held up
    listed = admin.login_attempts(clerk.operator_id)
    assert [(a.terminal, a.failures) for a in listed.attempts] == [("terminal:national:thief", 3)]
    assert "card signature over the challenge is not valid" in listed.attempts[0].last_reason
    err = rpc_error(_terminal(lone, "thief").login_attempts)  # no session: refused
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    cli = subprocess.run(
        [sys.executable, "-m", "jukinet.cli.main", "operator", "attempts", "--state", str(lone.network.state),
         "--node", NODE, "--admin", kit.operator_id.rsplit(":", 1)[1]],
        capture_output=True, text=True, env={**os.environ, "JUKINET_ADMIN_PIN": PIN}, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "operator:national:clerk from terminal:national:thief: 3 failures without the card" in cli.stdout
    entries = [A.AuditEntry.FromString(e) for e in _log(lone)]
    listings = [(e.actor, e.outcome) for e in entries if e.action == A.AUDIT_ACTION_LIST_LOGIN_ATTEMPTS]
    assert listings == [
        (kit.operator_id, A.AUDIT_OUTCOME_SUCCESS),  # over the RPC
        ("terminal:national:thief", A.AUDIT_OUTCOME_DENIED),  # refused: no session
        (kit.operator_id, A.AUDIT_OUTCOME_SUCCESS),  # the CLI
    ]
