"""Operator login with two factors (IC card + biometric), and operator enrollment and administration.

Login: :meth:`OperatorLogins.begin` hands the terminal a random challenge (single use, 30 s). The
operator's card, unlocked by its PIN at the terminal, signs the challenge bound to this node and to the
terminal's TLS certificate. :meth:`OperatorLogins.complete` checks, in order: the challenge (consumed
whatever follows), the operator (enrolled, not locked), the card certificate (operator CA, not revoked,
the operator's own and the one enrolled), the card's signature, then the biometric sample against the
template, which is decrypted inside the node's token. A biometric mismatch — the card has proved itself,
so the operator is at the terminal — counts towards the operator's consecutive failures; the fifth
locks the operator (and ends their sessions) until an administrator unlocks. A card failure proves only
that this terminal does not hold the card: it makes that terminal back off from that operator
(:mod:`jukinet.server.login_attempts`) and locks nobody. Challenge problems and malformed input are
refused without counting: they say nothing about the operator's factors.

Fair shares: at most ``max_pending`` logins are in progress at the node and at most
``max_pending_per_terminal`` at one terminal (fewer than the total), so a terminal flooding
``BeginLogin`` exhausts only its own share. Every attempt is audited before the answer leaves: a
counted failure and a success one entry each; other refusals of these session-less callers through the
auditor's refusal counts (first in full, the rest counted per interval).

These are plain objects: the RPC servicers in :mod:`jukinet.server.operator_rpc` only move messages,
and unit tests drive them with a software signer and vault and a manual clock.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import lmdb
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.biometrics import Matcher, decode_template, encode_template, sample_problem
from jukinet.domain import operators as rules
from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.operators import MAX_CONSECUTIVE_FAILURES, Role, login_signing_input, parse_roles
from jukinet.domain.quoting import quoted
from jukinet.pki import TrustStore, verify_ecdsa_raw
from jukinet.server.audit import Auditor
from jukinet.server.login_attempts import CardBackoff
from jukinet.server.runtime.guard import AlreadyAudited
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import OperatorWithRole, Policy, TerminalOf
from jukinet.server.runtime.sessions import SessionIssuer, SessionVerifier
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, node_state_pb2, operator_pb2

CHALLENGE_SECONDS = 30
MAX_PENDING_CHALLENGES = 10_000
MAX_PENDING_PER_TERMINAL = 16
MAX_ATTEMPTS_LISTED = 500
TEMPLATE_KEY_LABEL = "template-key"
A = audit_pb2


class AesGcm(Protocol):
    """AES-GCM with a key that never leaves the token (jukinet.hsm.TokenSigner in a node)."""

    def encrypt_aes_gcm(self, key_label: str, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes: ...

    def decrypt_aes_gcm(self, key_label: str, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes: ...


class TemplateVault:
    """Biometric templates, encrypted with AES-GCM under a key that never leaves the node's token."""

    def __init__(self, cipher: AesGcm, key_label: str = TEMPLATE_KEY_LABEL) -> None:
        self._cipher = cipher
        self.key_label = key_label

    def seal(self, operator_id: str, features: Sequence[float]) -> tuple[bytes, bytes]:
        nonce = secrets.token_bytes(12)
        sealed = self._cipher.encrypt_aes_gcm(self.key_label, nonce, encode_template(features), operator_id.encode())
        return nonce, sealed

    def open(self, record: node_state_pb2.OperatorRecord) -> Sequence[float]:
        plain = self._cipher.decrypt_aes_gcm(
            record.template_key_label,
            record.template_nonce,
            record.template_ciphertext,
            record.info.operator_id.encode(),
        )
        return decode_template(plain)


@dataclass
class _Challenge:
    operator_id: str
    challenge: bytes
    terminal_fp: bytes
    terminal: str
    expires: float  # monotonic seconds


class _Refusal(Rejected):
    """A login refusal: whether it counts as a failure of the operator's factors (``counts``), or shows
    that the terminal does not hold the operator's card (``card``: the terminal backs off)."""

    def __init__(self, problem: Problem, message: str, counts: bool = False, card: bool = False) -> None:
        super().__init__(problem, message)
        self.counts = counts
        self.card = card


def _not_counted(problem: Problem, message: str) -> _Refusal:
    return _Refusal(problem, message)


def _counted(message: str) -> _Refusal:
    return _Refusal(Problem.UNAUTHENTICATED, message, counts=True)


