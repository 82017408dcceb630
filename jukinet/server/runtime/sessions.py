"""Operator sessions: issued after a two-factor login, sealed by the node's token key.

A session is a signed envelope of ``SessionClaims`` (operator, roles, issue and expiry times, the
SHA-256 of the terminal's TLS certificate). Terminals send it, serialized, as binary metadata on every
operator RPC. Checking it costs no token operation: the signature is verified in software once per
distinct token (then cached), and every call re-checks what can change — expiry, the presenting
terminal's certificate, logout, administrator revocation and lockout.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import DecodeError

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.operators import Role
from jukinet.pki import Signer, open_signed, seal
from jukinet.v1 import envelope_pb2, node_state_pb2, operator_pb2

DEFAULT_TTL_SECONDS = 15 * 60
_CACHE_SIZE = 4096


def _ms(ts) -> int:  # google.protobuf.Timestamp -> Unix ms
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def _refused(message: str) -> Rejected:
    return Rejected(Problem.UNAUTHENTICATED, message)


class SessionIssuer:
    def __init__(
        self, node_id: str, signer: Signer, ttl_seconds: int = DEFAULT_TTL_SECONDS, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._node_id = node_id
        self._signer = signer
        self._ttl_ms = ttl_seconds * 1000
        self._clock = clock

    def issue(
        self, operator_id: str, roles: Sequence[Role | str], terminal_fp: bytes
    ) -> tuple[envelope_pb2.Signed, operator_pb2.SessionClaims]:
        now = self._clock.now_ms()
        claims = operator_pb2.SessionClaims(
            session_id=secrets.token_bytes(16),
            operator_id=operator_id,
            node_id=self._node_id,
            roles=[str(r) for r in roles],
            terminal_certificate_sha256=terminal_fp,
        )
        claims.issued_at.FromMilliseconds(now)
        claims.expires_at.FromMilliseconds(now + self._ttl_ms)
        return seal(self._signer, claims), claims


class SessionVerifier:
    """Checks presented sessions; holds the node's revoked-session set in memory."""

    def __init__(
        self,
        node_id: str,
        public_key: ec.EllipticCurvePublicKey,
        operator: Callable[[str], node_state_pb2.OperatorRecord | None],
        revoked: dict[bytes, int] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._node_id = node_id
        self._public_key = public_key
        self._operator = operator
        self._revoked = dict(revoked or {})
        self._clock = clock
        self._verified: OrderedDict[bytes, operator_pb2.SessionClaims] = OrderedDict()
        self._lock = threading.Lock()

    def revoke(self, claims: operator_pb2.SessionClaims) -> None:
        with self._lock:
            self._revoked[claims.session_id] = _ms(claims.expires_at)

    def _signed_claims(self, token_bytes: bytes) -> operator_pb2.SessionClaims:
        with self._lock:
            claims = self._verified.get(token_bytes)
            if claims is not None:
                self._verified.move_to_end(token_bytes)
                return claims
        try:
            token = envelope_pb2.Signed.FromString(token_bytes)
        except DecodeError as exc:
            raise _refused(f"session token is not valid: {exc}") from exc
        try:
            claims = open_signed(token, operator_pb2.SessionClaims, self._public_key)
        except Rejected as exc:
            raise _refused(f"session token is not valid: {exc}") from exc
        if claims.node_id != self._node_id:
            raise _refused(f"session was issued by {claims.node_id}, not {self._node_id}")
        with self._lock:
            self._verified[token_bytes] = claims
            if len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    def verify(self, token_bytes: bytes, terminal_fp: bytes) -> operator_pb2.SessionClaims:
        claims = self._signed_claims(token_bytes)
        if self._clock.now_ms() >= _ms(claims.expires_at):
            raise _refused(f"session of {claims.operator_id} expired; log in again")
        if claims.terminal_certificate_sha256 != terminal_fp:
            raise _refused(
                f"session of {claims.operator_id} was issued to another terminal; sessions are bound to the "
                "terminal certificate they were issued to"
            )
        with self._lock:
            revoked = claims.session_id in self._revoked
        if revoked:
            raise _refused(f"session of {claims.operator_id} was ended (logout)")
        record = self._operator(claims.operator_id)
        if record is None:
            raise _refused(f"operator {claims.operator_id} is no longer enrolled")
        if record.info.status == operator_pb2.OPERATOR_STATUS_LOCKED:
            raise _refused(f"operator {claims.operator_id} is locked")
        if _ms(claims.issued_at) <= record.sessions_valid_after_ms:
            raise _refused(f"sessions of {claims.operator_id} were revoked by an administrator")
        return claims
