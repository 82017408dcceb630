"""Lookup: N agency lookups (by 住民票コード and by My Number, alternating) from one agency client.

Starts the network, registers --population residents at CS 131148 and waits until the national
server holds them, then times N sequential unary lookups by the demo agency for its listed
business; every lookup is written durably to the provision log before it is answered.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _network import benchmark_network

from jukinet.devnet.access import agency_client
from jukinet.domain.synthetic import synthetic_resident

BUSINESS = "pension-benefit"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5000, help="number of lookups")
    parser.add_argument("--population", type=int, default=5000, help="residents registered first")
    args = parser.parse_args()

    rng = random.Random(11)
    residents = [synthetic_resident(rng, "131148") for _ in range(args.population)]
    with benchmark_network() as (net, _worker, terminals):
        terminals["cs:131148"].register(residents)
        national = terminals["national"]
        deadline = time.monotonic() + 120
        while national.status().records < len(residents):
            if time.monotonic() > deadline:
                raise SystemExit("residents did not reach the national server")
            time.sleep(0.05)
        client = agency_client(net, net.topology.agencies[0].corporate_number)
        client.by_resident_code(BUSINESS, residents[0].resident_code)  # connect and warm up
        latencies = []
        start = time.perf_counter()
        for i in range(args.records):
            who = residents[rng.randrange(len(residents))]
            t0 = time.perf_counter()
            if i % 2:
                client.by_my_number(BUSINESS, who.my_number)
            else:
                client.by_resident_code(BUSINESS, who.resident_code)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        logged = national.status().provisions
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(f"{args.records} lookups in {elapsed:.2f}s; provision log holds {logged} entries")
    result = {
        "bench": "lookup",
        "records": args.records,
        "records_per_s": round(args.records / elapsed),
        "p50_ms": round(p(0.50), 3),
        "p99_ms": round(p(0.99), 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
