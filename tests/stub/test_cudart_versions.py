"""Programs linked against other CUDA runtimes than the toolkit's 13.0: cudart 12.8 (what PyTorch wheels
ship) and the newest 13.5, each starting up on the emulated device directly and through the remote stub.
Each cudart version asks libcuda for its own set of export tables (emu_c/cudart_export_tables.c, shared by
both libcuda builds); `make setup` puts the runtime libraries in .venv/cudart/<version>."""
import glob
import os
import subprocess
from pathlib import Path

import pytest

from cudabuild import PTX_ARCH, CUDA_SRC, env_with_lib_dir, find_nvcc, parse_kv
from dp_helpers import stub_env
from tfclient import native

RUNTIMES = {"12.8": 12080, "13.5": 13050}   # version -> cudaRuntimeGetVersion()


def runtime_lib_dir(version: str) -> Path:
    found = glob.glob(str(native.REPO_ROOT / ".venv" / "cudart" / version / "nvidia" / "*" / "lib" / "libcudart.so.*"))
    assert found, f"cudart {version} missing from .venv/cudart: run `make setup`"
    return Path(found[0]).parent


def build_against(version: str, name: str = "device_query") -> Path:
    """tests/cuda/<name>.cu compiled by the toolkit's nvcc, linked against cudart <version> (shared)."""
    lib_dir = runtime_lib_dir(version)
    out = native.build_dir() / "cuda" / f"{name}-cudart{version}"
    if out.exists():
        return out
    link_dir = out.parent / f"cudart{version}-link"
    link_dir.mkdir(parents=True, exist_ok=True)
    so = next(lib_dir.glob("libcudart.so.*"))
    if not (link_dir / "libcudart.so").exists():
        os.symlink(so, link_dir / "libcudart.so")
    obj = out.with_suffix(".o")
    subprocess.run([find_nvcc(), "-O2", *PTX_ARCH, "-c", "-o", str(obj), str(CUDA_SRC / f"{name}.cu")], check=True)
    subprocess.run([find_nvcc(), "-cudart=shared", "-L", str(link_dir), "-Xlinker", f"-rpath={lib_dir}",
                    "-o", str(out), str(obj)], check=True)
    return out


@pytest.mark.parametrize("version", sorted(RUNTIMES))
def test_other_cudart_versions_start_on_the_emulated_device(version):
    program = build_against(version)
    # TF_EMU_TRACE=1: unknown tables are logged (quiet otherwise: libraries probe for tables they can do without)
    r = subprocess.run([str(program)], env=env_with_lib_dir(native.emu_lib_dir(), dict(os.environ, TF_EMU_TRACE="1")),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = parse_kv(r.stdout)
    assert int(out["runtime_version"]) == RUNTIMES[version]      # really that cudart, not the toolkit's
    assert "Emulated" in out["name"]
    assert "unknown table" not in r.stderr and "unimplemented slot" not in r.stderr


@pytest.mark.parametrize("version", sorted(RUNTIMES))
def test_other_cudart_versions_start_through_the_remote_stub(version, standalone_dataplane):
    unix, _ = standalone_dataplane()
    program = build_against(version)
    r = subprocess.run([str(program)], env=dict(stub_env(unix, ""), TF_STUB_DEBUG="1"), capture_output=True,
                       text=True, timeout=120)                   # TF_STUB_DEBUG: unknown tables are logged
    assert r.returncode == 0, r.stdout + r.stderr
    out = parse_kv(r.stdout)
    assert int(out["runtime_version"]) == RUNTIMES[version]
    assert "Emulated" in out["name"]
    assert "unknown table" not in r.stderr
