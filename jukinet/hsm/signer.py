"""TokenSigner: signing (and AES-GCM) with keys that never leave the token."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import GCMParams, KeyType, Mechanism, ObjectClass

from jukinet.hsm.errors import TokenError, TokenFailure
from jukinet.hsm.keys import find_key, key_id_of, public_key_of, signing_key_pair
from jukinet.hsm.worker import TokenLogin, TokenWorker, translating

__all__ = ["DIGEST_SIZE", "TokenSigner"]

DIGEST_SIZE = 32


def _check_digest(digest: bytes) -> None:
    if len(digest) != DIGEST_SIZE:
        raise TokenError(
            TokenFailure.BAD_INPUT, f"expected a {DIGEST_SIZE}-byte SHA-256 digest, got {len(digest)} bytes"
        )


class TokenSigner(TokenLogin):
    """The component of a process that signs with a token key (X-Road signer model).

    Thread-safe: any thread may sign; every token call runs on the process's TokenWorker thread, over the
    token's one shared logged-in session. SoftHSM offers CKM_ECDSA only, so data is hashed with SHA-256 in
    the caller's thread and the token signs the digest. Signatures are raw r||s (64 bytes for P-256). Use
    sign_batch() for many records: one worker round trip for the lot.
    """

    public_key: ec.EllipticCurvePublicKey
    key_id: bytes

    def __init__(self, worker: TokenWorker, token_label: str, pin: str, key_label: str = "signing") -> None:
        super().__init__(worker, token_label, f"signer for token '{token_label}'")
        self.token_label = token_label
        self.key_label = key_label
        # Worker-thread state: the key handles, valid for one worker.generation.
        self._priv: Any = None
        self._gen = -1
        self._aes: dict[str, Any] = {}
        self.public_key = worker.call(self._open, pin)
        self.key_id = key_id_of(self.public_key)

    # -- worker thread --------------------------------------------------------------------------------

    def _open(self, pin: str) -> ec.EllipticCurvePublicKey:
        session = self.worker.acquire(self.token_label, pin)
        try:
            self._priv, pub = signing_key_pair(session, self.key_label, self.token_label)
            self._gen = self.worker.generation
            return public_key_of(pub)
        except BaseException:
            self._closed = True
            self.worker.release(self.token_label)
            raise

    def _session(self) -> Any:
        self._check_open()
        session = self.worker.session(self.token_label)
        if self._gen != self.worker.generation:  # library re-initialised: handles changed
            self._priv, _ = signing_key_pair(session, self.key_label, self.token_label)
            self._aes.clear()
            self._gen = self.worker.generation
        return session

    def _sign_all(self, digests: Sequence[bytes]) -> list[bytes]:
        self._session()
        with translating(f"signing with '{self.key_label}' of token '{self.token_label}'"):
            return [bytes(self._priv.sign(d, mechanism=Mechanism.ECDSA)) for d in digests]

    def _sign_one(self, digest: bytes) -> bytes:
        return self._sign_all([digest])[0]

    def _aes_key(self, label: str) -> Any:
        session = self._session()
        if label not in self._aes:
            key = find_key(session, ObjectClass.SECRET_KEY, KeyType.AES, label)
            if key is None:
                raise TokenError(TokenFailure.NO_KEY, f"AES key '{label}' not found in token '{self.token_label}'")
            self._aes[label] = key
        return self._aes[label]

    def _gcm(self, encrypt: bool, label: str, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        key = self._aes_key(label)
        params = GCMParams(nonce, aad or None)
        if encrypt:
            with translating(f"AES-GCM encryption with '{label}'"):
                return bytes(key.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params))
        doing = f"AES-GCM decryption with '{label}' (wrong key, nonce, aad or tampered data)"
        with translating(doing, otherwise=TokenFailure.NOT_AUTHENTIC):
            return bytes(key.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params))

    def _forget(self) -> None:
        self._priv = None
        self._aes.clear()

    # -- any thread -----------------------------------------------------------------------------------

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a SHA-256 digest; returns raw r||s."""
        return self.sign_digests([digest])[0]

    def submit_sign_digest(self, digest: bytes) -> Future[bytes]:
        """sign_digest() without waiting: a future of the raw r||s signature (asyncio: wrap_future)."""
        _check_digest(digest)
        self._check_open()
        return self.worker.submit(self._sign_one, digest)

    def sign_digests(self, digests: Sequence[bytes]) -> list[bytes]:
        """Sign several SHA-256 digests with one round trip to the worker thread."""
        for d in digests:
            _check_digest(d)
        self._check_open()
        return self.worker.call(self._sign_all, list(digests))

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 signature of data, raw r||s (64 bytes)."""
        return self.sign_digests([hashlib.sha256(data).digest()])[0]

    def sign_batch(self, items: Iterable[bytes]) -> list[bytes]:
        """sign() for many items at once, in order."""
        return self.sign_digests([hashlib.sha256(item).digest() for item in items])

    def encrypt_aes_gcm(self, key_label: str, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        """AES-256-GCM with a token key; returns ciphertext||16-byte tag. nonce: 12 bytes, never reused."""
        self._check_open()
        return self.worker.call(self._gcm, True, key_label, nonce, data, aad)

    def decrypt_aes_gcm(self, key_label: str, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        """Inverse of encrypt_aes_gcm; TokenError (NOT_AUTHENTIC) if the tag does not verify."""
        self._check_open()
        return self.worker.call(self._gcm, False, key_label, nonce, data, aad)
