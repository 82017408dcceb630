"""Delivery survives restarts and crashes of any node: nothing is lost, nothing is applied twice."""

from __future__ import annotations

import threading

from conftest import wait_until
from netutil import counts, residents, terminal


def _spec(running, node_id):
    return running.network.topology.node(node_id)


def _queued(running, node_id) -> int:
    """Queue entries of ``node_id`` not yet covered by a receipt (all its links)."""
    return terminal(running, node_id).status().queued


def test_prefecture_restart_with_pending_notices_delivers_each_once(private_network):
    pref = _spec(private_network, "pref:13")
    before = counts(private_network, "national")
    private_network.stop_node(pref)
    terminal(private_network, "cs:131148").register(residents("131148", 400), chunk_size=100)
    assert _queued(private_network, "cs:131148") == 400  # held while the prefecture is down
    private_network.start_node(pref)
    wait_until(lambda: counts(private_network, "national")[0] == before[0] + 400, what="400 records at national")
    wait_until(lambda: _queued(private_network, "cs:131148") == 0, what="the CS outbox to drain")
    assert counts(private_network, "national")[1] == before[1] + 400  # each history entry exactly once


def test_prefecture_crash_mid_stream_loses_nothing_and_duplicates_nothing(private_network):
    pref = _spec(private_network, "pref:13")
    before = counts(private_network, "national")
    records = residents("131016", 6000)
    loader = threading.Thread(target=lambda: terminal(private_network, "cs:131016").register(records, chunk_size=500))
    loader.start()
    wait_until(lambda: counts(private_network, "pref:13")[0] > 0, what="the load to start arriving")
    private_network.kill_node(pref)  # SIGKILL: no graceful shutdown
    loader.join()
    private_network.start_node(pref)
    wait_until(lambda: counts(private_network, "national")[0] == before[0] + 6000, what="6000 records at national")
    wait_until(lambda: _queued(private_network, "pref:13") == 0, what="the prefecture queue to drain")
    assert counts(private_network, "national")[1] == before[1] + 6000


def test_national_and_cs_restart_with_notices_in_flight(private_network):
    national, cs = _spec(private_network, "national"), _spec(private_network, "cs:131148")
    before = counts(private_network, "national")
    before_pref = counts(private_network, "pref:13")[0]
    private_network.stop_node(national)
    terminal(private_network, "cs:131148").register(residents("131148", 300))
    # The prefecture stored them and holds the CS's signed batches for the national server.
    wait_until(lambda: counts(private_network, "pref:13")[0] >= before_pref + 300, what="300 records at pref:13")
    wait_until(lambda: _queued(private_network, "cs:131148") == 0, what="the CS queue to drain")
    assert _queued(private_network, "pref:13") >= 1
    private_network.stop_node(cs)
    private_network.start_node(cs)
    private_network.start_node(national)
    wait_until(lambda: counts(private_network, "national")[0] == before[0] + 300, what="300 records at national")
    # Registered while the national server was down, they got their My Numbers once it was back: each a
    # 個人番号指定 notice of its own (issue 8). Each notice once: 300 creations and 300 designations.
    wait_until(lambda: counts(private_network, "national")[1] >= before[1] + 600, what="the 300 designations")
    wait_until(lambda: _queued(private_network, "pref:13") == 0, what="the prefecture queue to drain")
    wait_until(lambda: _queued(private_network, "cs:131148") == 0, what="the CS queue to drain")
    assert counts(private_network, "national")[1] == before[1] + 600
    # The CS still knows its residents after its restart (LMDB on disk).
    assert terminal(private_network, "cs:131148").status().records >= 300
