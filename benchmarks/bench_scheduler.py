"""Scheduler allocation latency and throughput with 100, 1,000 and 10,000 GPUs registered.

Two figures per pool size:
  core  - SchedulerState.allocate() in process: placement over the numpy index + the SQLite (WAL)
          write-through commit. This is the scheduler's own cost per allocation.
  rpc   - Allocate over gRPC on loopback against `python -m tfscheduler` in its own process (grpc.aio on
          uvloop), blocking client: what a client sees, one request at a time.
  rpc-c - allocations/s with 64 requests in flight from an async client.
The pool is pre-loaded to ~50% of its GPUs holding an allocation, so placement scans a mixed pool.
Usage: .venv/bin/python benchmarks/bench_scheduler.py [--sizes 100,1000,10000] [--n 2000]

--store etcd|both: the same core and rpc figures with the state in etcd (a single etcd member started here on
loopback, temporary data dir, its default fsync on; the scheduler as one elected replica), side by side with SQLite,
then failover: --kills (default 10) kill -9 of the leader of three replicas, median and max seconds until a call is
served again (bench_failover.py; --kills 0 skips it).
"""
import argparse
import asyncio
import os
import sys
import tempfile
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import uvloop  # noqa: E402

from tfclient.scheduler_client import AsyncSchedulerClient, SchedulerClient  # noqa: E402
from tfscheduler.state import Config, SchedulerState  # noqa: E402
from tfscheduler.storage import SqliteStore  # noqa: E402

GPUS_PER_NODE = 8


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class _Gpu:
    def __init__(self, node, i):
        self.index, self.uuid, self.model, self.vendor = i, f"GPU-{node}-{i}", "NVIDIA H100 80GB HBM3", "nvidia"
        self.vram_mib, self.tflops = 81559, 989.4


