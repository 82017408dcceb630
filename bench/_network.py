"""Shared by the benchmarks: a real network of node processes in a temporary state directory."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from jukinet.network.provision import Network, provision
from jukinet.network.supervisor import RunningNetwork, start_network
from jukinet.network.topology import Topology


@contextlib.contextmanager
def benchmark_network(keep: Path | None = None) -> Iterator[tuple[Network, RunningNetwork]]:
    """Provision and start the default topology on free ports; stop and clean up afterwards."""
    state = keep or Path(tempfile.mkdtemp(prefix="jukinet-bench-"))
    try:
        net = provision(state, Topology.default(free_ports=True))
        with start_network(net) as running:
            yield net, running
    finally:
        if keep is None:
            shutil.rmtree(state, ignore_errors=True)
