"""Assembles and runs one node (CS, prefecture or national) from its configuration file.

One process per node. The process activates the SoftHSM configuration before anything loads the
PKCS#11 library (SoftHSM reads SOFTHSM2_CONF once per process), opens its LMDB environment, starts
the token signer, the gRPC server and (below the national tier) the forwarder, and on SIGTERM or
SIGINT stops them in reverse order.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from jukinet.domain.node_ids import NodeKind
from jukinet.hsm import SoftHsmConfig, TokenSigner, find_softhsm_module
from jukinet.node.admin import NodeAdminService, site_of
from jukinet.node.audit import Auditor, AuditService, TreeHeadSigner
from jukinet.node.batches import BatchSigner, BatchVerifier
from jukinet.node.config import NodeConfig
from jukinet.node.forwarder import Forwarder
from jukinet.node.grpc_runtime import NodeServer, ServiceBinding, TlsMaterial, secure_channel
from jukinet.node.operator_auth import OperatorAdminService, OperatorAuthService, TemplateVault
from jukinet.node.security import PeerAuthenticator
from jukinet.node.sessions import SessionIssuer, SessionVerifier
from jukinet.pki import TrustStore
from jukinet.storage.node_store import NodeStore
from jukinet.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    notice_pb2,
    notice_pb2_grpc,
    operator_pb2,
    operator_pb2_grpc,
    provision_pb2,
    provision_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
)

log = logging.getLogger(__name__)


@dataclass
class RunningNode:
    config: NodeConfig
    store: NodeStore
    signer: TokenSigner
    server: NodeServer
    tree_heads: TreeHeadSigner
    forwarder: Forwarder | None = None
    _stopping: threading.Lock = field(default_factory=threading.Lock)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """Stop serving, stop forwarding, then close the token session and the store."""
        if not self._stopping.acquire(blocking=False):
            return
        self.server.stop(grace=2.0)
        if self.forwarder is not None:
            self.forwarder.stop()
        self.tree_heads.stop()
        self.signer.close()
        self.store.close()
        self._stopped.set()

    def wait(self) -> None:
        self._stopped.wait()


def start_node(config: NodeConfig) -> RunningNode:
    SoftHsmConfig(config.softhsm_dir).activate()
    trust = TrustStore.load(config.pki_dir)
    tls = TlsMaterial.from_files(config.tls_cert, config.tls_key, trust.bundle_pem)
    store = NodeStore(config.data_dir, config.map_size)
    pin = config.token_pin_file.read_text(encoding="utf-8").strip()
    signer = TokenSigner(find_softhsm_module(), config.token_label, pin, config.token_key_label)
    certificate = x509.load_pem_x509_certificate(config.signing_certificate.read_bytes())
    node_id = str(config.node_ids[0])
    batch_signer = BatchSigner(node_id, signer, certificate)
    sessions = SessionVerifier(
        node_id, signer.public_key, signer.key_id, store.operators.get, store.operators.revoked_sessions()
    )
    authenticator = PeerAuthenticator(trust, sessions)
    auditor = Auditor(store)
    forwarder: Forwarder | None = None
    if config.upstream:
        upstream = config.upstream
        forwarder = Forwarder(store, batch_signer, lambda: secure_channel(upstream, tls), upstream)
    sites = {site_of(n) for n in config.node_ids}
    vault = TemplateVault(signer)
    services = [
        ServiceBinding(
            NodeAdminService(config.node_ids, authenticator, store, auditor),
            admin_pb2_grpc.add_NodeAdminServiceServicer_to_server,
            admin_pb2.DESCRIPTOR.services_by_name["NodeAdminService"],
        ),
        ServiceBinding(
            OperatorAuthService(
                node_id,
                sites,
                authenticator,
                store,
                trust,
                vault,
                SessionIssuer(node_id, signer, config.session_seconds),
                sessions,
                auditor,
            ),
            operator_pb2_grpc.add_OperatorAuthServiceServicer_to_server,
            operator_pb2.DESCRIPTOR.services_by_name["OperatorAuthService"],
        ),
        ServiceBinding(
            OperatorAdminService(sites, authenticator, store, trust, vault, auditor),
            operator_pb2_grpc.add_OperatorAdminServiceServicer_to_server,
            operator_pb2.DESCRIPTOR.services_by_name["OperatorAdminService"],
        ),
        ServiceBinding(
            AuditService(sites, authenticator, store, certificate),
            audit_pb2_grpc.add_AuditServiceServicer_to_server,
            audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
        ),
    ]
    services += _tier_services(config, authenticator, store, trust, auditor, forwarder)
    server = NodeServer(config.listen, tls, services, workers=config.workers)
    tree_heads = TreeHeadSigner(node_id, store, signer)
    server.start()
    tree_heads.start()
    if forwarder is not None:
        forwarder.start()
    log.info("%s serving on %s", config.name, config.listen)
    return RunningNode(config, store, signer, server, tree_heads, forwarder)


def _tier_services(
    config: NodeConfig,
    authenticator: PeerAuthenticator,
    store: NodeStore,
    trust: TrustStore,
    auditor: Auditor,
    forwarder: Forwarder | None,
) -> list[ServiceBinding]:
    # Imported here so that each tier's modules load only in the process that serves them.
    wake = forwarder.wake if forwarder is not None else (lambda: None)
    if config.kind is NodeKind.CS:
        from jukinet.cs_node.registry import ResidentRegistryService

        return [
            ServiceBinding(
                ResidentRegistryService(config.node_ids[0], authenticator, store, auditor, wake),
                registry_pb2_grpc.add_ResidentRegistryServiceServicer_to_server,
                registry_pb2.DESCRIPTOR.services_by_name["ResidentRegistryService"],
            )
        ]
    from jukinet.server.notice_ingest import (
        MunicipalitiesOfCallerPrefectures,
        MunicipalitiesOfHostedPrefectures,
        NoticeIngestService,
    )

    if config.kind is NodeKind.PREFECTURE:
        authority = MunicipalitiesOfHostedPrefectures(frozenset(n.code for n in config.node_ids))
    else:
        authority = MunicipalitiesOfCallerPrefectures()
    bindings = [
        ServiceBinding(
            NoticeIngestService(
                authenticator,
                store,
                BatchVerifier(trust),
                authority,
                forward=forwarder is not None,
                on_stored=wake,
            ),
            notice_pb2_grpc.add_NoticeServiceServicer_to_server,
            notice_pb2.DESCRIPTOR.services_by_name["NoticeService"],
        )
    ]
    if config.kind is NodeKind.NATIONAL:
        from jukinet.server.legal_table import LegalTable
        from jukinet.server.provision import IdentityProvisionService

        assert config.legal_table is not None
        bindings.append(
            ServiceBinding(
                IdentityProvisionService(authenticator, store, LegalTable.load(config.legal_table)),
                provision_pb2_grpc.add_IdentityProvisionServiceServicer_to_server,
                provision_pb2.DESCRIPTOR.services_by_name["IdentityProvisionService"],
            )
        )
    return bindings


def run_node(config_path: Path) -> int:
    """Run a node until SIGTERM/SIGINT; the `jukinet node run` command."""
    config = NodeConfig.load(config_path)
    node = start_node(config)
    print(f"{config.name} ready on {config.listen}", flush=True)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s stopping (signal %d)", config.name, signum)
        threading.Thread(target=node.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    node.wait()
    return 0
