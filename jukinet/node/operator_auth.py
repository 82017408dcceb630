"""Operator login with two factors (IC card + biometric), sessions, and operator administration.

Login: ``BeginLogin`` hands the terminal a random challenge (single use, 30 s). The operator's card,
unlocked by its PIN at the terminal, signs the challenge bound to this node and to the terminal's
TLS certificate. ``CompleteLogin`` checks, in order: the challenge (consumed whatever follows), the
operator (enrolled, not locked), the card certificate (operator CA, not revoked, the operator's own
and the one enrolled), the card's signature, then the biometric sample against the template, which
is decrypted inside the node's token. A failure of the card or the biometric counts towards the
operator's consecutive failures; the fifth locks the operator (and ends their sessions) until an
administrator unlocks.
Every attempt, success or failure, is written to the audit log before the answer leaves.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jukinet.biometrics import Matcher, decode_template, encode_template, sample_problem
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.operators import MAX_CONSECUTIVE_FAILURES, login_signing_input, unknown_roles
from jukinet.hsm import TokenSigner
from jukinet.node.audit import Auditor
from jukinet.node.security import AnyOf, Caller, OperatorWithRole, PeerAuthenticator, Refusal, guarded
from jukinet.node.sessions import SessionIssuer, SessionVerifier
from jukinet.pki import InvalidSignatureError, TrustStore, UntrustedCertificate, verify_ecdsa_raw
from jukinet.storage.node_store import NodeStore
from jukinet.storage.operator_store import OperatorStore, UnknownOperator, now_ms
from jukinet.v1 import audit_pb2, node_state_pb2, operator_pb2, operator_pb2_grpc

CHALLENGE_SECONDS = 30
MAX_PENDING_CHALLENGES = 10_000
TEMPLATE_KEY_LABEL = "template-key"
A = audit_pb2


@dataclass
class _Challenge:
    operator_id: str
    challenge: bytes
    terminal_fp: bytes
    expires: float


class LoginRefused(Refusal):
    def __init__(self, status: grpc.StatusCode, message: str, counts: bool = True) -> None:
        super().__init__(status, message)
        self.counts = counts  # whether it counts as a failed attempt of the operator


class TemplateVault:
    """Biometric templates, encrypted with AES-GCM under a key that never leaves the node's token."""

    def __init__(self, signer: TokenSigner, key_label: str = TEMPLATE_KEY_LABEL) -> None:
        self._signer = signer
        self.key_label = key_label

    def seal(self, operator_id: str, features) -> tuple[bytes, bytes]:
        nonce = secrets.token_bytes(12)
        sealed = self._signer.encrypt_aes_gcm(self.key_label, nonce, encode_template(features), operator_id.encode())
        return nonce, sealed

    def open(self, record: node_state_pb2.OperatorRecord):
        plain = self._signer.decrypt_aes_gcm(
            record.template_key_label,
            record.template_nonce,
            record.template_ciphertext,
            record.info.operator_id.encode(),
        )
        return decode_template(plain)


