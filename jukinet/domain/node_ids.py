"""Node identities as used in certificate SAN URIs ``urn:jukinet:<node-id>``.

Forms: ``cs:<municipality code>``, ``pref:<prefecture code 01..47>``, ``national``,
``agency:<corporate number>``, ``terminal:<site>:<name>`` where site is a municipality code,
a prefecture code or ``national`` and name matches ``[a-z0-9-]{1,32}``, and ``card:<card serial>`` (a
resident's My Number card; the serial is the card chip's, 16 lowercase hex digits), ``portal:<name>`` (a
residents' self-service front end, as マイナポータル: it relays residents' own requests, each authorised by
the resident's card, and may call nothing else), and the J-LIS services ``cards`` (card management) and
``jpki`` (public certification), one node each like ``national``.

Nodes (CS, prefecture, national) also have a TLS name (:attr:`NodeId.tls_name`), a DNS name carried in
their TLS certificate that clients verify during the handshake, so that a client reaches only the
node it expects. The names live under ``node.jukinet.internal`` and are never resolved: the address to
dial comes from the network directory (jukinet.domain.directory); the name only says who must answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from jukinet.domain.codes import CorporateNumber, corporate_number_problem, local_gov_code_problem
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.municipalities import MunicipalityDirectory, MunicipalityKind, directory
from jukinet.domain.quoting import quoted

__all__ = [
    "CARD_SERIAL_CHARS",
    "NODE_KINDS",
    "SINGLETON_KINDS",
    "SITED_KINDS",
    "TLS_NAME_SUFFIX",
    "URN_PREFIX",
    "NodeId",
    "NodeKind",
]

URN_PREFIX = "urn:jukinet:"
TLS_NAME_SUFFIX = ".node.jukinet.internal"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_HEX_CHARS = frozenset("0123456789abcdef")
CARD_SERIAL_CHARS = 16


class NodeKind(Enum):
    """The kind of a node; the value is the id's leading label."""

    CS = "cs"
    PREFECTURE = "pref"
    NATIONAL = "national"
    AGENCY = "agency"
    TERMINAL = "terminal"
    OPERATOR = "operator"  # a person, identified by the certificate on their IC card
    CARD = "card"  # a resident's My Number card, identified by its chip serial (no personal data)
    CARD_MANAGEMENT = "cards"  # the card-management service (J-LIS): the state of every card
    JPKI = "jpki"  # the public certification service (J-LIS): the card CA's revocations
    PORTAL = "portal"  # a residents' self-service front end (マイナポータル): relays card-authorised requests


SITED_KINDS = frozenset({NodeKind.TERMINAL, NodeKind.OPERATOR})
SINGLETON_KINDS = frozenset({NodeKind.NATIONAL, NodeKind.CARD_MANAGEMENT, NodeKind.JPKI})
"""Kinds with exactly one node, whose id is the kind alone ("national", "cards", "jpki")."""
NODE_KINDS = frozenset({NodeKind.CS, NodeKind.PREFECTURE, NodeKind.NATIONAL, NodeKind.CARD_MANAGEMENT, NodeKind.JPKI})
"""Kinds that run a node (serve RPCs, hold a token, keep links)."""


def _fail(text: str, why: str) -> Rejected:
    return Rejected(Problem.INVALID, f"invalid node id {quoted(text)}: {why}")


def _check_prefecture(text: str, code: str) -> None:
    if not (len(code) == 2 and code.isascii() and code.isdigit() and 1 <= int(code) <= 47):
        raise _fail(text, f"prefecture code {quoted(code)} must be two digits 01..47")


def _check_municipality(text: str, code: str, dirx: MunicipalityDirectory | None) -> None:
    problem = local_gov_code_problem(code)
    if problem is not None:
        raise _fail(text, problem)
    m = (dirx or directory()).get(code)
    if m is None:
        raise _fail(text, f"municipality {code} is not in the municipality directory")
    if m.kind is MunicipalityKind.PREFECTURE:
        raise _fail(text, f"{code} ({m.name}) is a prefecture, not a municipality; use pref:{code[:2]}")


def _check_site(text: str, site: str, dirx: MunicipalityDirectory | None) -> None:
    if site == "national":
        return
    if len(site) == 2:
        _check_prefecture(text, site)
    elif len(site) == 6:
        _check_municipality(text, site, dirx)
    else:
        raise _fail(text, f"site {quoted(site)} must be a municipality code, a prefecture code or 'national'")


def _check_name(text: str, name: str) -> None:
    if not (1 <= len(name) <= 32 and _NAME_CHARS.issuperset(name)):
        raise _fail(text, f"name {quoted(name)} must match [a-z0-9-]{{1,32}}")


