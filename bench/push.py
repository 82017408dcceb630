"""Push: national commit → received delay of pushed changes, with subscribers receiving while ingest runs.

Starts the default network (national, 東京都, CS 131148 and 131016) with --agencies agencies listed in the
legal table and --subscribers subscriptions spread over them (every change), opens one Receive stream per
subscription (grpc.aio, one event loop in a process of their own, each message acknowledged as it arrives), and
runs the ingest load through the real path (RegisterResidents at a CS, as bench/ingest.py does). Each
pushed record's delay is its arrival time here minus its national commit time (`committed_at`; the same
machine clock). Two targets:

- ``--target codes`` (default): first --records residents are registered at CS 131148 (not measured);
  subscriber i subscribes to every 100th of their codes. Then, measured, the CS records a 転居 of each of
  them while --records new residents are registered at CS 131016 (ingest that matches nobody): each
  change reaches one subscriber.
- ``--target municipality``: every subscriber subscribes to the residents of 131148 and --records new
  residents are registered there: each change reaches every subscriber (fan-out = --subscribers).

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import multiprocessing
import random
import sys
import threading
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _network import benchmark_network

from jukinet.clients.transport import channel_options
from jukinet.cs_node.registry import row_digest
from jukinet.devnet.topology import AgencySpec, Topology
from jukinet.domain.codes import corporate_check_digit
from jukinet.domain.synthetic import synthetic_resident
from jukinet.pki.layout import bundle_path
from jukinet.v1 import identity_pb2, subscription_pb2_grpc
from jukinet.v1 import subscription_pb2 as S

BUSINESS = "pension-benefit"
FIELDS = '["resident_code", "name", "birth_date", "sex", "address", "change"]'


def _topology(agencies: int) -> Topology:
    topo = Topology.default(free_ports=True)
    numbers = [f"{corporate_check_digit(f'{500000000000 + i:012d}')}{500000000000 + i:012d}" for i in range(agencies)]
    rows = "".join(
        f'\n[[row]]\nagency = "{n}"\nbusiness = "{BUSINESS}"\ntitle = "bench"\nfields = {FIELDS}\n' for n in numbers
    )
    specs = tuple(AgencySpec(n, f"bench agency {i}") for i, n in enumerate(numbers))
    return dataclasses.replace(topo, agencies=specs, legal_table_text=rows)


class Subscriber:
    def __init__(self, stub: subscription_pb2_grpc.SubscriptionServiceStub, sub: S.Subscription) -> None:
        self.stub, self.sub = stub, sub
        self.delays_ms: list[float] = []
        self.server_ms: list[float] = []  # committed → sent (the server's share of the delay)
        self.received = 0

    async def run(self, expected: int, done: asyncio.Event) -> None:
        acks: asyncio.Queue[int | None] = asyncio.Queue()

        async def requests():  # the subscription, then each acknowledgement
            yield S.ReceiveRequest(subscription_id=self.sub.subscription_id)
            while (position := await acks.get()) is not None:
                yield S.ReceiveRequest(acknowledge=position)

        call = self.stub.Receive(requests())
        try:
            async for message in call:
                now_ms = time.time() * 1000
                sent_ms = message.sent_at.ToMilliseconds()
                for record in message.records:
                    committed_ms = record.committed_at.ToMilliseconds()
                    self.delays_ms.append(now_ms - committed_ms)
                    self.server_ms.append(sent_ms - committed_ms)
                self.received += len(message.records)
                acks.put_nowait(message.last_position)
                if self.received >= expected:
                    break
        finally:
            acks.put_nowait(None)
            call.cancel()
            done.set()


async def _receive_all(listen: str, node_id: str, bundle: bytes, agencies, expected: dict[str, int], conn, timeout):
    subscribers, channels = [], []
    for cert, key, subs in agencies:
        credentials = grpc.ssl_channel_credentials(bundle, Path(key).read_bytes(), Path(cert).read_bytes())
        channel = grpc.aio.secure_channel(listen, credentials, options=channel_options(node_id))
        channels.append(channel)
        stub = subscription_pb2_grpc.SubscriptionServiceStub(channel)
        subscribers += [Subscriber(stub, S.Subscription.FromString(raw)) for raw in subs]
    events = [asyncio.Event() for _ in subscribers]
    tasks = [
        asyncio.create_task(s.run(expected[s.sub.subscription_id], e)) for s, e in zip(subscribers, events, strict=True)
    ]
    conn.send(("ready",))
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout)
    finally:
        for channel in channels:
            await channel.close()
    return subscribers


def _receiver_process(conn, listen, node_id, bundle, agencies, expected, timeout) -> None:
    """The subscribers, in a process of their own (the ingest client's work does not hold up their reads)."""
    try:
        subs = asyncio.run(_receive_all(listen, node_id, bundle, agencies, expected, conn, timeout))
        conn.send(("done", [d for x in subs for d in x.delays_ms], [d for x in subs for d in x.server_ms]))
    except BaseException as exc:  # reported by the parent
        conn.send(("error", repr(exc)))


def _register(terminal, rows: list, chunk: int) -> None:
    reply = terminal.register(rows, chunk_size=chunk)
    if reply.refused or reply.stored != len(rows):
        raise SystemExit(
            f"{reply.stored} stored, {len(reply.refused)} refused of {len(rows)} rows: {sorted(reply.refused)[:3]}"
        )


def _relocated(record: identity_pb2.IdentityRecord) -> identity_pb2.IdentityRecord:
    """A 転居 of ``record`` within its municipality, dated today."""
    moved = identity_pb2.IdentityRecord()
    moved.CopyFrom(record)
    today = datetime.date.today()
    moved.change_reason = identity_pb2.CHANGE_REASON_RELOCATION
    moved.change_date.CopyFrom(identity_pb2.Date(year=today.year, month=today.month, day=today.day))
    moved.address.text = f"中野五丁目{record.resident_code[-4:]}番"
    return moved


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000, help="residents changed (codes) or registered")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--agencies", type=int, default=25, help="agencies the subscriptions are spread over")
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--target", choices=("codes", "municipality"), default="codes")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    parser.add_argument("--keep", type=Path, help="state directory to keep (node logs) instead of a temporary one")
    args = parser.parse_args()

    rng = random.Random(7)
    new = {p: [synthetic_resident(rng, p) for _ in range(args.records)] for p in ("131148", "131016")}
    if len({row_digest(r) for rs in new.values() for r in rs}) != 2 * args.records:
        raise SystemExit("identical residents generated; change the seed")
    with benchmark_network(args.keep, _topology(args.agencies)) as (net, _worker, terminals):
        from jukinet.devnet.access import push_client

        loads: dict[str, list[identity_pb2.IdentityRecord]]
        if args.target == "codes":
            population = new["131148"]
            _register(terminals["cs:131148"], population, args.chunk)  # codes written back
            while terminals["national"].status().records < len(population):  # the subscriptions start after them
                time.sleep(0.1)
            slices = [[r.resident_code for r in population[i :: args.subscribers]] for i in range(args.subscribers)]
            loads = {"131148": [_relocated(r) for r in population], "131016": new["131016"]}
        else:
            slices = [[] for _ in range(args.subscribers)]
            loads = {"131148": new["131148"]}
        subs_by_agency: dict[str, list[S.Subscription]] = {a.corporate_number: [] for a in net.topology.agencies}
        expected: dict[str, int] = {}
        numbers = list(subs_by_agency)
        for i in range(args.subscribers):
            number, client = numbers[i % len(numbers)], push_client(net, numbers[i % len(numbers)])
            if args.target == "codes":
                sub = client.subscribe(BUSINESS, S.PUSH_MODE_EVERY_CHANGE, resident_codes=slices[i])
                expected[sub.subscription_id] = len(slices[i])
            else:
                sub = client.subscribe(BUSINESS, S.PUSH_MODE_EVERY_CHANGE, municipality_codes=["131148"])
                expected[sub.subscription_id] = args.records
            subs_by_agency[number].append(sub)
        print(f"{args.subscribers} subscriptions over {len(numbers)} agencies ({args.target})", flush=True)

        result: dict[str, object] = {}
        national = net.topology.national
        agencies = [
            (str(net.agency(n).cert), str(net.agency(n).key), [x.SerializeToString() for x in subs])
            for n, subs in subs_by_agency.items()
        ]
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        receiver = context.Process(
            target=_receiver_process,
            args=(child, national.listen, str(national.node_id), bundle_path(net.pki_dir).read_bytes(), agencies,
                  expected, args.timeout),
        )  # fmt: skip
        receiver.start()
        if parent.recv()[0] != "ready":
            raise SystemExit("the subscribers did not start")
        time.sleep(1.0)  # the streams are open
        start = time.perf_counter()

        def ingest(place: str) -> None:
            try:
                _register(terminals[f"cs:{place}"], loads[place], args.chunk)
            except SystemExit as exc:
                result["error"] = exc

        loaders = [threading.Thread(target=ingest, args=(p,)) for p in loads]
        for loader in loaders:
            loader.start()
        for loader in loaders:
            loader.join()
        registered = time.perf_counter() - start
        print(f"ingest: {sum(map(len, loads.values()))} rows in {registered:.2f}s", flush=True)
        outcome = parent.recv()
        receiver.join()
        elapsed = time.perf_counter() - start
        if "error" in result or outcome[0] != "done":
            raise SystemExit(f"push bench failed: {result.get('error', outcome)!r}")
        _, delays, server = outcome
        provisions = terminals["national"].status().provisions
    print(
        f"{len(delays)} events in {elapsed:.2f}s; delay p50 {_percentile(delays, 0.5):.0f} ms, "
        f"p99 {_percentile(delays, 0.99):.0f} ms, max {max(delays):.0f} ms; {provisions} provision entries",
        flush=True,
    )
    out = {
        "bench": "push",
        "subscribers": args.subscribers,
        "events": len(delays),
        "events_per_s": round(len(delays) / elapsed),
        "p99_delay_ms": round(_percentile(delays, 0.99)),
        "p50_delay_ms": round(_percentile(delays, 0.5)),
        "server_p99_ms": round(_percentile(server, 0.99)),
        "target": args.target,
        "ingest_rows": sum(map(len, loads.values())),
        "ingest_seconds": round(registered, 3),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
