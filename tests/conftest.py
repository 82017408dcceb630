"""Shared fixtures: one SoftHSM and one token worker for the test process, and real networks of node
processes.

SoftHSM reads its configuration once per process, so the whole pytest process uses ONE SoftHSM
configuration and ONE token worker (``worker``); the networks' node tokens and the operators' cards
live in it too, so tests can unlock cards in this process while the nodes run in theirs.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from jukinet.devnet.operators import bootstrap_operators
from jukinet.devnet.provision import provision
from jukinet.devnet.supervisor import RunningNetwork, start_network
from jukinet.devnet.topology import Topology
from jukinet.hsm import SoftHsmConfig, TokenWorker, find_softhsm_module

T = TypeVar("T")
# Emulated biometrics are random; seeded here (and in the CLI processes tests start) so that a rare
# genuine false non-match (FNMR ≈ 0.3 %) cannot make the suite flaky.
os.environ.setdefault("JUKINET_BIOMETRIC_SEED", "20261125")


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


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsmConfig:
    """The one SoftHSM configuration of this pytest process."""
    return SoftHsmConfig.create(tmp_path_factory.mktemp("softhsm"))


@pytest.fixture(scope="session")
def module() -> Path:
    return find_softhsm_module()


@pytest.fixture(scope="session")
def worker(softhsm: SoftHsmConfig, module: Path) -> Iterator[TokenWorker]:
    """The one token worker of this pytest process (its SoftHSM is ``softhsm``)."""
    w = TokenWorker(module, softhsm.conf_path)
    yield w
    w.close()


def start(state: Path, softhsm: SoftHsmConfig, worker: TokenWorker, topology: Topology | None = None) -> RunningNetwork:
    """Provision and start a network whose node tokens and cards live in the test process's SoftHSM;
    each node gets a logged-in administrator (all roles) at its site's terminal: ``running.operators``."""
    net = provision(state, topology or Topology.default(free_ports=True), softhsm_root=softhsm.root)
    running = start_network(net)
    try:
        running.operators = bootstrap_operators(worker, net)  # type: ignore[attr-defined]
    except BaseException:
        running.stop()
        raise
    running.worker = worker  # type: ignore[attr-defined]
    return running


@pytest.fixture(scope="session")
def network(
    tmp_path_factory: pytest.TempPathFactory, softhsm: SoftHsmConfig, worker: TokenWorker
) -> Iterator[RunningNetwork]:
    """The default topology (national, pref 13, CS 131148 and 131016), shared by read-mostly tests."""
    with start(tmp_path_factory.mktemp("network"), softhsm, worker) as running:
        yield running


@pytest.fixture(scope="module")
def private_network(
    tmp_path_factory: pytest.TempPathFactory, softhsm: SoftHsmConfig, worker: TokenWorker
) -> Iterator[RunningNetwork]:
    """A network of the module's own, for tests that stop and restart nodes."""
    with start(tmp_path_factory.mktemp("private-network"), softhsm, worker) as running:
        yield running


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The number of hypothesis examples per RPC family, when property tests ran (tests/properties/)."""
    counts = sys.modules.get("propcount")
    if counts is None or not counts.EXAMPLES:
        return
    terminalreporter.section(f"hypothesis examples per RPC family (profile {counts.PROFILE})")
    for family, n in sorted(counts.EXAMPLES.items()):
        terminalreporter.write_line(f"{family:<28} {n:>7}")
    terminalreporter.write_line(f"{'total':<28} {sum(counts.EXAMPLES.values()):>7}")