def _card_failure(message: str) -> _Refusal:
    return _Refusal(Problem.UNAUTHENTICATED, message, card=True)


def operator_of_site(operator_id: str, sites: Iterable[str]) -> NodeId:
    """Parse an operator id of one of ``sites``; Rejected (INVALID) otherwise."""
    parsed = NodeId.parse(operator_id)
    if parsed.kind is not NodeKind.OPERATOR or parsed.site not in set(sites):
        raise Rejected(
            Problem.INVALID, f"{quoted(operator_id)} is not an operator of this node (operator:<site>:<name>)"
        )
    return parsed


class OperatorLogins:
    def __init__(
        self,
        node_id: NodeId,
        sites: frozenset[str],
        storage: NodeStorage,
        trust: TrustStore,
        vault: TemplateVault,
        issuer: SessionIssuer,
        verifier: SessionVerifier,
        auditor: Auditor,
        clock: Clock = SYSTEM_CLOCK,
        matcher: Matcher | None = None,
        max_pending: int = MAX_PENDING_CHALLENGES,
        max_pending_per_terminal: int = MAX_PENDING_PER_TERMINAL,
        backoff: CardBackoff | None = None,
    ) -> None:
        if not 0 < max_pending_per_terminal < max_pending:
            raise ValueError("a terminal's share of pending logins must be positive and below the total")
        self.node_id = node_id
        self._sites = sites
        self._storage = storage
        self._trust = trust
        self._vault = vault
        self._issuer = issuer
        self._verifier = verifier
        self._auditor = auditor
        self._clock = clock
        self._matcher = matcher or Matcher()
        self._max_pending = max_pending
        self._max_per_terminal = max_pending_per_terminal
        self._backoff = backoff or CardBackoff(clock)
        self._challenges: OrderedDict[bytes, _Challenge] = OrderedDict()  # oldest first (= expiring first)
        self._by_terminal: dict[str, OrderedDict[bytes, None]] = {}
        self._lock = threading.Lock()

    # -- the three steps --------------------------------------------------------------------------------

    def begin(self, operator_id: str, caller: Caller) -> operator_pb2.BeginLoginResponse:
        try:
            self._require_active(self._enrolled(operator_id))
            self._require_no_wait(operator_id, caller)
            challenge_id, pending = self._new_challenge(operator_id, caller)
        except _Refusal as exc:
            raise self._refuse(caller, operator_id, exc) from None
        response = operator_pb2.BeginLoginResponse(
            challenge_id=challenge_id, challenge=pending.challenge, node_id=str(self.node_id)
        )
        response.expires_at.FromMilliseconds(self._clock.now_ms() + CHALLENGE_SECONDS * 1000)
        return response

    def complete(
        self, request: operator_pb2.CompleteLoginRequest, caller: Caller
    ) -> operator_pb2.CompleteLoginResponse:
        operator_id = request.operator_id
        try:
            problem = sample_problem(request.sample.features)
            if problem:
                raise _not_counted(Problem.INVALID, problem)
            pending = self._take_challenge(request.challenge_id)
            if pending.operator_id != operator_id or pending.terminal_fp != caller.fingerprint:
                raise _not_counted(
                    Problem.UNAUTHENTICATED, "login challenge was issued for another operator or terminal"
                )
            record = self._enrolled(operator_id)
            self._require_active(record)
            self._require_no_wait(operator_id, caller)
            self._check_card(record, request, pending)
            if not self._matcher.matches(self._vault.open(record), request.sample.features):
                raise _counted("biometric sample does not match the template")
        except _Refusal as exc:
            raise self._refuse(caller, operator_id, exc) from None

        def succeed(txn: lmdb.Transaction) -> node_state_pb2.OperatorRecord:
            updated = self._storage.operators.update(txn, operator_id, rules.reset_failures)
            self._auditor.append(txn, A.AUDIT_ACTION_LOGIN, A.AUDIT_OUTCOME_SUCCESS, caller, operator_id, "",
                                 actor=operator_id)  # fmt: skip
            return updated

        updated = self._storage.env.write(succeed)
        self._backoff.succeeded(operator_id, str(caller.primary))
        session, claims = self._issuer.issue(operator_id, list(updated.info.roles), caller.fingerprint)
        return operator_pb2.CompleteLoginResponse(session=session, claims=claims)

    def logout(self, caller: Caller) -> None:
        claims = caller.session()

        def revoke(txn: lmdb.Transaction) -> None:
            self._storage.operators.revoke_session(txn, claims.session_id, claims.expires_at.ToMilliseconds())
            self._auditor.append(txn, A.AUDIT_ACTION_LOGOUT, A.AUDIT_OUTCOME_SUCCESS, caller)

        self._storage.env.write(revoke)
        self._verifier.revoke(claims)

    # -- challenges ---------------------------------------------------------------------------------------

    def _new_challenge(self, operator_id: str, caller: Caller) -> tuple[bytes, _Challenge]:
        now = self._clock.monotonic()
        terminal = str(caller.primary)
        with self._lock:
            self._expire(now)
            mine = self._by_terminal.get(terminal, {})
            if len(mine) >= self._max_per_terminal:
                oldest = self._challenges[next(iter(mine))]
                raise _not_counted(
                    Problem.EXHAUSTED,
                    f"{terminal} has {len(mine)} logins in progress, at most {self._max_per_terminal} per terminal; "
                    f"the oldest expires in {max(1, round(oldest.expires - now))} s",
                )
            if len(self._challenges) >= self._max_pending:
                oldest = next(iter(self._challenges.values()))
                raise _not_counted(
                    Problem.EXHAUSTED,
                    f"{len(self._challenges)} logins are in progress at this node, at most {self._max_pending}; "
                    f"try again in {max(1, round(oldest.expires - now))} s",
                )
            challenge_id = secrets.token_bytes(16)
            pending = _Challenge(
                operator_id, secrets.token_bytes(32), caller.fingerprint, terminal, now + CHALLENGE_SECONDS
            )
            self._challenges[challenge_id] = pending
            self._by_terminal.setdefault(terminal, OrderedDict())[challenge_id] = None
        return challenge_id, pending

    def _take_challenge(self, challenge_id: bytes) -> _Challenge:
        with self._lock:
            pending = self._challenges.pop(challenge_id, None)
            if pending is not None:
                self._forget(challenge_id, pending.terminal)
        if pending is None:
            raise _not_counted(Problem.UNAUTHENTICATED, "login challenge unknown or already used")
        if self._clock.monotonic() > pending.expires:
            raise _not_counted(Problem.UNAUTHENTICATED, f"login challenge expired ({CHALLENGE_SECONDS} s)")
        return pending

    def _expire(self, now: float) -> None:
        """Drop expired challenges (under the lock): they are the oldest, at the front."""
        while self._challenges:
            challenge_id, oldest = next(iter(self._challenges.items()))
            if oldest.expires > now:
                return
            del self._challenges[challenge_id]
            self._forget(challenge_id, oldest.terminal)

    def _forget(self, challenge_id: bytes, terminal: str) -> None:
        mine = self._by_terminal.get(terminal)
        if mine is not None:
            mine.pop(challenge_id, None)
            if not mine:
                del self._by_terminal[terminal]

    # -- what an administrator sees -------------------------------------------------------------------------

    def attempts(self, operator_id: str, caller: Caller) -> operator_pb2.ListLoginAttemptsResponse:
        """Card failures per (operator, terminal) and logins in progress per terminal (audited)."""
        if operator_id:
            operator_of_site(operator_id, self._sites)
        found = self._backoff.listing(operator_id)
        with self._lock:
            self._expire(self._clock.monotonic())
            pending = sorted(((t, len(c)) for t, c in self._by_terminal.items()), key=lambda p: -p[1])
            total = len(self._challenges)
        response = operator_pb2.ListLoginAttemptsResponse(
            omitted=max(0, len(found) - MAX_ATTEMPTS_LISTED),
            pending=[operator_pb2.PendingLogins(terminal=t, pending=n) for t, n in pending[:MAX_ATTEMPTS_LISTED]],
            pending_total=total,
            pending_limit=self._max_pending,
            pending_per_terminal_limit=self._max_per_terminal,
        )
        for f in found[:MAX_ATTEMPTS_LISTED]:
            listed = response.attempts.add(
                operator_id=f.operator_id, terminal=f.terminal, failures=f.failures, last_reason=f.last_reason
            )
            listed.last_failure_at.FromMilliseconds(f.last_failure_ms)
            listed.retry_at.FromMilliseconds(f.retry_at_ms)
        detail = f"{len(found)} operator-terminal pairs backing off; {total} logins in progress"
        self._auditor.record(A.AUDIT_ACTION_LIST_LOGIN_ATTEMPTS, A.AUDIT_OUTCOME_SUCCESS, caller, operator_id, detail)
        return response

    # -- checks -------------------------------------------------------------------------------------------

    def _enrolled(self, operator_id: str) -> node_state_pb2.OperatorRecord:
        try:
            operator_of_site(operator_id, self._sites)
        except Rejected as exc:
            raise _not_counted(Problem.INVALID, str(exc)) from None
        record = self._storage.operators.get(operator_id)
        if record is None:
            raise _not_counted(Problem.NOT_FOUND, f"no operator {quoted(operator_id)} is enrolled here")
        return record

    def _require_no_wait(self, operator_id: str, caller: Caller) -> None:
        wait = self._backoff.wait(operator_id, str(caller.primary))
        if wait is not None:
            raise _not_counted(Problem.EXHAUSTED, wait)

    @staticmethod
    def _require_active(record: node_state_pb2.OperatorRecord) -> None:
        if record.info.status == operator_pb2.OPERATOR_STATUS_LOCKED:
            raise _not_counted(
                Problem.DENIED,
                f"operator {record.info.operator_id} is locked after {MAX_CONSECUTIVE_FAILURES} consecutive "
                "failures; an administrator must unlock it",
            )

    def _check_card(
        self, record: node_state_pb2.OperatorRecord, request: operator_pb2.CompleteLoginRequest, pending: _Challenge
    ) -> None:
        try:
            card = self._trust.identify(request.card_certificate, expect="operator", purpose="signing")
        except Rejected as exc:
            raise _card_failure(f"card certificate: {exc}") from None
        if not any(str(n) == record.info.operator_id for n in card.node_ids):
            raise _card_failure(f"card certificate belongs to {card}, not {record.info.operator_id}")
        if card.certificate.public_bytes(Encoding.DER) != record.card_certificate:
            raise _card_failure("this is not the card enrolled for the operator")
        signed = login_signing_input(str(self.node_id), pending.challenge, pending.terminal_fp)
        try:
            verify_ecdsa_raw(card.public_key, signed, request.signature)
        except Rejected:
            raise _card_failure("card signature over the challenge is not valid") from None

    def _refuse(self, caller: Caller, operator_id: str, exc: _Refusal) -> Rejected:
        """Count the failure where it belongs and audit it; returns the refusal to raise."""
        message = str(exc)
        if exc.card:
            delay = self._backoff.failed(operator_id, str(caller.primary), message)
            message += f"; this terminal may try {operator_id} again in {delay:g} s (the operator is not locked)"
        if not exc.counts:
            self._auditor.refused(A.AUDIT_ACTION_LOGIN, caller, Rejected(exc.problem, message), operator_id)
            return AlreadyAudited(exc.problem, message)

        def record_failure(txn: lmdb.Transaction) -> None:
            nonlocal message
            record = self._storage.operators.get_in(txn, operator_id)
            if record is not None:
                rules.count_failure(record, self._clock.now_ms())
                self._storage.operators.put(txn, record)
                failures = record.info.consecutive_failures
                if record.info.status == operator_pb2.OPERATOR_STATUS_LOCKED:
                    message += f"; operator {operator_id} is now locked ({failures} consecutive failures)"
                else:
                    message += f" ({failures} of {MAX_CONSECUTIVE_FAILURES} consecutive failures)"
            self._auditor.append(txn, A.AUDIT_ACTION_LOGIN, A.AUDIT_OUTCOME_DENIED, caller, operator_id, message,
                                 actor=operator_id)  # fmt: skip

        self._storage.env.write(record_failure)
        return AlreadyAudited(exc.problem, message)


