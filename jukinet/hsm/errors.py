"""The one error type of jukinet.hsm: a TokenError says why (TokenFailure) and, in words, what.

Callers branch on ``reason`` (and ``remaining`` for a wrong card PIN), never on the message. The
PKCS#11 exceptions of python-pkcs11 are turned into TokenErrors in one place, jukinet.hsm.worker.
"""

from __future__ import annotations

from enum import Enum

from jukinet.domain.errors import Problem, Rejected

__all__ = ["TokenError", "TokenFailure"]


class TokenFailure(Enum):
    """Why a token operation failed, and the Problem each reason is."""

    PIN_INCORRECT = ("PIN incorrect", Problem.UNAUTHENTICATED)  # a wrong user or SO PIN
    PIN_LOCKED = ("PIN locked", Problem.DENIED)  # the token itself blocked its PIN (CKR_PIN_LOCKED)
    CARD_LOCKED = ("card locked", Problem.DENIED)  # an operator card reached its wrong-PIN limit
    NO_TOKEN = ("no token", Problem.NOT_FOUND)  # no token with that label
    NO_KEY = ("no key", Problem.NOT_FOUND)  # the token lacks the key asked for
    NO_CERTIFICATE = ("no certificate", Problem.NOT_FOUND)  # an operator card carries no certificate
    IN_USE = ("in use", Problem.CONFLICT)  # logged in elsewhere, or another TokenWorker is live in this process
    WRONG_KEY = ("wrong key", Problem.INVALID)  # a certificate not for the key, a key of the wrong type
    BAD_INPUT = ("bad input", Problem.INVALID)  # an argument the token cannot take (a digest of the wrong size)
    NOT_AUTHENTIC = ("not authentic", Problem.BROKEN)  # stored AES-GCM data whose tag does not verify
    MISCONFIGURED = ("misconfigured", Problem.BROKEN)  # module or tool missing, a second SoftHSM config
    CLOSED = ("closed", Problem.UNAVAILABLE)  # the worker, signer or card was closed
    FAILED = ("failed", Problem.UNAVAILABLE)  # any other token or library failure

    def __init__(self, label: str, problem: Problem) -> None:
        self.label = label
        self.problem = problem


class TokenError(Rejected):
    """A token refusal or failure: ``reason`` says why; ``remaining`` is the tries left after a wrong card
    PIN (0 once the card is locked), None otherwise."""

    def __init__(self, reason: TokenFailure, message: str, remaining: int | None = None) -> None:
        super().__init__(reason.problem, message)
        self.reason = reason
        self.remaining = remaining
