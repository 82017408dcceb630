"""The gRPC server every node runs: asyncio, TLS 1.3 with client certificates, health, reflection (v1
and v1alpha, showing each caller only the services it could use).

There is no plaintext port. TLS keys are files: gRPC Python cannot use a PKCS#11 key for TLS, so the
token holds only the keys that sign (batches, receipts, sessions, tree heads). The server is gRPC's
asyncio server: an open stream costs a coroutine, not a thread, so a prefecture centre can hold a link
from every municipality of the country and still answer unary calls; blocking work goes to the node's
pool (:mod:`jukinet.server.runtime.executor`). Every call, health and reflection included, passes the
:class:`~jukinet.server.runtime.peers.PeerGate` first.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from jukinet.clients.transport import DEFAULT_KEEPALIVE, Keepalive, server_options
from jukinet.domain.errors import Problem, Rejected
from jukinet.server.runtime.guard import check_all_guarded
from jukinet.server.runtime.peers import PeerGate
from jukinet.server.runtime.reflection import V1, V1ALPHA, Reflection, Service

MAX_CONCURRENT_RPCS = 20_000  # all peers together; each peer is bounded by the gate


@dataclass(frozen=True)
class TlsMaterial:
    """A certificate chain and key (PEM files) plus the trust bundle that peers must chain to."""

    cert_chain: bytes
    private_key: bytes
    trust_bundle: bytes

    @classmethod
    def from_files(cls, cert: Path, key: Path, trust_bundle: bytes) -> TlsMaterial:
        return cls(cert.read_bytes(), key.read_bytes(), trust_bundle)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)], root_certificates=self.trust_bundle, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.trust_bundle, private_key=self.private_key, certificate_chain=self.cert_chain
        )


@dataclass(frozen=True)
class ServiceBinding:
    """A servicer with its generated ``add_*_to_server`` function and service descriptor."""

    servicer: object
    add_to_server: Any
    descriptor: Any


def bind(servicer: object) -> ServiceBinding:
    """The binding of a servicer, found from the generated base class it implements."""
    for base in type(servicer).__mro__:
        if base.__module__.startswith("jukinet.v1.") and base.__name__.endswith("Servicer"):
            generated = sys.modules[base.__module__]
            messages = importlib.import_module(base.__module__.removesuffix("_grpc"))
            service = messages.DESCRIPTOR.services_by_name[base.__name__.removesuffix("Servicer")]
            return ServiceBinding(servicer, getattr(generated, f"add_{base.__name__}_to_server"), service)
    raise Rejected(Problem.BROKEN, f"{type(servicer).__name__} implements no generated JukiNet service")


class NodeServer:
    """The node's services plus health checking and server reflection, behind the peer gate."""

    def __init__(
        self,
        listen: str,
        tls: TlsMaterial,
        services: Sequence[ServiceBinding],
        gate: PeerGate,
        keepalive: Keepalive = DEFAULT_KEEPALIVE,
    ) -> None:
        for binding in services:
            check_all_guarded(binding.servicer, binding.descriptor)  # deny by default: refuse to start otherwise
        self._listen = listen
        self._tls = tls
        self._services = list(services)
        self._gate = gate
        self._keepalive = keepalive
        self._server: grpc.aio.Server | None = None
        self.health = health_async.HealthServicer()
        self.port = 0

    async def start(self) -> None:
        server = grpc.aio.server(
            interceptors=[self._gate],
            options=server_options(self._keepalive),
            maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        )
        names = [V1, V1ALPHA, health.SERVICE_NAME]
        for binding in self._services:
            binding.add_to_server(binding.servicer, server)
            names.append(binding.descriptor.full_name)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection = Reflection(
            Service(b.descriptor.full_name, b.servicer, [m.name for m in b.descriptor.methods]) for b in self._services
        )
        server.add_generic_rpc_handlers(reflection.handlers())
        self.port = server.add_secure_port(self._listen, self._tls.server_credentials())
        if not self.port:
            raise Rejected(Problem.UNAVAILABLE, f"cannot listen on {self._listen}")
        await server.start()
        for name in [*names, ""]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server = server

    async def stop(self, grace: float = 2.0) -> None:
        if self._server is None:
            return
        await self.health.enter_graceful_shutdown()
        await self._server.stop(grace)
        self._server = None
