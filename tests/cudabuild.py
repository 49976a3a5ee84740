"""Compiling CUDA test programs (tests/cuda/*.cu, examples/*.cu) with nvcc for the test suite.

Imported by tests/conftest.py (fixtures) and directly by test modules: `from cudabuild import build_cuda`.

Test programs are built with a PTX-only target (compute_80) so the emulated device can run
them, with nvcc's default compression (what users ship) unless a test asks otherwise.
Built binaries are cached in build/cuda/ keyed by source (with the local headers it includes), flags and
cudart mode.
"""
import hashlib
import os
import re
import subprocess
from pathlib import Path

from tfclient import native

REPO = native.REPO_ROOT
CUDA_SRC = REPO / "tests" / "cuda"
PTX_ARCH = ["-gencode", "arch=compute_80,code=compute_80"]


def find_nvcc() -> str:
    nvcc = native.find_nvcc()
    if nvcc:
        return nvcc
    raise RuntimeError("nvcc not found: run `make setup` (installs it from PyPI when missing)")


def _source_bytes(src: Path) -> bytes:
    """The source and the headers beside it that it includes ("tf_test_io.h"): a change to either rebuilds."""
    text = src.read_bytes()
    headers = sorted(set(re.findall(rb'^\s*#\s*include\s+"([^"]+)"', text, re.M)))
    return text + b"".join((src.parent / h.decode()).read_bytes() for h in headers
                           if (src.parent / h.decode()).is_file())


def build_cuda(name: str, cudart: str = "static", flags: tuple = (), arch: list | None = None,
               src_dir: Path = CUDA_SRC) -> Path:
    """Compiles <src_dir>/<name>.cu (default tests/cuda; cudart 'static' or 'shared'), returns the binary path."""
    src = src_dir / f"{name}.cu"
    arch = PTX_ARCH if arch is None else arch
    args = [*arch, f"-cudart={cudart}", *flags]
    key = hashlib.sha256(_source_bytes(src) + repr(args).encode()).hexdigest()[:12]
    out = native.build_dir() / "cuda" / f"{name}-{cudart}-{key}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        subprocess.run([find_nvcc(), "-O2", "-o", str(tmp), str(src), *args], check=True)
        tmp.rename(out)
    return out


def build_example(name: str) -> Path:
    """Compiles one of the bundled demo programs, examples/<name>.cu."""
    return build_cuda(name, src_dir=REPO / "examples")


def env_with_lib_dir(lib_dir: Path, base: dict | None = None) -> dict:
    """Environment that makes a program load libcuda.so.1 from lib_dir first."""
    env = dict(os.environ if base is None else base)
    env["LD_LIBRARY_PATH"] = f"{lib_dir}:{env.get('LD_LIBRARY_PATH', '')}".rstrip(":")
    return env


def parse_kv(text: str | bytes) -> dict:
    """The "key=value" lines a test program prints (the I/O contract of tests/cuda/*.cu), as a dict."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def write_arrays(path, *arrays):
    """The input file of a test program (the I/O contract of tests/cuda/*.cu): the arrays' raw bytes (numpy
    arrays, C order) one after the other. Returns path."""
    import numpy as np
    with open(path, "wb") as f:
        for a in arrays:
            f.write(np.ascontiguousarray(a).tobytes())
    return path


def nvidia_cu13_dir() -> Path:
    """The pip-installed CUDA 13 libraries (nvidia-cublas, nvidia-cuda-nvrtc: the test-libs extra): the folder
    holding include/ and lib/ (libcublas.so.13, libcublasLt.so.13)."""
    import importlib.util
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        d = Path(root) / "cu13"
        if (d / "lib" / "libcublas.so.13").exists():
            return d
    raise RuntimeError("libcublas.so.13 not found: install the test-libs extra (nvidia-cublas==13.0.*)")


def build_with_cublas(name: str) -> Path:
    """Compiles tests/cuda/<name>.cu against pip's libcublas (cudart static); the binary finds
    libcublas.so.13 / libcublasLt.so.13 by its rpath, libcuda.so.1 on LD_LIBRARY_PATH as usual."""
    d = nvidia_cu13_dir()
    lib = d / "lib"
    # pip ships only the versioned names (no libcublas.so): -l:FILE; rpath-link finds libcublasLt for ld
    return build_cuda(name, flags=(f"-I{d / 'include'}", f"-L{lib}", "-l:libcublas.so.13",
                                   f"-Xlinker=-rpath={lib}", f"-Xlinker=-rpath-link={lib}"))
