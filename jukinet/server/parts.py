"""What every tier's services are built from: the parts of one node process, assembled by
:mod:`jukinet.server.assembly` and handed to each tier's builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509

from jukinet.domain.clock import Clock
from jukinet.hsm import TokenSigner
from jukinet.pki import TrustStore
from jukinet.server.audit import Auditor
from jukinet.server.runtime.config import NodeConfig
from jukinet.server.runtime.directory import NodeDirectory
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.links import LinkSet
from jukinet.server.runtime.readers import ReaderPool
from jukinet.server.runtime.wakeup import Wakeup
from jukinet.storage import NodeStorage


@dataclass
class NodeParts:
    """What every tier's services are built from."""

    config: NodeConfig
    clock: Clock
    trust: TrustStore
    storage: NodeStorage
    signer: TokenSigner
    certificate: x509.Certificate
    auditor: Auditor
    blocking: Blocking  # calls of people and agencies: short, and answered first
    bulk: Blocking  # links and bulk registration: a few threads, so they cannot starve the calls above
    links: LinkSet
    directory: NodeDirectory  # the PeerDirectory: where peers are, their certificates, a CS's prefecture
    readers: ReaderPool  # read-only work in processes of its own (batch chunks, provision hashing)
    committed: Wakeup = field(default_factory=Wakeup)  # notified after the intake commits (push streams wait on it)
    closers: list[Callable[[], None]] = field(default_factory=list)  # run as the node stops, before the store closes

    @property
    def sites(self) -> frozenset[str]:
        return frozenset(n.site_code for n in self.config.node_ids)
