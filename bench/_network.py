"""Shared by the benchmarks: a real network of node processes in a temporary state directory."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from jukinet.clients import TerminalClient
from jukinet.network.operators import bootstrap_operators
from jukinet.network.provision import Network, provision
from jukinet.network.supervisor import start_network
from jukinet.network.topology import Topology


@contextlib.contextmanager
def benchmark_network(keep: Path | None = None) -> Iterator[tuple[Network, dict[str, TerminalClient]]]:
    """Provision and start the default topology on free ports, with an administrator logged in at each
    node's site terminal (by node id); stop and clean up afterwards."""
    state = keep or Path(tempfile.mkdtemp(prefix="jukinet-bench-"))
    try:
        net = provision(state, Topology.default(free_ports=True))
        net.softhsm.activate()  # operator cards are unlocked in this process
        with start_network(net):
            operators = bootstrap_operators(net, rng=np.random.default_rng(1))
            yield net, {node: terminal for node, (_, terminal) in operators.items()}
    finally:
        if keep is None:
            shutil.rmtree(state, ignore_errors=True)
