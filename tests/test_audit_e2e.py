"""The audit log of a running CS: entries for every login and action, signed tree heads, proofs over
the RPC an outside auditor uses, and `jukinet audit verify` finding a flipped byte."""

from __future__ import annotations

import subprocess
import sys

import grpc
import lmdb
import numpy as np
from conftest import wait_until
from cryptography import x509
from netutil import bare_terminal, residents, rpc_error, terminal

from jukinet.biometrics import SyntheticSubject
from jukinet.devnet.operators import OperatorKit, enroll_operator, issue_card, log_in
from jukinet.merkle import leaf_hash, verify_consistency, verify_inclusion
from jukinet.server.audit import check_tree_head
from jukinet.v1 import audit_pb2

CS = "cs:131148"
A = audit_pb2
_rng = np.random.default_rng(7)


def _signed_head(running, at_least: int) -> audit_pb2.TreeHead:
    """The latest signed tree head once it covers ``at_least`` entries, its signature checked."""
    auditor = bare_terminal(running, CS)
    signing_cert = x509.load_pem_x509_certificate(
        (running.network.node_dir(running.network.topology.node(CS)) / "signing.pem").read_bytes()
    )

    def head():
        try:
            reply = auditor.tree_head()
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND  # none signed yet
            return None
        assert x509.load_der_x509_certificate(reply.signer_certificate) == signing_cert
        parsed = check_tree_head(reply.tree_head, signing_cert, CS)
        return parsed if parsed.tree_size >= at_least else None

    return wait_until(head, timeout=10, what=f"a signed tree head of at least {at_least} entries")


def _entries(running, start: int, end: int) -> list[bytes]:
    request = A.GetEntriesRequest(start=start, end=end)
    return list(bare_terminal(running, CS).audit.GetEntries(request).leaf_data)


def test_actions_and_login_attempts_are_logged_with_proofs(private_network, worker):
    first = _signed_head(private_network, 1)
    kit = issue_card(worker, private_network.network, "operator:131148:auditee", "135790", _rng)
    enroll_operator(worker, terminal(private_network, CS), kit, ["register-residents"], _rng)
    impostor = OperatorKit(kit.operator_id, kit.card_label, kit.pin, kit.so_pin, SyntheticSubject.create(_rng))
    rpc_error(log_in, worker, bare_terminal(private_network, CS), impostor, rng=_rng)
    desk = bare_terminal(private_network, CS)
    log_in(worker, desk, kit, rng=_rng)
    person = residents("131148", 1)[0]
    desk.record_change(person)
    rpc_error(bare_terminal(private_network, CS).record_change, residents("131148", 1)[0])  # no session

    # The refusal's entry is durable before the refusal is answered; a signed head covers it within a
    # second (other entries may be sealed in a head of their own before it).
    def covered() -> tuple[audit_pb2.TreeHead, list[A.AuditEntry]] | None:
        head = _signed_head(private_network, first.tree_size + 5)
        entries = [A.AuditEntry.FromString(leaf) for leaf in _entries(private_network, 0, head.tree_size)]
        refusal = (A.AUDIT_ACTION_RECORD_CHANGE, A.AUDIT_OUTCOME_DENIED)
        return (head, entries) if any((e.action, e.outcome) == refusal for e in entries) else None

    head, entries = wait_until(covered, timeout=10, what="a signed tree head covering the refusal")
    mine = [e for e in entries if e.target == kit.operator_id or e.actor == kit.operator_id]
    assert [(e.action, e.outcome) for e in mine] == [
        (A.AUDIT_ACTION_ENROLL_OPERATOR, A.AUDIT_OUTCOME_SUCCESS),
        (A.AUDIT_ACTION_LOGIN, A.AUDIT_OUTCOME_DENIED),
        (A.AUDIT_ACTION_LOGIN, A.AUDIT_OUTCOME_SUCCESS),
        (A.AUDIT_ACTION_RECORD_CHANGE, A.AUDIT_OUTCOME_SUCCESS),
    ]
    assert "biometric" in mine[1].detail and mine[3].target == person.resident_code
    assert all(e.terminal == "terminal:131148:ops" for e in mine)
    refused = [e for e in entries if e.action == A.AUDIT_ACTION_RECORD_CHANGE and e.outcome == A.AUDIT_OUTCOME_DENIED]
    assert refused and "operator session" in refused[-1].detail

    # Every entry is in the signed tree; the tree only grew since the first head.
    auditor = bare_terminal(private_network, CS).audit
    leaves = _entries(private_network, 0, head.tree_size)
    for index, leaf in enumerate(leaves):
        proof = auditor.GetInclusionProof(A.GetInclusionProofRequest(leaf_index=index, tree_size=head.tree_size))
        assert proof.leaf_hash == leaf_hash(leaf)
        verify_inclusion(leaf_hash(leaf), index, head.tree_size, list(proof.audit_path), head.root_hash)
    request = A.GetConsistencyProofRequest(first_tree_size=first.tree_size, second_tree_size=head.tree_size)
    proof = auditor.GetConsistencyProof(request).proof
    verify_consistency(first.tree_size, head.tree_size, first.root_hash, head.root_hash, list(proof))


def test_proof_requests_beyond_the_log_are_invalid_argument(private_network):
    auditor = bare_terminal(private_network, CS).audit
    size = _signed_head(private_network, 1).tree_size
    err = rpc_error(auditor.GetInclusionProof, A.GetInclusionProofRequest(leaf_index=size, tree_size=size))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = rpc_error(
        auditor.GetConsistencyProof, A.GetConsistencyProofRequest(first_tree_size=1, second_tree_size=10**9)
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "beyond the log's size" in err.details()
    err = rpc_error(auditor.GetEntries, A.GetEntriesRequest(start=0, end=5000))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def _verify_cli(running) -> subprocess.CompletedProcess:
    state = str(running.network.state)
    return subprocess.run(
        [sys.executable, "-m", "jukinet.cli.main", "audit", "verify", "--state", state, "--node", CS],
        capture_output=True,
        text=True,
    )


def test_audit_verify_finds_a_flipped_byte(private_network):
    _signed_head(private_network, 3)
    ok = _verify_cli(private_network)  # while the node runs: LMDB readers in another process
    assert ok.returncode == 0 and "audit log ok" in ok.stdout, ok.stdout + ok.stderr
    spec = private_network.network.topology.node(CS)
    private_network.stop_node(spec)
    env = lmdb.open(str(private_network.network.node_dir(spec) / "data"), max_dbs=32)
    leaves = env.open_db(b"audit_leaves")
    victim = 2
    with env.begin(write=True, db=leaves) as txn:
        key = victim.to_bytes(8, "big")
        damaged = bytearray(txn.get(key))
        damaged[len(damaged) // 2] ^= 0x01
        txn.put(key, bytes(damaged))
    env.close()
    bad = _verify_cli(private_network)
    assert bad.returncode == 1
    assert f"entry {victim}: stored leaf data does not hash to the recorded leaf hash" in bad.stdout