def populate(state, n_gpus):
    for n in range(n_gpus // GPUS_PER_NODE):
        state.register_worker(f"node-{n:05d}", "bench", [_Gpu(n, i) for i in range(GPUS_PER_NODE)],
                              unix_path=f"/run/tf/{n}.sock")
    for _ in range(n_gpus // 2):                           # half the GPUs get a tenant
        state.allocate(100.0, 8192, lease_ttl_s=3600)


def bench_core(state, n):
    """-> (wall latencies, CPU-time latencies, total wall time). CPU time (this thread's) shows the
    scheduler's own work; wall time also holds whatever the neighbours on a shared host take."""
    lat, cpu = [], []
    t0 = time.perf_counter()
    for _ in range(n):
        c, s = time.thread_time(), time.perf_counter()
        g = state.allocate(10.0, 1024, lease_ttl_s=3600)
        lat.append(time.perf_counter() - s)
        cpu.append(time.thread_time() - c)
        state.release(g.alloc.id)                          # keep the pool's shape steady
    return lat, cpu, time.perf_counter() - t0


def bench_preempt(tmp, size, n):
    """HIGH requests into a pool whose every GPU is full of LOW allocations: each one preempts."""
    state = SchedulerState(SqliteStore(os.path.join(tmp, "preempt.db")), b"bench", Config(lease_ttl_s=3600))
    for node in range(size // GPUS_PER_NODE):
        state.register_worker(f"node-{node:05d}", "bench", [_Gpu(node, i) for i in range(GPUS_PER_NODE)])
    n_gpus = size // GPUS_PER_NODE * GPUS_PER_NODE
    for _ in range(n_gpus):
        state.allocate(989.4, 81559, qos=1, lease_ttl_s=3600)
    lat = []
    for _ in range(min(n, n_gpus)):
        s = time.perf_counter()
        g = state.allocate(500.0, 40000, qos=3, lease_ttl_s=3600)
        lat.append(time.perf_counter() - s)
        assert len(g.closes) == 1
    state.store.close()
    return lat


def bench_rpc(address, n):
    lat = []
    with SchedulerClient(address) as c:
        t0 = time.perf_counter()
        for _ in range(n):
            s = time.perf_counter()
            a = c.allocate(tflops=10, vram=1024, lease_ttl=3600)
            lat.append(time.perf_counter() - s)
            c.release(a.id)
        return lat, time.perf_counter() - t0


def bench_rpc_floor(address, n):
    """The smallest RPC (Heartbeat of an unknown worker): gRPC's own round-trip cost on this host."""
    lat = []
    with SchedulerClient(address) as c:
        for _ in range(n):
            s = time.perf_counter()
            c.heartbeat("nobody")
            lat.append(time.perf_counter() - s)
    return lat


def bench_rpc_concurrent(address, n, inflight=64):
    async def run():
        async with AsyncSchedulerClient(address, timeout=60) as c:
            sem = asyncio.Semaphore(inflight)

            async def one():
                async with sem:
                    await c.allocate(tflops=1, vram=64, lease_ttl=3600)
            t0 = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            return time.perf_counter() - t0
    return uvloop.run(run())


def start_process(tmp, store=None, prefix=None):
    secret = os.path.join(tmp, "secret")
    with open(secret, "w") as f:
        f.write("bench")
    token_file = os.path.join(tmp, "admin.token")
    where = ["--store", store, "--etcd-prefix", prefix] if store else ["--db", os.path.join(tmp, "rpc.db")]
    proc = subprocess.Popen([sys.executable, "-m", "tfscheduler", "--listen", "127.0.0.1:0", *where,
                             "--secret-file", secret, "--lease-ttl", "3600", "--node-timeout", "3600",
                             "--tick", "60", "--log-level", "WARNING", "--admin-token-file", token_file],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    address = proc.stdout.readline().split()[-1]
    with open(token_file) as f:
        os.environ["TF_TOKEN"] = f.read().strip()     # every call is authenticated (the bench is the admin)
    return proc, address


def populate_rpc(address, n_gpus):
    with SchedulerClient(address, timeout=60) as c:
        for n in range(n_gpus // GPUS_PER_NODE):
            c.register_worker(f"node-{n:05d}", "bench", [_Gpu(n, i).__dict__ for i in range(GPUS_PER_NODE)],
                              unix_path=f"/run/tf/{n}.sock")
        for _ in range(n_gpus // 2):
            c.allocate(tflops=100, vram=8192, lease_ttl=3600)


def start_etcd(tmp):
    """A single-member etcd on free loopback ports. -> (process, "etcd://127.0.0.1:PORT")."""
    import shutil
    import socket
    socks = [socket.socket() for _ in range(2)]
    for so in socks:
        so.bind(("127.0.0.1", 0))
    cport, pport = (so.getsockname()[1] for so in socks)
    for so in socks:
        so.close()
    log = open(os.path.join(tmp, "etcd.log"), "ab")
    proc = subprocess.Popen([shutil.which("etcd") or "etcd", "--data-dir", os.path.join(tmp, "etcd.data"),
                             "--listen-client-urls", f"http://127.0.0.1:{cport}",
                             "--advertise-client-urls", f"http://127.0.0.1:{cport}",
                             "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
                             "--initial-cluster", f"default=http://127.0.0.1:{pport}"], stdout=log, stderr=log)
    from tfscheduler.etcd_store import EtcdClient, wait_ready
    c = EtcdClient([f"127.0.0.1:{cport}"])
    wait_ready(c, 20)
    c.close()
    return proc, f"etcd://127.0.0.1:{cport}"


def bench_store(store, sizes, n):
    """Core and RPC figures per size with the state in etcd (store = its URL) -> rows for the side-by-side table."""
    from tfscheduler.etcd_store import EtcdStore
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            state = SchedulerState(EtcdStore.from_url(store, prefix=f"/bench-core-{size}/"), b"bench",
                                   Config(lease_ttl_s=3600))
            populate(state, size)
            core_lat, _, core_t = bench_core(state, n)
            state.store.close()
            proc, address = start_process(tmp, store=store, prefix=f"/bench-rpc-{size}/")
            try:
                populate_rpc(address, size)
                rpc_lat, _ = bench_rpc(address, n)
                conc_t = bench_rpc_concurrent(address, n)
            finally:
                proc.terminate()
                proc.wait(10)
        rows.append((size, core_lat, core_t, rpc_lat, conc_t))
        print(f"etcd {size:>6} GPUs: core p50 {pct(core_lat, 50) * 1e3:.3f} ms p99 {pct(core_lat, 99) * 1e3:.3f} ms "
              f"{n / core_t:,.0f} alloc+release/s | rpc p50 {pct(rpc_lat, 50) * 1e3:.3f} ms p99 "
              f"{pct(rpc_lat, 99) * 1e3:.3f} ms | rpc 64 in flight {n / conc_t:,.0f} alloc/s", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--n", type=int, default=2000, help="allocations measured per size")
    ap.add_argument("--store", default="sqlite", choices=["sqlite", "etcd", "both"],
                    help="where the scheduler keeps its state (both: side by side)")
    ap.add_argument("--kills", type=int, default=10, help="with etcd: leader kills for the failover figures")
    ap.add_argument("--leader-ttl", type=int, default=3, help="with etcd: --leader-ttl of the failover replicas")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.store in ("etcd", "both"):
        with tempfile.TemporaryDirectory() as etmp:
            eproc, url = start_etcd(etmp)
            try:
                etcd_rows = bench_store(url, sizes, args.n)
            finally:
                eproc.kill()
                eproc.wait()
        if args.store == "etcd":
            print_side_by_side(etcd_rows, None, args.n)
            print_failover(args.kills, args.leader_ttl)
            return
    rows = []
    ms = lambda x: f"{x * 1e3:.3f}"  # noqa: E731
    sqlite_rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            state = SchedulerState(SqliteStore(os.path.join(tmp, "core.db")), b"bench", Config(lease_ttl_s=3600))
            populate(state, size)
            core_lat, core_cpu, core_t = bench_core(state, args.n)
            state.store.close()
            pre = bench_preempt(tmp, size, min(args.n, 500))
            proc, address = start_process(tmp)
            try:
                populate_rpc(address, size)
                rpc_lat, rpc_t = bench_rpc(address, args.n)
                conc_t = bench_rpc_concurrent(address, args.n)
                floor = bench_rpc_floor(address, args.n)
            finally:
                proc.terminate()
                proc.wait(10)
        load = os.getloadavg()[0]
        rows.append((size, core_lat, core_t, rpc_lat, rpc_t, conc_t, floor, core_cpu, load, pre))
        sqlite_rows.append((size, core_lat, core_t, rpc_lat, conc_t))
        print(f"{size:>6} GPUs: core p50 {ms(pct(core_lat, 50))} ms p99 {ms(pct(core_lat, 99))} ms "
              f"(CPU p50 {ms(pct(core_cpu, 50))} p99 {ms(pct(core_cpu, 99))}) "
              f"preempting p50 {ms(pct(pre, 50))} p99 {ms(pct(pre, 99))} ms "
              f"{args.n / core_t:,.0f} alloc+release/s | rpc p50 {ms(pct(rpc_lat, 50))} ms p99 {ms(pct(rpc_lat, 99))} ms "
              f"| rpc 64 in flight {args.n / conc_t:,.0f} alloc/s | empty-RPC floor p50 {ms(pct(floor, 50))} ms "
              f"p99 {ms(pct(floor, 99))} ms | load avg {load:.1f} on {os.cpu_count()} CPUs", flush=True)
    print("\n| GPUs | core p50 / p99 wall (ms) | core p50 / p99 CPU (ms) | core alloc+release/s | RPC p50 (ms) | "
          "RPC p99 (ms) | RPC allocs/s (64 in flight) | empty RPC p50 / p99 (ms) | preempting alloc p50 / p99 (ms) | "
          "load avg |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, cl, ct, rl, rt, conc, fl, cc, la, pre in rows:
        print(f"| {size:,} | {pct(cl, 50) * 1e3:.3f} / {pct(cl, 99) * 1e3:.3f} | "
              f"{pct(cc, 50) * 1e3:.3f} / {pct(cc, 99) * 1e3:.3f} | {args.n / ct:,.0f} | "
              f"{pct(rl, 50) * 1e3:.3f} | {pct(rl, 99) * 1e3:.3f} | {args.n / conc:,.0f} | "
              f"{pct(fl, 50) * 1e3:.3f} / {pct(fl, 99) * 1e3:.3f} | {pct(pre, 50) * 1e3:.3f} / "
              f"{pct(pre, 99) * 1e3:.3f} | {la:.1f} |")


    if args.store == "both":
        print_side_by_side(etcd_rows, sqlite_rows, args.n)
        print_failover(args.kills, args.leader_ttl)


def print_failover(kills: int, ttl: int) -> None:
    if kills <= 0:
        return
    import statistics
    sys.path[:0] = [os.path.join(REPO, "tests", "scheduler"), os.path.join(REPO, "benchmarks")]
    from bench_failover import measure
    gaps = measure(kills, ttl)
    print(f"\nfailover (three replicas, leader TTL {ttl} s): kill -9 of the leader -> first call served again, "
          f"over {len(gaps)} kills: median {statistics.median(gaps):.2f} s, max {max(gaps):.2f} s")


def print_side_by_side(etcd_rows, sqlite_rows, n):
    print("\n| store | GPUs | core p50 / p99 (ms) | core alloc+release/s | RPC p50 / p99 (ms) | "
          "RPC allocs/s (64 in flight) |")
    print("|---|---:|---:|---:|---:|---:|")
    pairs = [(r, "sqlite") for r in sqlite_rows or []] + [(r, "etcd") for r in etcd_rows]
    pairs.sort(key=lambda x: (x[0][0], x[1] != "sqlite"))
    for (size, cl, ct, rl, conc), name in pairs:
        print(f"| {name} | {size:,} | {pct(cl, 50) * 1e3:.3f} / {pct(cl, 99) * 1e3:.3f} | {n / ct:,.0f} | "
              f"{pct(rl, 50) * 1e3:.3f} / {pct(rl, 99) * 1e3:.3f} | {n / conc:,.0f} |")


if __name__ == "__main__":
    main()
