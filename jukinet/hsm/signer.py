"""TokenSigner: signing (and AES-GCM) with keys that never leave the token."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import GCMParams, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11x

from jukinet.hsm import owner
from jukinet.hsm.errors import HsmError
from jukinet.hsm.keys import find_key, key_id_of, public_key_of, signing_key_pair

DIGEST_SIZE = 32


class TokenSigner(owner.OwnedLogin):
    """The component of a process that signs with a token key (X-Road signer model).

    Thread-safe: any thread may call sign(); every token call runs on the process's one owner thread
    (see jukinet.hsm.owner), over one session that is logged in once. SoftHSM offers CKM_ECDSA only, so
    data is hashed with SHA-256 in the caller's thread and the token signs the digest. Signatures are raw
    r||s (64 bytes for P-256). Use sign_batch() for many records: one queue round trip for the lot.
    """

    public_key: ec.EllipticCurvePublicKey
    key_id: bytes

    def __init__(self, module: Path, token_label: str, user_pin: str, key_label: str = "signing") -> None:
        self._module = str(module)
        self._token_label = token_label
        self._key_label = key_label
        self._close_lock = threading.Lock()
        self._closed = False
        # Owner-thread state: the private key handle, valid for one owner.generation.
        self._priv: Any = None
        self._gen = -1
        self._aes: dict[str, Any] = {}
        try:
            self.public_key = owner.call(self._open, user_pin)
        except BaseException:
            owner.stop_if_idle()
            raise
        self.key_id = key_id_of(self.public_key)

    # -- owner thread ---------------------------------------------------------------------------------

    def _open(self, pin: str) -> ec.EllipticCurvePublicKey:
        session = owner.acquire(self._module, self._token_label, pin)
        try:
            self._priv, pub = signing_key_pair(session, self._key_label, self._token_label)
            self._gen = owner.generation
            return public_key_of(pub)
        except BaseException:
            owner.release(self._module, self._token_label)
            raise

    def _session(self) -> Any:
        if self._closed:
            raise HsmError(f"signer for token '{self._token_label}' is closed")
        if self._gen != owner.generation:  # library re-initialised: handles changed
            self._priv, _ = signing_key_pair(
                owner.session(self._module, self._token_label), self._key_label, self._token_label
            )
            self._aes.clear()
            self._gen = owner.generation
        return owner.session(self._module, self._token_label)

    def _sign_all(self, digests: Sequence[bytes]) -> list[bytes]:
        self._session()
        try:
            return [self._priv.sign(d, mechanism=Mechanism.ECDSA) for d in digests]
        except p11x.PKCS11Error as exc:
            raise HsmError(f"signing with '{self._key_label}' failed: {type(exc).__name__} {exc}") from exc

    def _aes_key(self, label: str) -> Any:
        session = self._session()
        if label not in self._aes:
            key = find_key(session, ObjectClass.SECRET_KEY, KeyType.AES, label)
            if key is None:
                raise HsmError(f"AES key '{label}' not found in token '{self._token_label}'")
            self._aes[label] = key
        return self._aes[label]

    def _gcm(self, encrypt: bool, label: str, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        key = self._aes_key(label)
        params = GCMParams(nonce, aad or None)
        try:
            if encrypt:
                return key.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
            return key.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
        except p11x.PKCS11Error as exc:
            what = "encryption" if encrypt else "decryption (wrong key, nonce, aad or tampered data)"
            raise HsmError(f"AES-GCM {what} with '{label}' failed: {type(exc).__name__}") from exc

    def _close(self) -> None:
        self._priv = None
        self._aes.clear()
        self._closed = True
        owner.release(self._module, self._token_label)

    # -- any thread -----------------------------------------------------------------------------------

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a SHA-256 digest; returns raw r||s."""
        return self.sign_digests([digest])[0]

    def sign_digests(self, digests: Sequence[bytes]) -> list[bytes]:
        """Sign several SHA-256 digests with one round trip to the owner thread."""
        for d in digests:
            if len(d) != DIGEST_SIZE:
                raise ValueError(f"expected a {DIGEST_SIZE}-byte SHA-256 digest, got {len(d)} bytes")
        if self._closed:
            raise HsmError(f"signer for token '{self._token_label}' is closed")
        return owner.call(self._sign_all, list(digests))

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 signature of data, raw r||s (64 bytes)."""
        return self.sign_digests([hashlib.sha256(data).digest()])[0]

    def sign_batch(self, items: Iterable[bytes]) -> list[bytes]:
        """sign() for many items at once, in order."""
        return self.sign_digests([hashlib.sha256(item).digest() for item in items])

    def encrypt_aes_gcm(self, key_label: str, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        """AES-256-GCM with a token key; returns ciphertext||16-byte tag. nonce: 12 bytes, never reused."""
        return owner.call(self._gcm, True, key_label, nonce, data, aad)

    def decrypt_aes_gcm(self, key_label: str, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        """Inverse of encrypt_aes_gcm; raises HsmError if the tag does not verify."""
        return owner.call(self._gcm, False, key_label, nonce, data, aad)
