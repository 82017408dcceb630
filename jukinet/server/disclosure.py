"""開示 (disclosure) with proofs: the DisclosureService a node serves over one of its Merkle logs.

The national server serves its provision log, every CS its copy-issuance log (the tier builders are in
:mod:`jukinet.server.national.disclosure` and :mod:`jukinet.cs_node.disclosure`); the messages and the
client code are the same. An answer proves each entry against the log's **latest sealed tree head**
(sealed by :class:`jukinet.server.audit.TreeHeadSigner` once a second when the log grew): entries newer
than that head are not disclosed yet, and the answer says so. It carries the consistency proof from the
tree head the client saw before, so the client knows the log it saw then is a prefix of this one.

**Who is asking.**

- ``ListMine``: a residents' portal (``portal:<name>``, node CA) relays the resident's request; the
  resident's card decides whose entries: the card's presentation over the exact query bytes (card CA,
  authentication key, CRL, ±120 s, single use, for "disclosure" to this node), with exactly the
  authentication certificate this node holds for that card (a CS's own card records keep it byte for
  byte; the national card index keeps its card CA serial), for a card that may be presented now
  (issued, not suspended or revoked). The holder comes from that record, never from the request.
- ``ListForResident``: at a CS, an operator of its site with the role disclose-provisions (the session is
  checked directly); at the national server, a CS asking for the operator at its counter (it names the
  operator), answered only for a resident the CS owns now or held before (its own notice is in the
  resident's history here) — so a rogue CS cannot read the provisions of the whole country.

Every answer is audited (``AUDIT_ACTION_DISCLOSE``) before it leaves, naming the card or the operator and
CS; refusals are audited by the guard. Each caller and each resident have a rate (docs/LIMITS.md): a
card presentation is verified first, and one that fails counts in the portal's bucket of failures only, so
junk sent through a portal cannot lock out the residents it relays; a valid one counts for its holder and
in the portal's bucket sized for national traffic. A CS's bucket is the CS's alone, whatever operator it
names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import lmdb
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.domain.card_lifecycle import presentable_problem
from jukinet.domain.clock import Clock
from jukinet.domain.disclosure import CARD_PURPOSE, Page, page_of, parse_query, resident_code
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import (
    DISCLOSURE_FAILURES_PER_MINUTE_PER_CALLER,
    DISCLOSURES_PER_MINUTE_PER_CALLER,
    DISCLOSURES_PER_MINUTE_PER_PORTAL,
    DISCLOSURES_PER_MINUTE_PER_RESIDENT,
)
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.quoting import quoted
from jukinet.pki.card_presence import CardPresenceVerifier, PresentedCard
from jukinet.server.audit import Auditor
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import Policy
from jukinet.storage import MerkleLog, NodeStorage
from jukinet.v1 import audit_pb2, cards_pb2, disclosure_pb2, disclosure_pb2_grpc, envelope_pb2

D = disclosure_pb2
SUCCESS = audit_pb2.AUDIT_OUTCOME_SUCCESS
Entries = tuple[list[tuple[int, bytes]], bool]


class DisclosedLog(Protocol):
    """A log served for disclosure: its Merkle log and a resident's entries in it."""

    @property
    def log(self) -> MerkleLog: ...

    def of_resident(self, resident_code: str, after_id: int, limit: int) -> Entries:
        """The resident's entries with ids above ``after_id`` as (leaf index, leaf bytes), at most
        ``limit``, in leaf order; and whether more follow."""
        ...


class RateLimit:
    """A token bucket per key (in memory; a restart refills it): ``per_minute`` at once, refilled evenly."""

    def __init__(self, per_minute: int, clock: Clock, what: str) -> None:
        self._per_minute, self._clock, self._what = per_minute, clock, what
        self._buckets: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        now = self._clock.now_ms()
        with self._lock:
            if len(self._buckets) > 100_000:  # forget those refilled by now: memory stays bounded
                self._buckets = {k: v for k, v in self._buckets.items() if self._refilled(v, now) < self._per_minute}
            tokens = self._refilled(self._buckets.get(key, (float(self._per_minute), now)), now)
            if tokens < 1:
                raise Rejected(
                    Problem.EXHAUSTED,
                    f"more than {self._per_minute} disclosure requests a minute {self._what}; try later",
                )
            self._buckets[key] = (tokens - 1, now)

    def _refilled(self, bucket: tuple[float, int], now: int) -> float:
        tokens, at = bucket
        return min(float(self._per_minute), tokens + (now - at) * self._per_minute / 60_000)


def gather(logs: Callable[[str, int, int], Entries], codes: Sequence[str], after_id: int, limit: int) -> Entries:
    """The entries of several codes of one resident (a 住民票コード変更 keeps the old code's entries under
    it), merged in leaf order, at most ``limit``."""
    merged: list[tuple[int, bytes]] = []
    more = False
    for code in codes:
        found, code_more = logs(code, after_id, limit)
        merged += found
        more = more or code_more
    merged.sort(key=lambda e: e[0])
    return merged[:limit], more or len(merged) > limit


