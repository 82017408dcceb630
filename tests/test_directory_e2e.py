"""The network directory between real node processes: the national server publishes it (from the
provisioned seed, then `jukinet directory publish`), every node fetches it over its links' path,
verifies and caches it; forgeries and rollbacks served by an impostor prefecture are refused and
nothing is stored; receipts signed by a certificate the directory does not list drop nothing; an
expired directory stops links with a clear error until a newer one arrives; and a link follows its
destination to the address a new version announces.
"""

from __future__ import annotations

from concurrent import futures
from pathlib import Path

import grpc
import pytest
from conftest import start, wait_until
from netutil import address, bare_terminal, link, residents, rpc_error, run_cli, simulated, terminal

from jukinet.devnet.topology import NodeSpec, Topology, pick_free_ports
from jukinet.pki import seal
from jukinet.pki.directory import DirectoryPolicy
from jukinet.server.runtime.batches import batch_digest
from jukinet.v1 import (
    audit_pb2,
    directory_pb2,
    directory_pb2_grpc,
    link_pb2,
    link_pb2_grpc,
)

CS, PREF = "cs:131148", "pref:13"
CURRENT = directory_pb2.DIRECTORY_STATE_CURRENT


@pytest.fixture(scope="module")
def net(tmp_path_factory, softhsm, worker):
    topology = Topology.default(free_ports=True).tuned(directory_refresh_s=1)
    with start(tmp_path_factory.mktemp("directory-network"), softhsm, worker, topology) as running:
        yield running


def directory_of(running, node: str) -> directory_pb2.DirectoryStatus:
    return terminal(running, node).status().directory


def wait_version(running, node: str, version: int, timeout: float = 20) -> directory_pb2.DirectoryStatus:
    return wait_until(
        lambda: (d := directory_of(running, node)).state == CURRENT and d.version >= version and d,
        timeout=timeout,
        what=f"{node} to hold network directory version {version}",
    )


def held(running, node: str) -> directory_pb2.NetworkDirectory:
    reply = terminal(running, node).directory(0)
    return directory_pb2.NetworkDirectory.FromString(reply.directory.payload)


def content_of(d: directory_pb2.NetworkDirectory) -> directory_pb2.NetworkDirectory:
    return directory_pb2.NetworkDirectory(nodes=d.nodes, legal_table=d.legal_table, code_blocks=d.code_blocks)


FIRST: dict[str, object] = {}


def test_every_node_fetches_verifies_and_caches_the_directory(net) -> None:
    national = wait_version(net, "national", 1)
    assert national.source == "published here"
    pref = wait_version(net, PREF, national.version)
    cs = wait_version(net, CS, national.version)
    assert (pref.source, cs.source) == ("national", PREF)
    reply = terminal(net, CS).directory(0)
    verified = DirectoryPolicy(net.network.trust()).verify(reply.directory)
    FIRST["envelope"] = reply.directory
    assert {str(n) for e in verified.directory.entries for n in e.node_ids} == {
        "national", "pref:13", "cs:131148", "cs:131016"
    }  # fmt: skip
    assert verified.directory.message.legal_table[0].business == "pension-benefit"
    assert terminal(net, CS).directory(verified.version).not_modified
    assert link(net, CS, PREF).address == verified.directory.entry(PREF).address

    spec = net.network.topology.node("cs:131016")  # a restart starts from the stored directory
    before = directory_of(net, "cs:131016")
    net.stop_node(spec)
    net.start_node(spec)
    after = directory_of(net, "cs:131016")
    assert (after.state, after.version, after.fetched_at) == (CURRENT, before.version, before.fetched_at)

    state = str(net.network.state)
    shown = run_cli("directory", "show", "--state", state, "--node", CS)
    assert shown.returncode == 0, shown.stderr
    assert f"network directory version {verified.version} held by {CS} (over RPC)" in shown.stdout
    assert "signature verified" in shown.stdout and "cs:131148 → pref:13 (pref:13)" in shown.stdout
    assert "別表第1 agency 7123456789012 business pension-benefit" in shown.stdout
    stored = run_cli("directory", "show", "--state", state, "--node", "cs:131016", "--from-store")
    assert stored.returncode == 0 and f"cs:131016's store (from {PREF}" in stored.stdout, stored.stderr
    status = run_cli("status", "--state", state)
    assert f"cs-131148: version {verified.version} (current)" in status.stdout, status.stdout


