"""CUDA's semantics in the corner cases programs rely on, through the client stub -> tf-executor ->
emulated device: the same programs as tests/emu/test_emu_semantics.py, the same answers."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import run_via_stub, stub_dir

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emu"))
from test_emu_semantics import NEW_THREAD, NULL_FREE, check_launch_errors, check_occupancy  # noqa: E402

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


@pytest.mark.parametrize("cudart", CUDARTS)
def test_launch_errors_come_back_from_the_launch_itself(dataplane, cuda_program, cudart):
    """The stub refuses what the device would (grid/block, dynamic shared memory over the function's limit,
    .maxntid) before queueing the launch, and waits for the worker's answer on cooperative launches."""
    check_launch_errors(kv_of(run_via_stub(cuda_program("launch_errors", cudart=cudart, flags=LCUDA), dataplane.unix)))


def test_occupancy_honours_each_kernels_attributes(dataplane, cuda_program):
    check_occupancy(kv_of(run_via_stub(cuda_program("occupancy"), dataplane.unix)))
