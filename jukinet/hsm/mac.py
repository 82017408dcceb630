"""TokenMac: HMAC-SHA256 with a secret key that never leaves the token (the national My Number key)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pkcs11 import KeyType, Mechanism, ObjectClass

from jukinet.hsm.errors import TokenError, TokenFailure
from jukinet.hsm.keys import MY_NUMBER_KEY_LABEL, find_key
from jukinet.hsm.worker import TokenLogin, TokenWorker, translating

__all__ = ["MAX_MAC_INPUT", "TokenMac"]

MAX_MAC_INPUT = 256
"""Bytes of one MAC input at most (a 住民票コード and an attempt number are 16)."""


class TokenMac(TokenLogin):
    """Computes HMAC-SHA256 in the token, over the process's one token worker (X-Road signer model).

    ``macs`` takes many inputs and computes them all in ONE worker job, so a batch of a thousand costs
    one round trip between threads, not a thousand.
    """

    def __init__(self, worker: TokenWorker, token_label: str, pin: str, key_label: str = MY_NUMBER_KEY_LABEL) -> None:
        super().__init__(worker, token_label, f"MAC key '{key_label}' of token '{token_label}'")
        self.token_label = token_label
        self.key_label = key_label
        self._key: Any = None
        self._gen = -1
        worker.call(self._open, pin)

    # -- worker thread --------------------------------------------------------------------------------

    def _open(self, pin: str) -> None:
        self.worker.acquire(self.token_label, pin)
        try:
            self._find()
        except BaseException:
            self._closed = True
            self.worker.release(self.token_label)
            raise

    def _find(self) -> None:
        key = find_key(
            self.worker.session(self.token_label), ObjectClass.SECRET_KEY, KeyType.GENERIC_SECRET, self.key_label
        )
        if key is None:
            raise TokenError(
                TokenFailure.NO_KEY,
                f"HMAC key '{self.key_label}' not found in token '{self.token_label}'; provision it first",
            )
        self._key, self._gen = key, self.worker.generation

    def _mac_all(self, inputs: Sequence[bytes]) -> list[bytes]:
        self._check_open()
        if self._gen != self.worker.generation:  # library re-initialised: handles changed
            self._find()
        with translating(f"HMAC-SHA256 with '{self.key_label}' of token '{self.token_label}'"):
            return [bytes(self._key.sign(data, mechanism=Mechanism.SHA256_HMAC)) for data in inputs]

    def _forget(self) -> None:
        self._key = None

    # -- any thread -----------------------------------------------------------------------------------

    def macs(self, inputs: Sequence[bytes]) -> list[bytes]:
        """HMAC-SHA256 of each input (32 bytes each), in order, in one worker job."""
        for data in inputs:
            if not 0 < len(data) <= MAX_MAC_INPUT:
                raise TokenError(TokenFailure.BAD_INPUT, f"a MAC input has 1..{MAX_MAC_INPUT} bytes, got {len(data)}")
        self._check_open()
        return self.worker.call(self._mac_all, list(inputs))