class OperatorAdministration:
    """Enrollment and administration. The first operator of a node may be enrolled by a terminal of the
    site without a session (bootstrap), decided inside the enrolling transaction so that concurrent first
    enrollments cannot both succeed; after that, the role 'administer-operators' is needed."""

    def __init__(
        self,
        sites: frozenset[str],
        storage: NodeStorage,
        trust: TrustStore,
        vault: TemplateVault,
        auditor: Auditor,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._sites = sites
        self._storage = storage
        self._trust = trust
        self._vault = vault
        self._auditor = auditor
        self._clock = clock
        self.administrators: Policy = OperatorWithRole(TerminalOf(sites), Role.ADMINISTER_OPERATORS)
        self.terminals: Policy = TerminalOf(sites)

    def enroll(self, request: operator_pb2.EnrollOperatorRequest, caller: Caller) -> operator_pb2.OperatorInfo:
        operator_id = request.operator_id
        self._check_enrollment(request)
        certificate = x509.load_der_x509_certificate(request.card_certificate)
        nonce, sealed = self._vault.seal(operator_id, request.template.features)
        record = node_state_pb2.OperatorRecord(
            info=operator_pb2.OperatorInfo(
                operator_id=operator_id,
                roles=request.roles,
                status=operator_pb2.OPERATOR_STATUS_ACTIVE,
                card_serial=f"{certificate.serial_number:x}",
            ),
            card_certificate=request.card_certificate,
            template_ciphertext=sealed,
            template_nonce=nonce,
            template_key_label=self._vault.key_label,
        )
        record.info.enrolled_at.FromMilliseconds(self._clock.now_ms())
        bootstrap = self.administrators.deny(caller) is not None  # not an administrator: only as the first

        def enroll(txn: lmdb.Transaction) -> None:
            if bootstrap and self._storage.operators.count_in(txn) != 0:
                raise Rejected(
                    Problem.UNAUTHENTICATED,
                    "this node already has an operator; enrolling another needs an administrator's session",
                )
            if self._storage.operators.get_in(txn, operator_id) is not None:
                raise Rejected(Problem.ALREADY_EXISTS, f"operator {operator_id} is already enrolled")
            self._storage.operators.put(txn, record)
            detail = f"roles {', '.join(request.roles)}; card serial {record.info.card_serial}"
            self._auditor.append(txn, A.AUDIT_ACTION_ENROLL_OPERATOR, A.AUDIT_OUTCOME_SUCCESS, caller, operator_id,
                                 detail)  # fmt: skip

        self._storage.env.write(enroll)
        return record.info

    def may_enroll(self, caller: Caller) -> Rejected | None:
        """The enrollment policy: an administrator, or any terminal of the site while no operator exists."""
        if self._storage.operators.count() == 0:
            return self.terminals.deny(caller)
        return self.administrators.deny(caller)

    def _check_enrollment(self, request: operator_pb2.EnrollOperatorRequest) -> None:
        operator_of_site(request.operator_id, self._sites)
        if not request.roles:
            raise Rejected(Problem.INVALID, "an operator needs at least one role")
        parse_roles(request.roles)
        problem = sample_problem(request.template.features)
        if problem:
            raise Rejected(Problem.INVALID, f"template: {problem}")
        try:
            card = self._trust.identify(request.card_certificate, expect="operator", purpose="signing")
        except Rejected as exc:
            raise Rejected(Problem.INVALID, f"card certificate: {exc}") from None
        if not any(str(n) == request.operator_id for n in card.node_ids):
            raise Rejected(Problem.INVALID, f"card certificate is for {card}, not {request.operator_id}")

    def unlock(self, operator_id: str, caller: Caller) -> operator_pb2.OperatorInfo:
        return self._administer(caller, A.AUDIT_ACTION_UNLOCK_OPERATOR, operator_id, rules.unlock, "unlocked").info

    def revoke_sessions(self, operator_id: str, caller: Caller) -> None:
        now = self._clock.now_ms()
        self._administer(
            caller,
            A.AUDIT_ACTION_REVOKE_SESSIONS,
            operator_id,
            lambda record: rules.revoke_all_sessions(record, now),
            "all sessions revoked",
        )

    def show(self, operator_id: str) -> operator_pb2.OperatorInfo:
        operator_of_site(operator_id, self._sites)  # an empty id is no LMDB key: INVALID, not INTERNAL
        record = self._storage.operators.get(operator_id)
        if record is None:
            raise Rejected(Problem.NOT_FOUND, f"no operator {operator_id} is enrolled here")
        return record.info

    def _administer(self, caller: Caller, action: int, operator_id: str, change, detail: str):
        operator_of_site(operator_id, self._sites)

        def apply(txn: lmdb.Transaction) -> node_state_pb2.OperatorRecord:
            updated = self._storage.operators.update(txn, operator_id, change)
            self._auditor.append(txn, action, A.AUDIT_OUTCOME_SUCCESS, caller, operator_id, detail)
            return updated

        return self._storage.env.write(apply)
