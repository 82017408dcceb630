"""Raw limits of the stack on this machine: the ceilings the product benchmarks are compared with.

Measures, each on its own (the parts run one after another so they do not compete for cores):

1. gRPC over mutual TLS on 127.0.0.1, server in a child process:
   - server streaming of RegisterResidentsRequest messages packing --pack IdentityRecords each, parsed by
     the client (records/s); the server serializes every message, as a product server would;
   - the same with one record per message (messages/s);
   - unary round trips from one client with a trivial RPC (calls/s).
2. LMDB (sync=True, metasync=True, as jukinet.storage opens it): random gets from a --lmdb-entries db of
   serialized IdentityRecords, puts with one synced commit each, and puts batched --lmdb-batch per commit.
3. ECDSA P-256 signing in a SoftHSM token (child process, as SoftHSM reads its config once per process):
   single sign() calls from one thread, and sign_batch() of --sign-batch items.

Runs with no arguments in a temporary directory that is removed afterwards. Prints progress lines and, as
its last line, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MUNICIPALITY = "131148"
MAX_MESSAGE = 32 * 1024 * 1024
STREAM_METHOD = "/bench.Raw/Stream"
UNARY_METHOD = "/bench.Raw/Ping"
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
]


def log(msg: str) -> None:
    print(msg, flush=True)


def make_records(n: int, seed: int = 1) -> list[Any]:
    from jukinet.domain.synthetic import synthetic_resident

    rng = random.Random(seed)
    return [synthetic_resident(rng, MUNICIPALITY, numbered=True) for _ in range(n)]


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def rounded(x: float) -> float | int:
    """Three significant figures: enough for a ceiling, without noise digits."""
    if x <= 0:
        return 0
    if x >= 100:
        digits = len(str(int(x)))
        return int(round(x, 3 - digits))
    return round(x, 1)


# -- 1. gRPC over mTLS -----------------------------------------------------------------------------------


def _encode_stream_request(messages: int, per_message: int) -> bytes:
    return f"{messages} {per_message}".encode()


def grpc_server_main(cert: str, key: str, bundle: str, pack: int, conn: Any, stop: Any) -> None:
    """Child process: serve the bench methods over mTLS on 127.0.0.1 until `stop` is set."""
    from concurrent import futures

    import grpc

    from jukinet.v1 import registry_pb2

    records = make_records(pack)
    packed = {pack: registry_pb2.RegisterResidentsRequest(records=records)}

    def message_for(per_message: int) -> Any:
        if per_message not in packed:
            packed[per_message] = registry_pb2.RegisterResidentsRequest(
                records=(records * (per_message // len(records) + 1))[:per_message]
            )
        return packed[per_message]

    def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[Any]:
        messages, per_message = (int(x) for x in request.split())
        msg = message_for(per_message)
        for _ in range(messages):
            if not context.is_active():
                return
            yield msg

    def ping(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "bench.Raw",
        {
            "Stream": grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=None,
                response_serializer=registry_pb2.RegisterResidentsRequest.SerializeToString,
            ),
            "Ping": grpc.unary_unary_rpc_method_handler(ping),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=GRPC_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials(
        [(Path(key).read_bytes(), Path(cert).read_bytes())],
        root_certificates=Path(bundle).read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    conn.send(port)
    conn.close()
    stop.wait()
    server.stop(grace=0).wait()


def _stream_run(call: Callable[..., Any], messages: int, per_message: int, cap_s: float) -> tuple[int, int, float]:
    """One server stream; returns (records parsed, messages, seconds). Cancelled after cap_s seconds."""
    got_records = got_msgs = 0
    t0 = time.perf_counter()
    responses = call(_encode_stream_request(messages, per_message), timeout=cap_s + 60)
    for msg in responses:  # the deserializer parses every message
        got_records += len(msg.records)
        got_msgs += 1
        if time.perf_counter() - t0 > cap_s:
            responses.cancel()
            break
    return got_records, got_msgs, time.perf_counter() - t0


def bench_grpc(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    import grpc

    from jukinet.domain.node_ids import NodeId
    from jukinet.pki import init_pki, issue_tls_certificate
    from jukinet.v1 import registry_pb2

    pki_dir, tls_dir = tmp / "pki", tmp / "tls"
    pki_dir.mkdir()
    tls_dir.mkdir()
    init_pki(pki_dir)
    cert, key = issue_tls_certificate(pki_dir, "node", ["national"], tls_dir)
    bundle = pki_dir / "trust-bundle.pem"

    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    stop = ctx.Event()
    proc = ctx.Process(
        target=grpc_server_main,
        args=(str(cert), str(key), str(bundle), args.pack, child_conn, stop),
        name="raw-grpc-server",
    )
    proc.start()
    child_conn.close()
    results: dict[str, float] = {}
    channel = None
    try:
        if not parent_conn.poll(60):
            raise RuntimeError("gRPC server child did not report its port within 60 s")
        port = parent_conn.recv()
        creds = grpc.ssl_channel_credentials(
            root_certificates=bundle.read_bytes(),
            private_key=key.read_bytes(),
            certificate_chain=cert.read_bytes(),
        )
        options = [*GRPC_OPTIONS, ("grpc.ssl_target_name_override", NodeId.national().tls_name)]
        channel = grpc.secure_channel(f"127.0.0.1:{port}", creds, options=options)
        grpc.channel_ready_future(channel).result(timeout=30)
        stream = channel.unary_stream(
            STREAM_METHOD,
            request_serializer=None,
            response_deserializer=registry_pb2.RegisterResidentsRequest.FromString,
        )
        ping = channel.unary_unary(UNARY_METHOD)
        log(f"grpc: mTLS server child pid {proc.pid} on 127.0.0.1:{port}")

        _stream_run(stream, 20, args.pack, args.stream_cap)  # warm-up: handshake, windows, code paths
        msgs = max(1, args.records // args.pack)
        recs, n, dt = _stream_run(stream, msgs, args.pack, args.stream_cap)
        results["stream_records_per_s"] = rate(recs, dt)
        log(
            f"grpc: packed stream  {recs:,} records in {n:,} messages of {args.pack:,} in {dt:.2f} s "
            f"= {rate(recs, dt):,.0f} records/s ({rate(n, dt):,.1f} msgs/s)"
        )

        _stream_run(stream, 1000, 1, args.stream_cap)
        recs, n, dt = _stream_run(stream, args.single_records, 1, args.stream_cap)
        results["stream_msgs_per_s"] = rate(n, dt)
        log(f"grpc: 1-record stream {n:,} messages in {dt:.2f} s = {rate(n, dt):,.0f} msgs/s")

        for _ in range(200):
            ping(b"x", timeout=10)
        calls = 0
        t0 = time.perf_counter()
        deadline = t0 + args.seconds
        while True:
            ping(b"x", timeout=10)
            calls += 1
            if calls % 50 == 0 and time.perf_counter() >= deadline:
                break
        dt = time.perf_counter() - t0
        results["unary_calls_per_s"] = rate(calls, dt)
        log(f"grpc: unary          {calls:,} calls in {dt:.2f} s = {rate(calls, dt):,.0f} calls/s")
    finally:
        if channel is not None:
            channel.close()
        stop.set()
        proc.join(15)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    return results


# -- 2. LMDB ---------------------------------------------------------------------------------------------


def _open_lmdb(path: Path) -> Any:
    import lmdb

    path.mkdir()
    return lmdb.open(str(path), map_size=4 << 30, max_dbs=4, sync=True, metasync=True, readahead=False, max_readers=256)


def _timed_puts(env: Any, db: Any, values: list[bytes], per_commit: int, seconds: float) -> tuple[int, float]:
    """Puts of fresh random keys, `per_commit` per write transaction, for about `seconds`."""
    rng = random.Random(7)
    puts = 0
    nv = len(values)
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        with env.begin(write=True, db=db) as txn:
            for _ in range(per_commit):
                txn.put(b"9%010d" % rng.randrange(10**10), values[puts % nv])
                puts += 1
        if time.perf_counter() >= deadline:
            break
    return puts, time.perf_counter() - t0


def bench_lmdb(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    records = make_records(args.lmdb_entries, seed=2)
    items = sorted({r.resident_code.encode(): r.SerializeToString() for r in records}.items())
    values = [v for _, v in items]
    avg = sum(map(len, values)) / len(values)
    env = _open_lmdb(tmp / "lmdb")
    results: dict[str, float] = {}
    try:
        db = env.open_db(b"records")
        t0 = time.perf_counter()
        with env.begin(write=True, db=db) as txn:
            cursor = txn.cursor()
            cursor.putmulti(items, append=True)
        log(
            f"lmdb: loaded {len(items):,} records (avg value {avg:.0f} B) in one commit "
            f"in {time.perf_counter() - t0:.2f} s"
        )

        keys = [k for k, _ in items]
        rng = random.Random(3)
        probe = [rng.choice(keys) for _ in range(args.lmdb_gets)]
        size = 0
        t0 = time.perf_counter()
        for i in range(0, len(probe), 1000):
            with env.begin(db=db, buffers=False) as txn:
                get = txn.get
                for k in probe[i : i + 1000]:
                    size += len(get(k))
        dt = time.perf_counter() - t0
        results["lmdb_get_per_s"] = rate(len(probe), dt)
        log(
            f"lmdb: random get     {len(probe):,} gets (1,000 per read txn) in {dt:.2f} s "
            f"= {rate(len(probe), dt):,.0f} gets/s"
        )
        if size <= 0:
            raise RuntimeError("lmdb gets returned nothing")

        puts, dt = _timed_puts(env, db, values, 1, args.seconds)
        results["lmdb_synced_put_per_s"] = rate(puts, dt)
        log(f"lmdb: synced put     {puts:,} puts, one commit each, in {dt:.2f} s = {rate(puts, dt):,.0f} puts/s")

        puts, dt = _timed_puts(env, db, values, args.lmdb_batch, args.seconds)
        results["lmdb_batched_put_per_s"] = rate(puts, dt)
        log(
            f"lmdb: batched put    {puts:,} puts, {args.lmdb_batch:,} per commit, in {dt:.2f} s "
            f"= {rate(puts, dt):,.0f} puts/s"
        )
    finally:
        env.close()
    return results


# -- 3. Token signing ------------------------------------------------------------------------------------


def token_child_main(hsm_dir: str, seconds: float, batch: int, conn: Any) -> None:
    """Child process: SoftHSM is loaded here first, with this run's config."""
    try:
        from jukinet.hsm import (
            SoftHsmConfig,
            TokenSigner,
            TokenWorker,
            find_softhsm_module,
            init_token,
            provision_signing_key,
        )

        cfg = SoftHsmConfig.create(Path(hsm_dir))
        worker = TokenWorker(find_softhsm_module(), cfg.conf_path)
        init_token(worker, "bench", "1234", "5678")
        provision_signing_key(worker, "bench", "1234", "signing")
        data = [r.SerializeToString() for r in make_records(batch, seed=4)]
        out: dict[str, Any] = {}
        with worker, TokenSigner(worker, "bench", "1234", "signing") as signer:
            for d in data[:50]:  # warm-up
                if len(signer.sign(d)) != 64:
                    raise RuntimeError("unexpected signature length")
            n = 0
            t0 = time.perf_counter()
            deadline = t0 + seconds
            while True:
                signer.sign(data[n % batch])
                n += 1
                if n % 20 == 0 and time.perf_counter() >= deadline:
                    break
            out["single"] = (n, time.perf_counter() - t0)

            n = 0
            t0 = time.perf_counter()
            deadline = t0 + seconds
            while True:
                sigs = signer.sign_batch(data)
                n += len(sigs)
                if time.perf_counter() >= deadline:
                    break
            out["batch"] = (n, time.perf_counter() - t0)
        conn.send(("ok", out))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        conn.close()


