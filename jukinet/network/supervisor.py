"""Runs a provisioned network as separate node processes on loopback, and stops them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jukinet.clients import open_channel
from jukinet.network.provision import Network
from jukinet.network.topology import NodeSpec
from jukinet.pki.layout import bundle_path


class NodeStartError(RuntimeError):
    """A node process did not become healthy; the message carries the tail of its log."""


@dataclass
class NodeProcess:
    spec: NodeSpec
    process: subprocess.Popen
    log: IO[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class RunningNetwork:
    network: Network
    processes: dict[str, NodeProcess] = field(default_factory=dict)

    def start_node(self, spec: NodeSpec, timeout: float = 30.0) -> NodeProcess:
        """Start one node process and wait until its health service reports SERVING."""
        log_path = self.network.state / "logs" / f"{spec.name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - owned by NodeProcess, closed in stop_node
        env = {**os.environ, **self.network.softhsm.env(), "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jukinet.cli.main",
                "node",
                "run",
                "--config",
                str(self.network.node_config(spec)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        node = NodeProcess(spec, process, log)
        self.processes[spec.name] = node
        try:
            self._wait_healthy(node, timeout)
        except NodeStartError:
            self.stop_node(spec)
            raise
        return node

    def _wait_healthy(self, node: NodeProcess, timeout: float) -> None:
        creds = self.network.terminal(node.spec.site)
        deadline = time.monotonic() + timeout
        with open_channel(node.spec.listen, creds.cert, creds.key, bundle_path(self.network.pki_dir)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if not node.alive():
                    raise NodeStartError(f"{node.spec.name} exited:\n{self.log_tail(node.spec)}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise NodeStartError(f"{node.spec.name} not healthy after {timeout:.0f}s:\n{self.log_tail(node.spec)}")

    def log_tail(self, spec: NodeSpec, lines: int = 20) -> str:
        path = self.network.state / "logs" / f"{spec.name}.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_node(self, spec: NodeSpec, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        node = self.processes.pop(spec.name, None)
        if node is None:
            return None
        if node.alive():
            node.process.send_signal(signal.SIGTERM)
            try:
                node.process.wait(timeout)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        node.log.close()
        return node.process.returncode

    def kill_node(self, spec: NodeSpec) -> None:
        """SIGKILL: a crash, for tests of durability."""
        node = self.processes.get(spec.name)
        if node is not None and node.alive():
            node.process.kill()
            node.process.wait()
        self.stop_node(spec)

    def stop(self) -> None:
        for spec in reversed(self.network.topology.nodes):
            self.stop_node(spec)

    def __enter__(self) -> RunningNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_network(network: Network, timeout: float = 30.0) -> RunningNetwork:
    """Start every node of the topology, upstream first; on failure, stop what was started."""
    running = RunningNetwork(network)
    try:
        for spec in network.topology.nodes:
            running.start_node(spec, timeout)
    except BaseException:
        running.stop()
        raise
    return running
