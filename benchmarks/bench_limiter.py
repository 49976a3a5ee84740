"""Native limiter benchmark: per-launch overhead and limit accuracy, measured side by side.

Overhead: tests/cuda/lim_launch_overhead.cu times cuLaunchKernel as cudart resolves it (cuGetProcAddress),
on a NULL function (the call path alone) and on an empty kernel, in alternating runs without the
library, with it preloaded and no limit, and with a limit whose bucket never empties (the hot path
through the bucket). Overhead = preloaded - plain, from the minimum of the runs (the host is shared and
noisy; the minimum is the cost without interference), medians shown too.

Accuracy: tests/cuda/lim_busy.cu (the same busy kernel in a loop) under a session region
(tfworker.limits.SessionLimits):
 - closed loop (default utilization source: the emulator's busy counter / NVML on a GPU): achieved busy
   share per 0.5 s window vs the target, after a 1.5 s start;
 - two sessions at 25 % and 75 % side by side: their throughput ratio (open loop on the emulator, where
   the host CPU, not the limiter, decides how fast a kernel runs; closed loop on a GPU).
--write replaces the limiter section of benchmarks/RESULTS.md with the tables.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
from cudabuild import build_cuda  # noqa: E402
from tfclient import native  # noqa: E402
from results_md import write_section  # noqa: E402
from tfworker.limits import SessionLimits  # noqa: E402

ITERS = 20000
FLOPS_PER_THREAD = 2 * ITERS


def base_env(backend: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TF_VRAM", "TF_TFLOPS", "TF_DEVICE", "TF_LIMITER", "CUDA_DEVICE_", "LD_PRELOAD"))}
    if backend == "emu":
        env["LD_LIBRARY_PATH"] = f"{native.emu_lib_dir()}:{env.get('LD_LIBRARY_PATH', '')}".rstrip(":")
        env["TF_EMU_THREADS"] = "1"
    return env


def kv(out: bytes) -> dict:
    d = {}
    for line in out.decode(errors="replace").splitlines():
        k, sep, v = line.partition("=")
        if sep:
            d[k.strip()] = v.strip()
    return d


def run_kv(args: list[str], env: dict) -> dict:
    p = subprocess.run(args, env=env, capture_output=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {p.returncode}: {p.stdout.decode()} {p.stderr.decode()}")
    return kv(p.stdout)


def overhead(backend: str, reps: int, launches: int) -> list[tuple]:
    exe = str(build_cuda("lim_launch_overhead"))
    lib = str(native.require(native.limiter_lib()))
    plain = base_env(backend)
    nolimit = {**plain, "LD_PRELOAD": lib}
    # a limit whose bucket never empties: every launch takes the bucket's lock and refill path
    limited = {**nolimit, "TF_TFLOPS_LIMIT": "50", "TF_DEVICE_TFLOPS": "100", "TF_LIMITER_BUSY": "none",
               "TF_FLOPS_PER_THREAD": "1e-6", "TF_LIMITER_QUIET": "1"}
    res = {"plain": [], "nolimit": [], "limited": []}
    for _ in range(reps):
        for name, env in (("plain", plain), ("nolimit", nolimit), ("limited", limited)):
            res[name].append(run_kv([exe, str(launches)], env))
    rows = []
    for field, label in (("dispatch_ns", "call path (NULL function), ns/launch"),
                         ("launch_ns", "empty kernel launch, ns/launch")):
        vals = {k: [float(r[field]) for r in v] for k, v in res.items()}
        mins = {k: min(v) for k, v in vals.items()}
        meds = {k: statistics.median(v) for k, v in vals.items()}
        rows.append((label, mins, meds))
    return rows


def busy_windows(lim: SessionLimits, seconds: float, start: float = 1.5, step: float = 0.5) -> list[float]:
    time.sleep(start)
    out, prev, t_prev = [], lim.usage().busy_ns, time.monotonic()
    end = time.monotonic() + seconds - start
    while time.monotonic() < end:
        time.sleep(step)
        b, t = lim.usage().busy_ns, time.monotonic()
        out.append((b - prev) / 1e9 / (t - t_prev))
        prev, t_prev = b, t
    return out


def accuracy_closed_loop(backend: str, targets: list[float], seconds: float) -> list[tuple]:
    exe = str(build_cuda("lim_busy"))
    env = {**base_env(backend), "LD_PRELOAD": str(native.require(native.limiter_lib()))}
    rows = []
    for share in targets:
        with SessionLimits.create(f"bench-busy-{int(share * 100)}-{os.getpid()}", tflops_limit=share * 100,
                                  device_tflops=100) as lim:
            p = subprocess.Popen([exe, str(seconds + 0.5), str(ITERS)], env={**env, **lim.env},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            w = busy_windows(lim, seconds)
            p.communicate(timeout=60)
            mean = statistics.fmean(w)
            rows.append((share, mean, statistics.pstdev(w), max(abs(x - share) for x in w), len(w)))
    return rows


def ratio_25_75(backend: str, seconds: float) -> tuple:
    exe = str(build_cuda("lim_busy"))
    env = {**base_env(backend), "LD_PRELOAD": str(native.require(native.limiter_lib()))}
    device_launches = 160
    dev = device_launches * 32 * FLOPS_PER_THREAD / 1e12
    extra = {"TF_LIMITER_BUSY": "none", "TF_FLOPS_PER_THREAD": str(FLOPS_PER_THREAD), "TF_LIMITER_QUIET": "1"} \
        if backend == "emu" else {}
    lims = [SessionLimits.create(f"bench-q{q}-{os.getpid()}", tflops_limit=dev * q / 100, device_tflops=dev)
            for q in (25, 75)]
    try:
        ps = [subprocess.Popen([exe, str(seconds + 3), str(ITERS)], env={**env, **l.env, **extra},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for l in lims]
        time.sleep(2)
        a = [l.usage().launches for l in lims]
        time.sleep(seconds)
        b = [l.usage().launches for l in lims]
        for p in ps:
            p.communicate(timeout=60)
        n = [y - x for x, y in zip(a, b)]
        return n[0] / seconds, n[1] / seconds, n[1] / n[0], 0.25 * device_launches, 0.75 * device_launches
    finally:
        for l in lims:
            l.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("emu", "nvidia"), default="emu")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--launches", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=6.0, help="per closed-loop target")
    ap.add_argument("--write", action="store_true", help="update the limiter section of benchmarks/RESULTS.md")
    a = ap.parse_args()

    over = overhead(a.backend, a.reps, a.launches)
    acc = accuracy_closed_loop(a.backend, [0.10, 0.25, 0.50, 0.75], a.seconds)
    r25, r75, ratio, w25, w75 = ratio_25_75(a.backend, 10.0)

    head = (f"Backend `{a.backend}`, {os.cpu_count()} CPUs ({platform.machine()}), load average "
            f"{os.getloadavg()[0]:.1f} at the end, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC. "
            f"Measured by `benchmarks/bench_limiter.py`.")
    t1 = ["| per launch | without limiter (min / median) | preloaded, no limit | preloaded, limit on, bucket never empty "
          "| overhead, no limit (min-based) | target | met |", "|---|---|---|---|---|---|---|"]
    for label, mins, meds in over:
        ovh = mins["nolimit"] - mins["plain"]
        ok = "yes" if ovh <= 300 else "no"
        target = "<= 300 ns" if label.startswith("call path") else ""
        t1.append(f"| {label} | {mins['plain']:.0f} / {meds['plain']:.0f} | {mins['nolimit']:.0f} / {meds['nolimit']:.0f} "
                  f"| {mins['limited']:.0f} / {meds['limited']:.0f} | {ovh:+.0f} ns | {target} | {ok if target else ''} |")
    t2 = ["| target busy share | achieved (mean of 0.5 s windows) | stdev | worst window error | windows |",
          "|---|---|---|---|---|"]
    for share, mean, sd, worst, n in acc:
        t2.append(f"| {share:.0%} | {mean:.1%} | {sd:.1%} | {worst:.1%} | {n} |")
    t3 = ["| two sessions 25 % / 75 %, 10 s | 25 % session | 75 % session | ratio (target 3.00 +- 10 %) | met |",
          "|---|---|---|---|---|",
          f"| launches/s | {r25:.1f} (limit {w25:.0f}) | {r75:.1f} (limit {w75:.0f}) | {ratio:.2f} "
          f"| {'yes' if 2.7 <= ratio <= 3.3 else 'no'} |"]
    text = "\n".join([head, "", *t1, "", "Closed loop (busy-time feedback):", "", *t2, "",
                      "Throughput split" + (" (open loop: on the emulator the host CPU sets a kernel's duration)"
                                            if a.backend == "emu" else "") + ":", "", *t3])
    print(text)
    if a.write:
        write_section("limiter", "Native limiter", text)


if __name__ == "__main__":
    main()
