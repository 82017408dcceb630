"""Initialising a token through PKCS#11, so that no PIN is ever on a command line.

softhsm2-util takes PINs as arguments (readable by every local user with ``ps``) or from a terminal
only: it refuses a pipe. So tokens are initialised in-process: C_InitToken in a free slot with the SO
PIN, then C_InitPIN in an SO session for the user PIN. python-pkcs11 wraps C_InitPIN
(``Session.init_pin``) but not C_InitToken; that one call goes through ctypes into the same loaded
module (dlopen hands back the library python-pkcs11 already initialised), on the worker thread like
every other token call of the process.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path
from typing import Final

from jukinet.hsm.errors import TokenError, TokenFailure
from jukinet.hsm.worker import TokenWorker, translating

__all__ = ["init_token"]

LABEL_BYTES: Final = 32  # CK_TOKEN_INFO.label: UTF-8, blank-padded
PIN_CHARS: Final = (4, 255)  # SoftHSM's bounds for user and SO PINs
_CKR_NAMES: Final = {0xA2: "CKR_PIN_LEN_RANGE", 0xE0: "CKR_TOKEN_NOT_PRESENT", 0x190: "CKR_CRYPTOKI_NOT_INITIALIZED"}


def _check(label: str, pin: str, so_pin: str) -> bytes:
    encoded = label.encode("utf-8")
    if not label or label != label.strip() or len(encoded) > LABEL_BYTES:
        raise TokenError(
            TokenFailure.BAD_INPUT,
            f"a token label has 1 to {LABEL_BYTES} bytes and no surrounding blanks, got {label!r}",
        )
    low, high = PIN_CHARS
    for what, value in (("user PIN", pin), ("SO PIN", so_pin)):
        if not low <= len(value) <= high:
            raise TokenError(TokenFailure.BAD_INPUT, f"a {what} has {low} to {high} characters, got {len(value)}")
    return encoded.ljust(LABEL_BYTES, b" ")


@cache
def _c_init_token(module: Path) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    fn = ctypes.CDLL(str(module)).C_InitToken
    # CK_RV C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR so_pin, CK_ULONG so_pin_len, CK_UTF8CHAR_PTR label)
    fn.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    fn.restype = ctypes.c_ulong
    return fn


def _init(worker: TokenWorker, label: str, pin: str, so_pin: str) -> None:
    padded = _check(label, pin, so_pin)
    if worker.has_token(label):
        return
    slot = worker.free_slot()
    so = so_pin.encode("utf-8")
    rv = _c_init_token(worker.module)(slot, so, len(so), padded)
    if rv != 0:
        name = _CKR_NAMES.get(rv, "")
        raise TokenError(TokenFailure.FAILED, f"C_InitToken of token '{label}' failed: CKR 0x{rv:X} {name}".strip())
    session = worker.so_session(label, so_pin)
    try:
        with translating(f"setting the user PIN of token '{label}'"):
            session.init_pin(pin)
    finally:
        with translating(f"logging the SO out of token '{label}'"):
            session.close()


def init_token(worker: TokenWorker, label: str, pin: str, so_pin: str) -> None:
    """Initialise a token labelled ``label`` with this user PIN and SO PIN in a free slot of the worker's
    library, unless a token with that label exists; idempotent. The PINs never leave this process."""
    worker.call(_init, worker, label, pin, so_pin)
