"""CUDA's semantics in the corner cases programs rely on, on the emulated device directly (the same
programs run through the client stub in tests/stub/test_semantics.py and must give the same answers):
freeing NULL, host threads that never call cudaSetDevice, launch errors, occupancy, device printf."""
from __future__ import annotations

import pytest

from emu_run import run_kv
from tfclient import native

CUDARTS = ["static", "shared"]
LCUDA = (f"-L{native.emu_lib_dir()}", "-lcuda")

# What NVIDIA's driver answers (cudaFree/cudaFreeAsync/cuMemFree of 0 and cuMemFreeHost(NULL) are no-ops;
# cuMemHostUnregister(NULL) is not). Shared with tests/stub/test_semantics.py.
NULL_FREE = {
    "first_cudaFree0": "cudaSuccess", "cudaFree0": "cudaSuccess", "cudaFreeHost0": "cudaSuccess",
    "cudaFreeAsync0": "cudaSuccess", "cuMemFree0": "CUDA_SUCCESS", "cuMemFreeHost0": "CUDA_SUCCESS",
    "cuMemFreeAsync0": "CUDA_SUCCESS", "cuMemHostUnregister0": "CUDA_ERROR_INVALID_VALUE",
    "double_free": "CUDA_ERROR_INVALID_VALUE", "after": "cudaSuccess",
}
NEW_THREAD = {"main": "cudaSuccess", "thread_stream": "cudaSuccess", "thread_device": "cudaSuccess:0",
              "thread_work": "cudaSuccess", "thread_ctx": "same"}


@pytest.mark.parametrize("cudart", CUDARTS)
def test_freeing_null_is_a_no_op_where_cuda_says_so(cudart):
    kv = run_kv("null_free", cudart=cudart, flags=LCUDA)
    assert {k: kv.get(k) for k in NULL_FREE} == NULL_FREE


@pytest.mark.parametrize("cudart", CUDARTS)
def test_a_new_host_thread_uses_the_device_without_cudaSetDevice(cudart):
    kv = run_kv("new_thread", cudart=cudart, flags=LCUDA)
    assert {k: kv.get(k) for k in NEW_THREAD} == NEW_THREAD
