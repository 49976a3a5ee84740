"""Managed memory through the remote stub: cudaMallocManaged memory is mapped at the same address in the
client and in the GPU worker process and kept coherent at calls and synchronizes; __managed__ variables,
whose address the worker's module picks, are refused with a message instead of a fault."""
import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import run_via_stub

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emu"))
from test_emu_semantics import ATTACH  # noqa: E402


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_managed_allocation_is_coherent_between_host_and_remote_kernels(dataplane, cuda_program, cudart):
    n = 100_000
    r = run_via_stub(cuda_program("managed_alloc", cudart=cudart), dataplane.unix, n)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert kv["managed_attr"] == "1"
    first = n + n * (n - 1) // 2                   # host's ones + the kernel's indices
    assert int(kv["first"]) == first
    assert int(kv["second"]) == first + 999 + n * (n - 1) // 2   # host set a[0]=1000, kernel added again
    assert int(kv["copy"]) == int(kv["second"])     # device-side copy into a second managed region
    assert kv["freed"] == "ok"


def test_managed_variables_are_refused_with_a_message(dataplane, cuda_program):
    r = run_via_stub(cuda_program("managed_var"), dataplane.unix, 3)
    assert r.returncode != 0
    assert "__managed__ variable counter: not supported through the remote stub" in r.stderr


def test_host_and_device_system_atomics_on_one_managed_counter_both_count(dataplane, cuda_program):
    # systemWideAtomics: atomicAdd_system in a kernel while the host __sync_fetch_and_adds the same managed int
    r = run_via_stub(cuda_program("managed_both_sides"), dataplane.unix, "atomics")
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert kv["atomic_sum"] == kv["atomic_expected"] == str(64 * 256 * 50 + 100000)


@pytest.mark.parametrize("link", ["unix", "tcp"])
def test_host_and_device_writes_to_different_bytes_of_a_managed_range_both_survive(dataplane, cuda_program, link):
    # the host fills the lower half while the kernel fills the upper half, between one launch and its synchronize;
    # over TCP (no shared memory) the copies are merged, on one host both sides share the bytes
    r = run_via_stub(cuda_program("managed_both_sides"), getattr(dataplane, link), "disjoint")
    assert r.returncode == 0, r.stdout + r.stderr
    assert parse_kv(r.stdout)["disjoint_bad"] == "0"


@pytest.mark.parametrize("link", ["unix", "tcp"])
def test_stream_attach_of_managed_memory_answers_as_on_the_device(dataplane, cuda_program, link):
    # UnifiedMemoryPerf stopped at cudaStreamAttachMemAsync (36) through the stub
    r = run_via_stub(cuda_program("managed_attach"), getattr(dataplane, link))
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert {k: kv.get(k) for k in ATTACH} == ATTACH
