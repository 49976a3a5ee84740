"""`tensorfusion demo`: builds the bundled samples (examples/*.cu) with nvcc and runs each through
`tensorfusion run`, printing what happened. It says plainly which layer is missing instead of pretending.
"""
import subprocess
import sys
from pathlib import Path

from tfclient import config, embedded, native

EXAMPLES = native.REPO_ROOT / "examples"
SAMPLES = [  # (program, vGPU request flags)
    ("device_query", ["--tflops", "0.001", "--vram", "1Gi"]),
    ("vector_add", ["--tflops", "0.001", "--vram", "256Mi"]),
    ("matmul", ["--tflops", "0.002", "--vram", "256Mi", "--qos", "high"]),
]


def build(name: str, nvcc: str) -> Path:
    out = native.build_dir() / "examples" / name
    src = EXAMPLES / f"{name}.cu"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        out.parent.mkdir(parents=True, exist_ok=True)
        # PTX target: runs on the emulated device and is JIT-compiled by NVIDIA's driver on any newer GPU.
        subprocess.run([nvcc, "-O2", "-gencode", "arch=compute_80,code=compute_80", "-o", str(out), str(src)],
                       check=True)
    return out


def missing_layers() -> list[str]:
    needed = {
        "client stub (build/stub/libcuda.so.1)": native.stub_lib_dir() / "libcuda.so.1",
        "GPU worker executor (build/bin/tf-executor)": native.executor_bin(),
        "emulated device (build/emu/libcuda.so.1)": native.emu_lib_dir() / "libcuda.so.1",
    }
    return [what for what, path in needed.items() if not path.exists()]


def run() -> int:
    missing = missing_layers()
    if missing:
        print("demo: these layers are not built or not implemented yet, so the demo cannot run end to end:")
        for what in missing:
            print(f"  - {what}")
        print("demo: run `make native`; if it is built and still missing, that layer has not landed yet.")
        return 1
    nvcc = native.find_nvcc()
    if not nvcc:
        print("demo: nvcc not found; `make setup` installs it from PyPI")
        return 1
    started_here = config.scheduler_address() is None
    if started_here:
        embedded.start_background()
    try:
        return run_samples(nvcc)
    finally:
        if started_here:
            embedded.stop_background()
            print("demo: stopped the embedded default it had started")


def run_samples(nvcc: str) -> int:
    failures = 0
    for name, flags in SAMPLES:
        binary = build(name, nvcc)
        cmd = [sys.executable, "-m", "tfclient.cli", "run", *flags, "--", str(binary)]
        print(f"\n$ tensorfusion run {' '.join(flags)} -- {binary.name}")
        proc = subprocess.run(cmd)
        if proc.returncode != 0:
            failures += 1
            print(f"demo: {name} exited with {proc.returncode}")
    print()
    subprocess.run([sys.executable, "-m", "tfclient.cli", "status"])
    print(f"\ndemo: {len(SAMPLES) - failures}/{len(SAMPLES)} samples ran correctly through the vGPU")
    return 1 if failures else 0