@dataclass(frozen=True, slots=True)
class NodeId:
    """A parsed node id. Build with :meth:`parse` or the constructors; ``str()`` is canonical."""

    kind: NodeKind
    code: str | None = None
    site: str | None = None
    name: str | None = None

    @classmethod
    def parse(cls, text: str, directory: MunicipalityDirectory | None = None) -> NodeId:
        """Parse ``<node-id>`` or ``urn:jukinet:<node-id>``; raises Rejected (INVALID)."""
        if not isinstance(text, str):
            raise _fail(type(text).__name__, "must be a string")
        body = text.removeprefix(URN_PREFIX)
        if not body:
            raise _fail(text, "empty")
        label, _, rest = body.partition(":")
        try:
            kind = NodeKind(label)
        except ValueError:
            expected = ", ".join(k.value for k in NodeKind)
            raise _fail(text, f"unknown kind {quoted(label, 16)} (expected one of: {expected})") from None
        if kind in SINGLETON_KINDS:
            if body != kind.value:
                raise _fail(text, f"{kind.value!r} takes no further parts")
            return cls(kind)
        if kind in SITED_KINDS:
            site, sep, name = rest.partition(":")
            if not sep:
                raise _fail(text, f"expected {label}:<site>:<name>")
            _check_site(text, site, directory)
            _check_name(text, name)
            return cls(kind, code=None, site=site, name=name)
        if not rest:
            raise _fail(text, f"expected {label}:<code>")
        if kind is NodeKind.CS:
            _check_municipality(text, rest, directory)
        elif kind is NodeKind.CARD:
            if not (len(rest) == CARD_SERIAL_CHARS and _HEX_CHARS.issuperset(rest)):
                raise _fail(text, f"a card serial has {CARD_SERIAL_CHARS} lowercase hex digits")
        elif kind is NodeKind.PREFECTURE:
            _check_prefecture(text, rest)
        elif kind is NodeKind.PORTAL:
            _check_name(text, rest)
        else:
            problem = corporate_number_problem(rest)
            if problem is not None:
                raise _fail(text, problem)
        return cls(kind, code=rest)

    @classmethod
    def cs(cls, code: str, directory: MunicipalityDirectory | None = None) -> NodeId:
        """The community server of a municipality or ward."""
        return cls.parse(f"cs:{code}", directory)

    @classmethod
    def prefecture(cls, code: str) -> NodeId:
        """The prefecture server for a 2-digit prefecture code."""
        return cls.parse(f"pref:{code}")

    @classmethod
    def national(cls) -> NodeId:
        """The national server."""
        return cls(NodeKind.NATIONAL)

    @classmethod
    def agency(cls, corporate_number: str) -> NodeId:
        """An agency identified by its 法人番号."""
        return cls.parse(f"agency:{corporate_number}")

    @classmethod
    def terminal(cls, site: str, name: str, directory: MunicipalityDirectory | None = None) -> NodeId:
        """An operator terminal at a site (municipality code, prefecture code or 'national')."""
        return cls.parse(f"terminal:{site}:{name}", directory)

    @classmethod
    def operator(cls, site: str, name: str, directory: MunicipalityDirectory | None = None) -> NodeId:
        """An operator (a person with an IC card) of a site."""
        return cls.parse(f"operator:{site}:{name}", directory)

    @classmethod
    def card_management(cls) -> NodeId:
        """The card-management service."""
        return cls(NodeKind.CARD_MANAGEMENT)

    @classmethod
    def jpki(cls) -> NodeId:
        """The public certification (JPKI) service."""
        return cls(NodeKind.JPKI)

    @classmethod
    def portal(cls, name: str) -> NodeId:
        """A residents' self-service front end (マイナポータル)."""
        return cls.parse(f"portal:{name}")

    @classmethod
    def card(cls, serial: str) -> NodeId:
        """A resident's My Number card, by its chip serial."""
        return cls.parse(f"card:{serial}")

    @property
    def urn(self) -> str:
        """The SAN URI form ``urn:jukinet:<node-id>``."""
        return URN_PREFIX + str(self)

    @property
    def is_node(self) -> bool:
        """True for CS, prefecture and national servers."""
        return self.kind in NODE_KINDS

    @property
    def tls_name(self) -> str:
        """The DNS name in a node's TLS certificate, e.g. ``cs-131148.node.jukinet.internal``."""
        if not self.is_node:
            raise Rejected(Problem.INVALID, f"{self} is not a node: only nodes serve TLS")
        return str(self).replace(":", "-") + TLS_NAME_SUFFIX

    @property
    def site_code(self) -> str:
        """Where terminals of this identity sit: a municipality code, a prefecture code or "national"."""
        if self.kind in SITED_KINDS:
            return self.site or ""
        if self.kind in SINGLETON_KINDS:
            return "national"  # J-LIS's services share the national site
        if self.kind in (NodeKind.AGENCY, NodeKind.CARD, NodeKind.PORTAL):
            raise Rejected(Problem.INVALID, f"{self} has no site")
        return self.code or ""

    @property
    def corporate_number(self) -> CorporateNumber:
        """The 法人番号 of an agency."""
        if self.kind is not NodeKind.AGENCY:
            raise Rejected(Problem.INVALID, f"{self} is not an agency")
        return CorporateNumber(self.code or "")

    @property
    def prefecture_code(self) -> str:
        """The 2-digit prefecture of a CS or prefecture node."""
        if self.kind not in (NodeKind.CS, NodeKind.PREFECTURE):
            raise Rejected(Problem.INVALID, f"{self} is not in a prefecture")
        return (self.code or "")[:2]

    def __str__(self) -> str:
        if self.kind in SINGLETON_KINDS:
            return self.kind.value
        if self.kind in SITED_KINDS:
            return f"{self.kind.value}:{self.site}:{self.name}"
        return f"{self.kind.value}:{self.code}"
