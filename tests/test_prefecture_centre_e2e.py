"""One prefecture process serving two prefectures (a consolidated centre), end to end."""

from __future__ import annotations

import pytest
from conftest import start, wait_until
from netutil import counts, link, residents, rpc_error, terminal

from jukinet.devnet.topology import Topology, pick_free_ports


@pytest.fixture(scope="module")
def centre_network(tmp_path_factory, softhsm, worker):
    ports = pick_free_ports(4)
    topology = Topology.parse(f"""
[national]
listen = "127.0.0.1:{ports[0]}"

[[prefecture]]
codes = ["13", "14"]
listen = "127.0.0.1:{ports[1]}"

[[cs]]
municipality = "131148"
listen = "127.0.0.1:{ports[2]}"

[[cs]]
municipality = "142018"
listen = "127.0.0.1:{ports[3]}"

[[agency]]
corporate_number = "7123456789012"
name = "demo agency"
""")
    with start(tmp_path_factory.mktemp("centre"), softhsm, worker, topology) as running:
        yield running


def test_one_process_serves_both_prefectures(centre_network):
    terminal(centre_network, "cs:131148").register(residents("131148", 30))
    terminal(centre_network, "cs:142018").register(residents("142018", 20))
    wait_until(lambda: counts(centre_network, "national")[0] == 50, what="50 records at national")
    inbound = {
        (i.sender, i.destination): i.last_sequence
        for i in terminal(centre_network, "national").status(inbound=True).inbound
    }
    # Each CS hands its notices to its own prefecture (one process serves both); the centre relays them
    # to the national server on its one link, each CS's batches still signed by that CS. A CS's queue
    # holds its notices and, before them, the blocks of codes the national server designated to it.
    for cs, pref, notices in (("cs:131148", "pref:13", 30), ("cs:142018", "pref:14", 20)):
        queued = link(centre_network, cs, pref)
        assert queued.last_enqueued_sequence > notices, queued  # at least one block, then the notices
        assert inbound[(cs, pref)] == queued.last_enqueued_sequence
    assert inbound[("pref:13", "national")] >= 1
    assert {link.destination for link in terminal(centre_network, "pref:13").status().links} == {"national"}
    # The centre's operator terminal (site 13, its first prefecture) sees both prefectures' records.
    assert counts(centre_network, "pref:13")[0] == 50


def test_centre_cs_still_speaks_only_for_itself(centre_network):
    err = rpc_error(terminal(centre_network, "cs:142018").record_change, residents("131148", 1)[0])
    assert "142018" in err.details()
