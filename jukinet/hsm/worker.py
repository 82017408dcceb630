"""TokenWorker: the one thread of a process that calls into PKCS#11, and the token sessions it holds.

SoftHSM driven by python-pkcs11 crashes the process when two threads call into it at once, so every
token call of a process runs on one worker thread; other threads hand it work (``call``, ``submit``).
As in X-Road's signer, the process's entry point creates its one TokenWorker and passes it explicitly
to everything that touches a token (signers, cards, provisioning).

PKCS#11 login state is per token and per process, and closing a session logs the token out, so the
worker keeps one logged-in session per token, shared by reference count (``acquire``/``release``).

PKCS#11 exceptions become TokenErrors here and nowhere else: in the worker's helpers and in
``translating``, which worker-thread code wraps around its own library calls.
"""

from __future__ import annotations

import hmac
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, Self, TypeVar

import pkcs11
from pkcs11 import exceptions as p11x

from jukinet.hsm.errors import TokenError, TokenFailure
from jukinet.hsm.softhsm import CONF_ENV

__all__ = ["TokenLogin", "TokenWorker", "translating"]

T = TypeVar("T")
_DEFAULT_CONF: Final = "<SoftHSM default config>"

_REASONS: Final[tuple[tuple[tuple[type[p11x.PKCS11Error], ...], TokenFailure], ...]] = (
    ((p11x.PinIncorrect,), TokenFailure.PIN_INCORRECT),
    ((p11x.PinLocked,), TokenFailure.PIN_LOCKED),
    (
        (p11x.UserAlreadyLoggedIn, p11x.AnotherUserAlreadyLoggedIn, p11x.SessionReadWriteSOExists),
        TokenFailure.IN_USE,
    ),
    ((p11x.NoSuchToken, p11x.TokenNotPresent, p11x.TokenNotRecognised), TokenFailure.NO_TOKEN),
    ((p11x.NoSuchKey,), TokenFailure.NO_KEY),
    ((p11x.EncryptedDataInvalid, p11x.EncryptedDataLenRange), TokenFailure.NOT_AUTHENTIC),
    ((p11x.DataLenRange, p11x.DataInvalid), TokenFailure.BAD_INPUT),
    ((p11x.MultipleTokensReturned, p11x.MultipleObjectsReturned), TokenFailure.MISCONFIGURED),
)
"""PKCS#11 exception classes and the reason each is; anything else is FAILED."""


def _reason_of(exc: p11x.PKCS11Error, otherwise: TokenFailure = TokenFailure.FAILED) -> TokenFailure:
    for classes, reason in _REASONS:
        if isinstance(exc, classes):
            return reason
    return otherwise


@contextmanager
def translating(doing: str, otherwise: TokenFailure = TokenFailure.FAILED) -> Iterator[None]:
    """Turn a PKCS#11 exception raised in the block into a TokenError "<doing> failed: <exception>".

    ``otherwise`` is the reason of an exception the table does not know: what a generic failure means in
    this block (SoftHSM reports an AES-GCM tag mismatch as CKR_GENERAL_ERROR, for instance).
    """
    try:
        yield
    except p11x.PKCS11Error as exc:
        raise _token_error(exc, doing, otherwise) from exc


def _token_error(exc: p11x.PKCS11Error, doing: str, otherwise: TokenFailure = TokenFailure.FAILED) -> TokenError:
    error = TokenError(_reason_of(exc, otherwise), f"{doing} failed: {type(exc).__name__} {exc}".strip())
    error.__cause__ = exc
    return error


class _Job:
    """One request to the worker thread: the caller waits on `done` (call) or on `future` (submit)."""

    __slots__ = ("args", "done", "error", "fn", "future", "result")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], future: Future[Any] | None) -> None:
        self.fn, self.args, self.future = fn, args, future
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Lock()  # held until the result is in: cheaper than a Future for call()
        if future is None:
            self.done.acquire()

    def run(self) -> None:
        if self.future is not None and not self.future.set_running_or_notify_cancel():
            return  # cancelled while queued
        try:
            self.result = self.fn(*self.args)
        except p11x.PKCS11Error as exc:  # not translated where it was raised: here, generically
            self.error = _token_error(exc, f"token call {getattr(self.fn, '__qualname__', self.fn)!s}")
        except BaseException as exc:
            self.error = exc
        if self.future is None:
            self.done.release()
        elif self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self.result)


