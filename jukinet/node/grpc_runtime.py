"""The gRPC server and channels every node uses: TLS 1.3 with client certificates, health, reflection.

There is no plaintext port. TLS keys are files: gRPC Python cannot use a PKCS#11 key for TLS, so
the token holds only the keys that sign notices (and, later, sessions and logs).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from jukinet.node.security import check_all_guarded

MAX_MESSAGE_BYTES = 32 << 20  # notice batches and bulk chunks are packed; leave headroom
_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
]


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
            [(self.private_key, self.cert_chain)],
            root_certificates=self.trust_bundle,
            require_client_auth=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.trust_bundle,
            private_key=self.private_key,
            certificate_chain=self.cert_chain,
        )


@dataclass(frozen=True)
class ServiceBinding:
    """A servicer with its generated ``add_*_to_server`` function and service descriptor."""

    servicer: object
    add_to_server: Any
    descriptor: Any


def secure_channel(target: str, tls: TlsMaterial, server_name: str = "localhost") -> grpc.Channel:
    options = [*_OPTIONS, ("grpc.ssl_target_name_override", server_name)]
    return grpc.secure_channel(target, tls.channel_credentials(), options=options)


class NodeServer:
    """A gRPC server with the node's services, health checking and server reflection."""

    def __init__(self, listen: str, tls: TlsMaterial, services: Iterable[ServiceBinding], workers: int = 128):
        # gRPC Python's sync server holds a worker thread for the whole life of a streaming RPC, and
        # every CS (at a prefecture) or prefecture (at the national server) keeps one Deliver stream
        # open: ``workers`` must exceed the number of links plus the unary load. Threads start lazily.
        # Beyond ``workers`` calls in progress, new calls get RESOURCE_EXHAUSTED instead of queueing.
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
            options=_OPTIONS,
            maximum_concurrent_rpcs=workers,
        )
        names = [reflection.SERVICE_NAME, health.SERVICE_NAME]
        for binding in services:
            check_all_guarded(binding.servicer, binding.descriptor)
            binding.add_to_server(binding.servicer, self._server)
            names.append(binding.descriptor.full_name)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(names, self._server)
        self._service_names = names
        self.port = self._server.add_secure_port(listen, tls.server_credentials())
        if not self.port:
            raise OSError(f"cannot listen on {listen}")

    def start(self) -> None:
        self._server.start()
        for name in [*self._service_names, ""]:
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = 2.0) -> None:
        self.health.enter_graceful_shutdown()
        self._server.stop(grace).wait()

    def wait(self) -> None:
        self._server.wait_for_termination()
