"""CUDA's semantics in the corner cases programs rely on, through the client stub -> tf-executor ->
emulated device: the same programs as tests/emu/test_emu_semantics.py, the same answers."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import run_via_stub, stub_dir

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emu"))
from test_emu_semantics import NEW_THREAD, NULL_FREE  # noqa: E402

CUDARTS = ["static", "shared"]
LCUDA = ("-L", str(stub_dir()), "-lcuda")


def kv_of(r) -> dict:
    assert r.returncode == 0, r.stdout + r.stderr
    return parse_kv(r.stdout)


@pytest.mark.parametrize("cudart", CUDARTS)
def test_freeing_null_is_a_no_op_where_cuda_says_so(dataplane, cuda_program, cudart):
    kv = kv_of(run_via_stub(cuda_program("null_free", cudart=cudart, flags=LCUDA), dataplane.unix))
    assert {k: kv.get(k) for k in NULL_FREE} == NULL_FREE


@pytest.mark.parametrize("cudart", CUDARTS)
def test_a_new_host_thread_uses_the_device_without_cudaSetDevice(dataplane, cuda_program, cudart):
    kv = kv_of(run_via_stub(cuda_program("new_thread", cudart=cudart, flags=LCUDA), dataplane.unix))
    assert {k: kv.get(k) for k in NEW_THREAD} == NEW_THREAD
