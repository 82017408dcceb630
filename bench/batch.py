"""Batch: agency lookups (定期照会) through ONE BatchLookup stream against a national store of --population.

Writes --population residents (1 % of them 除票: died) straight into the national server's LMDB before any
node starts (large transactions, the storage classes the node uses), starts the network, then asks for
--records codes from one agency client over one stream in chunks of --chunk: residents in random order,
every 100th code one no resident holds, every 1000th a malformed one. Every answer is checked (status per
code; each record parsed: its code is the one asked, it holds no My Number — the row does not permit it —
and a removal says death). Meanwhile a separate process makes unary lookups every --probe-ms and reports
their latency (also idle, before the batch). The provision entries are counted at the national server
afterwards (must be at least the records provided). Then bench/raw_limits.py runs in the same session.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _network import benchmark_network

from jukinet.clients import BatchAnswer
from jukinet.devnet.access import agency_client
from jukinet.devnet.provision import Network, load_network
from jukinet.domain.bulk_redaction import record_projection
from jukinet.domain.codes import generate_my_number, generate_resident_code, is_valid_resident_code
from jukinet.domain.synthetic import synthetic_resident
from jukinet.storage import NodeStorage
from jukinet.v1 import identity_pb2, provision_pb2

BUSINESS = "pension-benefit"
WRITE_TXN = 50_000
S = provision_pb2


def log(msg: str) -> None:
    print(msg, flush=True)


def make_population(n: int, seed: int) -> tuple[list[str], set[str], list[bytes]]:
    """``n`` residents with unique codes and numbers: (codes, the removed ones, the encoded records)."""
    rng = random.Random(seed)
    templates = [synthetic_resident(rng, "131148") for _ in range(min(n, 5000))]
    codes: set[str] = set()
    numbers: set[str] = set()
    out_codes, removed, encoded = [], set(), []
    record = identity_pb2.IdentityRecord()
    while len(out_codes) < n:
        code, number = generate_resident_code(rng), generate_my_number(rng)
        if code in codes or number in numbers:
            continue
        codes.add(code)
        numbers.add(number)
        record.CopyFrom(templates[len(out_codes) % len(templates)])
        record.resident_code, record.my_number = code, number
        record.status = identity_pb2.RECORD_STATUS_ACTIVE
        if len(out_codes) % 100 == 7:
            record.status, record.change_reason = identity_pb2.RECORD_STATUS_REMOVED, identity_pb2.CHANGE_REASON_DEATH
            removed.add(code)
        out_codes.append(code)
        encoded.append(record.SerializeToString())
    return out_codes, removed, encoded


def fill_national(net: Network, codes: list[str], encoded: list[bytes]) -> None:
    storage = NodeStorage.open(net.node_dir(net.topology.national) / "data", map_size=4 << 30)
    try:
        record = identity_pb2.IdentityRecord()
        for start in range(0, len(codes), WRITE_TXN):

            def write(txn, start: int = start) -> None:
                for raw in encoded[start : start + WRITE_TXN]:
                    record.ParseFromString(raw)
                    storage.records.put(txn, record, None, raw)

            storage.env.write(write)
        # The national server builds its four-item search index from records stored before it existed, in
        # the background: built here, so that it does not run alongside the batch.
        from jukinet.domain.kana import fold_version
        from jukinet.server.national.search import IndexBuilder
        from jukinet.storage.search_index import FourItemsIndex

        builder = IndexBuilder(storage, FourItemsIndex(storage.env, fold_version()))
        if builder.needed():
            builder.run()
    finally:
        storage.close()


def ask_list(codes: list[str], records: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    order = codes[:]
    rng.shuffle(order)
    known = set(codes)
    asked = []
    for i in range(records):
        if i % 1000 == 999:
            asked.append(f"{i:011d}"[:-1] + "x")  # malformed
        elif i % 100 == 99:
            while (unknown := generate_resident_code(rng)) in known:
                pass
            asked.append(unknown)
        else:
            asked.append(order[i % len(order)])
    return asked


@dataclass(frozen=True)
class Expected:
    """What one chunk's answer must say, worked out from the population before the batch starts."""

    statuses: list[int]
    provided: list[str]  # the codes of the records it must hold, in order
    removed: int