class Disclosure:
    """Builds proved answers over one log, and decides who may have them (see the module docstring)."""

    def __init__(
        self,
        node_id: NodeId,
        storage: NodeStorage,
        served: DisclosedLog,
        auditor: Auditor,
        certificate_der: bytes,
        verifier: CardPresenceVerifier,
        clock: Clock,
        former_codes: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.node_id = node_id
        self._storage = storage
        self._served = served
        self._auditor = auditor
        self._certificate_der = certificate_der
        self._verifier = verifier
        self._former_codes = former_codes or (lambda code: [])
        self._callers = RateLimit(DISCLOSURES_PER_MINUTE_PER_CALLER, clock, "from this caller")
        self._portals = RateLimit(DISCLOSURES_PER_MINUTE_PER_PORTAL, clock, "relayed by this portal")
        self._failures = RateLimit(
            DISCLOSURE_FAILURES_PER_MINUTE_PER_CALLER, clock, "with a card presentation that fails, from this caller"
        )
        self._residents = RateLimit(DISCLOSURES_PER_MINUTE_PER_RESIDENT, clock, "for this resident")

    @property
    def log_name(self) -> str:
        return self._served.log.name

    def tree_head(self) -> D.GetTreeHeadResponse:
        _, head = self._latest()
        return D.GetTreeHeadResponse(tree_head=head, signer_certificate=self._certificate_der)

    # -- the resident, with their card -------------------------------------------------------------------

    def mine(self, raw: bytes, card: cards_pb2.CardPresentation, caller: Caller) -> D.DisclosureAnswer:
        """The card holder's answer. The presentation is verified before any bucket a valid request uses is
        touched: one that fails counts in the portal's bucket of failures (junk cannot starve the residents
        the portal relays); a valid one counts for its holder, then in the portal's (national-sized) bucket."""
        _, page = parse_query(raw, str(self.node_id))
        portal = str(caller.primary)
        try:
            presented = self._verifier.verify(card, CARD_PURPOSE, str(self.node_id), raw, self._known_card)
            holder = self._holder(presented.card_serial)
        except Rejected:
            self._failures.take(portal)
            raise
        self._residents.take(holder)
        self._portals.take(portal)
        answer = self._answer(holder, page)
        detail = self._detail(answer, page, f"card {presented.card_serial} presented through {caller.primary}")
        self._audit(caller, holder, detail, actor=f"card:{presented.card_serial}")
        return answer

    def _known_card(self, presented: PresentedCard) -> None:
        """Only a card this node holds a record of, that may be presented now, with exactly the certificate
        recorded for it (checked before the presentation takes a replay-cache slot)."""
        card = self._storage.cards.holder_of(presented.card_serial)
        if card is None or presentable_problem(card, presented.card_serial) is not None or not _same(card, presented):
            raise Rejected(
                Problem.UNAUTHENTICATED,
                f"card presentation refused: {self.node_id} holds no card {presented.card_serial} with this "
                "certificate that may be presented now",
            )

    def _holder(self, card_serial: str) -> str:
        card = self._storage.cards.holder_of(card_serial)
        if card is None or not card.resident_code:
            raise Rejected(Problem.UNAUTHENTICATED, f"card {card_serial} names no resident here")
        return card.resident_code

    # -- the counter ----------------------------------------------------------------------------------------

    def for_resident(
        self,
        request: D.ListForResidentRequest,
        caller: Caller,
        operator: str,
        allowed: Callable[[lmdb.Transaction, str], bool] | None = None,
    ) -> D.DisclosureAnswer:
        """The answer for the resident ``request`` names, for ``operator`` (acting through ``caller``).
        ``allowed(txn, code)`` (the national server: does the calling CS own or hold the resident?)."""
        code = resident_code(request.resident_code)
        page = page_of(request.after_id, request.limit, request.known_tree_size)
        self._callers.take(str(caller.primary))  # the CS (or terminal) alone: operator names are the caller's
        if allowed is not None:
            with self._storage.env.read() as txn:
                if not allowed(txn, code):
                    raise Rejected(
                        Problem.DENIED,
                        f"{caller.primary} neither keeps nor kept the record of {code}; its operators cannot "
                        "disclose their provisions",
                    )
        self._residents.take(code)
        answer = self._answer(code, page)
        via = f" through {caller.primary}" if str(caller.primary) != operator else ""
        self._audit(caller, code, self._detail(answer, page, f"at the counter: {operator}{via}"), actor=operator)
        return answer

    # -- the answer -----------------------------------------------------------------------------------------

    def _latest(self) -> tuple[int, envelope_pb2.Signed]:
        latest = self._served.log.latest_tree_head()
        if latest is None:
            raise Rejected(
                Problem.NOT_FOUND,
                f"the {self.log_name} log of {self.node_id} has no signed tree head: nothing was logged here "
                "yet (heads are sealed once a second after an entry is logged)",
            )
        return latest[0], envelope_pb2.Signed.FromString(latest[1])

    def _answer(self, code: str, page: Page) -> D.DisclosureAnswer:
        size, head = self._latest()
        if page.known_tree_size > size:
            raise Rejected(
                Problem.CONFLICT,
                f"known_tree_size {page.known_tree_size} is beyond the latest signed tree head of the "
                f"{self.log_name} log ({size} entries): that head was not this log's",
            )
        former = self._former_codes(code)
        found, more = gather(self._served.of_resident, [code, *former], page.after_id, page.limit)
        within = [(i, leaf) for i, leaf in found if i < size]
        newer = len(within) < len(found)
        log = self._served.log
        answer = D.DisclosureAnswer(
            log=self.log_name,
            resident_code=code,
            tree_head=head,
            signer_certificate=self._certificate_der,
            more=more and not newer,
            newer_than_tree_head=newer,
            former_resident_codes=former,
        )
        for index, leaf in within:
            _, path = log.inclusion_proof(index, size)
            answer.entries.append(D.DisclosedEntry(leaf_index=index, leaf=leaf, inclusion_path=path))
        if 0 < page.known_tree_size < size:
            answer.consistency_proof.extend(log.consistency_proof(page.known_tree_size, size))
        # One gather is enough: when it found no more, every entry after the page is in ``found``, so an
        # entry beyond the head would be among them (``newer``).
        return answer

    def _detail(self, answer: D.DisclosureAnswer, page: Page, who: str) -> str:
        size = _size(answer.tree_head)
        return (
            f"{who}: {len(answer.entries)} entries of the {self.log_name} log after #{page.after_id}, "
            f"tree head size {size}" + (f", consistency from {page.known_tree_size}" if page.known_tree_size else "")
        )

    def _audit(self, caller: Caller, code: str, detail: str, actor: str) -> None:
        action = audit_pb2.AUDIT_ACTION_DISCLOSE
        self._storage.env.submit(
            lambda txn: self._auditor.append(txn, action, SUCCESS, caller, code, detail, actor=actor)
        ).result()


def _same(card: cards_pb2.CardRecord, presented: PresentedCard) -> bool:
    """The presented authentication certificate is the one recorded for the card: byte for byte where the
    node keeps it (a CS), else by its card CA serial (the national index keeps the serial; the card CA
    issues each serial once, so the serial names exactly one certificate)."""
    if card.auth_certificate:
        return card.auth_certificate == presented.certificate.public_bytes(Encoding.DER)
    return bool(card.auth_certificate_serial) and card.auth_certificate_serial == format(
        presented.certificate.serial_number, "x"
    )


def _size(signed: envelope_pb2.Signed) -> int:
    return audit_pb2.TreeHead.FromString(signed.payload).tree_size


# -- the RPC edge ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policies:
    """Who may call each RPC at this node (the tier decides)."""

    tree_head: Policy
    mine: Policy
    for_resident: Policy


class DisclosureRpc(disclosure_pb2_grpc.DisclosureServiceServicer):
    def __init__(
        self,
        disclosure: Disclosure,
        policies: Policies,
        auditor: Auditor,
        blocking: Blocking,
        counter: Callable[[D.ListForResidentRequest, Caller], D.DisclosureAnswer],
    ) -> None:
        self._disclosure = disclosure
        self._counter = counter
        self.auditor = auditor
        self.blocking = blocking
        self.readers = policies.tree_head
        self.residents = policies.mine
        self.counters = policies.for_resident

    @guarded("readers")
    def GetTreeHead(self, request: D.GetTreeHeadRequest, caller: Caller) -> D.GetTreeHeadResponse:
        return self._disclosure.tree_head()

    @guarded("residents", audit=audit_pb2.AUDIT_ACTION_DISCLOSE)
    def ListMine(self, request: D.ListMineRequest, caller: Caller) -> D.ListMineResponse:
        return D.ListMineResponse(answer=self._disclosure.mine(request.query, request.card, caller))

    @guarded("counters", audit=audit_pb2.AUDIT_ACTION_DISCLOSE)
    def ListForResident(self, request: D.ListForResidentRequest, caller: Caller) -> D.ListForResidentResponse:
        return D.ListForResidentResponse(answer=self._counter(request, caller))


def operator_named(request: D.ListForResidentRequest, cs: NodeId) -> str:
    """The operator a CS names for the national server: an operator of that CS's site (INVALID otherwise)."""
    try:
        operator: NodeId | None = NodeId.parse(request.operator_id)
    except Rejected:
        operator = None
    if operator is None or operator.kind is not NodeKind.OPERATOR or operator.site != cs.code:
        raise Rejected(
            Problem.INVALID,
            f"operator_id: {quoted(request.operator_id)} is not an operator of {cs} (operator:{cs.code}:<name>)",
        )
    return str(operator)
