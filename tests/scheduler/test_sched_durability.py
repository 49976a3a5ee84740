"""State that must hold under stress: a killed-and-restarted scheduler process keeps its allocations,
and many concurrent Allocate calls never over-commit a GPU."""
import asyncio
import os
import signal
import subprocess
import sys

import pytest
import uvloop

from tfclient.errors import NoCapacity, QuotaExceeded
from tfclient.protos import load
from tfclient.scheduler_client import AsyncSchedulerClient, SchedulerClient
from tfclient import native
from tfscheduler import lease

from sched_helpers import SECRET, gpus

pb = load("scheduler_pb2")


def start_process(tmp_path, db, *extra):
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    proc = subprocess.Popen([sys.executable, "-m", "tfscheduler", "--listen", "127.0.0.1:0", "--db", str(db),
                             "--secret-file", str(secret), "--log-level", "WARNING", *extra],
                            stdout=subprocess.PIPE, text=True, cwd=str(native.REPO_ROOT))
    line = proc.stdout.readline()
    assert line.startswith("tfscheduler listening on "), line
    return proc, line.split()[-1]


def test_a_quota_is_kept_in_the_store_and_holds_after_a_restart_without_the_config(tmp_path):
    """Quotas are state like pools: the config file writes them, a restart without it still enforces them."""
    db, cfg = tmp_path / "state.db", tmp_path / "sched.toml"
    cfg.write_text('[quotas.team]\ntflops = 30\n')
    proc, addr = start_process(tmp_path, db, "--config", str(cfg))
    try:
        with SchedulerClient(addr) as c:
            c.register_worker("node-a", "p", gpus("a", tflops=100), admin="127.0.0.1:1")
            c.allocate(tflops=20, vram="1Gi", namespace="team")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc, addr = start_process(tmp_path, db)
    try:
        with SchedulerClient(addr) as c:
            with pytest.raises(QuotaExceeded, match="quota 30 TFLOPS: 20 in use"):
                c.allocate(tflops=20, vram="1Gi", namespace="team")
            c.allocate(tflops=10, vram="1Gi", namespace="team")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_allocations_survive_a_killed_scheduler_process(tmp_path):
    db = tmp_path / "state.db"
    proc, addr = start_process(tmp_path, db)
    try:
        with SchedulerClient(addr) as c:
            c.register_worker("node-a", "p", gpus("a", tflops=100), unix_path="/run/a.sock", admin="127.0.0.1:1")
            kept = c.allocate(tflops=60, vram="1Gi", qos="high", workload="train")
            gone = c.allocate(tflops=10, vram="1Gi")
            c.release(gone.id)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc, addr = start_process(tmp_path, db)
    try:
        with SchedulerClient(addr) as c:
            got = c.get_allocation(kept.id)
            assert got.state == pb.ALLOCATION_ACTIVE and got.workload == "train" and got.qos == 3  # QOS_HIGH
            assert got.endpoints.unix_path == "/run/a.sock"
            # the worker re-registers listing its live session: nothing to close, lease renewed
            r = c.register_worker("node-a", "p", gpus("a", tflops=100), unix_path="/run/a.sock",
                                  active_allocation_ids=[kept.id, gone.id])
            assert [(x.allocation_id, x.reason) for x in r.close_allocations] == [(gone.id, "released")]
            assert c.get_allocation(gone.id).state == pb.ALLOCATION_RELEASED
            renewed = c.renew(kept.id)
            assert lease.verify(renewed.lease_token, lease.node_key(SECRET, kept.worker_id)).allocation_id == kept.id
            # capacity is still charged: 60 of 100 TFLOPS are taken
            try:
                c.allocate(tflops=41, vram=1)
                raise AssertionError("over-committed after restart")
            except NoCapacity:
                pass
            c.allocate(tflops=40, vram=1)
    finally:
        proc.terminate()
        proc.wait(10)


def test_200_concurrent_allocations_never_overcommit(scheduler):
    with SchedulerClient(scheduler.address) as c:
        for n in range(2):
            c.register_worker(f"node-{n}", "p", gpus(f"n{n}", n=2, tflops=100, vram=10000))

    async def burst():
        async with AsyncSchedulerClient(scheduler.address, timeout=30) as ac:
            async def one(i):
                try:
                    return await ac.allocate(tflops=7, vram=300 + i % 5)
                except NoCapacity:
                    return None
            return await asyncio.gather(*(one(i) for i in range(200)))

    results = uvloop.run(burst()) if hasattr(uvloop, "run") else asyncio.run(burst())
    granted = [r for r in results if r is not None]
    per_gpu = {}
    for r in granted:
        per_gpu[r.gpu_uuids[0]] = per_gpu.get(r.gpu_uuids[0], 0) + 7
    assert len(granted) == 4 * (100 // 7)          # exactly what fits: 14 per GPU
    assert all(v <= 100 for v in per_gpu.values())
    with SchedulerClient(scheduler.address) as c:
        pool = c.list_pool()
        for node in pool.nodes:
            for g in node.gpus:
                assert g.allocated_requests.tflops <= g.info.tflops + 1e-9
                assert g.allocation_count == 14


def test_concurrent_churn_with_preemption_keeps_the_books_straight(scheduler):
    import random
    import threading
    with SchedulerClient(scheduler.address) as c:
        c.register_worker("node-0", "p", gpus("n0", n=2, tflops=100, vram=1000))
        c.register_worker("node-1", "p", gpus("n1", n=2, tflops=100, vram=1000))
    errors = []

    def worker(seed):
        rng = random.Random(seed)
        mine = []
        with SchedulerClient(scheduler.address, timeout=30) as c:
            for _ in range(25):
                try:
                    if mine and rng.random() < 0.3:
                        c.release(mine.pop(rng.randrange(len(mine))))
                    else:
                        a = c.allocate(tflops=rng.choice([10, 20, 45]), vram=rng.choice([100, 250]),
                                       qos=rng.choice(["low", "medium", "high", "critical"]),
                                       gpu_count=rng.choice([1, 1, 2]))
                        mine.append(a.id)
                except NoCapacity:
                    pass
                except Exception as e:  # anything else is a bug
                    errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with SchedulerClient(scheduler.address) as c:
        pool = c.list_pool(include_allocations=True)
    charged = {}
    for a in pool.allocations:
        for g in a.gpu_uuids:
            t, v = charged.get(g, (0.0, 0))
            charged[g] = (t + a.requests.tflops, v + a.requests.vram_mib)
    for node in pool.nodes:
        for g in node.gpus:
            t, v = charged.get(g.info.uuid, (0.0, 0))
            assert g.allocated_requests.tflops == pytest.approx(t) and g.allocated_requests.vram_mib == v
            assert t <= g.info.tflops + 1e-6 and v <= g.info.vram_mib
