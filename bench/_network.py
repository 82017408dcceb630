"""Shared by the benchmarks: a real network of node processes in a temporary state directory."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from jukinet.clients import TerminalClient
from jukinet.devnet.operators import bootstrap_operators
from jukinet.devnet.provision import Network, provision
from jukinet.devnet.supervisor import start_network
from jukinet.devnet.topology import Topology
from jukinet.hsm import TokenWorker, find_softhsm_module


@contextlib.contextmanager
def benchmark_network(
    keep: Path | None = None,
    topology: Topology | None = None,
    before_start: Callable[[Network], None] | None = None,
) -> Iterator[tuple[Network, TokenWorker, dict[str, TerminalClient]]]:
    """Provision and start ``topology`` (default: the default topology on free ports), with this process's
    TokenWorker (the card reader) and an administrator logged in at each node's site terminal (by node id);
    stop and clean up afterwards. ``before_start`` may fill the nodes' stores once provisioned, before any
    node runs."""
    state = keep or Path(tempfile.mkdtemp(prefix="jukinet-bench-"))
    try:
        net = provision(state, topology or Topology.default(free_ports=True))
        if before_start is not None:
            before_start(net)
        card_reader = TokenWorker(find_softhsm_module(), net.softhsm.conf_path)  # cards are unlocked here
        with start_network(net), card_reader as worker:
            operators = bootstrap_operators(worker, net, rng=np.random.default_rng(1))
            yield net, worker, {node: terminal for node, (_, terminal) in operators.items()}
    finally:
        if keep is None:
            shutil.rmtree(state, ignore_errors=True)