def bench_token(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    hsm_dir = tmp / "softhsm"
    proc = ctx.Process(
        target=token_child_main,
        args=(str(hsm_dir), args.seconds, args.sign_batch, child_conn),
        name="raw-token-signer",
    )
    proc.start()
    child_conn.close()
    try:
        if not parent_conn.poll(args.seconds * 2 + 120):
            raise RuntimeError("token child did not report")
        status, payload = parent_conn.recv()
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    if status != "ok":
        raise RuntimeError(f"token child failed: {payload}")
    n, dt = payload["single"]
    log(f"token: sign()        {n:,} signatures from one thread in {dt:.2f} s = {rate(n, dt):,.0f} sig/s")
    nb, dtb = payload["batch"]
    log(
        f"token: sign_batch()  {nb:,} signatures in batches of {args.sign_batch:,} in {dtb:.2f} s "
        f"= {rate(nb, dtb):,.0f} sig/s"
    )
    return {"token_sign_per_s": rate(n, dt), "token_sign_batch_per_s": rate(nb, dtb)}


# -- main ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--records", type=int, default=2_000_000, help="records in the packed stream")
    p.add_argument("--pack", type=int, default=1000, help="records per packed message")
    p.add_argument("--single-records", type=int, default=30_000, help="messages in the 1-record stream")
    p.add_argument("--stream-cap", type=float, default=6.0, help="cancel a stream after this many seconds")
    p.add_argument("--seconds", type=float, default=2.0, help="duration of each timed measurement")
    p.add_argument("--lmdb-entries", type=int, default=100_000, help="records in the LMDB db")
    p.add_argument("--lmdb-gets", type=int, default=100_000, help="random gets")
    p.add_argument("--lmdb-batch", type=int, default=1000, help="puts per commit, batched")
    p.add_argument("--sign-batch", type=int, default=500, help="items per sign_batch() call")
    p.add_argument("--tmp", type=Path, default=None, help="parent of the temporary directory")
    args = p.parse_args(argv)
    counts = ("records", "pack", "single_records", "lmdb_entries", "lmdb_gets", "lmdb_batch", "sign_batch")
    for name in counts:
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.seconds <= 0 or args.stream_cap <= 0:
        p.error("--seconds and --stream-cap must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    log(f"raw_limits: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, pid {os.getpid()}")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="jukinet-raw-limits-", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        results.update(bench_grpc(args, tmp))
        results.update(bench_lmdb(args, tmp))
        results.update(bench_token(args, tmp))
    log(f"raw_limits: done in {time.perf_counter() - started:.1f} s")
    order = (
        "stream_records_per_s",
        "stream_msgs_per_s",
        "lmdb_get_per_s",
        "lmdb_synced_put_per_s",
        "lmdb_batched_put_per_s",
        "token_sign_per_s",
        "token_sign_batch_per_s",
        "unary_calls_per_s",
    )
    out: dict[str, Any] = {"bench": "raw_limits"}
    out.update({k: rounded(results[k]) for k in order})
    print(json.dumps(out, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
