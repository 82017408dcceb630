"""Helpers for end-to-end tests: clients of a running network, and a forged notice sender."""

from __future__ import annotations

import random
from pathlib import Path

import grpc

from jukinet.clients import AgencyClient, TerminalClient, open_channel
from jukinet.domain.synthetic import synthetic_resident
from jukinet.network.access import agency_client, terminal_for
from jukinet.network.supervisor import RunningNetwork
from jukinet.pki.layout import bundle_path
from jukinet.v1 import identity_pb2

AGENCY = "7123456789012"
BUSINESS = "pension-benefit"
_rng = random.Random(4242)


def residents(municipality: str, n: int, reason: int = identity_pb2.CHANGE_REASON_MOVE_IN) -> list:
    return [synthetic_resident(_rng, municipality, reason) for _ in range(n)]


def terminal(running: RunningNetwork, node_id: str) -> TerminalClient:
    """The site terminal of ``node_id`` with its administrator logged in (all roles)."""
    return running.operators[str(running.network.topology.node(node_id).node_ids[0])][1]


def bare_terminal(running: RunningNetwork, node_id: str) -> TerminalClient:
    """The site terminal of ``node_id`` with no operator logged in."""
    net = running.network
    return terminal_for(net, net.topology.node(node_id))


def agency(running: RunningNetwork, corporate_number: str = AGENCY) -> AgencyClient:
    return agency_client(running.network, corporate_number)


def channel_with(running: RunningNetwork, node_id: str, cert: Path, key: Path, bundle: Path | None = None):
    net = running.network
    return open_channel(net.topology.node(node_id).listen, cert, key, bundle or bundle_path(net.pki_dir))


def counts(running: RunningNetwork, node_id: str) -> tuple[int, int, int]:
    """(records, history entries, provisions) at a node."""
    s = terminal(running, node_id).status()
    return s.records, s.history_entries, s.provisions


def rpc_error(fn, *args, **kwargs) -> grpc.RpcError:
    try:
        fn(*args, **kwargs)
    except grpc.RpcError as exc:
        return exc
    raise AssertionError("the call succeeded but was expected to fail")
