"""`jukinet up` runs a network from a topology file until interrupted, restarts a node that dies while
the others keep running, and stops every node on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jukinet.devnet.topology import pick_free_ports


def test_up_runs_until_interrupted_and_stops_every_node(tmp_path):
    ports = pick_free_ports(3)
    topology = tmp_path / "topology.toml"
    topology.write_text(f"""
[national]
listen = "127.0.0.1:{ports[0]}"

[[prefecture]]
codes = ["13"]
listen = "127.0.0.1:{ports[1]}"

[[cs]]
municipality = "131148"
listen = "127.0.0.1:{ports[2]}"
""")
    state = tmp_path / "state"
    up = subprocess.Popen(
        [sys.executable, "-m", "jukinet.cli.main", "up", "--state", str(state), "--topology", str(topology)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"},
    )
    lines = []
    deadline = time.monotonic() + 60
    assert up.stdout is not None
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "network is up" in line:
            break
    assert any("network is up" in line for line in lines), "".join(lines)
    assert any(f"127.0.0.1:{ports[2]}" in line for line in lines)
    status = subprocess.run(
        [sys.executable, "-m", "jukinet.cli.main", "status", "--state", str(state)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "cs-131148" in status and "unreachable" not in status
    # A node dies (kill -9): the supervisor restarts it; the other nodes keep their processes.
    pids = _node_pids(state)
    os.kill(pids["cs-131148"], signal.SIGKILL)
    restarted = _read_until(up, "node cs-131148 restarted", lines)
    assert any("node cs-131148 exited (code -9); restarting in" in line for line in lines), "".join(lines)
    after = _node_pids(state)
    assert after["cs-131148"] != pids["cs-131148"] and f"pid {after['cs-131148']}" in restarted
    assert {k: v for k, v in after.items() if k != "cs-131148"} == {k: v for k, v in pids.items() if k != "cs-131148"}
    status = subprocess.run(
        [sys.executable, "-m", "jukinet.cli.main", "status", "--state", str(state)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "unreachable" not in status and "cs-131148 → pref:13" in status
    up.send_signal(signal.SIGINT)
    rest, _ = up.communicate(timeout=60)
    assert up.returncode == 0 and "stopped" in rest
    assert "ready on" in (state / "logs" / "national.log").read_text()
    # Every node process has exited: nothing listens any more.
    status = subprocess.run(
        [sys.executable, "-m", "jukinet.cli.main", "status", "--state", str(state)], capture_output=True, text=True
    ).stdout
    assert status.count("unreachable") == 3
    assert _node_pids(state) == {}


def _node_pids(state) -> dict[str, int]:
    """The node processes running from ``state``, by node name (from their command lines)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"run" in argv and any(str(state).encode() in a and a.endswith(b"node.toml") for a in argv):
            config = next(a for a in argv if a.endswith(b"node.toml"))
            found[Path(config.decode()).parent.name] = int(proc.name)
    return found


def _read_until(process: subprocess.Popen, text: str, lines: list[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return line
    raise AssertionError(f"no {text!r} in the output of jukinet up:\n{''.join(lines)}")
