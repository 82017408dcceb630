"""``jukinet demo``: a short scenario a person can follow on screen, on a real network of processes."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import grpc

from jukinet.cli.views import agency_client, describe, node_statuses, status_lines, terminal_for
from jukinet.domain.synthetic import synthetic_resident
from jukinet.network.provision import provision
from jukinet.network.supervisor import start_network
from jukinet.network.topology import Topology
from jukinet.v1 import identity_pb2

PENSION_BUSINESS = "pension-benefit"
UNLISTED_BUSINESS = "tax-assessment"


def _say(text: str, pause: float = 0.0) -> None:
    print(text, flush=True)
    if pause:
        time.sleep(pause)


def run_demo(state: Path, pause: float = 0.0) -> int:
    started = time.monotonic()
    if state.exists():
        shutil.rmtree(state)  # the demo always starts from an empty network
    topology = Topology.default(free_ports=True)
    _say("== 1. Provisioning: development PKI, one SoftHSM token per node, certificates")
    net = provision(state, topology)
    _say(f"   state directory {net.state}; each node's signing key was generated inside its token", pause)

    _say("== 2. Starting the national server, the 東京都 prefecture server and two CS nodes, each a process")
    with start_network(net) as running:
        for node in running.processes.values():
            _say(f"   {node.spec.name:>10}  pid {node.process.pid:<7} mTLS on {node.spec.listen}")
        time.sleep(pause)

        rng = random.Random(2026)
        nakano, chiyoda = topology.node("cs:131148"), topology.node("cs:131016")
        _say("== 3. Operators record residents at their municipal counters")
        first: identity_pb2.IdentityRecord | None = None
        for spec, reasons in (
            (nakano, [identity_pb2.CHANGE_REASON_BIRTH, identity_pb2.CHANGE_REASON_MOVE_IN]),
            (chiyoda, [identity_pb2.CHANGE_REASON_MOVE_IN]),
        ):
            terminal = terminal_for(net, spec)
            for reason in reasons:
                record = synthetic_resident(rng, spec.node_ids[0].code, reason)
                reply = terminal.record_change(record)
                first = first or reply.record
                _say(f"   {spec.name}: {describe(reply.record)} (notice #{reply.sequence})")
        bulk = [synthetic_resident(rng, chiyoda.node_ids[0].code) for _ in range(500)]
        summary = terminal_for(net, chiyoda).register(bulk, chunk_size=250)
        _say(
            f"   {chiyoda.name}: bulk registration of {summary.records} residents in {summary.chunks} chunks",
            pause,
        )

        _say("== 4. The changes travel CS → prefecture → national as signed batches")
        expected = 3 + len(bulk)
        deadline = time.monotonic() + 30
        while True:
            statuses = node_statuses(net)
            _say("   " + "\n   ".join(status_lines(statuses)))
            arrived = statuses[topology.national.name]
            done = not isinstance(arrived, str) and arrived.records >= expected
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if not done:
            _say(f"   the national server holds fewer than {expected} records; see {net.state / 'logs'}")
            return 1
        _say(f"   all {expected} records are stored at the national server", pause)

        _say("== 5. The pension service looks a resident up for a listed business")
        agency = topology.agencies[0]
        client = agency_client(net, agency.corporate_number)
        assert first is not None
        provided = client.by_resident_code(PENSION_BUSINESS, first.resident_code)
        _say(f"   {agency.name} / {PENSION_BUSINESS}: provision #{provided.provision_id}: {describe(provided.record)}")
        _say("   (My Number withheld: the legal table row does not list it)", pause)

        _say("== 6. The same agency asks for a business it is not listed for")
        try:
            client.by_resident_code(UNLISTED_BUSINESS, first.resident_code)
            _say("   UNEXPECTED: the lookup was answered")
            return 1
        except grpc.RpcError as exc:
            _say(f"   refused: {exc.code().name}: {exc.details()}", pause)

        _say("== 7. The national server's provision log")
        for entry in terminal_for(net, topology.national).provisions():
            when = entry.provided_at.ToDatetime().strftime("%H:%M:%S")
            _say(f"   #{entry.provision_id} {when} {entry.agency} {entry.business_code} {entry.resident_code}")
        _say("== 8. Stopping every node")
    _say(f"demo finished in {time.monotonic() - started:.1f}s")
    return 0
