"""One node process, assembled from its configuration: the parts every tier shares, plus a table of
what each tier adds (:data:`TIERS`) — data, not if/else on the node kind.

Every node: the token signer (X-Road's signer model: this process's one token worker does every token
operation), the LMDB storage, the peer gate, operator login and administration, the audit log and its
tree-head signer, node status, its outbound links, and its network directory (served and refreshed).
Per tier: which RPC services it adds and which kinds of link item its intake accepts (a node whose tier
accepts none serves no LinkService).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.node_ids import NodeKind
from jukinet.hsm import TokenSigner, TokenWorker
from jukinet.pki import TrustStore
from jukinet.pki.directory import DirectoryPolicy
from jukinet.server.admin import NodeAdminRpc
from jukinet.server.audit import Auditor, AuditRpc, TreeHeadSigner
from jukinet.server.login import OperatorAdministration, OperatorLogins, TemplateVault
from jukinet.server.operator_rpc import OperatorAdminRpc, OperatorAuthRpc
from jukinet.server.parts import NodeParts
from jukinet.server.provision_index import ProvisionIndexer
from jukinet.server.runtime.config import NodeConfig
from jukinet.server.runtime.directory import DirectoryRefresher, DirectoryRpc, NodeDirectory, directory_sources
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.intake import LinkIntake
from jukinet.server.runtime.link_service import LinkRpc
from jukinet.server.runtime.links import LinkContext, LinkSet, LinkSettings
from jukinet.server.runtime.peers import PeerAuthenticator, PeerGate
from jukinet.server.runtime.readers import ReaderPool
from jukinet.server.runtime.server import NodeServer, TlsMaterial, bind
from jukinet.server.runtime.sessions import SessionIssuer, SessionVerifier
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2

log = logging.getLogger(__name__)
BULK_WORKERS = 3


# -- what each tier adds: data; each tier's modules load only in the process that serves it ------------


@dataclass(frozen=True)
class Tier:
    services: tuple[str, ...] = ()  # "module:function", each (NodeParts) -> ServiceBinding
    item_handlers: tuple[str, ...] = ()  # "module:function", each (NodeParts) -> ItemHandler its intake uses
    workers: tuple[str, ...] = ()  # "module:function", each (NodeParts) -> Worker: background, started and stopped


TIERS: dict[NodeKind, Tier] = {
    NodeKind.CS: Tier(
        services=(
            "jukinet.cs_node.registry:registry_service",
            "jukinet.cs_node.moves:move_service",
            "jukinet.cs_node.cards:card_service",
            "jukinet.cs_node.copies:copy_service",
            "jukinet.cs_node.copies:copy_exchange_service",
            "jukinet.cs_node.copies:dv_measure_service",
            "jukinet.cs_node.disclosure:disclosure_service",
            "jukinet.cs_node.disclosure:disclosure_counter_service",
        ),
        item_handlers=(
            "jukinet.cs_node.move_intake:move_out_certificates",
            "jukinet.cs_node.move_intake:move_in_notices",
        ),
    ),
    NodeKind.PREFECTURE: Tier(
        services=("jukinet.server.prefecture.provision:provision_service",),
        item_handlers=(
            "jukinet.server.prefecture.notices:cs_change_notices",
            "jukinet.server.prefecture.notices:cs_card_events",
            "jukinet.server.prefecture.notices:cs_code_blocks",
        ),
    ),
    NodeKind.NATIONAL: Tier(
        services=(
            "jukinet.server.national.provision:provision_service",
            "jukinet.server.national.provision:search_service",
            "jukinet.server.national.batch:batch_service",
            "jukinet.server.national.directory:directory_publish_service",
            "jukinet.server.national.numbers:number_service",
            "jukinet.server.national.push:subscription_service",
            "jukinet.server.national.disclosure:disclosure_service",
            "jukinet.server.national.statistics:statistics_service",
        ),
        item_handlers=("jukinet.server.national.notices:relayed_change_notices",),
        workers=("jukinet.server.national.statistics:movement_follower",),
    ),
    NodeKind.CARD_MANAGEMENT: Tier(item_handlers=("jukinet.server.card_events:card_states",)),
    NodeKind.JPKI: Tier(item_handlers=("jukinet.server.card_events:jpki_revocations",)),
}


class Worker(Protocol):
    """A tier's background work (e.g. the national movement follower): started after the server, stopped
    before the store closes."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def _load(name: str) -> Callable[[NodeParts], Any]:
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


# -- the node --------------------------------------------------------------------------------------


@dataclass
class Node:
    parts: NodeParts
    server: NodeServer
    tree_heads: TreeHeadSigner
    refresher: DirectoryRefresher
    indexer: ProvisionIndexer
    workers: list[Worker] = field(default_factory=list)
    _stopped: bool = field(default=False)

    async def start(self) -> None:
        await self.server.start()
        self.tree_heads.start()
        self.indexer.start()
        self.parts.links.start()
        self.refresher.start()
        for worker in self.workers:
            worker.start()
        log.info("%s serving on %s", self.parts.config.name, self.parts.config.listen)

    async def stop(self) -> None:
        """Stop serving, stop the links, then sign the last tree head and close the token and the store."""
        if self._stopped:
            return
        self._stopped = True
        await self.server.stop(grace=2.0)
        await self.refresher.stop()
        await self.parts.links.stop()
        for worker in self.workers:
            worker.stop()
        self.indexer.stop()
        self.tree_heads.stop()
        for close in self.parts.closers:
            close()
        self.parts.blocking.shutdown()
        self.parts.bulk.shutdown()
        self.parts.signer.close()
        self.parts.storage.close()