def test_an_administrator_publishes_with_the_cli_and_every_node_follows(net) -> None:
    state = str(net.network.state)
    where = ["--state", state, "--node", "national"]
    before = directory_of(net, "national").version
    anonymous = run_cli("directory", "publish", "--state", state)
    assert anonymous.returncode == 1 and "jukinet operator login first" in anonymous.stderr
    login = run_cli("operator", "login", *where, "--name", "admin", env={"JUKINET_PIN": "123456"})
    assert login.returncode == 0, login.stderr
    published = run_cli("directory", "publish", "--state", state, "--validity-s", "3600")
    assert published.returncode == 0, published.stderr
    assert f"published network directory version {before + 1}: 4 nodes, 5 legal-table rows" in published.stdout
    wait_version(net, CS, before + 1)
    run_cli("operator", "logout", *where)
    # It lists the blocks of 住民票コード designated so far (each CS filled its reserve when it started).
    held = directory_pb2.NetworkDirectory.FromString(terminal(net, CS).directory().directory.payload)
    blocks = {(b.cs, b.count) for b in held.code_blocks}
    assert {("cs:131148", 1000), ("cs:131016", 1000)} <= blocks, blocks
    assert all(len(b.codes_sha256) == 32 for b in held.code_blocks)

    desk = terminal(net, "national")

    def publication() -> audit_pb2.AuditEntry | None:
        size = audit_pb2.TreeHead.FromString(desk.tree_head().tree_head.payload).tree_size
        entries = [audit_pb2.AuditEntry.FromString(e) for e in desk.audit_entries(0, size)]
        found = [e for e in entries if e.action == audit_pb2.AUDIT_ACTION_DIRECTORY_PUBLISH]
        return found[-1] if found and f"version {before + 1}" in found[-1].target else None

    entry = wait_until(publication, timeout=10, what="the publication in the national audit log")
    assert entry.actor == "operator:national:admin" and entry.outcome == audit_pb2.AUDIT_OUTCOME_SUCCESS


def test_publication_is_refused_without_an_administrator_or_for_a_malformed_directory(net) -> None:
    content = content_of(held(net, "national"))
    version = directory_of(net, "national").version
    err = rpc_error(bare_terminal(net, "national").publish_directory, content)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    duplicated = directory_pb2.NetworkDirectory()
    duplicated.CopyFrom(content)
    duplicated.nodes.append(content.nodes[1])
    err = rpc_error(terminal(net, "national").publish_directory, duplicated)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "is listed twice" in err.details()
    short = directory_pb2.NetworkDirectory()
    short.CopyFrom(content)
    short.nodes[2].signing_certificate_sha256 = b"\x00" * 20
    err = rpc_error(terminal(net, "national").publish_directory, short)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "must be 32 bytes, not 20" in err.details()
    assert directory_of(net, "national").version == version  # nothing signed, nothing stored; still serving


class ImpostorPrefecture(directory_pb2_grpc.DirectoryServiceServicer, link_pb2_grpc.LinkServiceServicer):
    """Plays pref:13 with a node-CA identity of its own (a stolen TLS key, a signing key the directory
    does not list): serves whatever directory it is told to, receipts batches exactly, signed by itself."""

    def __init__(self, running, directory: Path) -> None:
        self.node = simulated(running, [PREF], directory)
        self.serving: directory_pb2.GetDirectoryResponse | None = None
        self.batches = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        directory_pb2_grpc.add_DirectoryServiceServicer_to_server(self, self.server)
        link_pb2_grpc.add_LinkServiceServicer_to_server(self, self.server)
        tls = grpc.ssl_server_credentials(
            [(self.node.tls_key.read_bytes(), self.node.tls_cert.read_bytes())],
            self.node.trust_bundle.read_bytes(),
            True,
        )
        assert self.server.add_secure_port(address(running, PREF), tls)
        self.server.start()

    def GetDirectory(self, request, context):
        return self.serving

    def Deliver(self, request_iterator, context):
        for request in request_iterator:
            self.batches += 1
            batch = link_pb2.LinkBatch.FromString(request.batch.payload)
            receipt = link_pb2.Receipt(
                receiver=PREF, sender=batch.sender, first_sequence=batch.first_sequence,
                last_sequence=batch.last_sequence, batch_sha256=batch_digest(request.batch.payload),
                applied=len(batch.items),
            )  # fmt: skip
            yield link_pb2.DeliverResponse(receipt=seal(self.node.signer, receipt, self.node.certificate_der))


