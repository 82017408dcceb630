"""Links: 1,741 CS links held open to one consolidated prefecture centre, real batches over each.

Starts a national server and a prefecture centre hosting all 47 prefectures (each a process, as
`jukinet up` runs them), then plays --links municipalities (default 1,741, taken in code order from the
bundled directory) from --clients load-generator processes. Every simulated CS has its own node-CA TLS
certificate and a signing key certified for it (software keys: the load generators stand in for CS nodes;
the centre verifies their batches exactly as it verifies real ones, and signs every receipt with its
token). Like a CS, each first has the national server designate the 住民票コード of its notices and assign
their My Numbers (not timed), and queues the signed code blocks ahead of its notices, so the centre and
the national server check ownership of every notice as they would a real CS's. Each link opens a
Deliver stream and hands over one batch (its code blocks and notices); once every link is open, all of them
hand over --batches more batches of --notices change notices each (--window in flight), while this
process times GetStatus calls to the centre from its operator terminal (unary, through the same peer
gate, reading LMDB). The centre stores every notice and relays every batch to the national server.

Last line: one JSON object: {"bench": "links", "links", "batches_per_s", "notices_per_s",
"unary_p50_ms_under_load", "unary_p99_ms_under_load", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def log(message: str) -> None:
    print(message, flush=True)


# -- the load generator (a child process) ---------------------------------------------------------------


def loadgen(spec: dict) -> None:
    """Play the CS nodes in ``spec``; speaks to the parent by lines on stdin/stdout."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    from jukinet.devnet.simulated import SimulatedNode, change_items
    from jukinet.domain.synthetic import synthetic_resident
    from jukinet.v1 import link_pb2, link_pb2_grpc

    os.nice(spec["nice"])  # the CS nodes' CPU is not the centre's: here they share two cores, and yield
    pki, work = Path(spec["pki"]), Path(spec["work"])
    rng = random.Random(spec["seed"])
    n_batches, notices = 1 + spec["batches"] + spec["steady_batches"], spec["notices"]
    nodes = [SimulatedNode.issue(pki, [f"cs:{code}"], work / code) for code in spec["codes"]]
    with ThreadPoolExecutor(8) as pool:  # the national server designates each CS its codes, as it asks
        designated = list(pool.map(lambda node: node.designate(spec["national"], n_batches * notices), nodes))
    links = []
    for code, node, (blocks, numbers) in zip(spec["codes"], nodes, designated, strict=True):
        destination = f"pref:{code[:2]}"
        records = [synthetic_resident(rng, code) for _ in numbers]
        for record, (resident_code, my_number) in zip(records, numbers, strict=True):
            record.resident_code, record.my_number = resident_code, my_number
        batches, position = [], 1
        for b in range(n_batches):  # the code blocks first in the queue, then the notices
            ahead = blocks if b == 0 else []
            mine = records[b * notices : (b + 1) * notices]
            items = [*ahead, *change_items(node.node_id, mine, 1 + b * notices)]
            batches.append(node.batch(destination, items, position))
            position += len(items)
        links.append((node, destination, batches))
    print("ready", flush=True)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stdin = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
        await stdin.readline()  # "open"
        channels, calls = [], []

        async def open_link(node, destination, batches):
            channel = node.aio_channel(spec["address"], destination)
            call = link_pb2_grpc.LinkServiceStub(channel).Deliver()
            await call.write(link_pb2.DeliverRequest(batch=batches[0]))
            await call.read()  # the first receipt: the link is up, mTLS both ways, token-signed receipts
            channels.append(channel)
            calls.append((call, batches[1 : 1 + spec["batches"]], batches[1 + spec["batches"] :]))

        for i in range(0, len(links), 200):  # in waves: gRPC cancels some calls in a burst of thousands
            await asyncio.gather(*(open_link(*link) for link in links[i : i + 200]))
        print(f"open {len(calls)}", flush=True)
        await stdin.readline()  # "go"
        window = spec["window"]

        async def deliver(call, batches) -> int:
            receipts = 0
            in_flight = asyncio.Semaphore(window)

            async def reader() -> None:
                nonlocal receipts
                for _ in batches:
                    await call.read()
                    receipts += 1
                    in_flight.release()

            reading = asyncio.create_task(reader())
            for batch in batches:
                await in_flight.acquire()
                await call.write(link_pb2.DeliverRequest(batch=batch))
            await reading
            return receipts

        t0 = time.perf_counter()
        delivered = await asyncio.gather(*(deliver(call, batches) for call, batches, _ in calls))
        elapsed = time.perf_counter() - t0
        still_open = sum(1 for call, _, _ in calls if not call.done())
        print(f"done {sum(delivered)} {elapsed:.3f} {still_open}", flush=True)
        await stdin.readline()  # "steady": each link hands over a batch every `interval` seconds, phases spread
        interval = spec["interval"]

        async def steady(index: int, call, batches) -> int:
            await asyncio.sleep(interval * index / len(calls))
            start = loop.time()
            for n, batch in enumerate(batches):
                await asyncio.sleep(max(0.0, start + n * interval - loop.time()))
                await call.write(link_pb2.DeliverRequest(batch=batch))
                await call.read()
            return len(batches)

        t0 = time.perf_counter()
        delivered = await asyncio.gather(*(steady(i, call, later) for i, (call, _, later) in enumerate(calls)))
        elapsed = time.perf_counter() - t0
        still_open = sum(1 for call, _, _ in calls if not call.done())
        print(f"done {sum(delivered)} {elapsed:.3f} {still_open}", flush=True)
        await stdin.readline()  # "close"
        for call, _, _ in calls:
            await call.done_writing()
        await asyncio.gather(*(c.close() for c in channels))

    asyncio.run(run())


