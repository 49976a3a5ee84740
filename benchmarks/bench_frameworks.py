"""Python GPU frameworks through the stub against the same frameworks on the local driver, side by side.

    python3 benchmarks/bench_frameworks.py [--backend nvidia|emu] [--steps 50] [--write]

Run on a GPU host (the device machine) with the system Python that has torch and cupy: each workload runs
twice in a child process, once on NVIDIA's libcuda directly ("native") and once with the client stub as
libcuda.so.1 talking to a standalone data plane (`python -m tfworker.dataplane --backend nvidia`) on the
same host ("stub"). Workloads (each prints one JSON line of timings in milliseconds):
  torch_mlp        small MLP training step (forward + backward + AdamW), eager
  torch_graph      the same step captured once into a CUDA graph and replayed (torch.cuda.graph)
  torch_compile    the same step under torch.compile(mode="reduce-overhead") (CUDA graphs via Inductor)
  cupy             matmul 1024^3 (cuBLAS), random.default_rng().standard_normal (cuRAND), sum (CUB)
A workload whose framework is not installed, or that fails, is reported with its first error line.
--write records the table in benchmarks/RESULTS.md with date, machine and device name.
With --backend emu only start-up is meaningful (PyTorch's kernels are SASS-only); the table still shows
how far each workload gets.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tfclient import native  # noqa: E402
from results_md import write_section  # noqa: E402

# Each workload: Python source run in a child; STEPS is substituted; it prints one line "RESULT {json}".
WORKLOADS = {
    "torch_mlp": """
import time, json, torch
torch.manual_seed(0)
dev = "cuda"
model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 1024)).to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.randn(256, 1024, device=dev); y = torch.randn(256, 1024, device=dev)
def step():
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward(); opt.step()
    return loss
for _ in range(5): step()
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(STEPS): loss = step()
torch.cuda.synchronize()
ms = (time.perf_counter() - t) * 1e3 / STEPS
print("RESULT", json.dumps({"step_ms": ms, "loss": float(loss)}))
""",
    "torch_graph": """
import time, json, torch
torch.manual_seed(0)
dev = "cuda"
model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 1024)).to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, capturable=True)
x = torch.randn(256, 1024, device=dev); y = torch.randn(256, 1024, device=dev)
def step():
    opt.zero_grad(set_to_none=False)
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward(); opt.step()
    return loss
s = torch.cuda.Stream(); s.wait_stream(torch.cuda.current_stream())
with torch.cuda.stream(s):
    for _ in range(3): step()
torch.cuda.current_stream().wait_stream(s)
g = torch.cuda.CUDAGraph()
with torch.cuda.graph(g):
    loss = step()
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(STEPS): g.replay()
torch.cuda.synchronize()
ms = (time.perf_counter() - t) * 1e3 / STEPS
print("RESULT", json.dumps({"step_ms": ms, "loss": float(loss)}))
""",
    "torch_compile": """
import time, json, torch
torch.manual_seed(0)
dev = "cuda"
model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 1024)).to(dev)
x = torch.randn(256, 1024, device=dev); y = torch.randn(256, 1024, device=dev)
@torch.compile(mode="reduce-overhead")
def fwd_bwd(x, y):
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    return loss
t0 = time.perf_counter()
for _ in range(3): fwd_bwd(x, y)
torch.cuda.synchronize()
compile_s = time.perf_counter() - t0
t = time.perf_counter()
for _ in range(STEPS): loss = fwd_bwd(x, y)
torch.cuda.synchronize()
ms = (time.perf_counter() - t) * 1e3 / STEPS
print("RESULT", json.dumps({"step_ms": ms, "compile_s": compile_s, "loss": float(loss)}))
""",
    "cupy": """
