"""Idle links stay up: both ends take their keepalive settings from one place, so a client's pings are
always within what the server accepts. With timers shortened to a fifth of a second, idle links see no
GOAWAY (gRPC's server default would refuse pings more often than every five minutes)."""

from __future__ import annotations

import time

import pytest
from conftest import start, wait_until
from netutil import link, residents, terminal

from jukinet.devnet.topology import Topology


@pytest.fixture(scope="module")
def pinging(tmp_path_factory, softhsm, worker):
    topology = Topology.default(free_ports=True).tuned(keepalive_ms=200, keepalive_timeout_ms=1000)
    with start(tmp_path_factory.mktemp("keepalive"), softhsm, worker, topology) as running:
        yield running


def test_idle_links_are_not_dropped(pinging):
    wait_until(lambda: link(pinging, "cs:131148", "pref:13").connects == 1, what="the CS link to connect")
    time.sleep(4)  # twenty keepalive intervals with nothing to send
    for node, destination in (("cs:131148", "pref:13"), ("cs:131016", "pref:13"), ("pref:13", "national")):
        status = link(pinging, node, destination)
        assert (status.connects, status.consecutive_failures, status.last_error) == (1, 0, ""), (node, status)
    # And the links still carry what comes after the silence.
    terminal(pinging, "cs:131148").register(residents("131148", 3))
    wait_until(lambda: link(pinging, "cs:131148", "pref:13").pending == 0, what="delivery after idling")
    assert link(pinging, "cs:131148", "pref:13").connects == 1
    for spec in pinging.network.topology.nodes:
        log = (pinging.network.state / "logs" / f"{spec.name}.log").read_text()
        assert "too_many_pings" not in log and "GOAWAY" not in log
