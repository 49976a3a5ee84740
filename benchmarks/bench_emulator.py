"""Emulated CUDA device: PTX engine throughput and launch overhead.

Two views, printed side by side, for both PTX engines (TF_EMU_ENGINE=interp and jit):
  engine  - emu_c/ptx_test --bench: the PTX engine alone (exact executed-instruction counts from
            ptx_launch) on a compute-bound kernel (spin), a shared-memory tiled matmul (also in
            CPU time over repeated launches), a loop of bar.sync (CPU ns per warp arrival) and
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
import tempfile
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


def engine(workers: int, eng: str = "interp", repeats: int = 3, cache: str = "off") -> dict:
    """Best of repeats of `ptx_test --bench`; cache: TF_EMU_JIT_CACHE (off: every run compiles)."""
    exe = build_ptx_test("-O2", sanitize=False, jit=True)
    ptx = REPO / "emu_c" / "tests" / "ptx_kernels.ptx"
    best: dict = {}
    for _ in range(repeats):
        out = subprocess.run([exe, str(ptx), "--bench", str(workers)], capture_output=True, check=True, text=True,
                             env={**os.environ, "TF_EMU_ENGINE": eng, "TF_EMU_JIT_CACHE": cache}).stdout
        for line in out.splitlines():
            d = kv_line(line)
            name = d["name"]
            if name == "jit_compile":
                score = -float(d["matmul_ms"])  # the fastest compile (not a cache hit: engine() passes cache)
            elif name == "barloop_cpu":
                score = -float(d["cpu_ns_per_warp_arrival"])
            elif name in ("spin_native", "spin_thread_loop"):
                score = float(d["gflops"])
            else:
                score = float(d.get("warp_instr_per_s", d.get("warp_instr_per_cpu_s", d.get("launches_per_s", 0))))
            if name not in best or score > best[name][0]:
                best[name] = (score, d)
    return {k: v[1] for k, v in best.items()}


def program(mode: str, arg: int, threads: int, eng: str = "interp", repeats: int = 3, **env) -> dict:
    """Best of repeats of the program; "wall" is the whole process (start to exit) in seconds."""
    exe = build_cuda("ptx_e2e")
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        p = subprocess.run([str(exe), mode, str(arg)], env=emu_env(TF_EMU_THREADS=threads, TF_EMU_ENGINE=eng, **env),
                           capture_output=True, check=True, timeout=300)
        kv = parse_kv(p.stdout)
        kv["wall"] = time.perf_counter() - t0
        assert kv["sync"] == "cudaSuccess", p.stderr.decode()
        if best is None or (mode == "spin" and float(kv["seconds"]) < float(best["seconds"])) or \
                (mode == "empty" and float(kv["launches_per_s"]) > float(best["launches_per_s"])):
            best = kv
    return best


def jit_disk_cache() -> None:
    """The JIT's compile time per kernel against loading the same kernel from the disk cache: one run
    fills an empty cache, the next loads from it."""
    with tempfile.TemporaryDirectory() as d:
        cold = engine(1, "jit", repeats=1, cache=d)["jit_compile"]
        warm = engine(1, "jit", repeats=1, cache=d)["jit_compile"]
    assert cold["spin_from_disk"] == "0" and warm["spin_from_disk"] == "1" and warm["matmul_from_disk"] == "1"
    print(f"engine  jit disk cache: spin compile {float(cold['spin_ms']):.0f} ms -> load {float(warm['spin_ms']):.1f} ms; "
          f"matmul compile {float(cold['matmul_ms']):.0f} ms -> load {float(warm['matmul_ms']):.1f} ms")


def main() -> None:
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} {platform.processor() or platform.machine()} "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    jit_disk_cache()
    spin_iters = 2000
    base: dict = {}
    for eng, w in (("interp", 1), ("jit", 1), ("interp", 2), ("jit", 2)):
        e = engine(w, eng)
        s, m, z, v = e["spin"], e["matmul256"], e["empty_launch"], e["vadd5000_launch"]
        mc = float(e["matmul256_cpu"]["warp_instr_per_cpu_s"])
        nat = float(e["spin_native"]["gflops"])
        if eng == "interp":
            base[w] = (float(s["warp_instr_per_s"]), float(m["warp_instr_per_s"]), mc)
        ratio = "" if eng == "interp" else (f" ({float(s['warp_instr_per_s']) / base[w][0]:.1f}x / "
                                              f"{float(m['warp_instr_per_s']) / base[w][1]:.1f}x the interpreter)")
        cpu_ratio = "" if eng == "interp" else f" ({mc / base[w][2]:.1f}x the interpreter)"
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
        print(f"engine  {eng} workers={w} matmul 256^3 in CPU time (every worker's; the figure a loaded machine "
              f"moves least): {float(e['matmul256_cpu']['cpu_ms_per_launch']):.2f} ms per launch = "
              f"{mc / 1e6:.1f} M warp-instr per CPU second{cpu_ratio}; a warp's arrival at bar.sync (barloop): "
              f"{float(e['barloop_cpu']['cpu_ns_per_warp_arrival']):.1f} CPU ns")
        warp_instr = float(s["warp_instructions"])
        ps = program("spin", spin_iters, w, eng)
        pe = program("empty", 5000, w, eng)
        secs = float(ps["seconds"])
        print(f"program {eng} TF_EMU_THREADS={w} spin ({int(ps['threads'])} threads x {spin_iters} iters): {secs * 1e3:.1f} ms "
              f"= {warp_instr / secs / 1e6:.1f} M warp-instr/s (process {ps['wall']:.2f} s); "
              f"empty launches: {float(pe['launches_per_s']) / 1e3:.0f} k/s")
        if eng == "jit":
            # a first run: no disk cache, the kernel compiles in the background while the interpreter runs it
            pc = program("spin", spin_iters, w, eng, repeats=1, TF_EMU_JIT_CACHE="off")
            print(f"program {eng} TF_EMU_THREADS={w} spin, cold (no disk cache, background compile): "
                  f"{float(pc['seconds']) * 1e3:.1f} ms, process {pc['wall']:.2f} s")


if __name__ == "__main__":
    main()
