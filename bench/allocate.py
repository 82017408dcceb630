"""Allocate My Numbers at scale against a real national token and LMDB, then look for duplicates.

In process, through the classes the national NumberService uses (:class:`NumberAllocation` over a
SoftHSM token holding the HMAC key and the signing key, a real LMDB store): designate blocks of 1,000
住民票コード to a CS, assign each block's My Numbers (one token job of 1,000 HMACs per call), then read
the store back — every code's number, and the register of issued numbers — and count duplicates.

    .venv/bin/python bench/allocate.py --numbers 1000000

The last line is ``{"bench":"allocate","numbers":N,"duplicates":0,"per_s":X}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from jukinet.domain.clock import SYSTEM_CLOCK
from jukinet.domain.node_ids import NodeId
from jukinet.hsm import (
    SoftHsmConfig,
    TokenMac,
    TokenSigner,
    TokenWorker,
    find_softhsm_module,
    init_token,
    provision_hmac_key,
    provision_signing_key,
)
from jukinet.server.audit import Auditor
from jukinet.server.national.numbers import NumberAllocation
from jukinet.storage import NodeStorage
from jukinet.storage.layout import HELD, Db
from jukinet.v1 import numbers_pb2

PIN, SO_PIN, LABEL = "246810", "135791", "bench-national"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2, help="callers at once (the token is one thread)")
    args = parser.parse_args()
    blocks = -(-args.numbers // 1000)
    with tempfile.TemporaryDirectory(prefix="jukinet-allocate-") as tmp:
        base = Path(tmp)
        worker = TokenWorker(find_softhsm_module(), SoftHsmConfig.create(base / "softhsm").conf_path)
        storage = NodeStorage.open(base / "data", 4 << 30)
        try:
            init_token(worker, LABEL, PIN, SO_PIN)
            provision_signing_key(worker, LABEL, PIN)
            provision_hmac_key(worker, LABEL, PIN)
            signer, mac = TokenSigner(worker, LABEL, PIN), TokenMac(worker, LABEL, PIN)
            allocation = NumberAllocation(
                storage, mac.macs, signer, b"", Auditor(storage, SYSTEM_CLOCK), max_unused=None
            )
            cs = NodeId.cs("131148")
            todo = iter(range(blocks))
            lock = threading.Lock()
            assigned = [0]

            def run() -> None:
                while True:
                    with lock:
                        n = next(todo, None)
                    if n is None:
                        return
                    signed = allocation.designate(cs, f"bench-{n}", min(1000, args.numbers - n * 1000))
                    codes = list(numbers_pb2.CodeBlock.FromString(signed.payload).codes)
                    got = allocation.assign(cs, codes)
                    with lock:
                        assigned[0] += len(got)
                        if assigned[0] % 100_000 < len(got):
                            print(f"{assigned[0]:>9} numbers", file=sys.stderr, flush=True)

            started = time.monotonic()
            threads = [threading.Thread(target=run) for _ in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
            duplicates = _duplicates(storage)
            numbers = storage.env.entries(Db.MY_NUMBERS)
            signer.close()
            mac.close()
        finally:
            storage.close()
            worker.close()
    print(f"{numbers} numbers for {blocks} blocks in {elapsed:.1f} s", file=sys.stderr)
    per_s = round(numbers / elapsed)
    print(
        json.dumps(
            {"bench": "allocate", "numbers": numbers, "duplicates": duplicates, "per_s": per_s}, separators=(",", ":")
        )
    )
    return 0 if duplicates == 0 and numbers == args.numbers else 1


def _duplicates(storage: NodeStorage) -> int:
    """Numbers held by more than one code, read from the store: each code's number (my_numbers) against
    the set of distinct numbers, and the register of issued numbers against who it says holds each."""
    seen: set[str] = set()
    duplicates = 0
    with storage.env.read() as txn:
        for code, number in txn.cursor(db=storage.env.dbs[Db.MY_NUMBERS]):
            if bytes(number) in seen:
                duplicates += 1
            seen.add(bytes(number))
            holder = txn.get(bytes(number), db=storage.env.dbs[Db.ISSUED_NUMBERS])
            if holder is None or bytes(holder) != bytes(code) + HELD:
                duplicates += 1  # the register names another holder
    return duplicates


if __name__ == "__main__":
    raise SystemExit(main())
