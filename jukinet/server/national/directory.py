"""Publishing the network directory at the national server.

A publication takes the next directory's content (nodes, legal-table rows, code-block summaries), gives
it the next version, its issue and expiry times, checks its structure, has the national token sign it
(the national signing certificate travels in the envelope), and then stores, audits and serves it —
through the same :meth:`NodeDirectory.accept` every node uses, so the national server never serves
what another node would refuse. Three ways in:

- ``DirectoryPublishService.PublishDirectory`` (`jukinet directory publish`): an operator session with
  the role 'administer-operators' at a national terminal. Not a role of its own: whoever administers
  operators can enroll an operator with any role, so a separate role would separate no duties.
- the seed file (``[directory] seed`` in node.toml; the development network writes it): published at
  start when the node has no directory or the file changed since it was last published from;
- renewal: the same content again as the next version, once half of the current one's validity has
  passed, so a network whose national server runs never sees its directory expire.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import tomllib
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.directory import Directory, iso_ms
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_DIRECTORY_BYTES, MAX_DIRECTORY_ROWS
from jukinet.domain.operators import Role
from jukinet.pki import Signer, seal
from jukinet.pki.directory import VerifiedDirectory
from jukinet.server.audit import Auditor
from jukinet.server.national.legal_table import rows_from_toml
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.directory import PUBLISHED_HERE, NodeDirectory
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import OperatorWithRole, TerminalOf
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, directory_pb2, directory_pb2_grpc, numbers_pb2

log = logging.getLogger(__name__)
MAX_VALIDITY_S = 366 * 24 * 3600


class DirectoryPublisher:
    """Signs and installs directory versions (plain object: the RPC in front of it only moves messages)."""

    def __init__(
        self,
        directory: NodeDirectory,
        storage: NodeStorage,
        signer: Signer,
        certificate_der: bytes,
        validity_s: int,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._directory = directory
        self._storage = storage
        self._signer = signer
        self._certificate = certificate_der
        self._validity_s = validity_s
        self._clock = clock
        self._lock = threading.Lock()  # one publication at a time: versions never collide

    def publish(
        self,
        content: directory_pb2.NetworkDirectory,
        validity_s: int = 0,
        actor: str = "",
        terminal: str = "",
        seed_digest: bytes = b"",
    ) -> VerifiedDirectory:
        """Sign ``content`` as the next version, valid ``validity_s`` seconds (0: the configured validity)."""
        validity = validity_s or self._validity_s
        if not 0 < validity <= MAX_VALIDITY_S:
            raise Rejected(Problem.INVALID, f"validity of {validity} s; between 1 s and {MAX_VALIDITY_S} s")
        with self._lock:
            message = directory_pb2.NetworkDirectory()
            message.CopyFrom(content)
            self._list_code_blocks(message)
            message.version = self._directory.floor + 1
            now = self._clock.now_ms()
            message.issued_at.FromMilliseconds(now)
            message.expires_at.FromMilliseconds(now + validity * 1000)
            size = message.ByteSize()
            if size > MAX_DIRECTORY_BYTES:
                raise Rejected(Problem.EXHAUSTED, f"network directory of {size} bytes; at most {MAX_DIRECTORY_BYTES}")
            Directory.from_message(message)  # refuse a malformed one before the token signs anything
            envelope = seal(self._signer, message, self._certificate)
            extra = (lambda txn: self._storage.directory.set_seed_digest(txn, seed_digest)) if seed_digest else None
            self._directory.accept(
                envelope, PUBLISHED_HERE, audit_pb2.AUDIT_ACTION_DIRECTORY_PUBLISH, actor, terminal, also=extra
            )
            current = self._directory.current
            assert current is not None
            expires = iso_ms(message.expires_at.ToMilliseconds())
            log.info("published network directory version %d, valid until %s", message.version, expires)
            return current

    def _list_code_blocks(self, message: directory_pb2.NetworkDirectory) -> None:
        """The designated-code blocks as this server's register has them now (a summary each: CS, block,
        count, SHA-256 of its codes). The tiers below check a code's designation from the signed block a
        CS hands over (``code_block`` items); the directory lets anyone compare. Every publication and
        renewal lists the blocks designated so far; a content's own list is replaced."""
        del message.code_blocks[:]
        room = MAX_DIRECTORY_ROWS - len(message.legal_table)
        with self._storage.env.read() as txn:
            for raw in self._storage.numbers.blocks(txn):
                if room <= 0:  # 100,000 blocks of 1,000 codes: beyond, per-CS totals would replace them
                    log.warning("network directory: more designated blocks than fit; the oldest are listed")
                    break
                block = numbers_pb2.CodeBlock.FromString(raw)
                digest = hashlib.sha256("".join(sorted(block.codes)).encode("ascii")).digest()
                message.code_blocks.add(cs=block.cs, block=block.block, count=len(block.codes), codes_sha256=digest)
                room -= 1

    def renew_if_due(self) -> None:
        """Publish the current content again once half its validity has passed (or it has expired)."""
        current = self._directory.current
        if current is None:
            return
        d = current.directory
        if self._clock.now_ms() < d.expires_at_ms - (d.expires_at_ms - d.issued_at_ms) // 2:
            return
        content = directory_pb2.NetworkDirectory(
            nodes=d.message.nodes, legal_table=d.message.legal_table, code_blocks=d.message.code_blocks
        )
        validity = max(1, (d.expires_at_ms - d.issued_at_ms) // 1000)
        self.publish(content, min(validity, MAX_VALIDITY_S), actor="renewal")

    def seed_from(self, path: Path) -> None:
        """Publish from the seed file if this node has no directory, or the file changed since it was
        last published from (an operator's later publication is not undone by a restart)."""
        try:
            digest = hashlib.sha256(path.read_bytes()).digest()
        except OSError as exc:
            raise Rejected(Problem.BROKEN, f"cannot read the directory seed {path}: {exc}") from exc
        if self._directory.current is not None and digest == self._storage.directory.seed_digest():
            return
        self.publish(content_from_toml(path), actor=f"seed {path.name}", seed_digest=digest)


def content_from_toml(path: Path) -> directory_pb2.NetworkDirectory:
    """A directory's content from a TOML file (what `jukinet directory publish --file` and the seed take)::

        [[node]]
        ids = ["cs:131148"]
        address = "127.0.0.1:50071"
        tls_sha256 = "<64 hex digits>"          # SHA-256 of the TLS certificate's DER
        signing_sha256 = "<64 hex digits>"      # SHA-256 of the signing certificate's DER
        prefecture = "pref:13"                  # a CS only

        [[row]]                                 # as in the legal tables' seed file (legal_table.py)
        agency = "7123456789012"
        business = "pension-benefit"
        title = "..."
        fields = ["name", "address"]
        table = "別表第1"                       # optional; 別表第5/第6 name a prefecture = "pref:13"
        identifier = "resident_code"            # optional; or "agency_identifier" (機関別符号)

    Structure is checked when it is published; here only the file's shape."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise Rejected(Problem.INVALID, f"cannot read directory content {path}: {exc}") from exc
    content = directory_pb2.NetworkDirectory()
    for i, node in enumerate(raw.get("node", [])):
        try:
            content.nodes.add(
                node_ids=[str(n) for n in node["ids"]],
                address=str(node["address"]),
                tls_certificate_sha256=bytes.fromhex(str(node["tls_sha256"])),
                signing_certificate_sha256=bytes.fromhex(str(node["signing_sha256"])),
                prefecture=str(node.get("prefecture", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise Rejected(Problem.INVALID, f"{path}: node {i + 1}: {type(exc).__name__}: {exc}") from None
    try:
        content.legal_table.extend(rows_from_toml(path))
    except Rejected as exc:
        raise Rejected(Problem.INVALID, str(exc)) from None
    return content


class DirectoryPublishRpc(directory_pb2_grpc.DirectoryPublishServiceServicer):
    def __init__(
        self, publisher: DirectoryPublisher, auditor: Auditor, blocking: Blocking, sites: frozenset[str]
    ) -> None:
        self._publisher = publisher
        self.auditor = auditor
        self.blocking = blocking
        self.administrators = OperatorWithRole(TerminalOf(sites), Role.ADMINISTER_OPERATORS)

    @guarded("administrators", audit=audit_pb2.AUDIT_ACTION_DIRECTORY_PUBLISH)
    def PublishDirectory(
        self, request: directory_pb2.PublishDirectoryRequest, caller: Caller
    ) -> directory_pb2.PublishDirectoryResponse:
        published = self._publisher.publish(
            request.content, request.validity_seconds, actor=caller.actor, terminal=str(caller.primary)
        )
        message = published.directory.message
        return directory_pb2.PublishDirectoryResponse(
            version=message.version, issued_at=message.issued_at, expires_at=message.expires_at
        )


def directory_publish_service(parts: NodeParts) -> ServiceBinding:
    """The national tier's directory publication (see jukinet.server.assembly.TIERS); it also renews the
    directory and publishes from the seed file."""
    config = parts.config
    publisher = DirectoryPublisher(
        parts.directory,
        parts.storage,
        parts.signer,
        parts.certificate.public_bytes(Encoding.DER),
        config.directory_validity_s,
        parts.clock,
    )
    parts.directory.renewer = publisher.renew_if_due
    if config.directory_seed is not None:
        publisher.seed_from(config.directory_seed)
    return bind(DirectoryPublishRpc(publisher, parts.auditor, parts.blocking, parts.sites))
