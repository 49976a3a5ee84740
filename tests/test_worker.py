"""Scheduler and worker daemons as separate processes on loopback: two workers register their emulated
GPUs, the second allocation lands on the worker with room, real nvcc programs run through the stub on each,
a bad lease is refused, and a client that dies frees its session."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from cudabuild import build_example
from tfclient import native
from tfclient.scheduler_client import SchedulerClient

CLI = [sys.executable, "-m", "tfclient.cli"]


def start(args, env, ready: str):
    """Starts a CLI service and waits for the line matching ready; returns (process, match)."""
    proc = subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(ready, line)
        if m:
            return proc, m
    proc.kill()
    pytest.fail(f"{args[0]} did not start:\n{''.join(lines)}")


@pytest.fixture
def cluster(tmp_path):
    """One scheduler + two workers (1 GiB emulated GPU each); yields (env, scheduler address, workers)."""
    env = dict(os.environ, TF_HOME=str(tmp_path), TF_SECRET="test-secret", TF_EMU_VRAM_MIB="1024")
    procs = []
    try:
        sched, m = start(["scheduler", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "s.db")], env,
                         r"listening on (\S+:\d+)")
        procs.append(sched)
        address = m.group(1)
        workers = {}
        for node in ("node-a", "node-b"):
            w, _ = start(["worker", "--scheduler", address, "--backend", "emu", "--node", node,
                          "--unix", str(tmp_path / f"{node}.sock")], env, r"registered with")
            procs.append(w)
            workers[node] = w
        yield env, address, workers
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def run_with_lease(alloc, program, env):
    client_env = dict(env, TF_WORKER=f"unix:{alloc.endpoints.unix_path}", TF_LEASE=alloc.lease_token)
    client_env["LD_LIBRARY_PATH"] = str(native.stub_lib_dir())
    return subprocess.run([str(program)], env=client_env, capture_output=True, text=True, timeout=120)


def test_second_allocation_lands_on_the_worker_with_room(cluster):
    env, address, _ = cluster
    program = build_example("vector_add")
    with SchedulerClient(address) as client:
        first = client.allocate(tflops=0.001, vram=768)
        second = client.allocate(tflops=0.001, vram=768)
        assert {first.node_name, second.node_name} == {"node-a", "node-b"}
        for alloc in (first, second):
            r = run_with_lease(alloc, program, env)
            assert r.returncode == 0, r.stdout + r.stderr
            assert "65536 elements correct" in r.stdout
        client.release(first.id)
        client.release(second.id)


def test_worker_refuses_a_forged_lease(cluster):
    env, address, _ = cluster
    program = build_example("vector_add")
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=256)
        forged = alloc.lease_token[:-4] + ("AAAA" if not alloc.lease_token.endswith("AAAA") else "BBBB")
        alloc.lease_token = forged
        r = run_with_lease(alloc, program, env)
        assert r.returncode != 0
        assert "lease" in (r.stdout + r.stderr).lower()
        client.release(alloc.id)
