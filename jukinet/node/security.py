"""Who is calling: the peer's TLS client certificate and, for operator RPCs, the operator's session.

gRPC's TLS layer already requires a client certificate chaining to the JukiNet trust bundle. On top
of that, every RPC handler is wrapped by :func:`guarded`, which identifies the peer with the node's
:class:`~jukinet.pki.TrustStore` (issuing CA kind, validity, CRL revocation) and applies the RPC's
policy before the handler runs: node and agency RPCs need the right certificate, operator RPCs also
need a valid session carrying the right role. A servicer method without a policy is refused at
start-up by :func:`check_all_guarded`, so a new RPC cannot be served unguarded by accident. Refusals
of audited RPCs are written to the audit log.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from cryptography.hazmat.primitives import hashes

from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.node.sessions import SESSION_METADATA_KEY, SessionRejected, SessionVerifier
from jukinet.pki import PeerIdentity, TrustStore, UntrustedCertificate
from jukinet.v1 import audit_pb2, operator_pb2

_ISSUER_FOR_KIND = {  # which issuing CA may vouch for each kind of identity
    NodeKind.CS: "node",
    NodeKind.PREFECTURE: "node",
    NodeKind.NATIONAL: "node",
    NodeKind.AGENCY: "agency",
    NodeKind.TERMINAL: "operator",
    NodeKind.OPERATOR: "operator",
}


REQUIRED_TLS_VERSION = "TLSv1.3"
_DERIVED_CACHE_SIZE = 4096


class Refusal(Exception):
    """A request the node refuses; ``status`` is the gRPC status to answer with, the message says why."""

    def __init__(self, status: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationFailed(Exception):
    """The caller could not be identified; ``who`` names what is known of it, for the audit log."""

    def __init__(self, message: str, who: str = "unknown") -> None:
        super().__init__(message)
        self.who = who


@dataclass
class Caller:
    """An authenticated peer: its certificate identity, node ids and (unverified until asked) session."""

    identity: PeerIdentity
    node_ids: tuple[NodeId, ...]
    terminal_fp: bytes = b""  # SHA-256 of the peer's certificate (DER)
    session_token: bytes | None = None
    sessions: SessionVerifier | None = None
    _claims: operator_pb2.SessionClaims | None = field(default=None, repr=False)

    @property
    def primary(self) -> NodeId:
        return self.node_ids[0]

    def of_kind(self, kind: NodeKind) -> list[NodeId]:
        return [n for n in self.node_ids if n.kind is kind]

    def session(self) -> operator_pb2.SessionClaims:
        """The verified operator session presented with the call; raises SessionRejected."""
        if self._claims is None:
            if self.session_token is None or self.sessions is None:
                raise SessionRejected("this RPC needs an operator session: log in with IC card and biometric")
            self._claims = self.sessions.verify(self.session_token, self.terminal_fp)
        return self._claims

    @property
    def actor(self) -> str:
        """Who acts, for the audit log: the session's operator if one was verified, else the peer."""
        return self._claims.operator_id if self._claims is not None else str(self.primary)


@dataclass(frozen=True)
class Denial:
    message: str
    status: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED


class Policy(Protocol):
    """Decides whether a caller may use an RPC; returns a denial (or its message) or None."""

    def deny(self, caller: Caller) -> Denial | str | None: ...


@dataclass(frozen=True)
class AnyOf:
    """Allows callers holding one of ``kinds`` of identity; terminals only of ``terminal_sites``."""

    kinds: Collection[NodeKind]
    terminal_sites: Collection[str] = ()

    def deny(self, caller: Caller) -> str | None:
        for node_id in caller.node_ids:
            if node_id.kind is NodeKind.TERMINAL:
                if NodeKind.TERMINAL in self.kinds and node_id.site in self.terminal_sites:
                    return None
            elif node_id.kind in self.kinds:
                return None
        wanted = ", ".join(sorted(k.value for k in self.kinds))
        return f"{caller.primary} may not call this RPC (allowed: {wanted})"


@dataclass(frozen=True)
class OperatorWithRole:
    """A terminal of one of ``sites`` presenting a valid session whose roles include ``role``."""

    role: str | None  # None: any logged-in operator
    sites: Collection[str]

    def deny(self, caller: Caller) -> Denial | str | None:
        terminal = AnyOf({NodeKind.TERMINAL}, self.sites).deny(caller)
        if terminal is not None:
            return terminal
        try:
            claims = caller.session()
        except SessionRejected as exc:
            return Denial(str(exc), grpc.StatusCode.UNAUTHENTICATED)
        if self.role is not None and self.role not in claims.roles:
            return f"operator {claims.operator_id} does not have the role '{self.role}'"
        return None


