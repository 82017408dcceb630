"""Reflection in v1 and v1alpha, showing each caller only the services it could use, and health and
reflection behind the same per-call checks as every RPC (a revoked certificate gets nothing)."""

from __future__ import annotations

import grpc
import pytest
from cryptography import x509
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2 as rpb
from netutil import AGENCY, channel_with

from jukinet.pki import issue_tls_certificate, revoke

VERSIONS = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")


def ask(channel: grpc.Channel, version: str, **request) -> rpb.ServerReflectionResponse:
    info = channel.stream_stream(
        f"/{version}/ServerReflectionInfo",
        request_serializer=rpb.ServerReflectionRequest.SerializeToString,
        response_deserializer=rpb.ServerReflectionResponse.FromString,
    )
    [answer] = list(info(iter([rpb.ServerReflectionRequest(**request)]), timeout=10))
    return answer


def services(channel: grpc.Channel, version: str) -> set[str]:
    return {s.name for s in ask(channel, version, list_services="").list_services_response.service}


def files(answer: rpb.ServerReflectionResponse) -> list[descriptor_pb2.FileDescriptorProto]:
    return [
        descriptor_pb2.FileDescriptorProto.FromString(b) for b in answer.file_descriptor_response.file_descriptor_proto
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_each_caller_sees_only_what_it_could_use(network, version):
    net = network.network
    agency_creds, terminal_creds = net.agency(AGENCY), net.terminal("national")
    common = {"grpc.health.v1.Health", *VERSIONS}
    with channel_with(network, "national", agency_creds.cert, agency_creds.key) as channel:
        agency_services = {
            "jukinet.v1.IdentityProvisionService",
            "jukinet.v1.FourItemSearchService",
            "jukinet.v1.SubscriptionService",
            "jukinet.v1.BatchLookupService",
        }
        assert services(channel, version) == common | agency_services
        hidden = ask(channel, version, file_containing_symbol="jukinet.v1.NodeAdminService")
        assert hidden.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
        stripped = files(ask(channel, version, file_by_filename="jukinet/v1/admin.proto"))
        assert stripped[0].name == "jukinet/v1/admin.proto" and not stripped[0].service  # messages, no service
        shown = files(ask(channel, version, file_containing_symbol="jukinet.v1.IdentityProvisionService"))
        assert [s.name for s in shown[0].service] == [
            "IdentityProvisionService",
            "FourItemSearchService",
            "BatchLookupService",
        ]
        assert {"jukinet/v1/identity.proto"} <= {f.name for f in shown}  # with its dependencies
    with channel_with(network, "national", terminal_creds.cert, terminal_creds.key) as channel:
        seen = services(channel, version)
        assert {"jukinet.v1.NodeAdminService", "jukinet.v1.AuditService", "jukinet.v1.OperatorAuthService"} <= seen
        assert not seen & {
            "jukinet.v1.IdentityProvisionService",
            "jukinet.v1.SubscriptionService",
            "jukinet.v1.LinkService",
        }


def test_reflection_v1_describes_itself(network):
    terminal_creds = network.network.terminal("national")
    with channel_with(network, "national", terminal_creds.cert, terminal_creds.key) as channel:
        [own] = files(ask(channel, VERSIONS[0], file_containing_symbol=VERSIONS[0]))
    assert (own.package, own.service[0].name) == ("grpc.reflection.v1", "ServerReflection")
    assert own.service[0].method[0].input_type == ".grpc.reflection.v1.ServerReflectionRequest"


def test_a_revoked_certificate_gets_neither_health_nor_reflection(network, tmp_path):
    pki = network.network.pki_dir
    cert, key = issue_tls_certificate(pki, "operator", ["terminal:13:revoked"], tmp_path)
    revoke(pki, "operator", x509.load_pem_x509_certificate(cert.read_bytes()).serial_number)
    with channel_with(network, "pref:13", cert, key) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked" in refused.value.details()
        for version in VERSIONS:
            with pytest.raises(grpc.RpcError) as refused:
                ask(channel, version, list_services="")
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
