"""`jukinet up` runs a network from a topology file until interrupted, and stops every node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

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
    up.send_signal(signal.SIGINT)
    rest, _ = up.communicate(timeout=60)
    assert up.returncode == 0 and "stopped" in rest
    assert "ready on" in (state / "logs" / "national.log").read_text()
    # Every node process has exited: nothing listens any more.
    status = subprocess.run(
        [sys.executable, "-m", "jukinet.cli.main", "status", "--state", str(state)], capture_output=True, text=True
    ).stdout
    assert status.count("unreachable") == 3
