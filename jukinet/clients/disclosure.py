"""The resident's (and the counter's) side of 開示: ask a node for a resident's entries of its log and believe
only what verifies.

A :class:`DisclosureClient` calls ``ListMine`` (through a portal's channel, with the resident's card
presented over the exact query bytes) or ``ListForResident`` / ``ListProvisionsForResident`` (a counter
terminal with its operator session). :class:`DisclosureVerifier` checks every answer before anything is
shown, in order:

1. the signing certificate is issued by the node CA the client trusts (given, not taken from the answer),
   valid now, a *signing* certificate (nonRepudiation, no TLS use) and names the node asked;
2. the tree head's envelope: type TreeHead, JukiNet's algorithm, the certificate's key id, the signature
   over the exact payload bytes; then the head: the node asked, the log asked, 32-byte root;
3. consistency: the head extends the head this client saw before (kept in a small JSON file,
   :class:`SeenHeads`) — the same root for the same size, or the consistency proof from that size;
4. each entry: its inclusion path leads from SHA-256(0x00 ‖ the leaf bytes) at its index to the head's
   root; indexes ascend and lie after the page asked; the leaf parses, its id is its index + 1, and it is
   the resident's: the answer is for the 住民票コード the client was told (the counter's resident; for
   ``ListMine`` the card holder's own code, which the resident gives — never taken from the answer), and
   each entry is of that code or of a former code the answer lists.

Former codes (住民票コード変更) are the one thing the client takes on the node's word: the answer's list
of them is not signed, so whoever answers could name another resident's code as a former one and show
that resident's (properly proved) entries. The client accepts a former code only when the answer lists
it and an entry carries it; that the code really was this resident's is trusted to the node (and to the
TLS channel the client reaches it through).

Anything that does not verify raises :class:`Rejected` (UNAUTHENTICATED, "not shown") and nothing of the
answer is returned. The client does not read the node CA's CRL (a resident's device has no feed of it):
a revoked node signing key is caught only by the consistency of what it signs with what was seen before.
This module imports the wire contract, the domain and :mod:`jukinet.merkle` only (no PKI, storage or
token code).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from jukinet import merkle
from jukinet.clients.cards import PresentableCard, present_card
from jukinet.clients.terminal import TerminalClient
from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.disclosure import CARD_PURPOSE, COPY_ISSUANCE_LOG, PROVISION_LOG
from jukinet.domain.errors import Problem, Rejected
from jukinet.v1 import (
    admin_pb2,
    audit_pb2,
    cards_pb2,
    copies_pb2,
    disclosure_pb2,
    disclosure_pb2_grpc,
    envelope_pb2,
)

__all__ = [
    "DisclosureClient",
    "DisclosureVerifier",
    "SeenHead",
    "SeenHeads",
    "Verified",
    "disclosure_query",
    "present_for_disclosure",
]

D = disclosure_pb2
_CONTEXT = b"jukinet-signed-v1\x00"
_TREE_HEAD_TYPE = audit_pb2.TreeHead.DESCRIPTOR.full_name
_Refusal = Callable[[str], Rejected]
_LEAF_TYPES: dict[str, type[Message]] = {
    PROVISION_LOG: admin_pb2.ProvisionEntry,
    COPY_ISSUANCE_LOG: copies_pb2.CopyIssuance,
}


def disclosure_query(node_id: str, after_id: int = 0, limit: int = 0, known_tree_size: int = 0) -> bytes:
    """A serialized DisclosureQuery: the bytes the resident's card signs and the node answers."""
    query = D.DisclosureQuery(node_id=node_id, after_id=after_id, limit=limit, known_tree_size=known_tree_size)
    return query.SerializeToString()


def present_for_disclosure(
    card: PresentableCard, query: bytes, clock: Clock = SYSTEM_CLOCK
) -> cards_pb2.CardPresentation:
    """The resident's unlocked card, presented over ``query`` to the node it asks (once, for 120 s)."""
    return present_card(card, CARD_PURPOSE, D.DisclosureQuery.FromString(query).node_id, query, clock)


