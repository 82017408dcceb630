"""Who may call an RPC, as typed, composable values (as sigstore-python's verification policies).

A policy's ``deny(caller)`` returns None to allow, or the :class:`Rejected` to answer with. Policies
may verify the caller's operator session (a read of the operator's record), so the guard runs them
off the event loop. ``admits(caller)`` says whether the caller's certificate alone could ever pass
(its session aside): reflection shows a caller only the services it could use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.operators import Role
from jukinet.server.runtime.peers import Caller


class Policy(Protocol):
    def deny(self, caller: Caller) -> Rejected | None: ...


def admits(policy: Policy, caller: Caller) -> bool:
    """Could ``caller``'s certificate pass ``policy`` (with the right session)? False for a policy that
    cannot say."""
    check = getattr(policy, "admits", None)
    return bool(check(caller)) if check is not None else False


def _denied(caller: Caller, allowed: str) -> Rejected:
    return Rejected(Problem.DENIED, f"{caller.identity} may not call this RPC (allowed: {allowed})")


@dataclass(frozen=True)
class Kinds:
    """Callers holding an identity of one of ``kinds`` (never terminals: use :class:`TerminalOf`)."""

    kinds: frozenset[NodeKind]

    @classmethod
    def of(cls, *kinds: NodeKind) -> Kinds:
        return cls(frozenset(kinds))

    def deny(self, caller: Caller) -> Rejected | None:
        if any(n.kind in self.kinds and n.kind is not NodeKind.TERMINAL for n in caller.node_ids):
            return None
        return _denied(caller, ", ".join(sorted(k.value for k in self.kinds)))

    def admits(self, caller: Caller) -> bool:
        return self.deny(caller) is None


@dataclass(frozen=True)
class TerminalOf:
    """Operator terminals of one of ``sites`` (municipality code, prefecture code or "national")."""

    sites: frozenset[str]

    @classmethod
    def of_nodes(cls, node_ids: Iterable[NodeId]) -> TerminalOf:
        return cls(frozenset(n.site_code for n in node_ids))

    def deny(self, caller: Caller) -> Rejected | None:
        if any(n.kind is NodeKind.TERMINAL and n.site in self.sites for n in caller.node_ids):
            return None
        return _denied(caller, f"operator terminals of {', '.join(sorted(self.sites))}")

    def admits(self, caller: Caller) -> bool:
        return self.deny(caller) is None


@dataclass(frozen=True)
class OperatorWithRole:
    """A terminal of the site presenting a valid operator session that carries ``role`` (None: any)."""

    terminals: TerminalOf
    role: Role | None = None

    def deny(self, caller: Caller) -> Rejected | None:
        denial = self.terminals.deny(caller)
        if denial is not None:
            return denial
        try:
            claims = caller.session()
        except Rejected as exc:
            return exc
        if self.role is not None and self.role.value not in claims.roles:
            return Rejected(Problem.DENIED, f"operator {claims.operator_id} does not have the role '{self.role}'")
        return None

    def admits(self, caller: Caller) -> bool:
        return self.terminals.admits(caller)


@dataclass(frozen=True)
class AnyOf:
    """Allowed when any child allows; otherwise the first child's denial."""

    children: tuple[Policy, ...]

    def deny(self, caller: Caller) -> Rejected | None:
        first: Rejected | None = None
        for child in self.children:
            denial = child.deny(caller)
            if denial is None:
                return None
            first = first or denial
        return first

    def admits(self, caller: Caller) -> bool:
        return any(admits(child, caller) for child in self.children)


@dataclass(frozen=True)
class AllOf:
    """Allowed when every child allows; otherwise the first denial."""

    children: tuple[Policy, ...]

    def deny(self, caller: Caller) -> Rejected | None:
        return next((d for p in self.children if (d := p.deny(caller)) is not None), None)

    def admits(self, caller: Caller) -> bool:
        return all(admits(child, caller) for child in self.children)


@dataclass(frozen=True)
class OtherNodes:
    """Callers holding a node identity of ``kind`` that is not this node's own (a CS never calls itself
    for what only another CS may ask of it)."""

    kind: NodeKind
    own: frozenset[NodeId]

    def deny(self, caller: Caller) -> Rejected | None:
        if any(n in self.own for n in caller.node_ids):
            return Rejected(Problem.DENIED, f"{caller.identity} is this node; it may not call this RPC of its own")
        if any(n.kind is self.kind for n in caller.node_ids):
            return None
        return _denied(caller, f"{self.kind.value} nodes other than {', '.join(sorted(map(str, self.own)))}")

    def admits(self, caller: Caller) -> bool:
        return self.deny(caller) is None