class OperatorAuthService(operator_pb2_grpc.OperatorAuthServiceServicer):
    def __init__(
        self,
        node_id: str,
        sites: set[str],
        authenticator: PeerAuthenticator,
        store: NodeStore,
        trust: TrustStore,
        vault: TemplateVault,
        issuer: SessionIssuer,
        verifier: SessionVerifier,
        auditor: Auditor,
        matcher: Matcher | None = None,
    ) -> None:
        self.node_id = node_id
        self.authenticator = authenticator
        self.auditor = auditor
        self.terminals = AnyOf({NodeKind.TERMINAL}, sites)
        self.logged_in = OperatorWithRole(None, sites)
        self._sites = sites
        self._operators: OperatorStore = store.operators
        self._env = store.env
        self._trust = trust
        self._vault = vault
        self._issuer = issuer
        self._verifier = verifier
        self._matcher = matcher or Matcher()
        self._challenges: dict[bytes, _Challenge] = {}
        self._lock = threading.Lock()

    # -- challenges -------------------------------------------------------------------------------------

    def _new_challenge(self, operator_id: str, terminal_fp: bytes) -> tuple[bytes, _Challenge]:
        now = time.monotonic()
        with self._lock:
            if len(self._challenges) >= MAX_PENDING_CHALLENGES:
                for key in [k for k, c in self._challenges.items() if c.expires <= now]:
                    del self._challenges[key]
            if len(self._challenges) >= MAX_PENDING_CHALLENGES:
                raise LoginRefused(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many logins in progress", counts=False)
            challenge_id = secrets.token_bytes(16)
            pending = _Challenge(operator_id, secrets.token_bytes(32), terminal_fp, now + CHALLENGE_SECONDS)
            self._challenges[challenge_id] = pending
        return challenge_id, pending

    def _take_challenge(self, challenge_id: bytes) -> _Challenge:
        with self._lock:
            pending = self._challenges.pop(challenge_id, None)
        # Challenge problems are refused (and audited) but not counted against the operator: they say
        # nothing about the operator's factors, and counting them would let anyone lock anyone out.
        if pending is None:
            raise LoginRefused(grpc.StatusCode.UNAUTHENTICATED, "login challenge unknown or already used", False)
        if time.monotonic() > pending.expires:
            raise LoginRefused(
                grpc.StatusCode.UNAUTHENTICATED, f"login challenge expired ({CHALLENGE_SECONDS} s)", False
            )
        return pending

    # -- RPCs -------------------------------------------------------------------------------------------

    @guarded("terminals", audit=A.AUDIT_ACTION_LOGIN)
    def BeginLogin(
        self, request: operator_pb2.BeginLoginRequest, context: grpc.ServicerContext, caller: Caller
    ) -> operator_pb2.BeginLoginResponse:
        try:
            record = self._enrolled(request.operator_id)
            self._require_active(record)
            challenge_id, pending = self._new_challenge(request.operator_id, caller.terminal_fp)
        except LoginRefused as exc:
            self._refuse(context, caller, request.operator_id, exc)
        response = operator_pb2.BeginLoginResponse(
            challenge_id=challenge_id, challenge=pending.challenge, node_id=self.node_id
        )
        response.expires_at.FromMilliseconds(now_ms() + CHALLENGE_SECONDS * 1000)
        return response

    @guarded("terminals", audit=A.AUDIT_ACTION_LOGIN)
    def CompleteLogin(
        self, request: operator_pb2.CompleteLoginRequest, context: grpc.ServicerContext, caller: Caller
    ) -> operator_pb2.CompleteLoginResponse:
        operator_id = request.operator_id
        try:
            problem = sample_problem(request.sample.features)
            if problem:
                raise LoginRefused(grpc.StatusCode.INVALID_ARGUMENT, problem, counts=False)
            pending = self._take_challenge(request.challenge_id)
            if pending.operator_id != operator_id or pending.terminal_fp != caller.terminal_fp:
                raise LoginRefused(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "login challenge was issued for another operator or terminal",
                    False,
                )
            record = self._enrolled(operator_id)
            self._require_active(record)
            self._check_card(record, request, pending)
            if not self._matcher.matches(self._vault.open(record), request.sample.features):
                raise LoginRefused(grpc.StatusCode.UNAUTHENTICATED, "biometric sample does not match the template")
        except LoginRefused as exc:
            self._refuse(context, caller, operator_id, exc)

        def succeed(txn) -> node_state_pb2.OperatorRecord:
            updated = self._operators.update(txn, operator_id, OperatorStore.reset_failures)
            self.auditor.append(txn, A.AUDIT_ACTION_LOGIN, A.AUDIT_OUTCOME_SUCCESS, operator_id, caller, operator_id)
            return updated

        updated = self._env.write(succeed)
        token, claims = self._issuer.issue(operator_id, list(updated.info.roles), caller.terminal_fp)
        return operator_pb2.CompleteLoginResponse(session=token, claims=claims)

    @guarded("logged_in", audit=A.AUDIT_ACTION_LOGOUT)
    def Logout(
        self, request: operator_pb2.LogoutRequest, context: grpc.ServicerContext, caller: Caller
    ) -> operator_pb2.LogoutResponse:
        claims = caller.session()

        def revoke(txn) -> None:
            self._operators.revoke_session(txn, claims.session_id, claims.expires_at.ToMilliseconds())
            self.auditor.append(txn, A.AUDIT_ACTION_LOGOUT, A.AUDIT_OUTCOME_SUCCESS, claims.operator_id, caller, "")

        self._env.write(revoke)
        self._verifier.revoke(claims)
        return operator_pb2.LogoutResponse()

    # -- checks -----------------------------------------------------------------------------------------

    def _enrolled(self, operator_id: str) -> node_state_pb2.OperatorRecord:
        try:
            parsed = NodeId.parse(operator_id)
        except ValueError as exc:
            raise LoginRefused(grpc.StatusCode.INVALID_ARGUMENT, str(exc), counts=False) from exc
        if parsed.kind is not NodeKind.OPERATOR or parsed.site not in self._sites:
            raise LoginRefused(
                grpc.StatusCode.INVALID_ARGUMENT, f"{operator_id} is not an operator of this node", counts=False
            )
        record = self._operators.get(operator_id)
        if record is None:
            raise LoginRefused(grpc.StatusCode.NOT_FOUND, f"no operator {operator_id} is enrolled here", counts=False)
        return record

    @staticmethod
    def _require_active(record: node_state_pb2.OperatorRecord) -> None:
        if record.info.status == operator_pb2.OPERATOR_STATUS_LOCKED:
            raise LoginRefused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"operator {record.info.operator_id} is locked after {MAX_CONSECUTIVE_FAILURES} consecutive "
                "failures; an administrator must unlock it",
                counts=False,
            )

    def _check_card(
        self, record: node_state_pb2.OperatorRecord, request: operator_pb2.CompleteLoginRequest, pending: _Challenge
    ) -> None:
        try:
            card = self._trust.identify(request.card_certificate, expect="operator")
        except UntrustedCertificate as exc:
            raise LoginRefused(grpc.StatusCode.UNAUTHENTICATED, f"card certificate: {exc}") from exc
        if record.info.operator_id not in card.node_ids:
            raise LoginRefused(
                grpc.StatusCode.UNAUTHENTICATED,
                f"card certificate belongs to {', '.join(card.node_ids)}, not {record.info.operator_id}",
            )
        if card.certificate.public_bytes(Encoding.DER) != record.card_certificate:
            raise LoginRefused(grpc.StatusCode.UNAUTHENTICATED, "this is not the card enrolled for the operator")
        signed = login_signing_input(self.node_id, pending.challenge, pending.terminal_fp)
        try:
            verify_ecdsa_raw(card.certificate.public_key(), signed, request.signature)
        except InvalidSignatureError as exc:
            raise LoginRefused(
                grpc.StatusCode.UNAUTHENTICATED, "card signature over the challenge is not valid"
            ) from exc

    def _refuse(self, context: grpc.ServicerContext, caller: Caller, operator_id: str, exc: LoginRefused) -> None:
        """Count the failure if it is the operator's, audit it, and answer with the refusal."""
        message = str(exc)

        def record_failure(txn) -> None:
            nonlocal message
            if exc.counts:
                try:
                    updated = self._operators.update(txn, operator_id, OperatorStore.count_failure)
                except UnknownOperator:
                    updated = None
                if updated is not None:
                    failures = updated.info.consecutive_failures
                    if updated.info.status == operator_pb2.OPERATOR_STATUS_LOCKED:
                        message += f"; operator {operator_id} is now locked ({failures} consecutive failures)"
                    else:
                        message += f" ({failures} of {MAX_CONSECUTIVE_FAILURES} consecutive failures)"
            outcome = A.AUDIT_OUTCOME_DENIED if exc.status in _DENIALS else A.AUDIT_OUTCOME_FAILED
            self.auditor.append(
                txn, A.AUDIT_ACTION_LOGIN, outcome, operator_id or caller.actor, caller, operator_id, message
            )

        self._env.write(record_failure)
        context.abort(exc.status, message)


_DENIALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


class OperatorAdminService(operator_pb2_grpc.OperatorAdminServiceServicer):
    """Enrollment and administration. The first operator of a node may be enrolled by a terminal of
    the site without a session (bootstrap); after that, the role 'administer-operators' is needed."""

    def __init__(
        self,
        sites: set[str],
        authenticator: PeerAuthenticator,
        store: NodeStore,
        trust: TrustStore,
        vault: TemplateVault,
        auditor: Auditor,
    ) -> None:
        self.authenticator = authenticator
        self.auditor = auditor
        self._sites = sites
        self._operators = store.operators
        self._env = store.env
        self._trust = trust
        self._vault = vault
        self.administrators = OperatorWithRole("administer-operators", sites)
        self.enrollers = _AdministratorOrBootstrap(
            self.administrators, AnyOf({NodeKind.TERMINAL}, sites), self._operators
        )

    @guarded("enrollers", audit=A.AUDIT_ACTION_ENROLL_OPERATOR)
    def EnrollOperator(
        self, request: operator_pb2.EnrollOperatorRequest, context: grpc.ServicerContext, caller: Caller
    ) -> operator_pb2.EnrollOperatorResponse:
        operator_id = request.operator_id
        problem = self._enrollment_problem(request)
        if problem:
            self.auditor.record(A.AUDIT_ACTION_ENROLL_OPERATOR, A.AUDIT_OUTCOME_FAILED, caller, operator_id, problem)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
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
        record.info.enrolled_at.FromMilliseconds(now_ms())

        def enroll(txn) -> bool:
            if self._operators.get_in(txn, operator_id) is not None:
                return False
            self._operators.put(txn, record)
            detail = f"roles {', '.join(request.roles)}; card serial {record.info.card_serial}"
            self.auditor.append(txn, A.AUDIT_ACTION_ENROLL_OPERATOR, A.AUDIT_OUTCOME_SUCCESS, caller.actor, caller,
                                operator_id, detail)  # fmt: skip
            return True

        if not self._env.write(enroll):
            message = f"operator {operator_id} is already enrolled"
            self.auditor.record(A.AUDIT_ACTION_ENROLL_OPERATOR, A.AUDIT_OUTCOME_FAILED, caller, operator_id, message)
            context.abort(grpc.StatusCode.ALREADY_EXISTS, message)
        return operator_pb2.EnrollOperatorResponse(operator=record.info)

    def _enrollment_problem(self, request: operator_pb2.EnrollOperatorRequest) -> str | None:
        try:
            parsed = NodeId.parse(request.operator_id)
        except ValueError as exc:
            return str(exc)
        if parsed.kind is not NodeKind.OPERATOR or parsed.site not in self._sites:
            return f"{request.operator_id} is not an operator id of this node (operator:<site>:<name>)"
        if not request.roles:
            return "an operator needs at least one role"
        unknown = unknown_roles(list(request.roles))
        if unknown:
            return f"unknown roles {unknown}"
        problem = sample_problem(request.template.features)
        if problem:
            return f"template: {problem}"
        try:
            card = self._trust.identify(request.card_certificate, expect="operator")
        except UntrustedCertificate as exc:
            return f"card certificate: {exc}"
        if request.operator_id not in card.node_ids:
            return f"card certificate is for {', '.join(card.node_ids)}, not {request.operator_id}"
        return None

    def _administer(self, context, caller: Caller, action: int, operator_id: str, change, detail: str):
        def apply(txn):
            updated = self._operators.update(txn, operator_id, change)
            self.auditor.append(txn, action, A.AUDIT_OUTCOME_SUCCESS, caller.actor, caller, operator_id, detail)
            return updated

        try:
            return self._env.write(apply)
        except UnknownOperator as exc:
            self.auditor.record(action, A.AUDIT_OUTCOME_FAILED, caller, operator_id, str(exc))
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))

    @guarded("administrators", audit=A.AUDIT_ACTION_UNLOCK_OPERATOR)
    def UnlockOperator(
        self, request: operator_pb2.UnlockOperatorRequest, context: grpc.ServicerContext, caller: Caller
    ) -> operator_pb2.UnlockOperatorResponse:
        record = self._administer(
            context, caller, A.AUDIT_ACTION_UNLOCK_OPERATOR, request.operator_id, OperatorStore.unlock, "unlocked"
        )
        return operator_pb2.UnlockOperatorResponse(operator=record.info)

    @guarded("administrators", audit=A.AUDIT_ACTION_REVOKE_SESSIONS)
    def RevokeSessions(
        self, request: operator_pb2.RevokeSessionsRequest, context: grpc.ServicerContext, caller: Caller
    ) -> operator_pb2.RevokeSessionsResponse:
        self._administer(
            context,
            caller,
            A.AUDIT_ACTION_REVOKE_SESSIONS,
            request.operator_id,
            OperatorStore.revoke_all_sessions,
            "all sessions revoked",
        )
        return operator_pb2.RevokeSessionsResponse()

    @guarded("administrators")
    def GetOperator(
        self, request: operator_pb2.GetOperatorRequest, context: grpc.ServicerContext, caller: Caller
    ) -> operator_pb2.GetOperatorResponse:
        record = self._operators.get(request.operator_id)
        if record is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no operator {request.operator_id} is enrolled here")
        return operator_pb2.GetOperatorResponse(operator=record.info)


@dataclass(frozen=True)
class _AdministratorOrBootstrap:
    administrators: OperatorWithRole
    terminals: AnyOf
    operators: OperatorStore

    def deny(self, caller: Caller):
        if self.operators.count() == 0:  # bootstrap: the node's first operator
            return self.terminals.deny(caller)
        return self.administrators.deny(caller)