# -- what the client saw before ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeenHead:
    tree_size: int
    root: bytes


class SeenHeads:
    """The last verified tree head of each (node, log), in a small JSON file (written atomically)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._heads: dict[str, SeenHead] = {}
        if path is not None and path.exists():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                self._heads = {k: SeenHead(int(v["tree_size"]), bytes.fromhex(v["root"])) for k, v in raw.items()}
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise Rejected(Problem.INVALID, f"{path} is not a file of seen tree heads: {exc}") from None

    @staticmethod
    def _key(node_id: str, log: str) -> str:
        return f"{node_id}/{log}"

    def get(self, node_id: str, log: str) -> SeenHead | None:
        return self._heads.get(self._key(node_id, log))

    def put(self, node_id: str, log: str, head: SeenHead) -> None:
        self._heads[self._key(node_id, log)] = head
        if self.path is None:
            return
        data = {k: {"tree_size": v.tree_size, "root": v.root.hex()} for k, v in sorted(self._heads.items())}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)


# -- verification --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    """An answer that verified: its entries (leaf index, parsed leaf), the head they are proved against."""

    log: str
    resident_code: str
    head: audit_pb2.TreeHead
    entries: tuple[tuple[int, Message], ...]
    consistent_from: int  # the size of the head seen before (0: none)
    more: bool
    newer_than_tree_head: bool


class DisclosureVerifier:
    """Verifies disclosure answers of nodes whose signing certificates ``node_ca`` issued."""

    def __init__(self, node_ca: x509.Certificate, clock: Clock = SYSTEM_CLOCK) -> None:
        self._node_ca = node_ca
        self._clock = clock

    def verify(
        self,
        answer: D.DisclosureAnswer,
        node_id: str,
        log: str,
        seen: SeenHead | None,
        after_id: int = 0,
        resident_code: str | None = None,
    ) -> Verified:
        """``answer`` if it verifies (see the module docstring); ``resident_code`` None: the card's holder,
        whoever the answer says it is (the node decided from the card)."""

        def refused(why: str) -> Rejected:
            return Rejected(Problem.UNAUTHENTICATED, f"the disclosure from {node_id} does not verify: {why}; not shown")

        if log not in _LEAF_TYPES or answer.log != log:
            raise refused(f"it is of the {answer.log!r} log, not the {log!r} log")
        if resident_code is not None and answer.resident_code != resident_code:
            raise refused(f"it is for {answer.resident_code}, not {resident_code}")
        key = self._signing_key(answer.signer_certificate, node_id, refused)
        head = self._open_head(answer.tree_head, key, refused)
        if head.node_id != node_id or head.log != log or len(head.root_hash) != merkle.HASH_SIZE or not head.tree_size:
            raise refused(f"the tree head is of {head.node_id}'s {head.log!r} log of size {head.tree_size}")
        size, root = head.tree_size, bytes(head.root_hash)
        consistent_from = 0
        if seen is not None and seen.tree_size:
            try:
                if seen.tree_size > size:
                    raise merkle.ProofError(f"the head seen before has {seen.tree_size} entries, this one {size}")
                if seen.tree_size == size:
                    if seen.root != root:
                        raise merkle.ProofError(f"two different roots for size {size}")
                else:
                    merkle.verify_consistency(seen.tree_size, size, seen.root, root, list(answer.consistency_proof))
            except Rejected as exc:
                raise refused(f"consistency with the tree head seen before: {exc}") from None
            consistent_from = seen.tree_size
        codes = {answer.resident_code, *answer.former_resident_codes}
        kind = _LEAF_TYPES[log]
        entries: list[tuple[int, Message]] = []
        previous = after_id - 1
        for entry in answer.entries:
            index = entry.leaf_index
            if index <= previous:
                raise refused(f"entry {index} is out of order or not after the page asked")
            previous = index
            try:
                merkle.verify_inclusion(merkle.leaf_hash(entry.leaf), index, size, list(entry.inclusion_path), root)
            except Rejected as exc:
                raise refused(f"inclusion of entry {index}: {exc}") from None
            try:
                leaf = kind.FromString(entry.leaf)
            except DecodeError:
                raise refused(f"entry {index} is not a {kind.DESCRIPTOR.name}") from None
            number = leaf.provision_id if log == PROVISION_LOG else leaf.serial  # type: ignore[attr-defined]
            if number != index + 1 or leaf.resident_code not in codes:  # type: ignore[attr-defined]
                raise refused(f"entry {index} is #{number} of {leaf.resident_code}")  # type: ignore[attr-defined]
            entries.append((index, leaf))
        return Verified(
            log, answer.resident_code, head, tuple(entries), consistent_from, answer.more, answer.newer_than_tree_head
        )

    def _signing_key(self, der: bytes, node_id: str, refused: _Refusal) -> ec.EllipticCurvePublicKey:
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            raise refused("the signing certificate does not parse") from None
        try:
            certificate.verify_directly_issued_by(self._node_ca)
        except (ValueError, TypeError, InvalidSignature):
            raise refused("the signing certificate is not issued by the node CA") from None
        now = dt.datetime.fromtimestamp(self._clock.now_ms() / 1000, dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise refused("the signing certificate is not valid now")
        try:
            names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise refused("the signing certificate lacks its names or key usage") from None
        if f"urn:jukinet:{node_id}" not in names.get_values_for_type(x509.UniformResourceIdentifier):
            raise refused(f"the signing certificate does not name {node_id}")
        try:
            certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
            tls = True
        except x509.ExtensionNotFound:
            tls = False
        if tls or not usage.content_commitment:
            raise refused("the certificate is not a signing certificate (a TLS key file cannot sign tree heads)")
        key = certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise refused("the signing certificate is not for a P-256 key")
        return key

    @staticmethod
    def _open_head(
        signed: envelope_pb2.Signed, key: ec.EllipticCurvePublicKey, refused: _Refusal
    ) -> audit_pb2.TreeHead:
        if signed.payload_type != _TREE_HEAD_TYPE:
            raise refused(f"the tree head envelope holds {signed.payload_type or 'nothing'}")
        if signed.algorithm != envelope_pb2.SIGNATURE_ALGORITHM_ECDSA_P256_SHA256:
            raise refused("the tree head is signed with another algorithm")
        spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if signed.key_id != hashlib.sha256(spki).digest():
            raise refused("the tree head was not signed by the certificate's key")
        digest = hashlib.sha256(_CONTEXT + _TREE_HEAD_TYPE.encode() + b"\x00" + signed.payload).digest()
        signature = bytes(signed.signature)
        if len(signature) != 64:
            raise refused("the tree head's signature is not 64 bytes (r‖s)")
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        try:
            key.verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        except InvalidSignature:
            raise refused("the tree head's signature does not verify") from None
        try:
            return audit_pb2.TreeHead.FromString(signed.payload)
        except DecodeError:
            raise refused("the tree head does not parse") from None


# -- the calls -----------------------------------------------------------------------------------------------


class DisclosureClient:
    """Disclosure calls on one channel (a portal's to the node asked, or a counter terminal's), each answer
    verified and the head it extends remembered (``seen``)."""

    def __init__(
        self,
        channel: grpc.Channel,
        verifier: DisclosureVerifier,
        seen: SeenHeads,
        terminal: TerminalClient | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._stub = disclosure_pb2_grpc.DisclosureServiceStub(channel)
        self._counter = disclosure_pb2_grpc.DisclosureCounterServiceStub(channel)
        self._verifier = verifier
        self.seen = seen
        self._terminal = terminal
        self._timeout = timeout

    def mine(
        self,
        card: PresentableCard,
        holder: str,
        node_id: str,
        log: str,
        limit: int = 0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Iterator[Verified]:
        """Every page of the entries of ``holder`` (the card holder's 住民票コード, as the resident knows it)
        in ``log`` at ``node_id`` (the card signs each page's query), verified — an answer for anyone else
        is refused; the last head verified is remembered."""
        after = 0
        while True:
            seen = self.seen.get(node_id, log)
            query = disclosure_query(node_id, after, limit, seen.tree_size if seen else 0)
            presentation = present_for_disclosure(card, query, clock)
            request = D.ListMineRequest(query=query, card=presentation)
            answer = self._stub.ListMine(request, timeout=self._timeout).answer
            verified = self._accept(answer, node_id, log, seen, after, holder)
            yield verified
            if not verified.more or not verified.entries:
                return
            after = verified.entries[-1][0] + 1

    def for_resident(self, resident_code: str, node_id: str, log: str, limit: int = 0) -> Iterator[Verified]:
        """At the counter (a terminal with an operator holding disclose-provisions): every page of the
        resident's entries — the national server's provisions through this terminal's CS when ``log`` is
        the provision log, else the CS's own copy issuances — verified against ``node_id``'s head."""
        if self._terminal is None:
            raise Rejected(Problem.INVALID, "the counter's requests need an operator terminal")
        provisions = log == PROVISION_LOG
        rpc = self._counter.ListProvisionsForResident if provisions else self._stub.ListForResident
        kind = D.ListProvisionsForResidentRequest if provisions else D.ListForResidentRequest
        after = 0
        while True:
            seen = self.seen.get(node_id, log)
            known = seen.tree_size if seen else 0
            request = kind(resident_code=resident_code, after_id=after, limit=limit, known_tree_size=known)
            answer = self._terminal.call(rpc, request, self._timeout).answer
            verified = self._accept(answer, node_id, log, seen, after, resident_code)
            yield verified
            if not verified.more or not verified.entries:
                return
            after = verified.entries[-1][0] + 1

    def _accept(
        self,
        answer: D.DisclosureAnswer,
        node_id: str,
        log: str,
        seen: SeenHead | None,
        after: int,
        resident_code: str | None,
    ) -> Verified:
        verified = self._verifier.verify(answer, node_id, log, seen, after, resident_code)
        self.seen.put(node_id, log, SeenHead(verified.head.tree_size, bytes(verified.head.root_hash)))
        return verified


def entry_lines(verified: Sequence[Verified]) -> list[str]:
    """What was disclosed and what was verified, as printed."""
    lines: list[str] = []
    for page in verified:
        for _, leaf in page.entries:
            lines.append(_entry_line(page.log, leaf))
    if not verified:
        return lines
    last = verified[-1]
    count = sum(len(p.entries) for p in verified)
    root = bytes(last.head.root_hash).hex()
    entries = "entry" if count == 1 else "entries"
    lines.append(
        f"inclusion: {count} {entries} verified against tree head size {last.head.tree_size} root {root[:16]}… "
        f"signed by {last.head.node_id}"
    )
    first = verified[0]
    if first.consistent_from:
        lines.append(f"consistency {first.consistent_from} → {last.head.tree_size} verified")
    else:
        lines.append(f"consistency: no tree head seen before; size {last.head.tree_size} remembered")
    if last.newer_than_tree_head:
        lines.append("newer entries are not covered by a signed tree head yet (sealed every second): ask again")
    return lines


def _when(ts: Timestamp) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")


def _entry_line(log: str, leaf: Message) -> str:
    if log == PROVISION_LOG:
        p: admin_pb2.ProvisionEntry = leaf  # type: ignore[assignment]
        kind = admin_pb2.QueryKind.Name(p.query_kind).removeprefix("QUERY_KIND_").lower()
        items = ", ".join(p.items) or "-"
        return (
            f"provision #{p.provision_id} {_when(p.provided_at)} to {p.agency} for {p.business_code} by {kind}: {items}"
        )
    c: copies_pb2.CopyIssuance = leaf  # type: ignore[assignment]
    extra = [n for n, on in (("住民票コード", c.resident_code_included), ("個人番号", c.my_number_included)) if on]
    return f"copy #{c.serial} {_when(c.issued_at)} to {c.requesting_cs}" + (
        f" with {', '.join(extra)}" if extra else ""
    )
