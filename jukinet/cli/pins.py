"""Where the CLI gets a card PIN: a file descriptor, an environment variable or a prompt, never argv.

A command line is readable by every local user (``ps``, /proc/<pid>/cmdline); a process's environment
and its file descriptors only by its owner. So ``--pin-fd N`` (the first line read from descriptor N,
e.g. ``--pin-fd 3 3<pin.txt``), else ``$JUKINET_PIN`` (``$JUKINET_ADMIN_PIN`` for the administrator's
card), else a prompt at the terminal. The old ``--pin``/``--admin-pin`` options are refused by name.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from jukinet.domain.errors import Problem, Rejected

PIN_ENV: Final = "JUKINET_PIN"
ADMIN_PIN_ENV: Final = "JUKINET_ADMIN_PIN"
MAX_READ: Final = 1024  # a PIN has at most 255 characters; a descriptor offering more is not a PIN


@dataclass(frozen=True)
class PinSource:
    """One PIN's sources, in order: a descriptor (``option`` names it in errors), an environment variable,
    the terminal."""

    option: str
    fd: int | None
    env: str

    def read(self, prompt: str) -> str:
        if self.fd is not None:
            return _from_fd(self.option, self.fd)
        if os.environ.get(self.env):
            return os.environ[self.env]
        if sys.stdin.isatty():
            return getpass.getpass(prompt)
        raise Rejected(
            Problem.INVALID, f"no PIN: pass {self.option} N (a descriptor to read it from), set ${self.env}, "
            "or run at a terminal to be asked for it",
        )  # fmt: skip


def _from_fd(option: str, fd: int) -> str:
    data = b""
    try:
        while len(data) <= MAX_READ and b"\n" not in data and (chunk := os.read(fd, MAX_READ + 1 - len(data))):
            data += chunk
        os.close(fd)
    except OSError as exc:
        raise Rejected(Problem.INVALID, f"{option} {fd}: cannot read it ({exc.strerror})") from None
    line = data.split(b"\n", 1)[0].removesuffix(b"\r")
    if len(data) > MAX_READ and b"\n" not in data:
        raise Rejected(Problem.INVALID, f"{option} {fd}: more than {MAX_READ} bytes without a line end is not a PIN")
    try:
        pin = line.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(Problem.INVALID, f"{option} {fd}: the PIN is not UTF-8") from None
    if not pin:
        raise Rejected(Problem.INVALID, f"{option} {fd}: no PIN was written to it")
    return pin


def distinct(*sources: PinSource) -> None:
    """Refuse two PINs given on one descriptor (the first read would consume both)."""
    fds = [s.fd for s in sources if s.fd is not None]
    if len(fds) != len(set(fds)):
        names = " and ".join(s.option for s in sources if s.fd is not None)
        raise Rejected(Problem.INVALID, f"{names} name the same descriptor; give each PIN its own")


class _Gone(argparse.Action):
    """A removed PIN option: refused with the reason and the replacements, before anything runs."""

    def __init__(self, option_strings: list[str], dest: str, env: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="?", **kwargs)
        self.env = env

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: Any = None) -> NoReturn:
        parser.error(
            f"{option} is gone: a PIN on the command line is readable by every local user (ps); "
            f"use {option}-fd N, ${self.env} or the prompt"
        )


def add_pin_options(parser: argparse.ArgumentParser, option: str, env: str, whose: str) -> None:
    """``{option}-fd N`` for {whose} PIN (e.g. "the operator's card"), and the old ``{option}`` refused."""
    dest = option.removeprefix("--").replace("-", "_") + "_fd"
    parser.add_argument(
        f"{option}-fd",
        dest=dest,
        type=int,
        metavar="N",
        help=f"read {whose} PIN from file descriptor N (default: ${env}, else a prompt)",
    )
    parser.add_argument(option, action=_Gone, env=env, dest=argparse.SUPPRESS, help=argparse.SUPPRESS)
