"""Operator sessions: issued after a two-factor login, signed by the node's token key.

A session is a ``SessionToken``: serialized ``SessionClaims`` (operator, roles, issue and expiry
times, the SHA-256 of the terminal's TLS certificate) plus the node's ECDSA signature. Terminals send
it as binary metadata on every operator RPC. Checking it costs no token operation: the signature is
verified in software once per distinct token (then cached), and every call re-checks what can
change — expiry, the presenting terminal's certificate, logout, administrator revocation and lockout.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import DecodeError

from jukinet.pki import InvalidSignatureError, verify_ecdsa_raw
from jukinet.storage.operator_store import now_ms
from jukinet.v1 import node_state_pb2, notice_pb2, operator_pb2

SESSION_METADATA_KEY = "jukinet-session-bin"
DEFAULT_TTL_SECONDS = 15 * 60
_ALGORITHM = notice_pb2.SIGNATURE_ALGORITHM_ECDSA_P256_SHA256
_CACHE_SIZE = 4096


class Signer(Protocol):
    key_id: bytes

    def sign(self, data: bytes) -> bytes: ...


class SessionRejected(Exception):
    """A presented session that must not be honoured; the message says why."""


def _ms(ts) -> int:  # google.protobuf.Timestamp -> Unix ms
    return ts.seconds * 1000 + ts.nanos // 1_000_000


class SessionIssuer:
    def __init__(self, node_id: str, signer: Signer, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self._node_id = node_id
        self._signer = signer
        self._ttl_ms = ttl_seconds * 1000

    def issue(
        self, operator_id: str, roles: list[str], terminal_fp: bytes
    ) -> tuple[operator_pb2.SessionToken, operator_pb2.SessionClaims]:
        now = now_ms()
        claims = operator_pb2.SessionClaims(
            session_id=secrets.token_bytes(16),
            operator_id=operator_id,
            node_id=self._node_id,
            roles=roles,
            terminal_certificate_sha256=terminal_fp,
        )
        claims.issued_at.FromMilliseconds(now)
        claims.expires_at.FromMilliseconds(now + self._ttl_ms)
        payload = claims.SerializeToString()
        token = operator_pb2.SessionToken(
            claims=payload, signature=self._signer.sign(payload), algorithm=_ALGORITHM, key_id=self._signer.key_id
        )
        return token, claims


class SessionVerifier:
    """Checks presented sessions; holds the node's revoked-session set in memory."""

    def __init__(
        self,
        node_id: str,
        public_key: ec.EllipticCurvePublicKey,
        key_id: bytes,
        operator: Callable[[str], node_state_pb2.OperatorRecord | None],
        revoked: dict[bytes, int] | None = None,
    ) -> None:
        self._node_id = node_id
        self._public_key = public_key
        self._key_id = key_id
        self._operator = operator
        self._revoked = dict(revoked or {})
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
            token = operator_pb2.SessionToken.FromString(token_bytes)
            if token.algorithm != _ALGORITHM or token.key_id != self._key_id:
                raise SessionRejected("session was not issued by this node's signing key")
            verify_ecdsa_raw(self._public_key, token.claims, token.signature)
            claims = operator_pb2.SessionClaims.FromString(token.claims)
        except (DecodeError, InvalidSignatureError) as exc:
            raise SessionRejected(f"session token is not valid: {exc}") from exc
        if claims.node_id != self._node_id:
            raise SessionRejected(f"session was issued by {claims.node_id}, not {self._node_id}")
        with self._lock:
            self._verified[token_bytes] = claims
            if len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    def verify(self, token_bytes: bytes, terminal_fp: bytes) -> operator_pb2.SessionClaims:
        claims = self._signed_claims(token_bytes)
        now = now_ms()
        if now >= _ms(claims.expires_at):
            raise SessionRejected(f"session of {claims.operator_id} expired; log in again")
        if claims.terminal_certificate_sha256 != terminal_fp:
            raise SessionRejected(
                f"session of {claims.operator_id} was issued to another terminal; sessions are bound to the "
                "terminal certificate they were issued to"
            )
        with self._lock:
            revoked = claims.session_id in self._revoked
        if revoked:
            raise SessionRejected(f"session of {claims.operator_id} was ended (logout)")
        record = self._operator(claims.operator_id)
        if record is None:
            raise SessionRejected(f"operator {claims.operator_id} is no longer enrolled")
        if record.info.status == operator_pb2.OPERATOR_STATUS_LOCKED:
            raise SessionRejected(f"operator {claims.operator_id} is locked")
        if _ms(claims.issued_at) <= record.sessions_valid_after_ms:
            raise SessionRejected(f"sessions of {claims.operator_id} were revoked by an administrator")
        return claims