def assemble(config: NodeConfig, worker: TokenWorker, clock: Clock = SYSTEM_CLOCK) -> Node:
    """Build (not start) the node ``config`` describes, using this process's token worker."""
    trust = TrustStore.load(config.pki_dir, clock=clock)
    tls = TlsMaterial.from_files(config.tls_cert, config.tls_key, trust.bundle_pem)
    storage = NodeStorage.open(config.data_dir, config.map_size)
    pin = config.token_pin_file.read_text(encoding="utf-8").strip()
    signer = TokenSigner(worker, config.token_label, pin, config.token_key_label)
    certificate = x509.load_pem_x509_certificate(config.signing_certificate.read_bytes())
    if certificate.public_key().public_numbers() != signer.public_key.public_numbers():  # type: ignore[union-attr]
        raise RuntimeError(f"{config.signing_certificate} is not the certificate of the token's signing key")
    certificate_der = certificate.public_bytes(Encoding.DER)
    blocking = Blocking(config.workers)
    bulk = Blocking(BULK_WORKERS)
    auditor = Auditor(storage, clock, config.refusal_interval)
    node_id = str(config.node_id)

    def directory_audit(action: int, actor: str, terminal: str, target: str, detail: str) -> bytes:
        return auditor.entry(action, audit_pb2.AUDIT_OUTCOME_SUCCESS, actor, terminal, target, detail)

    directory = NodeDirectory(
        config.node_ids, DirectoryPolicy(trust, clock), storage, config.peers, directory_audit, clock
    )
    links = LinkSet(
        LinkContext(
            sender=config.node_id,
            signer=signer,
            certificate_der=certificate_der,
            trust=trust,
            storage=storage,
            credentials=tls.channel_credentials(),
            blocking=bulk,
            settings=LinkSettings(window=config.window, keepalive=config.keepalive),
            clock=clock,
        ),
        directory,
        always=(config.upstream,) if config.upstream else (),
    )
    directory.subscribe(links.directory_changed)
    parts = NodeParts(
        config,
        clock,
        trust,
        storage,
        signer,
        certificate,
        auditor,
        blocking,
        bulk,
        links,
        directory,
        ReaderPool(storage, config.batch_readers),
    )
    parts.closers.append(parts.readers.close)
    sessions = SessionVerifier(
        node_id, signer.public_key, storage.operators.get, storage.operators.revoked_sessions(clock.now_ms()), clock
    )
    vault = TemplateVault(signer)
    logins = OperatorLogins(
        config.node_id, parts.sites, storage, trust, vault,
        SessionIssuer(node_id, signer, config.session_seconds, clock), sessions, parts.auditor, clock,
        max_pending=config.pending_logins, max_pending_per_terminal=config.pending_logins_per_terminal,
    )  # fmt: skip
    administration = OperatorAdministration(parts.sites, storage, trust, vault, parts.auditor, clock)
    services = [
        bind(NodeAdminRpc(config.node_ids, storage, links, parts.auditor, blocking, directory.status)),
        bind(DirectoryRpc(config.node_ids, directory, blocking)),
        bind(OperatorAuthRpc(logins, parts.sites, parts.auditor, blocking)),
        bind(OperatorAdminRpc(administration, logins, parts.sites, parts.auditor, blocking)),
        bind(AuditRpc(config.node_ids, storage, certificate, blocking)),
    ]
    tier = TIERS[config.kind]
    services += [_load(make)(parts) for make in tier.services]
    if tier.item_handlers:
        handlers = {h.kind: h for h in (_load(make)(parts) for make in tier.item_handlers)}

        def after_commit() -> None:
            links.wake_queued()
            parts.committed.notify()

        intake = LinkIntake(
            config.node_ids, trust, storage, signer, certificate_der, handlers, clock, after_commit
        )  # fmt: skip
        services.append(bind(LinkRpc(intake, bulk)))
    gate = PeerGate(PeerAuthenticator(trust, sessions), config.limits)
    server = NodeServer(config.listen, tls, services, gate, config.keepalive)
    refresher = DirectoryRefresher(
        directory,
        directory_sources(config.node_id, config.upstream),
        tls.channel_credentials(),
        bulk,
        config.directory_refresh_s,
        config.keepalive,
    )
    workers = [_load(make)(parts) for make in tier.workers]
    tree_heads = TreeHeadSigner(node_id, storage, signer, auditor=parts.auditor)
    hasher = ReaderPool(storage, min(1, config.batch_readers))  # its own: batch chunks never wait behind it
    parts.closers.append(hasher.close)
    indexer = ProvisionIndexer(storage.provisions, hasher)
    return Node(parts, server, tree_heads, refresher, indexer, workers)
