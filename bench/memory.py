"""Memory under large concurrent requests: one agency sends waves of oversized requests to the national
server; the server's peak RSS (VmHWM) is read before and after each wave.

Bound (docs/LIMITS.md): no request larger than MAX_REQUEST_BYTES is buffered at all; a request larger
than its RPC allows is refused as soon as it has arrived, before it is parsed; one peer has at most
``calls_per_peer`` calls in progress. So one peer holds at most calls_per_peer × MAX_REQUEST_BYTES of
request bytes at once, and only for as long as it takes to refuse them.

    .venv/bin/python bench/memory.py [--concurrent 40] [--waves 3]

Last line: {"bench":"memory", ...} with the national server's RSS before and its peak after each wave.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _network import benchmark_network

from jukinet.clients.transport import channel_options
from jukinet.domain.limits import MAX_REQUEST_BYTES
from jukinet.server.runtime.batches import varint

AGENCY = "7123456789012"
METHOD = "/jukinet.v1.IdentityProvisionService/LookupByResidentCode"


def _pid_of(config: Path) -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if str(config).encode() in cmdline:
                return int(entry)
    raise SystemExit(f"no process runs {config}")


def _memory_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def _wave(address: str, credentials: grpc.ChannelCredentials, size: int, concurrent: int) -> dict[str, int]:
    options = [o for o in channel_options("national") if "message_length" not in o[0]]
    options += [("grpc.max_send_message_length", -1)]  # the client sends what the server must refuse
    async with grpc.aio.secure_channel(address, credentials, options=options) as channel:
        call = channel.unary_unary(METHOD)
        payload = b"\x0a" + varint(size - 1 - len(varint(size))) + b"x" * (size - 1 - len(varint(size)))
        results = await asyncio.gather(*(call(payload, timeout=60) for _ in range(concurrent)), return_exceptions=True)
    codes: dict[str, int] = {}
    for r in results:
        name = f"{r.code().name}: {r.details()[:70]}" if isinstance(r, grpc.aio.AioRpcError) else "OK"
        codes[name] = codes.get(name, 0) + 1
    return codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrent", type=int, default=40)
    parser.add_argument("--waves", type=int, default=3)
    args = parser.parse_args()
    with benchmark_network() as (net, _worker, _terminals):
        national = net.topology.national
        pid = _pid_of(net.node_config(national))
        creds = net.agency(AGENCY)
        credentials = grpc.ssl_channel_credentials(
            (net.pki_dir / "trust-bundle.pem").read_bytes(), creds.key.read_bytes(), creds.cert.read_bytes()
        )
        before, _ = _memory_mb(pid)
        print(f"national server RSS before: {before:.0f} MiB (pid {pid})")
        waves = []
        for size in (30 << 20, MAX_REQUEST_BYTES - 1024, 60 << 10):
            for i in range(args.waves):
                codes = asyncio.run(_wave(national.listen, credentials, size, args.concurrent))
                rss, peak = _memory_mb(pid)
                print(f"{args.concurrent} × {size / (1 << 20):.2f} MiB requests (wave {i + 1}): {codes}; "
                      f"RSS {rss:.0f} MiB, peak {peak:.0f} MiB")  # fmt: skip
                waves.append({"request_bytes": size, "codes": codes, "rss_mb": round(rss), "peak_mb": round(peak)})
        _, peak = _memory_mb(pid)
    print(json.dumps({
        "bench": "memory", "concurrent": args.concurrent, "rss_before_mb": round(before), "peak_rss_mb": round(peak),
        "growth_mb": round(peak - before), "waves": waves,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