def expectations(asked: list[str], chunk: int, removed: set[str], known: set[str]) -> list[Expected]:
    out = []
    for start in range(0, len(asked), chunk):
        statuses, provided, n_removed = [], [], 0
        for code in asked[start : start + chunk]:
            if code in known:
                provided.append(code)
                if code in removed:
                    statuses.append(S.BATCH_STATUS_REMOVED)
                    n_removed += 1
                else:
                    statuses.append(S.BATCH_STATUS_FOUND)
            else:
                statuses.append(S.BATCH_STATUS_NOT_FOUND if is_valid_resident_code(code) else S.BATCH_STATUS_INVALID)
        out.append(Expected(statuses, provided, n_removed))
    return out


def check(answer: BatchAnswer, expected: Expected) -> None:
    """Every status as expected; every record read (all of a chunk's in one parse, as a projection on the
    code and the My Number): the code asked, no My Number (the row does not permit it); every removal a
    death."""
    r = answer.response
    if list(r.statuses) != expected.statuses:
        raise SystemExit(f"chunk {r.chunk_id}: statuses differ from the expected ones")
    records = _CHECKED.FromString(r.SerializeToString()).records
    if len(records) != len(r.records):
        raise SystemExit(f"chunk {r.chunk_id}: records that do not parse")
    if list(map(_CODE, records)) != expected.provided or any(map(_NUMBER, records)):
        raise SystemExit(f"chunk {r.chunk_id}: records are not the ones asked for, or hold a My Number")
    if [x.reason for x in r.removals] != [identity_pb2.CHANGE_REASON_DEATH] * expected.removed:
        raise SystemExit(f"chunk {r.chunk_id}: removals without their reason")


_RECORDS = S.BatchLookupResponse.DESCRIPTOR.fields_by_name["records"].number
_CHECKED = record_projection(frozenset({"resident_code", "my_number"}), _RECORDS)
_CODE, _NUMBER = attrgetter("resident_code"), attrgetter("my_number")


def probe_main(state: str, corporate: str, code: str, interval: float, out, go, phase, stop) -> None:
    """Child process: unary lookups every ``interval`` s; latencies of the idle phase, then of the batch."""
    client = agency_client(load_network(Path(state)), corporate)
    client.by_resident_code(BUSINESS, code)  # connect
    results: dict[str, list[float]] = {"idle": [], "during": []}
    out.put("ready")
    go.wait()
    while not stop.is_set():
        t0 = time.perf_counter()
        client.by_resident_code(BUSINESS, code)
        results["during" if phase.is_set() else "idle"].append(time.perf_counter() - t0)
        time.sleep(max(0.0, interval - (time.perf_counter() - t0)))
    out.put(results)


def node_pid(net: Network) -> int:
    """The national node process (its command line names its node.toml)."""
    config = str(net.node_config(net.topology.national))
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if config in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    return int(entry.name)
            except OSError:
                continue
    raise SystemExit("the national node process was not found")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of a process (this one by default), from /proc."""
    fields = Path(f"/proc/{pid or 'self'}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu(pid: int) -> float:
    """User + system CPU of a process's children (the national server's reader processes), from /proc."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of a process (by thread id and name), from /proc."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        out[f"{task.name}:{name}:user"] = int(fields[11]) / tick
        out[f"{task.name}:{name}:sys"] = int(fields[12]) / tick
    return out


def percentiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    s = sorted(latencies)
    p = lambda q: round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 2)  # noqa: E731
    return {"n": len(s), "p50_ms": p(0.5), "p99_ms": p(0.99), "max_ms": round(s[-1] * 1000, 2)}


