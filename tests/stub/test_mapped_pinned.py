"""Page-locked host memory that kernels read and write through a device pointer (issue #9, UnifiedMemoryPerf's
latch and zero-copy buffers): cudaMallocHost memory by its host pointer (unified addressing), cudaHostAlloc
(cudaHostAllocMapped) + cudaHostGetDevicePointer, cudaHostRegister of a buffer inside pages and of whole pages.
On the emulated device directly and through the stub with the worker on this host (one memfd mapped by the
client and the GPU worker process at the same address) a user sees the same answers; over TCP the device
cannot reach client memory, and the program is told so: CAN_MAP_HOST_MEMORY is 0 and
cudaHostGetDevicePointer answers cudaErrorNotSupported with a line on stderr."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cudabuild import parse_kv
from dp_helpers import run_via_stub

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emu"))
from emu_run import emu_env  # noqa: E402

# The driver's answers: ALREADY_REGISTERED (712) / NOT_REGISTERED (713), INVALID_VALUE for unknown flags and
# for memory that is not page-locked; cudaMemoryTypeHost (1) with devicePointer == the host pointer.
MAPPED_EXPECT = {
    "can_map": "1", "pinned_uva_read": "1", "pinned_attr_type": "1", "pinned_attr_devptr_same": "1",
    "mapped_devptr": "0", "mapped_same": "1", "mapped_write": "1", "mapped_flags": "2",
    "reg_unaligned": "0", "reg_unaligned_devptr": "0", "reg_unaligned_write": "1",
    "reg_again": "712", "reg_pages_devptr": "0", "reg_pages_kernel": "0", "reg_pages_write": "1",
    "unreg": "0", "unreg_keeps": "1", "unreg_again": "713", "bogus_flags": "1", "devptr_not_pinned": "1",
    "free_host": "0",
}


def test_kernels_use_mapped_page_locked_memory_on_the_emulated_device(cuda_program):
    r = subprocess.run([str(cuda_program("mapped_pinned"))], env=emu_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert parse_kv(r.stdout) == MAPPED_EXPECT


def test_kernels_use_mapped_page_locked_memory_through_the_stub_on_one_host(dataplane, cuda_program):
    r = run_via_stub(cuda_program("mapped_pinned"), dataplane.unix)
    assert r.returncode == 0, r.stdout + r.stderr
    assert parse_kv(r.stdout) == MAPPED_EXPECT


def test_mapped_page_locked_memory_over_tcp_is_refused_clearly(dataplane, cuda_program):
    r = run_via_stub(cuda_program("mapped_pinned"), dataplane.tcp)
    assert r.returncode == 0, r.stdout + r.stderr
    assert parse_kv(r.stdout) == {"can_map": "0", "devptr_unmapped": "801", "bogus_flags": "1"}
    assert "cuMemHostGetDevicePointer" in r.stderr and "on this host" in r.stderr
