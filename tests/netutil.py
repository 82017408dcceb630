"""Helpers for end-to-end tests: clients of a running network, and identities the tests play."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import grpc

from jukinet.clients import AgencyClient, TerminalClient, open_channel
from jukinet.devnet.access import agency_client, terminal_for
from jukinet.devnet.simulated import SimulatedNode
from jukinet.devnet.supervisor import RunningNetwork
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki.layout import bundle_path
from jukinet.v1 import admin_pb2, identity_pb2

AGENCY = "7123456789012"
BUSINESS = "pension-benefit"
NUMBER_BUSINESS = "pension-number-check"  # the demo agency's row that permits my_number (lookups by My Number)
_rng = random.Random(4242)


def residents(municipality: str, n: int, reason: int = identity_pb2.CHANGE_REASON_MOVE_IN) -> list:
    return [synthetic_resident(_rng, municipality, reason) for _ in range(n)]


def terminal(running: RunningNetwork, node_id: str) -> TerminalClient:
    """The site terminal of ``node_id`` with its administrator logged in (all roles)."""
    return running.operators[str(running.network.topology.node(node_id).node_id)][1]


def bare_terminal(running: RunningNetwork, node_id: str) -> TerminalClient:
    """The site terminal of ``node_id`` with no operator logged in."""
    net = running.network
    return terminal_for(net, net.topology.node(node_id))


def agency(running: RunningNetwork, corporate_number: str = AGENCY) -> AgencyClient:
    return agency_client(running.network, corporate_number)


def channel_with(running: RunningNetwork, node_id: str, cert: Path, key: Path, bundle: Path | None = None):
    """A channel to ``node_id`` presenting the client certificate ``cert``/``key``."""
    spec = running.network.topology.node(node_id)
    return open_channel(spec.listen, spec.node_id, cert, key, bundle or bundle_path(running.network.pki_dir))


def address(running: RunningNetwork, node_id: str) -> str:
    return running.network.topology.node(node_id).listen


def simulated(running: RunningNetwork, node_ids: list[str], directory: Path) -> SimulatedNode:
    """An identity the test plays: node-CA TLS and signing certificates, a software signing key."""
    return SimulatedNode.issue(running.network.pki_dir, node_ids, directory)


def counts(running: RunningNetwork, node_id: str) -> tuple[int, int, int]:
    """(records, history entries, provisions) at a node."""
    s = terminal(running, node_id).status()
    return s.records, s.history_entries, s.provisions


def link(running: RunningNetwork, node_id: str, destination: str) -> admin_pb2.LinkStatus:
    """The status of ``node_id``'s link to ``destination``."""
    for status in terminal(running, node_id).status().links:
        if status.destination == destination:
            return status
    raise AssertionError(f"{node_id} has no link to {destination}")


def rpc_error(fn, *args, **kwargs) -> grpc.RpcError:
    try:
        fn(*args, **kwargs)
    except grpc.RpcError as exc:
        return exc
    raise AssertionError("the call succeeded but was expected to fail")


def run_cli(
    *args: str, fds: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """``jukinet *args`` in a child process, as a person would run it. Each option of ``fds`` (``--pin-fd``,
    ``--admin-pin-fd``) is given a pipe holding its PIN; ``env`` is added to an environment without PINs."""
    base = {k: v for k, v in os.environ.items() if k not in ("JUKINET_PIN", "JUKINET_ADMIN_PIN")}
    argv = [sys.executable, "-m", "jukinet.cli.main", *args]
    pipes: list[int] = []
    try:
        for option, pin in (fds or {}).items():
            read_end, write_end = os.pipe()
            os.write(write_end, pin.encode() + b"\n")
            os.close(write_end)
            pipes.append(read_end)
            argv += [option, str(read_end)]
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            pass_fds=pipes,
            env={**base, **(env or {})},
            timeout=timeout,
        )
    finally:
        for fd in pipes:
            os.close(fd)


def designated(
    running: RunningNetwork, cs: SimulatedNode, n: int, reason: int = identity_pb2.CHANGE_REASON_BIRTH
) -> tuple[bytes, list]:
    """What a simulated CS needs to send residents the legitimate way: ``n`` codes designated to it by the
    national server and their My Numbers. Returns the ``code_block`` LinkItem (queue it before the
    notices) and ``n`` records of its municipality carrying those numbers."""
    from jukinet.v1 import link_pb2, numbers_pb2, numbers_pb2_grpc

    with cs.channel(address(running, "national"), "national") as channel:
        stub = numbers_pb2_grpc.NumberServiceStub(channel)
        block = stub.DesignateCodes(numbers_pb2.DesignateCodesRequest(request_id=f"test-{_rng.random()}", count=n))
        codes = list(numbers_pb2.CodeBlock.FromString(block.block.payload).codes)
        answer = stub.AssignMyNumbers(numbers_pb2.AssignMyNumbersRequest(resident_codes=codes))
    records = residents(cs.node_id[3:], n, reason)
    for record, assigned in zip(records, answer.numbers, strict=True):
        record.resident_code, record.my_number = assigned.resident_code, assigned.my_number
    return link_pb2.LinkItem(code_block=block.block).SerializeToString(), records