def test_an_impostor_prefecture_cannot_feed_a_directory_or_receipt_a_batch(net, tmp_path) -> None:
    genuine = terminal(net, "national").directory(0).directory
    current = directory_pb2.NetworkDirectory.FromString(genuine.payload)
    version = current.version
    stored_before = terminal(net, CS).directory(0).directory
    spec = net.network.topology.node(PREF)
    net.stop_node(spec)
    impostor = ImpostorPrefecture(net, tmp_path / "impostor")
    try:
        newer = directory_pb2.NetworkDirectory()
        newer.CopyFrom(current)
        newer.version = version + 1
        newer.nodes[0].address = "127.0.0.1:9"  # send the CS's traffic for the national server elsewhere
        tampered = directory_pb2.GetDirectoryResponse(version=version + 1, directory=genuine)
        tampered.directory.payload = newer.SerializeToString()  # the national signature, other bytes
        own = seal(impostor.node.signer, newer, impostor.node.certificate_der)
        forgeries = [
            (directory_pb2.GetDirectoryResponse(version=version + 1, directory=own), "names pref:13, not national"),
            (tampered, "signature"),
            (
                directory_pb2.GetDirectoryResponse(version=1, directory=FIRST["envelope"]),
                f"older than version {version}",
            ),
        ]
        for response, words in forgeries:
            impostor.serving = response
            status = wait_until(
                lambda w=words: w in (d := directory_of(net, CS)).last_error and d,
                timeout=20,
                what=f"the CS to refuse a directory ({words})",
            )
            assert status.version == version and status.state == CURRENT  # nothing stored
        assert terminal(net, CS).directory(0).directory == stored_before

        terminal(net, CS).register(residents("131148", 3))
        before = link(net, CS, PREF)
        status = wait_until(
            lambda: impostor.batches >= 2 and "directory version" in (s := link(net, CS, PREF)).last_error and s,
            timeout=30,
            what="the CS to judge the impostor's receipt",
        )
        assert f"not the one network directory version {version} lists" in status.last_error, status.last_error
        after = link(net, CS, PREF)
        assert after.last_receipted_sequence == before.last_receipted_sequence and after.pending >= 3
    finally:
        impostor.server.stop(None).wait()
        net.start_node(spec)
    wait_until(lambda: link(net, CS, PREF).pending == 0, what="the CS queue to drain to the real prefecture")


def test_an_expired_directory_stops_links_until_a_newer_one_arrives(net) -> None:
    content = content_of(held(net, "national"))
    short = terminal(net, "national").publish_directory(content, validity_seconds=4)
    wait_version(net, CS, short.version)
    national = net.network.topology.national
    net.stop_node(national)
    try:
        expired = wait_until(
            lambda: (d := directory_of(net, CS)).state == directory_pb2.DIRECTORY_STATE_EXPIRED and d,
            timeout=20,
            what="the CS's directory to expire",
        )
        terminal(net, CS).register(residents("131148", 2))  # the counter still works; the link waits
        status = wait_until(
            lambda: "expired at" in (s := link(net, CS, PREF)).last_error and s,
            timeout=20,
            what="the CS's link to refuse to dial with an expired directory",
        )
        assert f"network directory version {expired.version} expired at" in status.last_error
        assert "fetching a newer one" in status.last_error and status.pending >= 2
        shown = run_cli("directory", "show", "--state", str(net.network.state), "--node", CS)
        assert "(EXPIRED)" in shown.stdout, shown.stdout
    finally:
        net.start_node(national)
    renewed = wait_version(net, CS, expired.version + 1, timeout=30)  # the national server renews it
    assert renewed.state == CURRENT
    wait_until(lambda: link(net, CS, PREF).pending == 0, timeout=30, what="the CS queue to drain")
    terminal(net, "national").publish_directory(content, validity_seconds=3600)


def test_a_link_follows_its_destination_to_a_new_address(net) -> None:
    content = content_of(held(net, "national"))
    (port,) = pick_free_ports(1)
    moved = f"127.0.0.1:{port}"
    for node in content.nodes:
        if list(node.node_ids) == ["national"]:
            node.address = moved
    published = terminal(net, "national").publish_directory(content, validity_seconds=3600)
    wait_version(net, PREF, published.version)
    national = net.network.topology.national
    net.stop_node(national)
    config = net.network.node_config(national)
    config.write_text(config.read_text().replace(f'listen = "{national.listen}"', f'listen = "{moved}"'))
    net.start_node(NodeSpec(national.node_ids, moved))
    before = link(net, PREF, "national").last_receipted_sequence
    terminal(net, CS).register(residents("131148", 3))
    status = wait_until(
        lambda: (
            (s := link(net, PREF, "national")).address == moved
            and s.pending == 0
            and s.last_receipted_sequence > before
            and s
        ),
        timeout=30,
        what="the prefecture's link to follow the national server to its new address",
    )
    assert status.state == 2  # LINK_STATE_UP
