"""The network directory as plain objects (no gRPC, no SoftHSM): the verification policy refuses every
forgery, rollback and malformed directory before anything is stored; a node keeps the last verified
one across a restart, answers peers from it, and refuses to act on it once it has expired.

Keys are software keys certified by a development PKI, stand-ins for tokens in this unit test only;
tests/test_directory_e2e.py runs the same between real node processes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.devnet.simulated import SimulatedNode
from jukinet.domain.clock import ManualClock
from jukinet.domain.directory import Directory
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.pki import TrustStore, init_pki, revoke, seal, seal_payload
from jukinet.pki.directory import DIRECTORY_TYPE, DirectoryPolicy
from jukinet.server.audit import Auditor
from jukinet.server.national.directory import DirectoryPublisher, content_from_toml
from jukinet.server.runtime.directory import PUBLISHED_HERE, NodeDirectory
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, directory_pb2

DAY_MS = 24 * 3600 * 1000
NODES = {"national": ["national"], "pref": ["pref:13", "pref:14"], "cs1": ["cs:131148"], "cs2": ["cs:131016"]}


def _sha256_pem(path: Path) -> bytes:
    return hashlib.sha256(x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)).digest()


@dataclass
class World:
    pki: Path
    trust: TrustStore
    clock: ManualClock
    nodes: dict[str, SimulatedNode]
    base: Path

    def content(self) -> directory_pb2.NetworkDirectory:
        content = directory_pb2.NetworkDirectory()
        for port, (name, node) in enumerate(self.nodes.items(), start=50051):
            entry = content.nodes.add(
                node_ids=list(node.node_ids),
                address=f"127.0.0.1:{port}",
                tls_certificate_sha256=_sha256_pem(node.tls_cert),
                signing_certificate_sha256=hashlib.sha256(node.certificate_der).digest(),
            )
            if name.startswith("cs"):
                entry.prefecture = f"pref:{node.node_id[3:5]}"
        content.legal_table.add(
            table="別表第1", agency="7123456789012", business="pension-benefit", title="年金", fields=["name"]
        )
        return content

    def directory(self, version: int = 1, validity_ms: int = DAY_MS, content=None) -> directory_pb2.NetworkDirectory:
        message = directory_pb2.NetworkDirectory()
        message.CopyFrom(content if content is not None else self.content())
        message.version = version
        message.issued_at.FromMilliseconds(self.clock.now_ms())
        message.expires_at.FromMilliseconds(self.clock.now_ms() + validity_ms)
        return message

    def signed(self, message, by: str = "national"):
        node = self.nodes[by]
        return seal(node.signer, message, node.certificate_der)

    def policy(self) -> DirectoryPolicy:
        return DirectoryPolicy(self.trust, self.clock)

    def node_directory(self, name: str, peers: dict[str, str] | None = None) -> NodeDirectory:
        storage = NodeStorage.open(self.base / f"data-{name}")
        auditor = Auditor(storage, self.clock)

        def audit(action: int, actor: str, terminal: str, target: str, detail: str) -> bytes:
            return auditor.entry(action, audit_pb2.AUDIT_OUTCOME_SUCCESS, actor, terminal, target, detail)

        ids = [NodeId.parse(n) for n in self.nodes[name].node_ids] if name in self.nodes else [NodeId.parse(name)]
        made = NodeDirectory(ids, self.policy(), storage, peers or {}, audit, self.clock)
        made.storage = storage  # type: ignore[attr-defined]
        return made


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("directory")
    pki = base / "pki"
    init_pki(pki)
    nodes = {name: SimulatedNode.issue(pki, ids, base / name) for name, ids in NODES.items()}
    return World(pki, TrustStore.load(pki), ManualClock(), nodes, base)


# -- the policy ----------------------------------------------------------------------------------------


def test_a_directory_signed_by_the_national_server_verifies(world: World) -> None:
    verified = world.policy().verify(world.signed(world.directory(3)))
    assert verified.version == 3
    assert verified.directory.entry("pref:14").address == verified.directory.entry("pref:13").address
    assert [str(n) for n in verified.directory.cs_nodes()] == ["cs:131148", "cs:131016"]


def _refused(world: World, envelope, problem: Problem, words: str, **kwargs) -> None:
    with pytest.raises(Rejected) as caught:
        world.policy().verify(envelope, **kwargs)
    assert caught.value.problem is problem, caught.value
    assert words in str(caught.value), str(caught.value)


def test_a_tampered_directory_is_refused(world: World) -> None:
    envelope = world.signed(world.directory(2))
    message = directory_pb2.NetworkDirectory.FromString(envelope.payload)
    message.nodes[2].address = "203.0.113.9:50071"  # an attacker redirects a CS
    envelope.payload = message.SerializeToString()
    _refused(world, envelope, Problem.UNAUTHENTICATED, "signature")


def test_a_directory_signed_by_another_node_is_refused(world: World) -> None:
    _refused(world, world.signed(world.directory(2), by="pref"), Problem.DENIED, "names pref:13,pref:14, not national")
    # the national server's TLS key (a file) cannot sign it either: only its token's signing certificate
    tls_der = x509.load_pem_x509_certificate(world.nodes["national"].tls_cert.read_bytes()).public_bytes(Encoding.DER)
    envelope = world.signed(world.directory(2))
    envelope.certificate = tls_der
    _refused(world, envelope, Problem.UNAUTHENTICATED, "not a signing certificate")


def test_a_national_certificate_the_directory_does_not_list_is_refused(world: World, tmp_path: Path) -> None:
    other = SimulatedNode.issue(world.pki, ["national"], tmp_path / "other-national")
    envelope = seal(other.signer, world.directory(2), other.certificate_der)
    _refused(world, envelope, Problem.DENIED, "does not list")


def test_a_revoked_national_certificate_is_refused(world: World, tmp_path: Path) -> None:
    stolen = SimulatedNode.issue(world.pki, ["national"], tmp_path / "stolen")
    content = world.content()
    content.nodes[0].signing_certificate_sha256 = hashlib.sha256(stolen.certificate_der).digest()
    envelope = seal(stolen.signer, world.directory(2, content=content), stolen.certificate_der)
    world.policy().verify(envelope)
    revoke(world.pki, "node", x509.load_der_x509_certificate(stolen.certificate_der).serial_number)
    _refused(world, envelope, Problem.UNAUTHENTICATED, "revoked")


def test_an_envelope_of_another_type_is_refused(world: World) -> None:
    node = world.nodes["national"]
    envelope = seal_payload(
        node.signer, "jukinet.v1.Receipt", world.directory(2).SerializeToString(), node.certificate_der
    )
    _refused(world, envelope, Problem.INVALID, f"expected {DIRECTORY_TYPE}")


def test_rollback_and_equivocation_are_refused(world: World) -> None:
    policy = world.policy()
    held = policy.verify(world.signed(world.directory(5)))
    _refused(world, world.signed(world.directory(4)), Problem.CONFLICT, "older than version 5", cached=held)
    _refused(world, world.signed(world.directory(4)), Problem.CONFLICT, "older than version 5", floor=5)
    other = world.directory(5, validity_ms=2 * DAY_MS)
    _refused(world, world.signed(other), Problem.CONFLICT, "differs from the version 5", cached=held)
    assert policy.verify(held.envelope, held).version == 5  # the same bytes again: fine
    assert policy.verify(world.signed(world.directory(6)), held).version == 6


def test_expired_and_future_directories_are_refused(world: World) -> None:
    envelope = world.signed(world.directory(2, validity_ms=1000))
    world.clock.advance(2)
    _refused(world, envelope, Problem.UNAVAILABLE, "network directory version 2 expired at")
    assert world.policy().verify(envelope, allow_expired=True).version == 2  # read back from a store: reported
    future = world.directory(3)
    future.issued_at.FromMilliseconds(world.clock.now_ms() + 3600_000)
    future.expires_at.FromMilliseconds(world.clock.now_ms() + DAY_MS)
    _refused(world, world.signed(future), Problem.INVALID, "issued in the future")


def _malformed(world: World, change) -> None:
    content = world.content()
    change(content)
    return world.signed(world.directory(2, content=content))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c.nodes.append(c.nodes[2]), "cs:131148 is listed twice"),
        (lambda c: c.nodes[3].node_ids.append("pref:13"), "not nodes of one kind"),
        (lambda c: c.nodes[2].node_ids.__setitem__(0, "cs:131149"), "invalid node id"),
        (lambda c: c.nodes[2].node_ids.__setitem__(0, "agency:7123456789012"), "not nodes of one kind"),
        (lambda c: setattr(c.nodes[2], "tls_certificate_sha256", b"\x01" * 31), "must be 32 bytes, not 31"),
        (lambda c: setattr(c.nodes[3], "signing_certificate_sha256", b""), "must be 32 bytes, not 0"),
        (lambda c: setattr(c.nodes[2], "address", "not an address"), "is not host:port"),
        (lambda c: setattr(c.nodes[2], "address", "127.0.0.1:70000"), "out of range"),
        (lambda c: setattr(c.nodes[3], "address", c.nodes[2].address), "share the address"),
        (lambda c: setattr(c.nodes[2], "prefecture", "pref:14"), "expected pref:13"),
        (lambda c: setattr(c.nodes[1], "prefecture", "pref:13"), "only a CS belongs to a prefecture"),
        (lambda c: c.nodes[1].node_ids.pop(0), "pref:13, which no prefecture process serves"),
        (lambda c: c.nodes.add().CopyFrom(directory_pb2.DirectoryNode()), "names no node"),
        (lambda c: c.legal_table[0].__setattr__("agency", "7123456789013"), "agency:"),
        (lambda c: c.legal_table.append(c.legal_table[0]), "twice"),
        (lambda c: c.code_blocks.add(cs="cs:131130", block=1, count=10, codes_sha256=b"\0" * 32), "not a CS of this"),
    ],
)
def test_a_malformed_directory_is_refused_whole(world: World, change, words: str) -> None:
    _refused(world, _malformed(world, change), Problem.INVALID, words)


def test_a_directory_without_a_national_server_is_refused(world: World) -> None:
    content = world.content()
    del content.nodes[0]
    with pytest.raises(Rejected, match="exactly one national server"):
        Directory.from_message(world.directory(2, content=content))


# -- the node's directory ---------------------------------------------------------------------------------


def test_a_node_bootstraps_from_node_toml_then_takes_the_directory_and_keeps_it(world: World) -> None:
    cs = world.node_directory("cs1", peers={"pref:13": "127.0.0.1:1", "national": "127.0.0.1:2"})
    assert (cs.version, cs.address("pref:13"), cs.fingerprints("pref:13")) == (0, "127.0.0.1:1", None)
    assert cs.status().state == directory_pb2.DIRECTORY_STATE_BOOTSTRAP
    with pytest.raises(Rejected, match=r"node.toml \[peers\] has no cs:131016") as caught:
        cs.address("cs:131016")
    assert caught.value.problem is Problem.NOT_FOUND
    changed = []
    cs.subscribe(lambda: changed.append(cs.version))
    assert cs.accept(world.signed(world.directory(7)), "pref:13")
    assert not cs.accept(cs.current.envelope, "pref:13")  # the version already held: nothing to do
    assert changed == [7]
    assert cs.address("pref:14") == "127.0.0.1:50052"  # the consolidated centre that serves pref:14
    assert cs.fingerprints("pref:13").signing == hashlib.sha256(world.nodes["pref"].certificate_der).digest()
    assert str(cs.prefecture_server_of("cs:131016")) == "pref:13"
    with pytest.raises(Rejected, match="cs:131130 is not in network directory version 7"):
        cs.address("cs:131130")
    accepted = cs.storage.audit  # type: ignore[attr-defined]
    assert accepted.size() == 1
    cs.storage.close()  # type: ignore[attr-defined]

    again = world.node_directory("cs1")  # a restart starts from what was stored
    status = again.status()
    assert (again.version, status.state, status.source) == (7, directory_pb2.DIRECTORY_STATE_CURRENT, "pref:13")
    with pytest.raises(Rejected) as rollback:
        again.accept(world.signed(world.directory(6)), "pref:13")
    assert rollback.value.problem is Problem.CONFLICT and "older than version 7" in str(rollback.value)
    assert again.version == 7 and again.storage.directory.current().envelope == again.current.envelope  # type: ignore[attr-defined]
    again.storage.close()  # type: ignore[attr-defined]


def test_an_expired_directory_is_not_acted_on(world: World) -> None:
    cs = world.node_directory("cs2", peers={"pref:13": "127.0.0.1:1"})
    cs.accept(world.signed(world.directory(3, validity_ms=60_000)), "pref:13")
    assert cs.address("pref:13") == "127.0.0.1:50052"
    world.clock.advance(61)
    for ask in (cs.address, cs.fingerprints, cs.prefecture_server_of):
        with pytest.raises(Rejected) as caught:
            ask("cs:131016" if ask == cs.prefecture_server_of else "pref:13")
        assert caught.value.problem is Problem.UNAVAILABLE
        assert "network directory version 3 expired at" in str(caught.value) and "fetching" in str(caught.value)
    assert cs.status().state == directory_pb2.DIRECTORY_STATE_EXPIRED
    assert cs.answer(0).version == 3  # it still hands the signed envelope on: the reader judges it
    assert cs.source_addresses(NodeId.parse("pref:13")) == ["127.0.0.1:50052", "127.0.0.1:1"]
    cs.accept(world.signed(world.directory(4)), "national")
    assert cs.address("pref:13") == "127.0.0.1:50052"
    cs.storage.close()  # type: ignore[attr-defined]


def test_the_national_server_publishes_renews_and_seeds(world: World, tmp_path: Path) -> None:
    national = world.node_directory("national")
    node = world.nodes["national"]
    publisher = DirectoryPublisher(national, national.storage, node.signer, node.certificate_der, 3600, world.clock)  # type: ignore[attr-defined]
    with pytest.raises(Rejected) as caught:
        bad = world.content()
        bad.nodes.append(bad.nodes[1])
        publisher.publish(bad)
    assert caught.value.problem is Problem.INVALID and national.version == 0  # nothing signed, nothing stored
    first = publisher.publish(world.content(), actor="operator:national:admin")
    assert first.version == 1 and national.status().source == PUBLISHED_HERE
    publisher.renew_if_due()
    assert national.version == 1  # not due
    world.clock.advance(1801)
    publisher.renew_if_due()
    assert national.version == 2
    assert national.current.directory.message.nodes == first.directory.message.nodes

    seed = tmp_path / "directory.toml"
    lines = []
    for entry in world.content().nodes:
        ids = ", ".join(f'"{n}"' for n in entry.node_ids)
        lines += ["[[node]]", f"ids = [{ids}]", f'address = "{entry.address}"',
                  f'tls_sha256 = "{entry.tls_certificate_sha256.hex()}"',
                  f'signing_sha256 = "{entry.signing_certificate_sha256.hex()}"']  # fmt: skip
        lines += [f'prefecture = "{entry.prefecture}"'] if entry.prefecture else []
    lines += ["[[row]]", 'agency = "7123456789012"', 'business = "pension-benefit"', 'title = "年金"']
    seed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(content_from_toml(seed).nodes) == 4
    publisher.seed_from(seed)
    assert national.version == 3  # a new seed file
    publisher.seed_from(seed)
    assert national.version == 3  # the same one: an operator's later publication stays
    with pytest.raises(Rejected, match="validity"):
        publisher.publish(world.content(), validity_s=400 * 24 * 3600)
    national.storage.close()  # type: ignore[attr-defined]


def test_a_prefecture_saying_not_modified_cannot_freeze_the_directory(world: World) -> None:
    """Attack (review finding 10): a compromised prefecture answers every GetDirectory with "not modified";
    once half the validity has passed the CS asks the national server too and takes its newer version."""
    import asyncio

    from jukinet.server.runtime.directory import DirectoryRefresher

    cs = world.node_directory("cs:131130", peers={"pref:13": "127.0.0.1:1", "national": "127.0.0.1:2"})
    cs.accept(world.signed(world.directory(3, validity_ms=100_000)), "national")
    asked: list[str] = []

    class Frozen(DirectoryRefresher):
        async def _fetch(self, source, address, known):  # type: ignore[override]
            asked.append(str(source))
            if str(source) == "pref:13":  # the lying upstream
                return directory_pb2.GetDirectoryResponse(not_modified=True, version=known)
            return directory_pb2.GetDirectoryResponse(version=4, directory=newer)

    async def blocking(fn, *args):
        return fn(*args)

    sources = [NodeId.parse("pref:13"), NodeId.national()]
    refresher = Frozen(cs, sources, None, blocking, 60.0)  # type: ignore[arg-type]
    assert asyncio.run(refresher.refresh()) and asked == ["pref:13"] and cs.version == 3  # early: believed
    world.clock.advance(50)
    newer = world.signed(world.directory(4, validity_ms=100_000))  # what the national server renewed meanwhile
    asked.clear()
    assert asyncio.run(refresher.refresh())
    assert asked == ["pref:13", "national"] and cs.version == 4
    assert not cs.half_expired()
    cs.storage.close()  # type: ignore[attr-defined]