class PeerAuthenticator:
    """Turns a gRPC context into a Caller, or raises AuthenticationFailed."""

    def __init__(self, trust: TrustStore, sessions: SessionVerifier | None = None) -> None:
        self.trust = trust  # validity and revocation are checked on every call; only parsing is cached
        self.sessions = sessions
        self._cache: dict[bytes, tuple[tuple[NodeId, ...], bytes]] = {}
        self._lock = threading.Lock()

    def caller(self, context: grpc.ServicerContext) -> Caller:
        auth = context.auth_context()
        certs = auth.get("x509_pem_cert")
        if not certs:
            raise AuthenticationFailed("no client certificate was presented")
        # gRPC Python offers no minimum-TLS-version setting, so TLS 1.3 is enforced here, per call.
        version = (auth.get("ssl_tls_version") or [b"unknown"])[0].decode()
        if version != REQUIRED_TLS_VERSION:
            raise AuthenticationFailed(f"the connection uses {version}; JukiNet requires {REQUIRED_TLS_VERSION}")
        try:
            identity = self.trust.identify(certs[0])
        except UntrustedCertificate as exc:
            raise AuthenticationFailed(f"client certificate not accepted: {exc}") from exc
        node_ids, fingerprint = self._derived(certs[0], identity)
        token = None
        for key, value in context.invocation_metadata():
            if key == SESSION_METADATA_KEY:
                token = value
        return Caller(identity, node_ids, fingerprint, session_token=token, sessions=self.sessions)

    def _derived(self, pem: bytes, identity: PeerIdentity) -> tuple[tuple[NodeId, ...], bytes]:
        """Parsed node ids and certificate fingerprint: fixed per certificate, so cached (every RPC asks)."""
        with self._lock:
            cached = self._cache.get(pem)
        if cached is not None:
            return cached
        who = ",".join(identity.node_ids)
        try:
            node_ids = tuple(NodeId.parse(n) for n in identity.node_ids)
        except ValueError as exc:
            raise AuthenticationFailed(f"client certificate identity invalid: {exc}", who) from exc
        for node_id in node_ids:
            if _ISSUER_FOR_KIND[node_id.kind] != identity.issuer:
                raise AuthenticationFailed(
                    f"identity {node_id} was issued by the {identity.issuer} CA, "
                    f"not the {_ISSUER_FOR_KIND[node_id.kind]} CA",
                    who,
                )
        derived = (node_ids, identity.certificate.fingerprint(hashes.SHA256()))
        with self._lock:
            self._cache[pem] = derived
            if len(self._cache) > _DERIVED_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
        return derived


Handler = Callable[..., Any]


def guarded(policy: Policy | str, audit: audit_pb2.AuditAction | None = None) -> Callable[[Handler], Handler]:
    """Marks a servicer method with its policy; the runtime authenticates and checks before the body.

    ``policy`` is a Policy, or the name of the servicer attribute holding one (for policies that
    depend on the node's configuration). With ``audit``, refusals are written to the servicer's
    ``auditor``. The wrapped method receives ``(self, request, context, caller)``.
    """

    def decorate(method: Handler) -> Handler:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                caller = self.authenticator.caller(context)
            except AuthenticationFailed as exc:
                _refuse(self, context, audit, exc.who, exc.who, Denial(str(exc), grpc.StatusCode.UNAUTHENTICATED))
            rule = getattr(self, policy) if isinstance(policy, str) else policy
            denial = rule.deny(caller)
            if denial is not None:
                if isinstance(denial, str):
                    denial = Denial(denial)
                _refuse(self, context, audit, caller.actor, str(caller.primary), denial)
            return method(self, request, context, caller)

        wrapper.__jukinet_policy__ = policy  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _refuse(servicer: Any, context: grpc.ServicerContext, audit: Any, who: str, terminal: str, denial: Denial) -> None:
    auditor = getattr(servicer, "auditor", None)
    if audit is not None and auditor is not None:
        auditor.refused(audit, who, terminal, denial.status, denial.message)
    context.abort(denial.status, denial.message)


def check_all_guarded(servicer: object, service_descriptor: Any) -> None:
    """Refuse to serve a service any of whose RPCs lacks a policy."""
    for method in service_descriptor.methods:
        impl = getattr(type(servicer), method.name, None)
        if impl is None or not hasattr(impl, "__jukinet_policy__"):
            raise RuntimeError(f"{service_descriptor.full_name}.{method.name} has no access policy")
