"""Ingest: N records registered at one CS until all are stored at the national server.

Starts a national server, a prefecture server and the CS nodes as processes, streams N synthetic
residents to CS 131148 over one RegisterResidents stream (chunks of --chunk records), and polls the
national server until it holds all N. The rows leave 住民票コード and My Number empty, as a clerk enters
new residents: the CS takes codes from its reserve (fetching blocks online as it runs out) and asks the
national server for each chunk's My Numbers, so that is measured too. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _network import benchmark_network

from jukinet.cs_node.registry import row_digest
from jukinet.domain.synthetic import synthetic_resident


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    args = parser.parse_args()

    rng = random.Random(7)
    records = [synthetic_resident(rng, "131148") for _ in range(args.records)]  # codes and numbers: the CS's
    if len({row_digest(r) for r in records}) != len(records):  # two identical rows are one person; keep N exact
        raise SystemExit("identical residents generated; change the seed")
    with benchmark_network() as (_net, _worker, terminals):
        cs, national = terminals["cs:131148"], terminals["national"]
        start = time.perf_counter()
        reply = cs.register(records, chunk_size=args.chunk)
        registered = time.perf_counter() - start
        if reply.refused or reply.stored != args.records:
            raise SystemExit(f"{reply.stored} stored, {len(reply.refused)} refused of {args.records} records")
        print(f"registered {reply.stored} records at cs:131148 in {registered:.2f}s", flush=True)
        stored = 0
        while stored < args.records:
            if time.perf_counter() - start > args.timeout:
                raise SystemExit(f"only {stored} of {args.records} records reached the national server")
            time.sleep(0.05)
            stored = national.status().records
        elapsed = time.perf_counter() - start
    print(f"all {stored} records stored at the national server after {elapsed:.2f}s")
    result = {
        "bench": "ingest",
        "records": args.records,
        "seconds": round(elapsed, 3),
        "records_per_s": round(args.records / elapsed),
        "register_seconds": round(registered, 3),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
