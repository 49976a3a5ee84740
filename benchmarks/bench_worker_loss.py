"""What a user sees when a worker dies: `tensorfusion run` right after a kill -9 of the worker it would be
placed on, beside a plain `run` measured in the same cluster.

A scheduler (default node timeout, 15 s) and two emulated workers as processes on loopback. Figures (seconds,
wall, each `run` of examples/vector_add.cu): a plain run (median of --n), the first run after the kill (it
finds the data plane closed, reports it, the scheduler probes the worker, the run allocates again on the other
worker: tfscheduler/README.md, Node liveness) and the runs after it (the dead node is out of placement), plus
how long after the kill the dead node stayed placeable (the first run's end) against the node timeout it would
have taken before.
Usage: .venv/bin/python benchmarks/bench_worker_loss.py [--n 5]
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

from cudabuild import build_example  # noqa: E402
from tfclient.scheduler_client import SchedulerClient  # noqa: E402

CLI = [sys.executable, "-m", "tfclient.cli"]


def start(args, env, ready: str, log):
    """A CLI service with its output in log; returns (process, the match of ready in its log)."""
    proc = subprocess.Popen([*CLI, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        m = re.search(ready, open(log.name).read())
        if m:
            return proc, m
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    sys.exit(f"{args[0]} did not start: {open(log.name).read()}")


def timed_run(env, program) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([*CLI, "run", "--vram", "256Mi", "--", program], env=env, capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        sys.exit(f"run failed: {r.stdout}{r.stderr}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5, help="plain runs and runs after the first one (default 5)")
    args = ap.parse_args()
    program = str(build_example("vector_add"))
    home = tempfile.mkdtemp(prefix="tf-bench-loss-")
    env = dict(os.environ, TF_HOME=home, TF_SECRET="bench-secret", TF_EMU_VRAM_MIB="1024")
    env.pop("TF_TOKEN", None)
    procs = {}
    try:
        sched, m = start(["scheduler", "--listen", "127.0.0.1:0", "--db", f"{home}/s.db"], env,
                         r"listening on (\S+:\d+)", open(f"{home}/scheduler.log", "w"))
        procs["scheduler"] = sched
        address = m.group(1)
        env["TF_SCHEDULER"] = address
        env["TF_TOKEN"] = open(f"{home}/admin.token").read().strip()
        for node in ("node-a", "node-b"):
            token = subprocess.run([*CLI, "token", "create", "--role", "worker", "--node", node], env=env,
                                   capture_output=True, text=True, check=True).stdout.strip()
            procs[node], _ = start(["worker", "--backend", "emu", "--node", node, "--unix", f"{home}/{node}.sock"],
                                   dict(env, TF_WORKER_TOKEN=token), r"registered with",
                                   open(f"{home}/{node}.log", "w"))
        plain = [timed_run(env, program) for _ in range(args.n)]
        with SchedulerClient(address, token=env["TF_TOKEN"]) as client:
            probe = client.allocate(vram=256)      # where the next run goes: that worker is killed
            victim = probe.node_name
            client.release(probe.id)
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        killed = time.perf_counter()
        first = timed_run(env, program)
        placeable_for = time.perf_counter() - killed
        with SchedulerClient(address, token=env["TF_TOKEN"]) as client:
            if any(n.node_name == victim and n.available for n in client.list_pool().nodes):
                sys.exit(f"the first run after the kill did not meet the dead worker {victim}: nothing measured")
        after = [timed_run(env, program) for _ in range(args.n)]
        load = open("/proc/loadavg").read().split()[:3]
        print(f"load {' '.join(load)}; node timeout 15 s; {args.n} runs each")
        print(f"plain run (median)              {statistics.median(plain):6.2f} s")
        print(f"first run after kill -9         {first:6.2f} s  ({first - statistics.median(plain):+.2f} s: "
              f"connect refused, report, probe, allocate again)")
        print(f"later runs (median)             {statistics.median(after):6.2f} s")
        print(f"dead node placeable after kill  {placeable_for:6.2f} s  (before: until the 15 s node timeout, "
              f"every run placed on it failing)")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
