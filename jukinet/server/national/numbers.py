"""National number allocation (J-LIS): 住民票コード designated to each CS in blocks, My Numbers computed from
the 住民票コード inside the national token. Callers are CS node identities only.

- **DesignateCodes**: ``count`` fresh codes (random bases from :mod:`secrets`, the check digit of
  :mod:`jukinet.domain.codes`); in ONE write transaction each is checked against every code ever designated
  and recorded as designated to the caller with the block number, so neither concurrent requests nor a
  restart can designate one twice. A CS holds at most ``MAX_UNUSED_CODES`` designated codes that no notice
  has used yet (counted in that transaction; the national :class:`jukinet.server.changes.ChangeWriter`
  counts a code used when its first record is stored): more is EXHAUSTED. The answer is a CodeBlock
  sealed by the national token (with the node certificate) so that the prefecture can verify the
  designation. The request id makes a retry return the same block (signed again).
- **AssignMyNumbers**: for codes designated to or owned by the caller. Numbers missing are computed in
  the token in one job for the whole request (:class:`jukinet.hsm.TokenMac`), then one write transaction
  keeps those that are free (a collision, or an all-zero base, takes the next attempt) — so the same code
  always gets the same number and no number is issued twice.
- **ChangeMyNumber** and **ChangeResidentCode** are rate-limited per CS (``CHANGES_PER_HOUR``, EXHAUSTED
  beyond; a retry of a change already made is free). **ChangeMyNumber** retires the old number for good
  and issues the next free one; **ChangeResidentCode** designates one fresh code to the caller in a
  block that names the code it replaces (so the prefecture learns the link from the national signature),
  moves the number to it, and keeps the old code (never designated again) with a link to the new one.
  The change notice that follows from the CS ends the old record at every tier
  (:class:`jukinet.server.changes.ChangeWriter`).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import lmdb

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.codes import MyNumber, ResidentCode
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.numbers import (
    CODE_SPACE,
    MAX_CODES_PER_BLOCK,
    MAX_MY_NUMBER_ATTEMPTS,
    MAX_NUMBERS_PER_REQUEST,
    MAX_REQUEST_ID_CHARS,
    mac_input,
    may_number,
    my_number_from_mac,
    resident_code_from_random,
)
from jukinet.domain.quoting import quoted
from jukinet.pki import Signer, seal_payload
from jukinet.server.audit import Auditor
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import Kinds
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.storage import NodeStorage
from jukinet.storage.layout import RETIRED, Counter
from jukinet.v1 import audit_pb2, envelope_pb2, numbers_pb2, numbers_pb2_grpc

A = audit_pb2
MAX_UNUSED_CODES = 20_000
"""DesignateCodes quota: codes designated to one CS that no notice has used yet (four reserves' worth; a
bulk import uses its codes as it goes, so the count falls as its notices reach the national server)."""
CHANGES_PER_HOUR = 200
"""ChangeMyNumber + ChangeResidentCode per CS per hour (a burst of as many, then refilled evenly): each
retires a number or a code for good, and a municipality makes a few a day."""
BLOCK_TYPE = numbers_pb2.CodeBlock.DESCRIPTOR.full_name
Macs = Callable[[Sequence[bytes]], list[bytes]]


def _request_id(text: str) -> str:
    if not text or len(text) > MAX_REQUEST_ID_CHARS or not text.isprintable():
        raise Rejected(
            Problem.INVALID, f"request_id must be 1..{MAX_REQUEST_ID_CHARS} printable characters, got {quoted(text)}"
        )
    return text


class RateLimit:
    """A token bucket per CS (in memory: a restart refills it): ``per_hour`` at once, refilled evenly."""

    def __init__(self, per_hour: int, clock: Clock, what: str) -> None:
        self._per_hour, self._clock, self._what = per_hour, clock, what
        self._buckets: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def take(self, cs: str) -> None:
        now = self._clock.now_ms()
        with self._lock:
            tokens, at = self._buckets.get(cs, (float(self._per_hour), now))
            tokens = min(float(self._per_hour), tokens + (now - at) * self._per_hour / 3_600_000)
            if tokens < 1:
                raise Rejected(
                    Problem.EXHAUSTED, f"{cs} made {self._per_hour} {self._what} within the last hour; try later"
                )
            self._buckets[cs] = (tokens - 1, now)


@dataclass(frozen=True)
class Assigned:
    resident_code: str
    my_number: str


class NumberAllocation:
    """The plain object behind NumberService (and ``bench/allocate.py``)."""

    def __init__(
        self,
        storage: NodeStorage,
        macs: Macs,
        signer: Signer,
        certificate_der: bytes,
        auditor: Auditor,
        clock: Clock = SYSTEM_CLOCK,
        draw: Callable[[int], int] = secrets.randbelow,
        max_unused: int | None = MAX_UNUSED_CODES,
        changes_per_hour: int = CHANGES_PER_HOUR,
    ) -> None:
        self._max_unused = max_unused  # None: no quota (bench/allocate.py)
        self._changes = RateLimit(changes_per_hour, clock, "My Number or 住民票コード changes")
        self._storage = storage
        self._macs = macs
        self._signer = signer
        self._certificate = certificate_der
        self._auditor = auditor
        self._clock = clock
        self._draw = draw

    # -- 住民票コード ---------------------------------------------------------------------------------------

    def designate(self, cs: NodeId, request_id: str, count: int) -> envelope_pb2.Signed:
        """A signed block of ``count`` fresh codes for ``cs`` (the same block again for a known request id)."""
        request_id = _request_id(request_id)
        if not 0 < count <= MAX_CODES_PER_BLOCK:
            raise Rejected(Problem.INVALID, f"count must be 1..{MAX_CODES_PER_BLOCK}, got {count}")
        # urgent: a CS waits for it, and it is short (≤ 1,000 puts); behind a national ingest it would wait seconds
        payload = self._storage.env.submit(
            lambda txn: self._designate(txn, str(cs), request_id, count), urgent=True
        ).result()
        return self._seal(payload)

    def _designate(
        self, txn: lmdb.Transaction, cs: str, request_id: str, count: int, action: int = 0, replaces: str = ""
    ) -> bytes:
        s = self._storage
        done = s.numbers.answered(txn, cs, request_id)
        if done is not None:
            payload = s.numbers.block(txn, done)
            if payload is None:
                raise Rejected(Problem.BROKEN, f"block #{done} answered request {quoted(request_id)} but is not stored")
            return payload
        unused = s.designations.unused(txn, cs)
        if self._max_unused is not None and unused + count > self._max_unused:
            raise Rejected(
                Problem.EXHAUSTED,
                f"{cs} holds {unused} designated 住民票コード no notice has used yet; at most {self._max_unused} "
                f"(asked for {count} more)",
            )
        s.designations.add_unused(txn, cs, count)
        block_number = s.env.reserve(txn, Counter.CODE_BLOCK)
        block = numbers_pb2.CodeBlock(cs=cs, block=block_number, replaces=replaces)
        block.issued_at.FromMilliseconds(self._clock.now_ms())
        drawn = 0
        while len(block.codes) < count:
            drawn += 1
            if drawn > 10 * count + 100:  # 10^10 codes: only a broken random source gets here
                raise Rejected(Problem.BROKEN, "the random source keeps drawing codes designated before")
            code = resident_code_from_random(self._draw(CODE_SPACE))
            if code is not None and s.designations.put(txn, code, cs, block_number):
                block.codes.append(code)
        payload = block.SerializeToString()
        s.numbers.put_block(txn, block_number, payload)
        s.numbers.answer(txn, cs, request_id, block_number)
        s.audit.append(
            txn,
            self._auditor.entry(
                action or A.AUDIT_ACTION_DESIGNATE_CODES, A.AUDIT_OUTCOME_SUCCESS, cs, cs, cs,
                f"block #{block_number}: {count} codes (request {request_id})",
            ),
        )  # fmt: skip
        return payload

    def _seal(self, payload: bytes) -> envelope_pb2.Signed:
        return seal_payload(self._signer, BLOCK_TYPE, payload, self._certificate)

    # -- My Number -------------------------------------------------------------------------------------

    def assign(self, cs: NodeId, codes: Sequence[str]) -> list[Assigned]:
        """The My Number of each code (designated to or owned by ``cs``), computing the missing ones."""
        if not 0 < len(codes) <= MAX_NUMBERS_PER_REQUEST:
            raise Rejected(Problem.INVALID, f"resident_codes: 1..{MAX_NUMBERS_PER_REQUEST} codes, got {len(codes)}")
        wanted = [str(ResidentCode.parse(c)) for c in codes]
        numbers = self._numbers(str(cs), dict.fromkeys(wanted, 0), A.AUDIT_ACTION_ASSIGN_MY_NUMBERS)
        return [Assigned(c, numbers[c]) for c in wanted]

    def _numbers(self, cs: str, attempts: dict[str, int], action: int, retire: str = "") -> dict[str, str]:
        """Numbers for ``attempts`` (code → first attempt), each checked to be ``cs``'s; computed in the
        token a whole round at a time; kept in one transaction per round only if never issued before."""
        s, out = self._storage, {}
        with s.env.read() as txn:
            for code in list(attempts):
                self._numbered(txn, cs, code)
                have = s.numbers.number_of(txn, code)
                if have is not None and have != retire:
                    out[code] = have
                    del attempts[code]
        while attempts:
            macs = self._macs([mac_input(c, a) for c, a in attempts.items()])
            candidates = [(c, my_number_from_mac(m)) for c, m in zip(attempts, macs, strict=True)]

            def keep(txn: lmdb.Transaction, candidates: list[tuple[str, str | None]] = candidates) -> dict[str, str]:
                kept: dict[str, str] = {}
                for code, number in candidates:
                    self._numbered(txn, cs, code)  # again, in the transaction that writes
                    have = s.numbers.number_of(txn, code)
                    if have is not None and have != retire:
                        kept[code] = have  # assigned meanwhile (a concurrent request for the same code)
                    elif number is not None and s.numbers.issued(txn, number) is None:
                        if have is not None:
                            s.numbers.retire(txn, code, have)
                        s.numbers.hold(txn, code, number)
                        kept[code] = number
                if kept:
                    detail = f"{len(kept)} My Numbers" if not retire else "a new My Number; the old one retired"
                    target = next(iter(kept)) if len(kept) == 1 else f"{len(kept)} residents"
                    s.audit.append(txn, self._auditor.entry(action, A.AUDIT_OUTCOME_SUCCESS, cs, cs, target, detail))
                return kept

            kept = s.env.submit(keep).result()
            out.update(kept)
            attempts = {c: a + 1 for c, a in attempts.items() if c not in kept}
            if any(a >= MAX_MY_NUMBER_ATTEMPTS for a in attempts.values()):
                raise Rejected(Problem.BROKEN, f"no free My Number in {MAX_MY_NUMBER_ATTEMPTS} attempts")
        return out

    def _numbered(self, txn: lmdb.Transaction, cs: str, code: str) -> None:
        """``cs``'s code, and not one a 住民票コード変更 replaced: its number moved to the new code, and a new
        one issued for it would be used up for good."""
        self._owned(txn, cs, code)
        successor = self._storage.numbers.replaced_by(txn, code)
        if successor is not None:
            raise Rejected(Problem.CONFLICT, f"resident code {code} was replaced by {successor}: never used again")

    def _owned(self, txn: lmdb.Transaction, cs: str, code: str) -> None:
        s = self._storage
        designated = s.designations.of(txn, code)
        problem = may_number(cs, designated[0] if designated else None, s.records.current(txn, code))
        if problem is not None:
            raise Rejected(Problem.DENIED, problem)

    def change_my_number(self, cs: NodeId, code: str, old_number: str) -> Assigned:
        """Retire ``old_number`` (the code's number now) and issue the next free one; a retry (the old
        number already retired by this code) returns the number issued then."""
        code, old = str(ResidentCode.parse(code)), str(MyNumber.parse(old_number))
        s = self._storage
        with s.env.read() as txn:
            self._owned(txn, str(cs), code)
            issued, now = s.numbers.issued(txn, old), s.numbers.number_of(txn, code)
        if issued is None or issued[0] != code:
            raise Rejected(Problem.DENIED, f"my_number is not a number of resident {code}")
        if issued[1] == RETIRED:
            if now is None:
                raise Rejected(Problem.CONFLICT, f"resident {code} holds no My Number now")
            return Assigned(code, now)  # the retry of a change already made
        self._changes.take(str(cs))
        start = _next_attempt(self._macs, code, old)
        numbers = self._numbers(str(cs), {code: start}, A.AUDIT_ACTION_CHANGE_MY_NUMBER, retire=old)
        return Assigned(code, numbers[code])

    def change_resident_code(self, cs: NodeId, code: str, request_id: str) -> tuple[envelope_pb2.Signed, str]:
        """住民票コード変更: a block of one fresh code for ``cs`` naming ``code`` as the one it replaces, the
        code's number moved to it, old → new kept (``code_changes``, ``code_replaces``). The old code stays
        designated (so never designated again); a code is replaced once; the same request id gets the same
        block again."""
        code, request_id = str(ResidentCode.parse(code)), _request_id(request_id)
        s = self._storage
        with s.env.read() as txn:
            retry = s.numbers.answered(txn, str(cs), request_id) is not None
        if not retry:
            self._changes.take(str(cs))

        def change(txn: lmdb.Transaction) -> tuple[bytes, str]:
            if s.numbers.answered(txn, str(cs), request_id) is None:
                self._owned(txn, str(cs), code)
                replaced = s.numbers.replaced_by(txn, code)
                if replaced is not None:
                    raise Rejected(Problem.CONFLICT, f"resident code {code} was replaced by {replaced} already")
            payload = self._designate(txn, str(cs), request_id, 1, A.AUDIT_ACTION_CHANGE_RESIDENT_CODE, code)
            block = numbers_pb2.CodeBlock.FromString(payload)
            if block.replaces != code:
                raise Rejected(
                    Problem.CONFLICT, f"request {quoted(request_id)} was answered already, not for resident {code}"
                )
            new = block.codes[0]
            if s.numbers.replaced_by(txn, code) is None:
                s.numbers.move(txn, code, new)
            return payload, s.numbers.number_of(txn, new) or ""

        payload, number = s.env.submit(change).result()
        return self._seal(payload), number


def _next_attempt(macs: Macs, code: str, old: str) -> int:
    """The attempt after the one that gave ``old`` (a new number continues the code's sequence)."""
    for attempt in range(MAX_MY_NUMBER_ATTEMPTS):
        if my_number_from_mac(macs([mac_input(code, attempt)])[0]) == old:
            return attempt + 1
    return 0


class NumberRpc(numbers_pb2_grpc.NumberServiceServicer):
    def __init__(self, allocation: NumberAllocation, auditor: Auditor, blocking: Blocking) -> None:
        self._allocation = allocation
        self.auditor = auditor
        self.blocking = blocking
        self.cs_nodes = Kinds.of(NodeKind.CS)

    @staticmethod
    def _cs(caller: Caller) -> NodeId:
        return caller.of_kind(NodeKind.CS)[0]

    @guarded("cs_nodes", audit=A.AUDIT_ACTION_DESIGNATE_CODES)
    def DesignateCodes(
        self, request: numbers_pb2.DesignateCodesRequest, caller: Caller
    ) -> numbers_pb2.DesignateCodesResponse:
        block = self._allocation.designate(self._cs(caller), request.request_id, request.count)
        return numbers_pb2.DesignateCodesResponse(block=block)

    @guarded("cs_nodes", audit=A.AUDIT_ACTION_ASSIGN_MY_NUMBERS)
    def AssignMyNumbers(
        self, request: numbers_pb2.AssignMyNumbersRequest, caller: Caller
    ) -> numbers_pb2.AssignMyNumbersResponse:
        assigned = self._allocation.assign(self._cs(caller), list(request.resident_codes))
        return numbers_pb2.AssignMyNumbersResponse(
            numbers=[numbers_pb2.AssignedNumber(resident_code=a.resident_code, my_number=a.my_number) for a in assigned]
        )

    @guarded("cs_nodes", audit=A.AUDIT_ACTION_CHANGE_MY_NUMBER)
    def ChangeMyNumber(
        self, request: numbers_pb2.ChangeMyNumberRequest, caller: Caller
    ) -> numbers_pb2.ChangeMyNumberResponse:
        a = self._allocation.change_my_number(self._cs(caller), request.resident_code, request.my_number)
        return numbers_pb2.ChangeMyNumberResponse(
            assigned=numbers_pb2.AssignedNumber(resident_code=a.resident_code, my_number=a.my_number)
        )

    @guarded("cs_nodes", audit=A.AUDIT_ACTION_CHANGE_RESIDENT_CODE)
    def ChangeResidentCode(
        self, request: numbers_pb2.ChangeResidentCodeRequest, caller: Caller
    ) -> numbers_pb2.ChangeResidentCodeResponse:
        block, number = self._allocation.change_resident_code(
            self._cs(caller), request.resident_code, request.request_id
        )
        return numbers_pb2.ChangeResidentCodeResponse(
            old_resident_code=request.resident_code, block=block, my_number=number
        )


def number_service(parts: NodeParts) -> ServiceBinding:
    """The national tier's NumberService (see jukinet.server.assembly.TIERS)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from jukinet.hsm import TokenMac

    pin = parts.config.token_pin_file.read_text(encoding="utf-8").strip()
    mac = TokenMac(parts.signer.worker, parts.config.token_label, pin)
    allocation = NumberAllocation(
        parts.storage, mac.macs, parts.signer, parts.certificate.public_bytes(Encoding.DER), parts.auditor, parts.clock
    )
    return bind(NumberRpc(allocation, parts.auditor, parts.blocking))
