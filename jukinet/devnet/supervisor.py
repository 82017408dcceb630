"""Runs a provisioned network as separate node processes on loopback, restarts the ones that die,
and stops them all."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jukinet.clients import open_channel
from jukinet.devnet.provision import Network
from jukinet.devnet.topology import NodeSpec
from jukinet.domain.errors import Problem, Rejected
from jukinet.pki.layout import bundle_path

log = logging.getLogger(__name__)


def _not_started(message: str) -> Rejected:
    """A node process did not become healthy; the message carries the tail of its log."""
    return Rejected(Problem.UNAVAILABLE, message)


@dataclass
class NodeProcess:
    spec: NodeSpec
    process: subprocess.Popen
    log: IO[bytes]
    started: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class RunningNetwork:
    network: Network
    processes: dict[str, NodeProcess] = field(default_factory=dict)

    def start_node(self, spec: NodeSpec, timeout: float = 30.0) -> NodeProcess:
        """Start one node process and wait until its health service reports SERVING."""
        log_path = self.network.state / "logs" / f"{spec.name}.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 - owned by NodeProcess, closed in stop_node
        env = {**self.network.environment(), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "jukinet.cli.main", "node", "run", "--config"]
        process = subprocess.Popen(
            [*command, str(self.network.node_config(spec))],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        node = NodeProcess(spec, process, log_file)
        self.processes[spec.name] = node
        try:
            self._wait_healthy(node, timeout)
        except Rejected:
            self.stop_node(spec)
            raise
        return node

    def _wait_healthy(self, node: NodeProcess, timeout: float) -> None:
        creds = self.network.terminal(node.spec.site)
        deadline = time.monotonic() + timeout
        bundle = bundle_path(self.network.pki_dir)
        with open_channel(node.spec.listen, node.spec.node_id, creds.cert, creds.key, bundle) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if not node.alive():
                    raise _not_started(f"{node.spec.name} exited:\n{self.log_tail(node.spec)}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise _not_started(f"{node.spec.name} not healthy after {timeout:.0f}s:\n{self.log_tail(node.spec)}")

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


@dataclass
class _Restart:
    at: float
    delay: float


class Supervisor:
    """Keeps every node of a running network up: a node that exits is restarted after a back-off that
    doubles with each failed attempt (up to ``backoff_max``) and resets once the node has stayed up for
    ``stable`` seconds; the other nodes keep running throughout. Call :meth:`check` periodically."""

    def __init__(
        self,
        running: RunningNetwork,
        say: Callable[[str], None] = print,
        backoff_start: float = 1.0,
        backoff_max: float = 30.0,
        stable: float = 60.0,
    ) -> None:
        self.running = running
        self._say = say
        self._backoff_start = backoff_start
        self._backoff_max = backoff_max
        self._stable = stable
        self._pending: dict[str, _Restart] = {}
        self._next_delay: dict[str, float] = {}
        self.restarts = 0

    def check(self) -> None:
        now = time.monotonic()
        for spec in self.running.network.topology.nodes:
            node = self.running.processes.get(spec.name)
            if node is not None and node.alive():
                if now - node.started > self._stable:
                    self._next_delay.pop(spec.name, None)
                continue
            pending = self._pending.get(spec.name)
            if pending is None:
                code = node.process.returncode if node is not None else None
                if node is not None:
                    self.running.stop_node(spec)
                delay = self._next_delay.get(spec.name, self._backoff_start)
                self._pending[spec.name] = _Restart(now + delay, delay)
                self._say(f"node {spec.name} exited (code {code}); restarting in {delay:.1f}s")
                log.warning("node %s exited (code %s); restarting in %.1fs", spec.name, code, delay)
            elif now >= pending.at:
                self._restart(spec, pending)

    def _restart(self, spec: NodeSpec, pending: _Restart) -> None:
        del self._pending[spec.name]
        self._next_delay[spec.name] = min(pending.delay * 2, self._backoff_max)
        try:
            node = self.running.start_node(spec)
        except Rejected as exc:
            self._say(f"node {spec.name} did not come back: {str(exc).splitlines()[0]}")
            return  # the next check sees it down and schedules the next attempt, later
        self.restarts += 1
        self._say(f"node {spec.name} restarted (pid {node.process.pid})")
        log.warning("node %s restarted (pid %d)", spec.name, node.process.pid)
