"""Who is calling, and how much of the node one caller may hold.

:class:`PeerGate` runs before every RPC the node serves — its own services, health and reflection
alike: it identifies the peer from its TLS client certificate (a JukiNet issuing CA, valid, not
revoked, TLS 1.3) and counts the calls the peer has in progress. A stream is identified again with
every message it carries either way (a link lives for days; a certificate revoked meanwhile ends it),
and a message that does not decode ends its call with INVALID_ARGUMENT instead of leaving it hanging.
One peer may hold at most ``streams_per_peer`` streaming calls and ``calls_per_peer`` calls in all;
beyond that it gets RESOURCE_EXHAUSTED, so no one caller can take the node's capacity from the
others. The identified :class:`Caller` is handed to the RPC's guard through a context variable.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from jukinet.clients.transport import SESSION_METADATA_KEY
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import request_limit
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.pki import PeerIdentity, TrustStore
from jukinet.server.runtime.status import abort
from jukinet.v1 import operator_pb2

REQUIRED_TLS_VERSION = "TLSv1.3"


class SessionCheck:
    """What a Caller needs to verify its session (implemented by jukinet.server.runtime.sessions)."""

    def verify(self, token: bytes, terminal_fp: bytes) -> operator_pb2.SessionClaims:  # pragma: no cover
        raise NotImplementedError


@dataclass
class Caller:
    """An authenticated peer: its certificate identity and (verified when first asked) operator session."""

    identity: PeerIdentity
    session_token: bytes | None = None
    sessions: SessionCheck | None = field(default=None, repr=False)
    _claims: operator_pb2.SessionClaims | None = field(default=None, repr=False)
    certificate: bytes = field(default=b"", repr=False)  # as presented, to identify the peer again

    @property
    def node_ids(self) -> tuple[NodeId, ...]:
        return self.identity.node_ids

    @property
    def primary(self) -> NodeId:
        return self.identity.primary

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the peer's TLS certificate (sessions are bound to it)."""
        return self.identity.fingerprint

    def of_kind(self, kind: NodeKind) -> list[NodeId]:
        return [n for n in self.identity.node_ids if n.kind is kind]

    def session(self) -> operator_pb2.SessionClaims:
        """The verified operator session presented with the call; Rejected (UNAUTHENTICATED) otherwise."""
        if self._claims is None:
            if self.session_token is None or self.sessions is None:
                raise Rejected(
                    Problem.UNAUTHENTICATED, "this RPC needs an operator session: log in with IC card and biometric"
                )
            self._claims = self.sessions.verify(self.session_token, self.fingerprint)
        return self._claims

    @property
    def operator_id(self) -> str | None:
        """The operator of a session already verified for this call (None: no session, or not checked)."""
        return self._claims.operator_id if self._claims is not None else None

    @property
    def actor(self) -> str:
        """Who acts, for the audit log: the session's operator once verified, else the peer."""
        return self._claims.operator_id if self._claims is not None else str(self.primary)


class PeerAuthenticator:
    """Turns a gRPC context into a Caller; Rejected (UNAUTHENTICATED) when the peer is not acceptable."""

    def __init__(self, trust: TrustStore, sessions: SessionCheck | None = None) -> None:
        self.trust = trust  # parsing is cached per certificate; validity and revocation are checked per call
        self.sessions = sessions

    def caller(self, context: grpc.aio.ServicerContext) -> Caller:
        auth = context.auth_context()
        certs = auth.get("x509_pem_cert")
        if not certs:
            raise Rejected(Problem.UNAUTHENTICATED, "no client certificate was presented")
        # gRPC Python offers no minimum-TLS-version setting, so TLS 1.3 is enforced here, per call.
        version = (auth.get("ssl_tls_version") or [b"unknown"])[0].decode()
        if version != REQUIRED_TLS_VERSION:
            raise Rejected(
                Problem.UNAUTHENTICATED, f"the connection uses {version}; JukiNet requires {REQUIRED_TLS_VERSION}"
            )
        identity = self._identify(certs[0])
        token = None
        for key, value in context.invocation_metadata() or ():
            if key == SESSION_METADATA_KEY:
                token = value
        return Caller(identity, token, self.sessions, certificate=certs[0])

    def recheck(self, caller: Caller) -> None:
        """Identify an admitted caller again (revocation and expiry); cheap: the chain check is cached."""
        self._identify(caller.certificate)

    def _identify(self, certificate: bytes) -> PeerIdentity:
        try:
            return self.trust.identify(certificate, purpose="tls")
        except Rejected as exc:
            raise Rejected(Problem.UNAUTHENTICATED, f"client certificate not accepted: {exc}") from exc


