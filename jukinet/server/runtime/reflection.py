"""Server reflection, v1 and v1alpha, showing each caller only the services it could use.

grpcio-reflection offers only ``grpc.reflection.v1alpha``; ``grpc.reflection.v1`` has the same
messages (the same wire form) under another package, so one servicer answers both, with v1alpha's
message classes. A caller sees health, reflection, and the node's services that one of whose RPCs its
certificate could pass (:func:`jukinet.server.runtime.policy.admits`): an agency does not learn that a
node serves operator administration, a terminal does not see the link service. Files are served with
the services hidden from the caller taken out (their messages are the public contract), and a symbol of
a hidden service is not found.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection_pb2 as rpb

from jukinet.server.runtime.peers import Caller, current_caller
from jukinet.server.runtime.policy import admits

V1 = "grpc.reflection.v1.ServerReflection"
V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
_ALWAYS = (health.SERVICE_NAME, V1, V1ALPHA)
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _v1_file() -> bytes:
    """reflection.proto of v1: v1alpha's, moved to the v1 package."""
    fd = descriptor_pb2.FileDescriptorProto.FromString(rpb.DESCRIPTOR.serialized_pb)
    fd.name, fd.package = _V1_FILE, "grpc.reflection.v1"
    fd.options.Clear()
    for message in fd.message_type:
        for f in message.field:
            f.type_name = f.type_name.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")
    for method in fd.service[0].method:
        method.input_type = method.input_type.replace("v1alpha", "v1")
        method.output_type = method.output_type.replace("v1alpha", "v1")
    return fd.SerializeToString()


class Service:
    """A service this node serves, with what decides who sees it."""

    def __init__(self, name: str, servicer: object | None = None, methods: Sequence[str] = ()) -> None:
        self.name = name
        self._policies = [] if servicer is None else [_policy(servicer, m) for m in methods]

    def visible_to(self, caller: Caller) -> bool:
        return self.name in _ALWAYS or any(p is not None and admits(p, caller) for p in self._policies)


def _policy(servicer: object, method: str) -> Any:
    policy = getattr(getattr(type(servicer), method, None), "__jukinet_policy__", None)
    return getattr(servicer, policy) if isinstance(policy, str) else policy


class Reflection:
    """Answers ``ServerReflectionInfo`` for both versions."""

    def __init__(self, services: Iterable[Service], pool: descriptor_pool.DescriptorPool | None = None) -> None:
        self._services = {s.name: s for s in (*services, *(Service(n) for n in _ALWAYS))}
        self._pool = pool or descriptor_pool.Default()
        self._v1 = _v1_file()

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        method = grpc.stream_stream_rpc_method_handler(
            self.info,
            request_deserializer=rpb.ServerReflectionRequest.FromString,
            response_serializer=rpb.ServerReflectionResponse.SerializeToString,
        )
        return [grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": method}) for name in (V1, V1ALPHA)]

    async def info(
        self, requests: AsyncIterator[rpb.ServerReflectionRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rpb.ServerReflectionResponse]:
        caller = current_caller()
        async for request in requests:
            yield self.answer(request, caller)

    def answer(self, request: rpb.ServerReflectionRequest, caller: Caller) -> rpb.ServerReflectionResponse:
        response = rpb.ServerReflectionResponse(valid_host=request.host, original_request=request)
        visible = sorted(name for name, s in self._services.items() if s.visible_to(caller))
        asked = request.WhichOneof("message_request")
        files: list[bytes] | None = None
        if asked == "list_services":
            response.list_services_response.service.extend(rpb.ServiceResponse(name=n) for n in visible)
            return response
        if asked == "file_by_filename":
            files = self._files_by_name(request.file_by_filename, set(visible))
        elif asked == "file_containing_symbol":
            files = self._files_with_symbol(request.file_containing_symbol, set(visible))
        if files is None:
            response.error_response.error_code = grpc.StatusCode.NOT_FOUND.value[0]
            response.error_response.error_message = f"not found: {asked or 'no request'}"
            return response
        response.file_descriptor_response.file_descriptor_proto.extend(files)
        return response

    def _files_with_symbol(self, symbol: str, visible: set[str]) -> list[bytes] | None:
        if symbol == V1 or symbol.startswith(V1 + "."):
            return [self._v1]
        hidden = (n for n in self._services if n not in visible)
        if any(symbol == n or symbol.startswith(n + ".") for n in hidden):
            return None
        try:
            found = self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            return None
        return self._with_dependencies(found, visible)

    def _files_by_name(self, name: str, visible: set[str]) -> list[bytes] | None:
        if name == _V1_FILE:
            return [self._v1]
        try:
            found = self._pool.FindFileByName(name)
        except KeyError:
            return None
        return self._with_dependencies(found, visible)

    def _with_dependencies(self, found: Any, visible: set[str]) -> list[bytes]:
        out: list[bytes] = []
        seen: set[str] = set()
        pending = [found]
        while pending:
            fd = pending.pop()
            if fd.name in seen:
                continue
            seen.add(fd.name)
            proto = descriptor_pb2.FileDescriptorProto()
            fd.CopyToProto(proto)
            shown = [s for s in proto.service if f"{proto.package}.{s.name}" in visible]
            if len(shown) != len(proto.service):
                del proto.service[:]
                proto.service.extend(shown)
            out.append(proto.SerializeToString())
            pending.extend(fd.dependencies)
        return out
