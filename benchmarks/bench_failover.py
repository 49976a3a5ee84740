"""Scheduler failover on etcd: kill -9 the leading replica N times (default 10) and measure how long until a call is
served again through the client's replica list, side by side with the leader lease TTL it is bounded by.

    .venv/bin/python benchmarks/bench_failover.py [--kills 10] [--ttl 3] [--write]

Three `python -m tfscheduler --store etcd://...` replicas on one local etcd (from the system package); after each kill
a fresh replica is started so three always compete. Measured: kill -> first ListPool answered through
SchedulerClient("a,b,c") with the dead leader first in the list (the client fails over by itself). --write records
median and max in benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "scheduler"), str(REPO / "benchmarks")]
from etcd_helpers import EtcdCluster, kill9, leader_of, start_scheduler  # noqa: E402
from results_md import write_section  # noqa: E402
from tfclient.scheduler_client import SchedulerClient  # noqa: E402


def measure(kills: int = 10, ttl: int = 3) -> list:
    """Kills the leading replica `kills` times -> seconds from each kill -9 to the first call served again.
    Also run by `bench_scheduler.py --store etcd|both` (its failover figures)."""
    gaps = []
    saved = {k: os.environ.get(k) for k in ("TF_HOME", "TF_TOKEN")}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cluster = EtcdCluster(tmp)
        procs: dict[str, object] = {}
        n = 0

        def spawn():
            nonlocal n
            n += 1
            p, addr = start_scheduler(tmp, cluster.url, "--leader-ttl", str(ttl), name=f"r{n}")
            procs[addr] = p

        # the first replica writes the first admin token to $TF_HOME/admin.token, which clients read by default
        os.environ["TF_HOME"] = str(tmp / "home")
        os.environ.pop("TF_TOKEN", None)
        (tmp / "home").mkdir(mode=0o700)
        try:
            for _ in range(3):
                spawn()
            time.sleep(ttl + 1)
            for k in range(kills):
                leader = leader_of(list(procs))
                # the dead leader stays in the list, first: what a client configured with every replica meets
                addrs = ",".join([leader] + [a for a in procs if a != leader])
                with SchedulerClient(addrs, failover_s=60) as c:
                    t0 = time.monotonic()
                    kill9(procs.pop(leader))
                    c.list_pool()                      # retried over the list until a replica leads
                    gaps.append(time.monotonic() - t0)
                print(f"kill {k + 1}: served again after {gaps[-1]:.2f} s", flush=True)
                spawn()
        finally:
            for p in procs.values():
                kill9(p)
            cluster.stop()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return gaps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--ttl", type=int, default=3, help="leader lease TTL in seconds (--leader-ttl)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    gaps = measure(args.kills, args.ttl)
    med, mx = statistics.median(gaps), max(gaps)
    print(f"failover over {len(gaps)} leader kills: median {med:.2f} s, max {mx:.2f} s (leader TTL {args.ttl} s)")
    if args.write:
        load = os.getloadavg()[0]
        text = (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, {os.cpu_count()} CPUs, "
                f"load {load:.2f}; three replicas on one local etcd, leader TTL {args.ttl} s, kill -9 of the leader "
                f"-> first call served through the client's replica list.\n\n"
                f"| kills | median (s) | max (s) | bound (TTL + 3 s) |\n|---|---|---|---|\n"
                f"| {len(gaps)} | {med:.2f} | {mx:.2f} | {args.ttl + 3} |\n")
        write_section("scheduler-failover", "Scheduler failover on etcd (leader kills)", text)


if __name__ == "__main__":
    main()