_current: contextvars.ContextVar[Caller] = contextvars.ContextVar("jukinet_caller")


def current_caller() -> Caller:
    """The caller of the RPC being served (set by :class:`PeerGate`)."""
    try:
        return _current.get()
    except LookupError:
        raise Rejected(Problem.BROKEN, "no caller: the RPC was not served through the peer gate") from None


@dataclass(frozen=True)
class PeerLimits:
    streams_per_peer: int = 8
    calls_per_peer: int = 32
    calls_per_second: float = 1000.0  # new calls one peer may start per second (a bucket of one second's worth)
    request_arrival_seconds: float = 10.0  # an admitted unary call whose request has not arrived by then ends


class _Bucket:
    """Token bucket: ``rate`` per second, holding at most one second's worth."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.tokens, self.stamp = rate, now

    def take(self, rate: float, now: float) -> float:
        """0 if a call may start now, else the seconds until one may."""
        self.tokens = min(rate, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate


MAX_TRACKED_PEERS = 100_000  # buckets kept; beyond, idle (full) ones are forgotten


class PeerGate(grpc.aio.ServerInterceptor):
    """Authenticates and counts every call (see the module docstring). Runs on the event loop only."""

    def __init__(self, authenticator: PeerAuthenticator, limits: PeerLimits) -> None:
        self._authenticator = authenticator
        self._limits = limits
        self._calls: Counter[str] = Counter()
        self._streams: Counter[str] = Counter()
        self._buckets: dict[str, _Bucket] = {}

    def in_progress(self, peer: str) -> tuple[int, int]:
        """(calls, streams) the peer has in progress now."""
        return self._calls[peer], self._streams[peer]

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        call = _Call(handler_call_details.method, handler.request_streaming, handler.response_streaming)
        _, behaviour = _behaviour(handler)
        # Served as request-streaming whatever the RPC (the wire is the same): gRPC then runs the gate
        # when the call starts, before its request arrives, so calls whose request never comes are
        # counted against their peer (and refused at once if the peer is not acceptable).
        kind = "stream_stream" if handler.response_streaming else "stream_unary"
        factory = getattr(grpc, f"{kind}_rpc_method_handler")
        if handler.response_streaming and inspect.isasyncgenfunction(behaviour):
            wrapped = self._gated_generator(behaviour, call)
        else:
            wrapped = self._gated(behaviour, call)
        return factory(
            wrapped,
            request_deserializer=_decoding(handler.request_deserializer, call.method),
            response_serializer=handler.response_serializer,
        )

    def _admit(self, context: grpc.aio.ServicerContext, streaming: bool) -> Caller:
        caller = self._authenticator.caller(context)
        peer = str(caller.identity)
        limits = self._limits
        wait = self._bucket(peer).take(limits.calls_per_second, time.monotonic())
        if wait:
            raise Rejected(
                Problem.EXHAUSTED,
                f"{peer} starts calls faster than {limits.calls_per_second:g} a second here; "
                f"retry in {wait * 1000:.0f} ms",
            )
        streams, calls = self._streams[peer], self._calls[peer]
        if streaming and streams >= limits.streams_per_peer:
            raise Rejected(
                Problem.EXHAUSTED, f"{peer} already has {streams} streams open here; at most {limits.streams_per_peer}"
            )
        if calls >= limits.calls_per_peer:
            raise Rejected(
                Problem.EXHAUSTED, f"{peer} already has {calls} calls in progress here; at most {limits.calls_per_peer}"
            )
        self._calls[peer] += 1
        if streaming:
            self._streams[peer] += 1
        return caller

    def _bucket(self, peer: str) -> _Bucket:
        bucket = self._buckets.get(peer)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_PEERS:
                now, rate = time.monotonic(), self._limits.calls_per_second
                self._buckets = {p: b for p, b in self._buckets.items() if b.tokens + (now - b.stamp) * rate < rate}
            bucket = self._buckets[peer] = _Bucket(self._limits.calls_per_second, time.monotonic())
        return bucket

    def _release(self, caller: Caller, streaming: bool) -> None:
        peer = str(caller.identity)
        for counter, applies in ((self._calls, True), (self._streams, streaming)):
            if applies:
                counter[peer] -= 1
                if counter[peer] <= 0:
                    del counter[peer]

    def _gated(self, behaviour: Callable[..., Any], call: _Call) -> Callable[..., Awaitable[Any]]:
        async def gated(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                caller = self._admit(context, call.streaming)
            except Rejected as exc:
                await abort(context, exc)
            _current.set(caller)  # each RPC runs in a task of its own: the value dies with the call
            try:
                result = behaviour(await self._requests(request, call, caller), context)
                return await result if inspect.isawaitable(result) else result
            except Rejected as exc:  # from the request stream, in a servicer that is not guarded
                await abort(context, exc)
            finally:
                self._release(caller, call.streaming)

        return gated

    def _gated_generator(self, behaviour: Callable[..., Any], call: _Call) -> Callable[..., Any]:
        async def gated(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                caller = self._admit(context, call.streaming)
            except Rejected as exc:
                await abort(context, exc)
            _current.set(caller)
            try:
                async for response in behaviour(await self._requests(request, call, caller), context):
                    self._authenticator.recheck(caller)
                    yield response
            except Rejected as exc:
                await abort(context, exc)
            finally:
                self._release(caller, call.streaming)

        return gated

    async def _requests(self, requests: AsyncIterator[Any], call: _Call, caller: Caller) -> Any:
        """The request as the servicer should see it: for a unary RPC its one message, decoded, once it
        has arrived; for a stream, every message, from a peer that is still acceptable."""
        if call.request_streaming:
            return self._checked_stream(requests, caller)
        try:
            async with asyncio.timeout(self._limits.request_arrival_seconds):  # no task per call, unlike wait_for
                request = await anext(requests, None)
        except TimeoutError:
            raise Rejected(
                Problem.INVALID, f"no request message arrived within {self._limits.request_arrival_seconds:g} s"
            ) from None
        if request is None:
            raise Rejected(Problem.INVALID, f"the call to {call.method} carried no request message")
        if isinstance(request, Undecodable):
            raise request.rejected()
        return request

    async def _checked_stream(self, requests: AsyncIterator[Any], caller: Caller) -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, Undecodable):
                raise request.rejected()
            self._authenticator.recheck(caller)
            yield request


@dataclass(frozen=True)
class _Call:
    method: str
    request_streaming: bool
    response_streaming: bool

    @property
    def streaming(self) -> bool:
        return self.request_streaming or self.response_streaming


@dataclass(frozen=True)
class Undecodable:
    """A request message refused before it was parsed (too large for its RPC) or that did not parse
    (gRPC would otherwise leave a stream hanging on it)."""

    method: str
    size: int
    error: str
    limit: int = 0  # set when the message was larger than its RPC allows

    def rejected(self) -> Rejected:
        if self.limit:
            return Rejected(
                Problem.EXHAUSTED,
                f"a request message to {self.method} is {self.size} bytes; at most {self.limit} (docs/LIMITS.md)",
            )
        return Rejected(
            Problem.INVALID, f"a request message to {self.method} ({self.size} bytes) does not decode: {self.error}"
        )


def _decoding(deserialize: Callable[[bytes], Any] | None, method: str) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None
    limit = request_limit(method)

    def decode(data: bytes) -> Any:
        if len(data) > limit:
            return Undecodable(method, len(data), "too large", limit)
        try:
            return deserialize(data)
        except Exception as exc:  # any parser failure is the caller's malformed input
            return Undecodable(method, len(data), str(exc)[:200])

    return decode


def _behaviour(handler: grpc.RpcMethodHandler) -> tuple[str, Callable[..., Any]]:
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            return kind, behaviour
    raise Rejected(Problem.BROKEN, "an RPC handler without a behaviour")