@dataclass
class _Open:
    session: pkcs11.Session
    pin: str
    refs: int


@dataclass
class _Process:
    """What this process has done with PKCS#11. The one global of jukinet.hsm (TokenWorker._process):
    python-pkcs11 loads a module once per process and SoftHSM takes its configuration from SOFTHSM2_CONF
    when it initialises, so two live workers would be two threads in one library, and a second config
    would silently be ignored; both are refused."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    live: TokenWorker | None = None
    loaded: dict[str, str] = field(default_factory=dict)  # module path -> the config it was loaded with


class TokenWorker:
    """The process's one PKCS#11 thread, its loaded library and its logged-in token sessions.

    ``call``/``submit``/``close`` may be used from any thread. ``acquire``, ``release``, ``session``,
    ``token``, ``has_token``, ``free_slot``, ``public_session`` and ``so_session`` run on the worker thread
    only (inside ``call``).
    """

    _process: ClassVar[_Process] = _Process()

    def __init__(self, module: Path, softhsm_conf: Path | None = None) -> None:
        """Start the worker thread and load the PKCS#11 module on it.

        ``softhsm_conf`` selects SoftHSM's configuration: the worker sets SOFTHSM2_CONF to it right before
        loading the library; this is the one place jukinet sets it. None keeps the environment's.
        """
        self.module = Path(module)
        self.softhsm_conf = Path(softhsm_conf).resolve() if softhsm_conf is not None else None
        self._conf = str(self.softhsm_conf) if self.softhsm_conf else os.environ.get(CONF_ENV, _DEFAULT_CONF)
        self.generation = 0
        """Bumped when the library is re-initialised; object handles found before must be looked up again."""
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._put_lock = threading.Lock()  # orders job submission against close()
        self._closed = False
        self._lib: Any = None  # worker-thread state from here on
        self._sessions: dict[str, _Open] = {}
        self._claim()
        self._thread = threading.Thread(target=self._serve, name="jukinet-token-worker", daemon=True)
        self._thread.start()
        try:
            self.call(self._load)
        except BaseException:
            self.close()
            raise

    # -- any thread -----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) on the worker thread and return its result or raise its error (inline if already
        on the worker thread)."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        job = _Job(fn, args, None)
        self._put(job)
        job.done.acquire()
        if job.error is not None:
            raise job.error
        result: T = job.result
        return result

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue fn(*args) for the worker thread without waiting (wrap with asyncio.wrap_future in asyncio
        code). On the worker thread itself it runs inline and the future is already done."""
        future: Future[T] = Future()
        job = _Job(fn, args, future)
        if threading.current_thread() is self._thread:
            job.run()
        else:
            self._put(job)
        return future

    def close(self) -> None:
        """Finish the queued work, close every session (logging the tokens out), stop the thread. Idempotent."""
        with self._put_lock:
            if self._closed:
                return
            self._closed = True
            self._jobs.put(_Job(self._shutdown, (), None))
            self._jobs.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "live"
        return f"<TokenWorker {self.module} config={self._conf} {state}>"

    def _put(self, job: _Job) -> None:
        with self._put_lock:
            if self._closed:
                raise TokenError(TokenFailure.CLOSED, f"the token worker of {self.module} is closed")
            self._jobs.put(job)

    def _claim(self) -> None:
        process = self._process
        with process.lock:
            if process.live is not None:
                raise TokenError(
                    TokenFailure.IN_USE,
                    f"a TokenWorker is already live in this process ({process.live!r}); a process has one "
                    "worker, created by its entry point and passed to what needs it",
                )
            loaded = process.loaded.get(str(self.module))
            if loaded is not None and loaded != self._conf:
                raise TokenError(
                    TokenFailure.MISCONFIGURED,
                    f"SoftHSM was already loaded in this process with config {loaded}; it cannot be switched "
                    f"to {self._conf} (use one SoftHSM config per process)",
                )
            process.live = self

    def _serve(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                job.run()
        finally:
            with self._process.lock:  # only now may another worker's thread enter the library
                if self._process.live is self:
                    self._process.live = None

    # -- worker thread --------------------------------------------------------------------------------

    def _load(self) -> None:
        if not self.module.is_file():
            raise TokenError(TokenFailure.MISCONFIGURED, f"PKCS#11 module {self.module} does not exist")
        if self.softhsm_conf is not None:
            if not self.softhsm_conf.is_file():
                raise TokenError(TokenFailure.MISCONFIGURED, f"SoftHSM config {self.softhsm_conf} does not exist")
            os.environ[CONF_ENV] = str(self.softhsm_conf)  # the one place: SoftHSM reads it at initialisation
        with translating(f"loading PKCS#11 module {self.module}"):
            self._lib = pkcs11.lib(str(self.module))
        with self._process.lock:
            self._process.loaded.setdefault(str(self.module), self._conf)

    def _shutdown(self) -> None:
        """Close every session and finalise the library (best effort: the worker is going away)."""
        sessions, self._sessions = self._sessions, {}
        for entry in sessions.values():
            with suppress(p11x.PKCS11Error):
                entry.session.close()
        if self._lib is not None:
            with suppress(p11x.PKCS11Error):
                self._lib.finalize()
            self._lib = None

    def _on_thread(self, what: str) -> None:
        if threading.current_thread() is not self._thread:
            raise TokenError(TokenFailure.FAILED, f"TokenWorker.{what} runs on the worker thread only (use call())")
        if self._lib is None:
            raise TokenError(TokenFailure.CLOSED, f"the token worker of {self.module} is closed")

    def token(self, label: str) -> pkcs11.Token:
        """The token with this label (slot numbers change after init).

        SoftHSM scans its token directory only at C_Initialize, so a token created by softhsm2-util after
        the library was loaded is invisible until the library is re-initialised; that is done once on a miss.
        """
        self._on_thread("token")
        for attempt in range(2):
            try:
                return self._lib.get_token(token_label=label)
            except p11x.NoSuchToken:
                if attempt == 0:
                    self._reinitialize()
            except p11x.MultipleTokensReturned:
                raise TokenError(
                    TokenFailure.MISCONFIGURED, f"more than one token labelled '{label}' in {self._conf}"
                ) from None
        raise TokenError(
            TokenFailure.NO_TOKEN,
            f"token '{label}' not found in SoftHSM at {self._conf}; run `jukinet pki init` "
            "(or jukinet.hsm.init_token) first",
        )

    def has_token(self, label: str) -> bool:
        """Whether a token with this label exists (re-initialising the library once on a miss, as token())."""
        try:
            self.token(label)
        except TokenError as exc:
            if exc.reason is TokenFailure.NO_TOKEN:
                return False
            raise
        return True

    def free_slot(self) -> int:
        """The id of a slot whose token is not initialised yet (SoftHSM always keeps one free)."""
        self._on_thread("free_slot")
        with translating("looking for a free slot"):
            for slot in self._lib.get_slots(token_present=True):
                if not slot.get_token().flags & pkcs11.TokenFlag.TOKEN_INITIALIZED:
                    return int(slot.slot_id)
        raise TokenError(TokenFailure.FAILED, f"no free slot to initialise a token in ({self._conf})")

    def _reinitialize(self) -> None:
        """C_Finalize + C_Initialize, then log the open sessions back in."""
        with translating("re-initialising the PKCS#11 library"):
            self._lib.reinitialize()
        self.generation += 1
        for label, entry in self._sessions.items():
            with translating(f"finding token '{label}' again"):
                token = self._lib.get_token(token_label=label)
            entry.session = self._login(token, label, entry.pin)

    def _login(self, token: pkcs11.Token, label: str, pin: str) -> pkcs11.Session:
        try:
            return token.open(rw=True, user_pin=pin)
        except p11x.PinIncorrect:
            raise TokenError(TokenFailure.PIN_INCORRECT, f"wrong PIN for token '{label}'") from None
        except p11x.PinLocked:
            raise TokenError(TokenFailure.PIN_LOCKED, f"PIN of token '{label}' is locked") from None
        except p11x.UserAlreadyLoggedIn:
            raise TokenError(
                TokenFailure.IN_USE, f"token '{label}' is already logged in by code outside jukinet.hsm in this process"
            ) from None
        except p11x.PKCS11Error as exc:
            raise TokenError(
                _reason_of(exc), f"cannot log in to token '{label}': {type(exc).__name__} {exc}".strip()
            ) from exc

    def acquire(self, label: str, pin: str) -> pkcs11.Session:
        """The shared logged-in R/W session of a token; pair with release()."""
        self._on_thread("acquire")
        entry = self._sessions.get(label)
        if entry is not None:
            if not hmac.compare_digest(entry.pin.encode(), pin.encode()):
                raise TokenError(TokenFailure.PIN_INCORRECT, f"wrong PIN for token '{label}'")
            entry.refs += 1
            return entry.session
        session = self._login(self.token(label), label, pin)
        self._sessions[label] = _Open(session, pin, 1)
        return session

    def session(self, label: str) -> pkcs11.Session:
        """The current session of an acquired token (it changes when the library is re-initialised)."""
        self._on_thread("session")
        entry = self._sessions.get(label)
        if entry is None:
            raise TokenError(TokenFailure.CLOSED, f"token '{label}' has no open session")
        return entry.session

    def release(self, label: str) -> None:
        """Give back an acquire(); the last release closes the session, which logs the token out."""
        self._on_thread("release")
        entry = self._sessions.get(label)
        if entry is None:
            return  # closed with the worker
        entry.refs -= 1
        if entry.refs == 0:
            del self._sessions[label]
            with translating(f"closing the session of token '{label}'"):
                entry.session.close()

    def public_session(self, label: str) -> pkcs11.Session:
        """A R/W session without login (public objects only); the caller closes it, which logs nobody out."""
        self._on_thread("public_session")
        token = self.token(label)
        with translating(f"opening a session on token '{label}'"):
            return token.open(rw=True)

    def so_session(self, label: str, so_pin: str) -> pkcs11.Session:
        """A R/W session logged in as security officer; the caller closes it (logging the SO out)."""
        self._on_thread("so_session")
        token = self.token(label)
        try:
            return token.open(rw=True, so_pin=so_pin)
        except p11x.PinIncorrect:
            raise TokenError(TokenFailure.PIN_INCORRECT, f"wrong SO PIN for token '{label}'") from None
        except (p11x.AnotherUserAlreadyLoggedIn, p11x.UserAlreadyLoggedIn):
            raise TokenError(TokenFailure.IN_USE, f"token '{label}' is logged in in this process") from None
        except p11x.PKCS11Error as exc:
            raise TokenError(
                _reason_of(exc), f"cannot log in to token '{label}' as SO: {type(exc).__name__} {exc}".strip()
            ) from exc


class TokenLogin:
    """Base of the objects that hold a shared token login on a worker (signers, unlocked cards).

    Subclasses log in with ``worker.acquire`` and set ``_label``; ``close()`` releases the login on the
    worker thread. Idempotent, and harmless after the worker itself was closed (which closed the session).
    """

    def __init__(self, worker: TokenWorker, label: str, what: str) -> None:
        self.worker = worker
        self._label = label
        self._what = what  # "signer for token 'x'", "card 'x'": for messages
        self._closed = False
        self._close_lock = threading.Lock()

    def _check_open(self) -> None:
        if self._closed:
            raise TokenError(TokenFailure.CLOSED, f"{self._what} is closed")

    def _forget(self) -> None:
        """Drop token handles (worker thread); subclasses extend."""

    def _release(self) -> None:
        if not self._closed:
            self._closed = True
            self._forget()
            self.worker.release(self._label)

    def close(self) -> None:
        """Release the token login (logged out when its last user closes). Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            try:
                self.worker.call(self._release)
            except TokenError as exc:
                if exc.reason is not TokenFailure.CLOSED:
                    raise
                self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
