"""Who is calling: the peer's TLS client certificate, checked on every RPC (deny by default).

gRPC's TLS layer already requires a client certificate chaining to the JukiNet trust bundle. On top
of that, every RPC handler is wrapped by :func:`guarded`, which identifies the peer with the node's
:class:`~jukinet.pki.TrustStore` (issuing CA kind, validity, CRL revocation) and applies the RPC's
policy before the handler runs. A servicer method without a policy is refused at start-up by
:func:`check_all_guarded`, so a new RPC cannot be served unguarded by accident.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.pki import PeerIdentity, TrustStore, UntrustedCertificate


@dataclass(frozen=True)
class Caller:
    """An authenticated peer: its certificate identity and its parsed node ids."""

    identity: PeerIdentity
    node_ids: tuple[NodeId, ...]

    @property
    def primary(self) -> NodeId:
        return self.node_ids[0]

    def of_kind(self, kind: NodeKind) -> list[NodeId]:
        return [n for n in self.node_ids if n.kind is kind]


class Policy(Protocol):
    """Decides whether a caller may use an RPC; returns a denial message or None."""

    def deny(self, caller: Caller) -> str | None: ...


@dataclass(frozen=True)
class AnyOf:
    """Allows callers holding one of ``kinds`` of identity, optionally only for ``sites``."""

    kinds: Collection[NodeKind]
    terminal_sites: Collection[str] = ()  # terminals allowed: those whose site is listed

    def deny(self, caller: Caller) -> str | None:
        for node_id in caller.node_ids:
            if node_id.kind is NodeKind.TERMINAL:
                if NodeKind.TERMINAL in self.kinds and node_id.site in self.terminal_sites:
                    return None
            elif node_id.kind in self.kinds:
                return None
        wanted = ", ".join(sorted(k.value for k in self.kinds))
        return f"{caller.primary} may not call this RPC (allowed: {wanted})"


_ISSUER_FOR_KIND = {  # which issuing CA may vouch for each kind of identity
    NodeKind.CS: "node",
    NodeKind.PREFECTURE: "node",
    NodeKind.NATIONAL: "node",
    NodeKind.AGENCY: "agency",
    NodeKind.TERMINAL: "operator",
}


class PeerAuthenticator:
    """Turns a gRPC context into a Caller, or aborts the call with UNAUTHENTICATED."""

    def __init__(self, trust: TrustStore) -> None:
        self.trust = trust

    def caller(self, context: grpc.ServicerContext) -> Caller:
        pem = _peer_certificate(context)
        if pem is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "no client certificate was presented")
        try:
            identity = self.trust.identify(pem)
            node_ids = tuple(NodeId.parse(n) for n in identity.node_ids)
        except UntrustedCertificate as exc:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"client certificate not accepted: {exc}")
        except ValueError as exc:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"client certificate identity invalid: {exc}")
        for node_id in node_ids:
            if _ISSUER_FOR_KIND[node_id.kind] != identity.issuer:
                context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"identity {node_id} was issued by the {identity.issuer} CA, "
                    f"not the {_ISSUER_FOR_KIND[node_id.kind]} CA",
                )
        return Caller(identity, node_ids)


def _peer_certificate(context: grpc.ServicerContext) -> bytes | None:
    certs = context.auth_context().get("x509_pem_cert")
    return certs[0] if certs else None


Handler = Callable[..., Any]


def guarded(policy: Policy | str) -> Callable[[Handler], Handler]:
    """Marks a servicer method with its policy; the runtime authenticates and checks before the body.

    ``policy`` is a Policy, or the name of the servicer attribute holding one (for policies that
    depend on the node's configuration). The wrapped method receives ``(self, request, context, caller)``.
    """

    def decorate(method: Handler) -> Handler:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            caller = self.authenticator.caller(context)
            rule = getattr(self, policy) if isinstance(policy, str) else policy
            denial = rule.deny(caller)
            if denial is not None:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, denial)
            return method(self, request, context, caller)

        wrapper.__jukinet_policy__ = policy  # type: ignore[attr-defined]
        return wrapper

    return decorate


def check_all_guarded(servicer: object, service_descriptor: Any) -> None:
    """Refuse to serve a service any of whose RPCs lacks a policy."""
    for method in service_descriptor.methods:
        impl = getattr(type(servicer), method.name, None)
        if impl is None or not hasattr(impl, "__jukinet_policy__"):
            raise RuntimeError(f"{service_descriptor.full_name}.{method.name} has no access policy")