# -- the parent -----------------------------------------------------------------------------------------


def timed_idle(status) -> tuple[list[float], None]:
    latencies = []
    for _ in range(50):
        t = time.perf_counter()
        status.status()
        latencies.append(time.perf_counter() - t)
        time.sleep(0.02)
    return sorted(latencies), None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", type=int, default=1741)
    parser.add_argument("--clients", type=int, default=1, help="load-generator processes")
    parser.add_argument("--batches", type=int, default=10, help="saturation phase: batches per link")
    parser.add_argument("--notices", type=int, default=10, help="change notices per batch")
    parser.add_argument("--window", type=int, default=2, help="batches in flight per link")
    parser.add_argument("--interval", type=float, default=20.0, help="steady phase: seconds between a link's batches")
    parser.add_argument("--steady-batches", type=int, default=2, help="steady phase: batches per link")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the load generators (0: compete)")
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        loadgen(json.loads(Path(args.loadgen).read_text()))
        return 0

    from jukinet.devnet.access import terminal_for
    from jukinet.devnet.provision import provision
    from jukinet.devnet.supervisor import start_network
    from jukinet.devnet.topology import Topology, pick_free_ports
    from jukinet.domain.municipalities import directory

    codes = sorted(m.code for m in directory() if m.holds_residents)[: args.links]
    if len(codes) < args.links:
        raise SystemExit(f"the directory has {len(codes)} municipalities and wards that hold residents")
    state = Path(tempfile.mkdtemp(prefix="jukinet-links-"))
    children: list[subprocess.Popen] = []
    try:
        ports = pick_free_ports(2)
        prefectures = ", ".join(f'"{p:02d}"' for p in range(1, 48))
        topology = Topology.parse(
            f'[national]\nlisten = "127.0.0.1:{ports[0]}"\n\n'
            f'[[prefecture]]\ncodes = [{prefectures}]\nlisten = "127.0.0.1:{ports[1]}"\n'
        )
        net = provision(state, topology)
        centre = topology.prefectures[0]
        log(f"provisioned {state}; starting the national server and the prefecture centre (pref:01..pref:47)")
        with start_network(net):
            spread = [codes[i :: args.clients] for i in range(args.clients)]
            for i, part in enumerate(spread):
                spec = {
                    "pki": str(net.pki_dir), "work": str(state / f"loadgen-{i}"), "codes": part, "seed": i,
                    "address": centre.listen, "national": topology.national.listen,
                    "batches": args.batches, "notices": args.notices,
                    "window": args.window, "nice": args.nice, "interval": args.interval,
                    "steady_batches": args.steady_batches,
                }  # fmt: skip
                path = state / f"loadgen-{i}.json"
                path.write_text(json.dumps(spec))
                children.append(
                    subprocess.Popen(
                        [sys.executable, __file__, "--loadgen", str(path)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                        env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    )
                )
            t0 = time.perf_counter()
            for child in children:
                assert child.stdout and child.stdout.readline().strip() == "ready"
            per_link = (1 + args.batches + args.steady_batches) * args.notices
            log(f"{args.links} CS identities issued, {args.links * per_link} codes designated and numbered, "
                f"{args.links * (1 + args.batches + args.steady_batches)} batches signed "
                f"in {time.perf_counter() - t0:.1f}s by {args.clients} load generator(s)")  # fmt: skip

            def say(line: str) -> None:
                for child in children:
                    assert child.stdin is not None
                    child.stdin.write(line + "\n")
                    child.stdin.flush()

            t0 = time.perf_counter()
            say("open")
            opened = sum(int(child.stdout.readline().split()[1]) for child in children)  # type: ignore[union-attr]
            log(f"{opened} links open (one batch each, receipted) in {time.perf_counter() - t0:.1f}s")
            status = terminal_for(net, centre)
            status.status()

            def timed(phase: str) -> tuple[list[float], list[list[str]]]:
                """Time GetStatus calls (one every 20 ms) until every load generator reports the phase done."""
                latencies: list[float] = []
                stop = threading.Event()

                def sample() -> None:
                    while not stop.is_set():
                        t = time.perf_counter()
                        status.status()
                        latencies.append(time.perf_counter() - t)
                        time.sleep(0.02)

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                say(phase)
                results = [child.stdout.readline().split() for child in children]  # type: ignore[union-attr]
                stop.set()
                sampler.join()
                return sorted(latencies), results

            idle, _ = timed_idle(status)
            saturated, results = timed("go")
            batches = sum(int(r[1]) for r in results)
            elapsed = max(float(r[2]) for r in results)
            log(f"saturation: {batches} batches ({batches * args.notices} notices) over "
                f"{sum(int(r[3]) for r in results)} open links in {elapsed:.2f}s")  # fmt: skip
            steady, steady_results = timed("steady")
            steady_batches = sum(int(r[1]) for r in steady_results)
            steady_elapsed = max(float(r[2]) for r in steady_results)
            held = sum(int(r[3]) for r in steady_results)
            log(f"steady: {steady_batches} batches in {steady_elapsed:.2f}s "
                f"({steady_batches / steady_elapsed:.0f}/s) over {held} open links")  # fmt: skip
            final = status.status()
            settled = time.monotonic() + 60  # the centre relays the last batches (not timed)
            while any(upstream.pending for upstream in final.links) and time.monotonic() < settled:
                time.sleep(0.2)
                final = status.status()
            say("close")
            for child in children:
                child.wait(timeout=60)

        def pct(values: list[float], q: float) -> float:
            return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)

        log(f"GetStatus from the centre's terminal: {len(saturated)} calls during saturation, {len(steady)} "
            f"during the steady phase; the centre holds {final.records} records")  # fmt: skip
        for upstream in final.links:  # what the national server refused (ownership, numbers) waits here
            log(f"the centre's link to {upstream.destination}: {upstream.pending} pending, "
                f"{upstream.quarantined} quarantined")  # fmt: skip
        result = {
            "bench": "links",
            "links": held,
            "batches_per_s": round(batches / elapsed),
            "notices_per_s": round(batches * args.notices / elapsed),
            "unary_p50_ms_under_load": pct(steady, 0.50),
            "unary_p99_ms_under_load": pct(steady, 0.99),
            "steady_batches_per_s": round(steady_batches / steady_elapsed),
            "unary_p50_ms_saturated": pct(saturated, 0.50),
            "unary_p99_ms_saturated": pct(saturated, 0.99),
            "unary_p99_ms_idle": pct(idle, 0.99),
            "client_processes": args.clients,
            "notices_per_batch": args.notices,
        }
        print(json.dumps(result))
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
