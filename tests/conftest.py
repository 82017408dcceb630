"""Shared fixtures: a real network of node processes (mTLS on loopback, SoftHSM tokens, LMDB files)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from jukinet.network.provision import Network, provision
from jukinet.network.supervisor import RunningNetwork, start_network
from jukinet.network.topology import Topology

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _start(state: Path) -> tuple[Network, RunningNetwork]:
    net = provision(state, Topology.default(free_ports=True))
    return net, start_network(net)


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The default topology (national, pref 13, CS 131148 and 131016), shared by read-mostly tests."""
    _, running = _start(tmp_path_factory.mktemp("network"))
    with running:
        yield running


@pytest.fixture(scope="module")
def private_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """A network of the module's own, for tests that stop and restart nodes."""
    _, running = _start(tmp_path_factory.mktemp("private-network"))
    with running:
        yield running
