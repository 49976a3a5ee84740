"""2D/3D copies with pitched device memory and CUDA arrays, and the 1D array copies (tests/cuda/copy_kinds.cu):
sync and async, from pageable and pinned host memory, small and large, every byte checked against a host model
of the copy (offsets, pitches, rows per slice, the bytes around the box) - on the emulated device directly, and
through the stub over a Unix socket (the shared-memory window, stub_c/transport.c tf_shm_copy) and over TCP
(host rows packed into frames, a row wider than a frame in parts; asynchronous 2D/3D copies to device memory
take that path on Unix too). `order`: each asynchronous copy on a non-blocking stream comes after a kernel
that spins until a host thread releases it and then fills the copy's device side; a pageable source
overwritten as soon as the call returned must not reach the device (the emulator stages a queued copy)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import run_via_stub, stub_dir, stub_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emu"))
from emu_run import emu_env  # noqa: E402

TIMEOUT = 300
CASES = {"small": 48, "large": 48, "wide": 8, "order": 24}


def _args(which: str) -> tuple:
    return ("order",) if which == "order" else ("bytes", which)


def _check(r: subprocess.CompletedProcess, which: str) -> None:
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    kv = parse_kv(r.stdout)
    assert kv.pop("cases") == str(CASES[which])
    assert len(kv) == CASES[which] and set(kv.values()) == {"ok"}, kv


@pytest.fixture
def copy_kinds(cuda_program):
    return cuda_program("copy_kinds", flags=("-L", str(stub_dir()), "-lcuda"))


@pytest.mark.parametrize("which", list(CASES))
def test_copy_kinds_on_the_emulated_device(copy_kinds, which):
    r = subprocess.run([str(copy_kinds), *_args(which)], env=emu_env(), capture_output=True, text=True,
                       timeout=TIMEOUT)
    _check(r, which)


@pytest.mark.parametrize("which", list(CASES))
def test_copy_kinds_through_the_shared_memory_window(dataplane, copy_kinds, which):
    _check(run_via_stub(copy_kinds, dataplane.unix, *_args(which), timeout=TIMEOUT), which)


# rows wider than a frame travel in parts of one frame; `order`'s kernel spins on page-locked memory, which the
# worker shares only on the same host
@pytest.mark.parametrize("which", ["small", "large", "wide"])
def test_copy_kinds_through_the_socket(dataplane, copy_kinds, which):
    _check(run_via_stub(copy_kinds, dataplane.tcp, *_args(which), timeout=TIMEOUT), which)


def test_wide_rows_over_a_unix_socket_without_the_window(dataplane, copy_kinds):
    env = stub_env(dataplane.unix)
    env["TF_SHM"] = "0"
    r = subprocess.run([str(copy_kinds), "bytes", "wide"], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    _check(r, "wide")
