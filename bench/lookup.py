"""Lookup: agency lookups (by 住民票コード and by My Number, alternating), one client and then many at once.

Starts the network, registers --population residents at CS 131148 and waits until the national server
holds them. Then: --records sequential unary lookups by the demo agency from one client; then the same
number of lookups from --concurrent clients at once (--processes client processes, each client with its
own channel, as separate agency systems would have). Every lookup is written durably to the provision
log (and the audit log) before it is answered; concurrent lookups share fsyncs (group commit).
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _network import benchmark_network

from jukinet.devnet.access import agency_client
from jukinet.devnet.provision import load_network
from jukinet.domain.synthetic import synthetic_resident

BUSINESS = "pension-benefit"


def _lookups(client, residents: list, count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    latencies = []
    for i in range(count):
        who = residents[rng.randrange(len(residents))]
        t0 = time.perf_counter()
        if i % 2:
            client.by_my_number(BUSINESS, who.my_number)
        else:
            client.by_resident_code(BUSINESS, who.resident_code)
        latencies.append(time.perf_counter() - t0)
    return latencies


def _client_process(state: str, corporate: str, residents: list, threads: int, count: int, seed: int, out, go) -> None:
    """One client process running ``threads`` clients, each with a channel of its own."""
    net = load_network(Path(state))
    clients = [agency_client(net, corporate) for _ in range(threads)]
    for client in clients:
        client.by_resident_code(BUSINESS, residents[0].resident_code)  # connect
    results: list[list[float]] = [[] for _ in clients]
    start = threading.Barrier(threads + 1)

    def run(i: int) -> None:
        start.wait()
        results[i] = _lookups(clients[i], residents, count, seed + i)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    out.put("ready")
    go.wait()
    start.wait()
    for w in workers:
        w.join()
    out.put([x for r in results for x in r])


def _summary(latencies: list[float], elapsed: float) -> dict:
    latencies = sorted(latencies)
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "records_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(p(0.50), 3),
        "p99_ms": round(p(0.99), 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5000, help="number of lookups, in each phase")
    parser.add_argument("--population", type=int, default=5000, help="residents registered first")
    parser.add_argument("--concurrent", type=int, default=16, help="clients at once in the second phase")
    parser.add_argument("--processes", type=int, default=4, help="client processes in the second phase")
    args = parser.parse_args()

    rng = random.Random(11)
    residents = [synthetic_resident(rng, "131148") for _ in range(args.population)]
    with benchmark_network() as (net, _worker, terminals):
        cs, national = terminals["cs:131148"], terminals["national"]
        cs.register(residents)  # the CS gives each its 住民票コード and My Number, written back into ``residents``
        deadline = time.monotonic() + 120
        # A number the national server did not give within the CS's deadline is recorded later (個人番号指定,
        # one more history entry at the national server): wait for it, so every lookup is of a real number.
        late = [r for r in residents if not r.my_number]
        pending = len(late)
        while late:
            if time.monotonic() > deadline:
                raise SystemExit(f"{len(late)} residents still have no My Number")
            time.sleep(1)
            for r in late:
                r.my_number = cs.resident(r.resident_code).my_number
            late = [r for r in late if not r.my_number]
        entries = len(residents) + pending  # at the national server: each registration, each late number
        while (status := national.status()).records < len(residents) or status.history_entries < entries:
            if time.monotonic() > deadline:
                raise SystemExit("residents did not reach the national server")
            time.sleep(0.05)
        corporate = net.topology.agencies[0].corporate_number
        client = agency_client(net, corporate)
        client.by_resident_code(BUSINESS, residents[0].resident_code)  # connect and warm up
        start = time.perf_counter()
        single = _lookups(client, residents, args.records, 11)
        single_elapsed = time.perf_counter() - start

        ctx = mp.get_context("spawn")
        queue, go = ctx.Queue(), ctx.Event()
        per_thread = max(1, args.records // args.concurrent)
        threads = [args.concurrent // args.processes + (i < args.concurrent % args.processes)
                   for i in range(args.processes)]  # fmt: skip
        procs = [
            ctx.Process(target=_client_process,
                        args=(str(net.state), corporate, residents, n, per_thread, 1000 * i, queue, go))
            for i, n in enumerate(threads) if n
        ]  # fmt: skip
        for proc in procs:
            proc.start()
        for _ in procs:
            assert queue.get(timeout=120) == "ready"
        start = time.perf_counter()
        go.set()
        concurrent: list[float] = []
        for _ in procs:
            concurrent += queue.get(timeout=600)
        concurrent_elapsed = time.perf_counter() - start
        for proc in procs:
            proc.join()
        logged = national.status().provisions
    print(f"{len(single)} lookups from one client in {single_elapsed:.2f}s; {len(concurrent)} from "
          f"{args.concurrent} clients at once in {concurrent_elapsed:.2f}s; provisions logged: {logged}")  # fmt: skip
    result = {"bench": "lookup", "records": len(single), **_summary(single, single_elapsed)}
    result |= {f"concurrent_{k}": v for k, v in _summary(concurrent, concurrent_elapsed).items()}
    result |= {"concurrent_clients": args.concurrent, "concurrent_records": len(concurrent)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