import time, json, numpy as np, cupy as cp
a = cp.random.default_rng(0).standard_normal((1024, 1024), dtype=cp.float32)
b = cp.random.default_rng(1).standard_normal((1024, 1024), dtype=cp.float32)
c = a @ b; cp.cuda.Device().synchronize()
ref = cp.asnumpy(a) @ cp.asnumpy(b)
assert np.allclose(cp.asnumpy(c), ref, rtol=1e-3, atol=1e-2), "matmul wrong"
def timed(fn):
    fn(); cp.cuda.Device().synchronize()
    t = time.perf_counter()
    for _ in range(STEPS): fn()
    cp.cuda.Device().synchronize()
    return (time.perf_counter() - t) * 1e3 / STEPS
rng = cp.random.default_rng(2)
out = {"matmul_ms": timed(lambda: a @ b), "rng_ms": timed(lambda: rng.standard_normal(1 << 22)),
       "sum_ms": timed(lambda: a.sum())}
s = float(a.sum()); assert abs(s - float(cp.asnumpy(a).astype(np.float64).sum())) < 1.0, "sum wrong"
print("RESULT", json.dumps(out))
""",
}


def start_dataplane(backend: str, sock: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "tfworker.dataplane", "--unix", str(sock), "--backend", backend],
                         stdout=subprocess.PIPE, text=True, cwd=REPO)
    line = p.stdout.readline().strip()
    if not line.startswith("ready"):
        p.kill()
        raise SystemExit(f"bench_frameworks: the data plane did not start: {line!r}")
    return p


def run_workload(name: str, steps: int, env: dict, timeout: float) -> dict:
    src = WORKLOADS[name].replace("STEPS", str(steps))
    try:
        r = subprocess.run([sys.executable, "-c", src], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
    first = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
    return {"error": first.strip()[:160] or f"exit {r.returncode}"}


def fmt(res: dict) -> str:
    if "error" in res:
        return "fail: " + res["error"]
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in res.items() if k != "loss")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("nvidia", "emu"), default="nvidia")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--only", nargs="*", choices=sorted(WORKLOADS), help="workloads to run (default: all)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    native.require(native.stub_lib_dir() / "libcuda.so.1")
    names = args.only or list(WORKLOADS)
    base = dict(os.environ, PYTHONPATH=str(REPO))
    if args.backend == "emu":
        base["CUPY_COMPILE_WITH_PTX"] = "1"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dp = start_dataplane(args.backend, Path(tmp) / "dp.sock")
        try:
            stub = dict(base, LD_LIBRARY_PATH=f"{native.stub_lib_dir()}:{base.get('LD_LIBRARY_PATH', '')}",
                        TF_WORKER=f"unix:{Path(tmp) / 'dp.sock'}", TF_LEASE="")
            if args.backend == "emu":
                native_env = dict(base, LD_LIBRARY_PATH=f"{native.emu_lib_dir()}:{base.get('LD_LIBRARY_PATH', '')}")
            else:
                native_env = base
            for name in names:
                n = run_workload(name, args.steps, native_env, args.timeout)
                s = run_workload(name, args.steps, stub, args.timeout)
                ratio = ""
                if "step_ms" in n and "step_ms" in s:
                    ratio = f"{s['step_ms'] / n['step_ms']:.2f}"
                elif "matmul_ms" in n and "matmul_ms" in s:
                    ratio = f"{s['matmul_ms'] / n['matmul_ms']:.2f} (matmul)"
                rows.append((name, fmt(n), fmt(s), ratio))
                print(f"{name:14s} native: {fmt(n)}\n{'':14s} stub:   {fmt(s)}  ratio {ratio}", flush=True)
        finally:
            dp.terminate()
            dp.wait(10)
    if args.write:
        dev = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True).stdout.strip() if args.backend == "nvidia" else "emulated device"
        head = (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, {os.cpu_count()} CPUs, "
                f"load {os.getloadavg()[0]:.2f}, device: {dev}, backend {args.backend}, {args.steps} steps\n\n")
        table = "| workload | native (ms) | through the stub (ms) | stub / native |\n|---|---|---|---|\n"
        table += "".join(f"| {a} | {b} | {c} | {d} |\n" for a, b, c, d in rows)
        write_section(f"frameworks-{args.backend}", f"Frameworks through the stub vs native ({args.backend})",
                      head + table)


if __name__ == "__main__":
    main()
