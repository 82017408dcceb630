"""The single thread of this process that calls into PKCS#11, and the token sessions it holds.

SoftHSM driven by python-pkcs11 crashes the process when two threads call into it at once, so every
token call in the process (signers of any token, provisioning) runs on one owner thread; other threads
hand it work through a queue and wait for the answer (X-Road signer model).

PKCS#11 login state is per token and per process, and closing a session logs the token out, so the
owner keeps one logged-in session per token, shared by reference count.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import pkcs11
from pkcs11 import exceptions as p11x

from jukinet.hsm.errors import HsmError

T = TypeVar("T")


class _Job:
    """One request to the owner thread; `done` is held until the result is in (cheaper than a Future)."""

    __slots__ = ("args", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Lock()
        self.done.acquire()


_lock = threading.Lock()
_thread: threading.Thread | None = None
_queue: queue.SimpleQueue[_Job | None] | None = None


def call(fn: Callable[..., T], *args: Any) -> T:
    """Run fn(*args) on the owner thread (starting it if needed) and return its result or raise its error."""
    if threading.current_thread() is _thread:
        return fn(*args)
    job = _Job(fn, args)
    with _lock:
        _ensure_thread().put(job)
    job.done.acquire()
    if job.error is not None:
        raise job.error
    return job.result


def _ensure_thread() -> queue.SimpleQueue[_Job | None]:
    global _thread, _queue
    if _thread is None or _queue is None:
        _queue = queue.SimpleQueue()
        _thread = threading.Thread(target=_serve, args=(_queue,), name="jukinet-hsm-owner", daemon=True)
        _thread.start()
    return _queue


def _serve(jobs: queue.SimpleQueue[_Job | None]) -> None:
    while (job := jobs.get()) is not None:
        try:
            job.result = job.fn(*job.args)
        except BaseException as exc:
            job.error = exc
        job.done.release()


def stop_if_idle() -> None:
    """Stop the owner thread when no token session is open; a later call() starts a fresh one.

    The old thread is joined before a new one can start, so two threads never use the library at once.
    """
    global _thread, _queue
    with _lock:
        if _thread is None or _queue is None or _sessions:
            return
        _queue.put(None)
        _thread.join()
        _thread, _queue = None, None


# --- state below is touched only on the owner thread ---------------------------------------------------


@dataclass
class _Open:
    session: pkcs11.Session
    pin: str
    refs: int


_libs: dict[str, Any] = {}
_loaded_conf: str | None = None
_sessions: dict[tuple[str, str], _Open] = {}
generation = 0
"""Bumped when the library is re-initialised; object handles found before then must be looked up again."""


def loaded_conf() -> str | None:
    """SOFTHSM2_CONF in force when this process first loaded a PKCS#11 module (None if not loaded yet)."""
    if _loaded_conf is None and getattr(pkcs11, "_loaded", None):
        return os.environ.get("SOFTHSM2_CONF", "<SoftHSM default config>")  # loaded by someone else
    return _loaded_conf


def _conf_desc() -> str:
    return os.environ.get("SOFTHSM2_CONF", "<default config>")


def _lib(module: str) -> Any:
    global _loaded_conf
    if module not in _libs:
        if not os.path.isfile(module):
            raise HsmError(f"PKCS#11 module {module} does not exist")
        if _loaded_conf is None:
            _loaded_conf = os.environ.get("SOFTHSM2_CONF", "<SoftHSM default config>")
        _libs[module] = pkcs11.lib(module)
    return _libs[module]


def _token(module: str, label: str) -> pkcs11.Token:
    """Find a token by label (slot numbers change after init).

    SoftHSM scans its token directory only at C_Initialize, so a token created by softhsm2-util after the
    library was loaded is invisible until the library is re-initialised; that is done once on a miss.
    """
    lib = _lib(module)
    for attempt in range(2):
        try:
            return lib.get_token(token_label=label)
        except p11x.NoSuchToken:
            if attempt == 0:
                _reinitialize(module)
        except p11x.MultipleTokensReturned:
            raise HsmError(f"more than one token labelled '{label}' in {_conf_desc()}") from None
    raise HsmError(
        f"token '{label}' not found in SoftHSM at {_conf_desc()}; run `jukinet pki init` "
        "(or SoftHsmConfig.init_token) first"
    )


def _reinitialize(module: str) -> None:
    """C_Finalize + C_Initialize, then log the open sessions of this module back in."""
    global generation
    _libs[module].reinitialize()
    generation += 1
    for (mod, label), entry in _sessions.items():
        if mod == module:
            entry.session = _login(_libs[module].get_token(token_label=label), label, entry.pin)


def _login(token: pkcs11.Token, label: str, pin: str) -> pkcs11.Session:
    try:
        return token.open(rw=True, user_pin=pin)
    except p11x.PinIncorrect:
        raise HsmError(f"wrong PIN for token '{label}'") from None
    except p11x.PinLocked:
        raise HsmError(f"PIN of token '{label}' is locked") from None
    except p11x.UserAlreadyLoggedIn:
        raise HsmError(f"token '{label}' is already logged in by code outside jukinet.hsm in this process") from None
    except p11x.PKCS11Error as exc:
        raise HsmError(f"cannot log in to token '{label}': {type(exc).__name__} {exc}") from exc


def acquire(module: str, label: str, pin: str) -> pkcs11.Session:
    """The shared logged-in RW session for a token; pair with release()."""
    entry = _sessions.get((module, label))
    if entry is not None:
        if entry.pin != pin:
            raise HsmError(f"wrong PIN for token '{label}'")
        entry.refs += 1
        return entry.session
    session = _login(_token(module, label), label, pin)
    _sessions[(module, label)] = _Open(session, pin, 1)
    return session


def session(module: str, label: str) -> pkcs11.Session:
    """The currently open session of an acquired token (it changes after a re-initialisation)."""
    return _sessions[(module, label)].session


def release(module: str, label: str) -> None:
    entry = _sessions[(module, label)]
    entry.refs -= 1
    if entry.refs == 0:
        del _sessions[(module, label)]
        try:
            entry.session.close()  # also logs the token out
        except p11x.PKCS11Error as exc:
            raise HsmError(f"closing the session of token '{label}' failed: {type(exc).__name__}") from exc


class OwnedLogin:
    """Base of the objects that hold a token login on the owner thread (signers, unlocked cards).

    Subclasses set ``_closed``/``_close_lock`` in ``__init__`` and implement ``_close`` (run on the
    owner thread). ``close()`` is idempotent and stops the owner thread when nothing else uses it.
    """

    _closed: bool
    _close_lock: threading.Lock

    def _close(self) -> None:  # pragma: no cover - every subclass implements it
        raise NotImplementedError

    def close(self) -> None:
        """Release the token login (logged out when its last user closes). Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            try:
                call(self._close)
            finally:
                stop_if_idle()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
