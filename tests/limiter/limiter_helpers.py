"""Helpers for the limiter tests: run a tests/cuda/lim_*.cu program with the limiter preloaded on the
emulated device (or a real GPU), in local-env mode or with a session's shared-memory region."""
import os
import select
import subprocess
import sys
import uuid

from tfclient import native

sys.path.insert(0, str(native.REPO_ROOT / "tests"))
from cudabuild import build_cuda, parse_kv  # noqa: E402,F401  (tests/cudabuild.py: nvcc + cache)

MiB = 1 << 20


def base_env(emulated: bool = True, emu_threads: int = 1) -> dict:
    """Environment without any limiter setting inherited from the caller."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TF_VRAM", "TF_TFLOPS", "TF_DEVICE", "TF_LIMITER", "CUDA_DEVICE_"))}
    env.pop("LD_PRELOAD", None)
    if emulated:
        native.require(native.emu_lib_dir() / "libcuda.so.1")
        env["LD_LIBRARY_PATH"] = f"{native.emu_lib_dir()}:{env.get('LD_LIBRARY_PATH', '')}".rstrip(":")
        env["TF_EMU_THREADS"] = str(emu_threads)
    return env


def limited_env(extra: dict | None = None, emulated: bool = True, emu_threads: int = 1) -> dict:
    env = base_env(emulated, emu_threads)
    env["LD_PRELOAD"] = str(native.require(native.limiter_lib()))
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def run_kv(name: str, *args, env: dict, cudart: str = "static", flags: tuple = (), timeout: float = 120) -> dict:
    exe = build_cuda(name, cudart=cudart, flags=flags)
    p = subprocess.run([str(exe), *map(str, args)], env=env, capture_output=True, timeout=timeout)
    assert p.returncode == 0, f"{name} exited {p.returncode}\n{p.stdout.decode()}\n{p.stderr.decode()}"
    return parse_kv(p.stdout)


def start(name: str, *args, env: dict, cudart: str = "static") -> subprocess.Popen:
    exe = build_cuda(name, cudart=cudart)
    return subprocess.Popen([str(exe), *map(str, args)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def wait_ready(p: subprocess.Popen, timeout: float = 120) -> None:
    """Waits for a started lim_busy to finish its warm-up launch (its "ready=1" line): from then on its
    launches are the steady state, whatever the host's load made the start-up cost."""
    if not select.select([p.stdout], [], [], timeout)[0]:
        p.kill()
        raise AssertionError(f"no ready line within {timeout} s")
    line = p.stdout.readline()
    if line.strip() != b"ready=1":
        out, err = p.communicate(timeout=60)
        raise AssertionError(f"exit {p.returncode} before its first launch finished\n{(line + out).decode()}\n"
                             f"{err.decode()}")


def session_id(tag: str) -> str:
    return f"test-{tag}-{uuid.uuid4().hex[:8]}"
