"""Locating SoftHSM and managing a SoftHSM token directory (development, tests, demos).

SoftHsmConfig only manages files and runs softhsm2-util in child processes, for what needs no PIN (listing
and deleting tokens); the in-process library is loaded by jukinet.hsm.worker.TokenWorker, which is also
what points it at a config, and tokens are initialised through it (jukinet.hsm.tokens): softhsm2-util
would want the PINs as arguments, visible to every local user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from jukinet.hsm.errors import TokenError, TokenFailure

MODULE_ENV = "JUKINET_PKCS11_MODULE"
CONF_ENV = "SOFTHSM2_CONF"
_INSTALL_HINT = "install it with `apt-get install softhsm2` (or `make setup`)"
_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)


def find_softhsm_module() -> Path:
    """The development default PKCS#11 module: $JUKINET_PKCS11_MODULE if set, else SoftHSM at the usual
    distribution paths. For tests, demos and tools; a node daemon takes its module path from its
    configuration file instead of probing."""
    override = os.environ.get(MODULE_ENV)
    if override:
        if not Path(override).is_file():
            raise TokenError(TokenFailure.MISCONFIGURED, f"{MODULE_ENV}={override} does not exist")
        return Path(override)
    for candidate in _MODULE_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    looked = ", ".join(_MODULE_CANDIDATES)
    raise TokenError(
        TokenFailure.MISCONFIGURED, f"SoftHSM PKCS#11 module not found (looked in {looked}); {_INSTALL_HINT}"
    )


def _softhsm_util() -> str:
    tool = shutil.which("softhsm2-util")
    if tool is None:
        raise TokenError(TokenFailure.MISCONFIGURED, f"softhsm2-util not found on PATH; {_INSTALL_HINT}")
    return tool


@dataclass(frozen=True)
class SoftHsmConfig:
    """A SoftHSM token directory (root/tokens) and the softhsm2.conf pointing at it (root/softhsm2.conf)."""

    root: Path

    @property
    def conf_path(self) -> Path:
        return self.root / "softhsm2.conf"

    @property
    def token_dir(self) -> Path:
        return self.root / "tokens"

    @classmethod
    def create(cls, root: Path) -> SoftHsmConfig:
        """Create (or reuse) the directory layout and config file; idempotent."""
        cfg = cls(Path(root).resolve())
        cfg.token_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = (
            f"directories.tokendir = {cfg.token_dir}/\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n"
            "slots.mechanisms = ALL\n"
            "library.reset_on_fork = false\n"
        )
        if not cfg.conf_path.is_file() or cfg.conf_path.read_text() != text:
            cfg.conf_path.write_text(text)
        return cfg

    def env(self) -> dict[str, str]:
        """Variables to merge into a child process's environment (this process's library: TokenWorker)."""
        return {CONF_ENV: str(self.conf_path)}

    def token_labels(self) -> list[str]:
        """Labels of the initialised tokens (from softhsm2-util: the in-process library is not loaded)."""
        out = self._run("--show-slots")
        return [
            line.split(":", 1)[1].strip()
            for line in out.splitlines()
            if line.strip().startswith("Label:") and line.split(":", 1)[1].strip()
        ]

    def delete_token(self, label: str) -> None:
        """Delete the token with this label, if there is one (e.g. a card whose enrollment failed)."""
        if label in self.token_labels():
            self._run("--delete-token", "--token", label)

    def _run(self, *args: str) -> str:
        proc = subprocess.run(
            [_softhsm_util(), *args], env={**os.environ, **self.env()}, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise TokenError(
                TokenFailure.FAILED, f"softhsm2-util {args[0]} failed for {self.conf_path}: {proc.stderr.strip()}"
            )
        return proc.stdout
