"""Emulated CUDA device: PTX engine throughput and launch overhead.

Two views, printed side by side, for both PTX engines (TF_EMU_ENGINE=interp and jit):
  engine  - emu_c/ptx_test --bench: the PTX engine alone (exact executed-instruction counts from
            ptx_launch) on a compute-bound kernel (spin), a shared-memory tiled matmul, and
            empty launches, with 1 and 2 worker threads; the spin kernel's math compiled
            lanes-inner for this CPU (spin_native, one thread) is the baseline of "one core's
            vectorized speed"; the JIT's compile time per kernel is its own figure (a warm-up
            launch compiles before anything is timed).
  program - tests/cuda/ptx_e2e.cu built by nvcc (PTX for compute_80, cudart static) running on
            build/emu/libcuda.so.1: the same spin kernel and back-to-back empty launches as a
            user program sees them (driver + engine).
"warp instructions" count one PTX instruction executed by one lane group (up to 32 threads);
"thread instructions" = warp instructions x 32 for these full-warp kernels.
Usage: .venv/bin/python benchmarks/bench_emulator.py
"""
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "emu"))

from emu_run import build_cuda, emu_env, parse_kv  # noqa: E402
from test_ptx_engine import build_ptx_test  # noqa: E402


def kv_line(line: str) -> dict:
    parts = line.split()
    return {"name": parts[0], **dict(p.split("=", 1) for p in parts[1:])}


def engine(workers: int, eng: str = "interp", repeats: int = 3) -> dict:
    exe = build_ptx_test("-O2", sanitize=False, jit=True)
    ptx = REPO / "emu_c" / "tests" / "ptx_kernels.ptx"
    best: dict = {}
    for _ in range(repeats):
        out = subprocess.run([exe, str(ptx), "--bench", str(workers)], capture_output=True, check=True, text=True,
                             env={**os.environ, "TF_EMU_ENGINE": eng, "TF_EMU_JIT_CACHE": "off"}).stdout
        for line in out.splitlines():
            d = kv_line(line)
            name = d["name"]
            if name == "jit_compile":
                score = -float(d["matmul_ms"])
            elif name in ("spin_native", "spin_thread_loop"):
                score = float(d["gflops"])
            else:
                score = float(d.get("warp_instr_per_s", d.get("launches_per_s", 0)))
            if name not in best or score > best[name][0]:
                best[name] = (score, d)
    return {k: v[1] for k, v in best.items()}


def program(mode: str, arg: int, threads: int, eng: str = "interp", repeats: int = 3) -> dict:
    exe = build_cuda("ptx_e2e")
    best = None
    for _ in range(repeats):
        p = subprocess.run([str(exe), mode, str(arg)], env=emu_env(TF_EMU_THREADS=threads, TF_EMU_ENGINE=eng), capture_output=True,
                           check=True, timeout=300)
        kv = parse_kv(p.stdout)
        assert kv["sync"] == "cudaSuccess", p.stderr.decode()
        if best is None or (mode == "spin" and float(kv["seconds"]) < float(best["seconds"])) or \
                (mode == "empty" and float(kv["launches_per_s"]) > float(best["launches_per_s"])):
            best = kv
    return best


def main() -> None:
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} {platform.processor() or platform.machine()} "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    spin_iters = 2000
    base: dict = {}
    for eng, w in (("interp", 1), ("jit", 1), ("interp", 2), ("jit", 2)):
        e = engine(w, eng)
        s, m, z, v = e["spin"], e["matmul256"], e["empty_launch"], e["vadd5000_launch"]
        nat = float(e["spin_native"]["gflops"])
        if eng == "interp":
            base[w] = (float(s["warp_instr_per_s"]), float(m["warp_instr_per_s"]))
        ratio = "" if eng == "interp" else (f" ({float(s['warp_instr_per_s']) / base[w][0]:.1f}x / "
                                              f"{float(m['warp_instr_per_s']) / base[w][1]:.1f}x the interpreter)")
        if eng == "jit":
            c = e["jit_compile"]
            print(f"engine  {eng} compile time: spin {float(c['spin_ms']):.0f} ms, matmul {float(c['matmul_ms']):.0f} ms")
        print(f"engine  {eng} workers={w} spin: {float(s['gflops']):.2f} GFLOP/s = {float(s['gflops']) / nat * 100:.1f}% of "
              f"spin_native {nat:.2f} GFLOP/s (one thread, lanes-inner, this CPU; one thread at a time: "
              f"{float(e['spin_thread_loop']['gflops']):.2f}){ratio}")
        print(f"engine  {eng} workers={w} spin: {float(s['warp_instr_per_s']) / 1e6:.1f} M warp-instr/s "
              f"({float(s['thread_instr_per_s']) / 1e9:.2f} G thread-instr/s); "
              f"matmul 256^3: {float(m['warp_instr_per_s']) / 1e6:.1f} M warp-instr/s, {float(m['gflops']):.2f} GFLOP/s; "
              f"empty launches: {float(z['launches_per_s']) / 1e3:.0f} k/s; "
              f"vector add of 5000 floats (20 blocks): {float(v['launches_per_s']):.0f} launches/s")
        warp_instr = float(s["warp_instructions"])
        ps = program("spin", spin_iters, w, eng)
        pe = program("empty", 5000, w, eng)
        secs = float(ps["seconds"])
        print(f"program {eng} TF_EMU_THREADS={w} spin ({int(ps['threads'])} threads x {spin_iters} iters): {secs * 1e3:.1f} ms "
              f"= {warp_instr / secs / 1e6:.1f} M warp-instr/s; empty launches: {float(pe['launches_per_s']) / 1e3:.0f} k/s")


if __name__ == "__main__":
    main()
