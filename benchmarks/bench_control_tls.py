"""Cost of TLS on the control plane: one `tensorfusion scheduler` process per mode on loopback (plaintext, TLS,
TLS with client certificates required), measured side by side in one run with the blocking SchedulerClient:

  call     - ListPool round trip on an established channel, p50 / p99 (what every RPC pays per call)
  connect  - a new client's first call (channel setup + TCP + the TLS handshake, if any), p50 / p99

Certificates come from `tensorfusion certs` (ECDSA P-256). Usage:
    .venv/bin/python benchmarks/bench_control_tls.py [--calls 1000] [--connects 100]
Prints a Markdown table for benchmarks/RESULTS.md.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tfclient import certs, tls  # noqa: E402
from tfclient.scheduler_client import SchedulerClient  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def start_scheduler(home, extra):
    env = dict(os.environ, TF_HOME=home, TF_SECRET="bench")
    for k in ("TF_TLS_CA", "TF_TLS_CERT", "TF_TLS_KEY", "TF_TOKEN"):
        env.pop(k, None)
    proc = subprocess.Popen([sys.executable, "-m", "tfclient.cli", "scheduler", "--listen", "127.0.0.1:0",
                             "--db", os.path.join(home, "s.db"), *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        m = re.search(r"listening on (\S+:\d+)", line)
        if m:
            return proc, m.group(1), open(os.path.join(home, "admin.token")).read().strip()
    raise RuntimeError("scheduler did not start")


def measure(address, token, client_tls, calls, connects):
    with SchedulerClient(address, token=token, tls=client_tls) as c:
        for _ in range(50):
            c.list_pool()
        per_call = []
        for _ in range(calls):
            t = time.perf_counter()
            c.list_pool()
            per_call.append((time.perf_counter() - t) * 1e6)
    first = []
    for _ in range(connects):
        t = time.perf_counter()
        with SchedulerClient(address, token=token, tls=client_tls) as c:
            c.list_pool()
        first.append((time.perf_counter() - t) * 1e3)
    return per_call, first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--connects", type=int, default=100)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="tf-bench-tls-")
    pki = os.path.join(root, "pki")
    certs.init_ca(pki)
    certs.issue(pki, "sched", ["127.0.0.1"])
    certs.issue(pki, "client", [], client=True)
    p = lambda n: os.path.join(pki, n)    # noqa: E731
    modes = [("plaintext", [], None),
             ("TLS", ["--tls-cert", p("sched.crt"), "--tls-key", p("sched.key")], tls.ClientTLS(p("ca.crt"))),
             ("mTLS", ["--tls-cert", p("sched.crt"), "--tls-key", p("sched.key"), "--tls-client-ca", p("ca.crt")],
              tls.ClientTLS(p("ca.crt"), p("client.crt"), p("client.key")))]
    rows = []
    for name, extra, client_tls in modes:
        home = os.path.join(root, name)
        os.makedirs(home, mode=0o700)
        proc, address, token = start_scheduler(home, extra)
        try:
            per_call, first = measure(address, token, client_tls, args.calls, args.connects)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
        rows.append((name, per_call, first))
    base_call, base_first = pct(rows[0][1], 50), pct(rows[0][2], 50)
    load = os.getloadavg()[0]
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load average "
          f"{load:.1f}; {args.calls} calls, {args.connects} new clients per mode\n")
    print("| mode | ListPool call p50 / p99 (us) | vs plaintext | new client + first call p50 / p99 (ms) "
          "| vs plaintext |")
    print("|---|---|---|---|---|")
    for name, per_call, first in rows:
        print(f"| {name} | {pct(per_call, 50):.0f} / {pct(per_call, 99):.0f} | {pct(per_call, 50) / base_call:.2f}x "
              f"| {pct(first, 50):.2f} / {pct(first, 99):.2f} | {pct(first, 50) / base_first:.2f}x |")


if __name__ == "__main__":
    main()