def raw_limits(extra: list[str]) -> dict:
    log("raw_limits: running bench/raw_limits.py in this session")
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent / "raw_limits.py"), *extra], capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"bench/raw_limits.py failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--population", type=int, default=1_000_000, help="residents in the national store")
    parser.add_argument("--records", type=int, default=1_000_000, help="codes asked through the one stream")
    parser.add_argument("--chunk", type=int, default=1000, help="codes per chunk")
    parser.add_argument("--probe-ms", type=float, default=20.0, help="interval of the unary lookups alongside")
    parser.add_argument("--idle-s", type=float, default=2.0, help="unary lookups measured before the batch")
    parser.add_argument("--warmup", type=int, default=20_000, help="codes asked before the measured batch")
    parser.add_argument("--profile", type=Path, help="write the client's cProfile statistics here")
    parser.add_argument("--no-raw-limits", action="store_true", help="skip bench/raw_limits.py (quick runs)")
    parser.add_argument("--raw-limits-args", default="", help="arguments for bench/raw_limits.py")
    args = parser.parse_args()

    t0 = time.perf_counter()
    codes, removed, encoded = make_population(args.population, 7)
    log(f"{len(codes)} residents made in {time.perf_counter() - t0:.1f}s ({len(removed)} 除票)")
    asked = ask_list(codes, args.records, 8)
    known = set(codes)

    def fill(net: Network) -> None:
        t = time.perf_counter()
        fill_national(net, codes, encoded)
        log(f"national store filled in {time.perf_counter() - t:.1f}s")

    expected = expectations(asked, args.chunk, removed, known)
    tally = {
        "found": sum(len(e.provided) - e.removed for e in expected),
        "removed": sum(e.removed for e in expected),
        "not_found": sum(e.statuses.count(S.BATCH_STATUS_NOT_FOUND) for e in expected),
        "invalid": sum(e.statuses.count(S.BATCH_STATUS_INVALID) for e in expected),
    }
    with benchmark_network(before_start=fill) as (net, _worker, terminals):
        encoded.clear()
        national = terminals["national"]
        corporate = net.topology.agencies[0].corporate_number
        ctx = mp.get_context("spawn")
        out, go, phase, stop = ctx.Queue(), ctx.Event(), ctx.Event(), ctx.Event()
        probe_args = (str(net.state), corporate, codes[0], args.probe_ms / 1000, out, go, phase, stop)
        prober = ctx.Process(target=probe_main, args=probe_args)
        prober.start()
        assert out.get(timeout=120) == "ready"
        client = agency_client(net, corporate)
        # Warm-up, not measured: the national server starts its reader processes (and the one that hashes
        # the provision log) at the first batch chunk and the first long run of provisions.
        for _ in client.batch_lookup(BUSINESS, codes[: args.warmup], chunk=args.chunk):
            pass
        time.sleep(1.0)
        before = national.status().provisions
        go.set()
        time.sleep(args.idle_s)
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        server = node_pid(net)
        server_cpu, client_cpu, threads = cpu_seconds(server), cpu_seconds(), thread_cpu(server)
        readers_cpu = children_cpu(server)
        phase.set()
        start = time.perf_counter()
        chunks = 0
        for answer in client.batch_lookup(BUSINESS, asked, chunk=args.chunk):
            check(answer, expected[chunks])
            chunks += 1
        elapsed = time.perf_counter() - start
        server_cpu, client_cpu = cpu_seconds(server) - server_cpu, cpu_seconds() - client_cpu
        readers_cpu = children_cpu(server) - readers_cpu
        busy = {t: round(c - threads.get(t, 0.0), 2) for t, c in thread_cpu(server).items()}
        log(f"server CPU by thread: { {t: c for t, c in busy.items() if c >= 0.05} }")
        stop.set()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        probes = out.get(timeout=60)
        prober.join()
        logged = national.status().provisions - before - len(probes["idle"]) - len(probes["during"])
    provided = tally["found"] + tally["removed"]
    answered = sum(tally.values())
    if chunks != len(expected):
        raise SystemExit(f"{chunks} of {len(expected)} chunks answered")
    if logged < provided:
        raise SystemExit(f"{logged} batch provision entries for {provided} records provided")
    log(
        f"{answered} codes in {chunks} chunks through one stream in {elapsed:.2f}s: {tally}; "
        f"batch provision entries logged: {logged}"
    )
    result = {
        "bench": "batch",
        "records": answered,
        "records_per_s": round(answered / elapsed),
        "provided": provided,
        "provision_log_entries": logged,
        "population": len(codes),
        "chunk": args.chunk,
        "seconds": round(elapsed, 2),
        "server_cpu_s": round(server_cpu, 2),
        "client_cpu_s": round(client_cpu, 2),
        "server_readers_cpu_s": round(readers_cpu, 2),
        "unary_idle": percentiles(probes["idle"]),
        "unary_during_batch": percentiles(probes["during"]),
    }
    if not args.no_raw_limits:
        result["raw_limits"] = raw_limits(args.raw_limits_args.split())
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
