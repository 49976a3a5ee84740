"""Helpers for the emulated-device tests: run a tests/cuda program against build/emu/libcuda.so.1
and parse its "key=value" output lines."""
import os
import subprocess

from cudabuild import CUDA_SRC, PTX_ARCH, build_cuda, env_with_lib_dir, find_nvcc, parse_kv  # noqa: F401
from tfclient import native


def emu_env(**extra) -> dict:
    """Environment that loads the emulated libcuda.so.1 (and nothing from a real driver)."""
    native.require(native.emu_lib_dir() / "libcuda.so.1")
    env = env_with_lib_dir(native.emu_lib_dir())
    env.setdefault("TF_EMU_THREADS", "2")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_program(name: str, *args, cudart: str = "static", flags: tuple = (), arch=None, env=None,
                timeout: float = 120, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    exe = build_cuda(name, cudart=cudart, flags=flags, arch=arch)
    return subprocess.run([str(exe), *map(str, args)], env=env or emu_env(), capture_output=True,
                          timeout=timeout, input=stdin)


def run_kv(name: str, *args, **kw) -> dict:
    """Runs the program, asserts exit 0, returns its key=value output."""
    p = run_program(name, *args, **kw)
    assert p.returncode == 0, f"{name} exited {p.returncode}\nstdout:\n{p.stdout.decode()}\nstderr:\n{p.stderr.decode()}"
    return parse_kv(p.stdout)


def repo_file(*parts) -> str:
    return os.path.join(native.REPO_ROOT, *parts)
