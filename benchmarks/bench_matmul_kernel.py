"""UnifiedMemoryPerf's tiled matmul kernel alone on the emulated device: GFMA per CPU second.

Builds benchmarks/matmul_kernel.cu (the sample's matrixMultiplyKernel, BLOCK_SIZE 32, PTX for compute_80)
and runs it on build/emu/libcuda.so.1 with one worker thread (TF_EMU_THREADS=1) and the compile done
before the timed launches (TF_EMU_JIT_SYNC=1), so CPU seconds per launch are the engine's alone; the
figure is n^3 / CPU seconds. Rounds alternate the engines (a shared machine: compare within one run).
Both engines must print the same checksum (the bits of C).
Usage: .venv/bin/python benchmarks/bench_matmul_kernel.py [--n 512] [--launches 3] [--rounds 2]
       [--engines jit,interp] [--lib-dir DIR] (another build's libcuda.so.1, for before/after runs)
"""
import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "emu"))

from cudabuild import build_cuda, env_with_lib_dir, parse_kv  # noqa: E402
from emu_run import emu_env  # noqa: E402


def run_once(exe: Path, n: int, launches: int, engine: str, lib_dir: str | None) -> dict:
    env = emu_env(TF_EMU_THREADS=1, TF_EMU_ENGINE=engine, TF_EMU_JIT_SYNC=1)
    if lib_dir:
        env = env_with_lib_dir(Path(lib_dir), env)
    p = subprocess.run([str(exe), str(n), str(launches)], env=env, capture_output=True, timeout=3600)
    if p.returncode != 0:
        raise SystemExit(f"matmul_kernel ({engine}) exited {p.returncode}: {p.stdout.decode()} {p.stderr.decode()}")
    return parse_kv(p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--launches", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--engines", default="jit,interp")
    ap.add_argument("--lib-dir", default=None)
    a = ap.parse_args()
    exe = build_cuda("matmul_kernel", src_dir=REPO / "benchmarks")
    best: dict[str, dict] = {}
    for r in range(a.rounds):
        for eng in a.engines.split(","):
            kv = run_once(exe, a.n, a.launches, eng, a.lib_dir)
            print(f"round={r} engine={eng} " + " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)
            if eng not in best or float(kv["gfma_per_cpu_s"]) > float(best[eng]["gfma_per_cpu_s"]):
                best[eng] = kv
    for eng, kv in best.items():
        print(f"best engine={eng} n={kv['n']} cpu_s_per_launch={kv['cpu_s_per_launch']} gfma_per_cpu_s={kv['gfma_per_cpu_s']}")
    sums = {kv["checksum"] for kv in best.values()}
    print(f"same_checksum={int(len(sums) == 1)}")


if __name__ == "__main__":
    main()
