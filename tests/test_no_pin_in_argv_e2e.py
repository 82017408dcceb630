"""No PIN on any command line: the process table is watched while a network is provisioned and run, and
operators are enrolled, logged in and unlocked through the CLI, each command a process of its own.

Every command line on the machine (/proc/*/cmdline) is sampled continuously by a thread; afterwards the
samples are searched for every PIN of the run: each node token's user and SO PIN, each card's PIN and SO
PIN, and a wrong PIN typed once. A canary process proves the watcher sees a command line that lives
only 0.1 s. softhsm2-util, short-lived, is also run through a wrapper on PATH that records every
argument vector it is given.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from netutil import run_cli

from jukinet.devnet.topology import pick_free_ports


class ProcessTable:
    """Every distinct command line seen in /proc while the watch lasts."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self.sweeps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="process-table", daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                        line = fh.read()
                except OSError:  # gone since the listing, or not ours to read
                    continue
                if line:
                    self.seen.add(line)
            self.sweeps += 1
            time.sleep(0.0005)

    def __enter__(self) -> ProcessTable:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def containing(self, text: str) -> list[str]:
        """The command lines (arguments joined by blanks) that contain ``text``."""
        lines = (line.replace(b"\0", b" ").decode(errors="replace") for line in self.seen)
        return [line for line in lines if text in line]


def _softhsm2_util_wrapper(directory: Path, log: Path) -> Path:
    real = subprocess.run(["which", "softhsm2-util"], capture_output=True, text=True, check=True).stdout.strip()
    directory.mkdir()
    wrapper = directory / "softhsm2-util"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return directory


def _topology(path: Path) -> Path:
    ports = pick_free_ports(3)
    path.write_text(f"""
[national]
listen = "127.0.0.1:{ports[0]}"

[[prefecture]]
codes = ["13"]
listen = "127.0.0.1:{ports[1]}"

[[cs]]
municipality = "131148"
listen = "127.0.0.1:{ports[2]}"
""")
    return path


def _wait_for_up(up: subprocess.Popen) -> None:
    assert up.stdout is not None
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "network is up" in line:
            return
    raise AssertionError("the network did not come up:\n" + "".join(lines))


def _pins_on_disk(state: Path) -> set[str]:
    """Every PIN provisioning and enrollment generated: node token user and SO PINs, card SO PINs."""
    files = [*state.glob("nodes/*/token.pin"), *state.glob("nodes/*/so.pin"), *state.glob("operators/*/so.pin")]
    return {f.read_text().strip() for f in files}


def test_no_pin_on_any_command_line(tmp_path: Path) -> None:
    state, log = tmp_path / "state", tmp_path / "softhsm2-util.log"
    shim = _softhsm2_util_wrapper(tmp_path / "bin", log)
    env = {"PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    where = ["--state", str(state), "--node", "cs:131148"]
    admin, clerk, wrong, intruder = (f"pin{secrets.token_hex(6)}" for _ in range(4))
    canary = f"canary{secrets.token_hex(6)}"

    with ProcessTable() as table:
        up = subprocess.Popen(
            [sys.executable, "-m", "jukinet.cli.main", "up", "--state", str(state), "--topology",
             str(_topology(tmp_path / "topology.toml"))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            env={**{k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}, **env},
        )  # fmt: skip
        try:
            _wait_for_up(up)
            first = run_cli(
                "operator", "enroll", *where, "--name", "admin", "--roles", "administer-operators,register-residents",
                fds={"--pin-fd": admin}, env=env,
            )  # fmt: skip
            assert first.returncode == 0, first.stderr
            enrolled = run_cli(
                "operator", "enroll", *where, "--name", "clerk-01", "--roles", "register-residents", "--admin", "admin",
                fds={"--pin-fd": clerk}, env={**env, "JUKINET_ADMIN_PIN": admin},
            )  # fmt: skip
            assert enrolled.returncode == 0, enrolled.stderr
            refused = run_cli("operator", "login", *where, "--name", "clerk-01", fds={"--pin-fd": wrong}, env=env)
            assert refused.returncode == 1 and "wrong PIN" in refused.stderr
            logged_in = run_cli("operator", "login", *where, "--name", "clerk-01", env={**env, "JUKINET_PIN": clerk})
            assert logged_in.returncode == 0, logged_in.stderr
            unlocked = run_cli(  # the card's SO PIN resets its counter, in the CLI process
                "operator", "unlock", *where, "--name", "clerk-01", "--admin", "admin",
                fds={"--admin-pin-fd": admin}, env=env,
            )  # fmt: skip
            assert unlocked.returncode == 0, unlocked.stderr
            bootstrap_again = run_cli(  # refused by the node: the new card is deleted again (softhsm2-util)
                "operator", "enroll", *where, "--name", "intruder", "--roles", "administer-operators",
                env={**env, "JUKINET_PIN": intruder},
            )  # fmt: skip
            assert bootstrap_again.returncode == 1 and "UNAUTHENTICATED" in bootstrap_again.stderr
            subprocess.run(["/bin/sh", "-c", "sleep 0.1", canary], check=True)
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(timeout=60)

    every_pin = _pins_on_disk(state) | {admin, clerk, wrong, intruder}
    assert len(every_pin) == 3 * 2 + 2 + 4  # three node tokens (user, SO), two cards' SO PINs, four typed
    # The watcher saw what it had to: the canary, the key-generation child (which is given the node
    # tokens' PINs), the nodes, and the CLI commands.
    assert table.containing(canary) and table.sweeps > 100
    assert table.containing("jukinet.devnet.token_keys")
    assert len(table.containing("node run --config")) >= 3
    for command in ("operator enroll", "operator login", "operator unlock"):
        assert table.containing(command), command
    for pin in sorted(every_pin):
        assert table.containing(pin) == [], f"a PIN was on a command line: {table.containing(pin)}"

    softhsm2_util_runs = log.read_text()
    assert "--delete-token" in softhsm2_util_runs  # the wrapper was on PATH and recorded the tool's runs
    assert "--init-token" not in softhsm2_util_runs  # tokens are initialised through PKCS#11
    for pin in sorted(every_pin):
        assert pin not in softhsm2_util_runs
