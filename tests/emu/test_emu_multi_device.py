"""TF_EMU_DEVICES: the emulated device as several identical GPUs with peer access (emu_c/README.md, "TF_EMU_DEVICES").
tests/cuda/multi_device.cu runs on build/emu/libcuda.so.1 with cudart static and shared: device count, per-device
attributes, UUIDs and PCI ids, per-device primary contexts, cuCtxCreate on device 1, allocation ordinals, per-device
memory accounting, peer access return codes as CUDA documents them, peer copies (1D, async, 3D) and a kernel on
device 1 reading device 0's memory checked against host values, per-device mem pools and their access, and the
illegal-address fault of a kernel touching another device's memory without peer access (or pool access). Unset, the
device count stays 1 (the rest of tests/emu relies on it)."""
import pytest

from emu_run import emu_env, run_kv, run_program
from tfclient import native

LCUDA = (f"-L{native.emu_lib_dir()}", "-lcuda")

EXPECTED_TWO = {
    "count": "2",
    "get_past_count": "CUDA_ERROR_INVALID_DEVICE",
    "name_same": "1",
    "uuid_distinct": "1",
    "pci0": "00000000:01:00.0",
    "pci1": "00000000:02:00.0",
    "by_pci1": "1",
    "attrs_same": "1",
    "pci_bus_distinct": "1",
    "total_same": "1",
    "primaries_distinct": "1",
    "primary1_active": "1",
    "primary1_device": "1",
    "primary1_release_restores": "1",
    "primary0_active": "1",
    "created_device": "1",
    "created_alloc_ordinal": "1",
    "dev1_free_drop_ok": "1",
    "vmm_dev0_ordinal": "0",
    "created_alloc_ctx_is_c1": "1",
    "runtime_current": "1",
    "ordinal_a0": "0",
    "ordinal_a1": "1",
    "dev0_free_unaffected": "1",
    "can01": "1",
    "can10": "1",
    "can00": "0",
    "p2p_access_supported": "1",
    "p2p_same_device": "CUDA_ERROR_INVALID_DEVICE",
    "enable_first": "CUDA_SUCCESS",
    "enable_again": "CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED",
    "enable_own": "CUDA_ERROR_INVALID_DEVICE",
    "disable_first": "CUDA_SUCCESS",
    "disable_again": "CUDA_ERROR_PEER_ACCESS_NOT_ENABLED",
    "rt_enable": "cudaSuccess",
    "rt_enable_again": "cudaErrorPeerAccessAlreadyEnabled",
    "peer_copy_ok": "1",
    "kernel_peer_read_ok": "1",
    "peer_copy_async_ok": "1",
    "launch_other_device_stream": "cudaErrorInvalidResourceHandle",
    "peer_copy_3d_ok": "1",
    "stream_ctx_is_dev1": "1",
    "stream_device": "1",
    "record_other_device_stream": "cudaErrorInvalidResourceHandle",
    "pools_distinct": "1",
    "pool_own_access": "3",           # cudaMemAccessFlagsProtReadWrite
    "pool_peer_access_before": "0",   # cudaMemAccessFlagsProtNone
    "pool_peer_access_after": "3",
    "pool_own_none": "cudaErrorInvalidValue",
    "pool0_alloc_ordinal": "0",
    "pool_kernel_ok": "1",
    "pool_grant_without_peer_ok": "1",
    "no_peer_kernel": "cudaErrorIllegalAddress",  # a GPU faults on a peer's memory without peer access
    "dev0_after_dev1_fault": "cudaSuccess",
    "dev0_memory_intact": "1",
    "done": "1",
}


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_two_devices_answer_per_device_and_peer_access_works_as_cuda_documents(cudart):
    kv = run_kv("multi_device", cudart=cudart, flags=LCUDA, env=emu_env(TF_EMU_DEVICES=2))
    wrong = {k: (kv.get(k), v) for k, v in EXPECTED_TWO.items() if kv.get(k) != v}
    assert not wrong, wrong


def test_unset_means_one_device_and_ordinal_one_is_refused():
    kv = run_kv("multi_device", flags=LCUDA, env=emu_env())
    assert kv == {"count": "1", "get_past_count": "CUDA_ERROR_INVALID_DEVICE", "single": "1"}


def test_eight_devices_are_accepted():
    kv = run_kv("device_query", env=emu_env(TF_EMU_DEVICES=8))
    assert kv["count"] == "8", kv


@pytest.mark.parametrize("value", ["0", "abc", "9", "-1", "2.0"])
def test_a_device_count_outside_1_to_8_fails_cuinit_with_one_line(value):
    p = run_program("device_query", env=emu_env(TF_EMU_DEVICES=value))
    assert p.returncode != 0 and "error=cudaErrorInvalidValue" in p.stdout.decode(), p.stdout
    lines = [line for line in p.stderr.decode().splitlines() if "is not accepted" in line]
    assert len(lines) == 1 and lines[0].startswith("tf-emu: ")
    assert f"TF_EMU_DEVICES={value} is not accepted" in lines[0] and "from 1 to 8" in lines[0]


# tests/cuda/multi_device_owners.cu: what belongs to device 1 answers for device 1 while device 0 is current
OWNERS_EXPECTED = {
    "count": "2",
    # an event records on a stream of its own context only (cuEventRecord); the NULL stream is the current one's
    "record_own_stream": "CUDA_SUCCESS",
    "record_null_stream": "CUDA_ERROR_INVALID_HANDLE",
    "record_other_stream": "CUDA_ERROR_INVALID_HANDLE",
    "record_other_context": "CUDA_ERROR_INVALID_HANDLE",
    "record_other_context_null": "CUDA_ERROR_INVALID_HANDLE",
    "destroyed_ctx_free_host": "CUDA_ERROR_INVALID_VALUE",  # cuCtxDestroy freed it
    # queries, synchronizes, waits, host functions, callbacks and copies work across devices (Programming Guide)
    "sync_other_event": "CUDA_SUCCESS",
    "query_other_event": "CUDA_SUCCESS",
    "elapsed_other_device": "CUDA_SUCCESS",
    "elapsed_two_devices": "CUDA_ERROR_INVALID_HANDLE",  # "will fail if the two events are of different devices"
    "elapsed_two_devices_reversed": "CUDA_ERROR_INVALID_HANDLE",
    "wait_other_event": "CUDA_SUCCESS",
    "wait_on_other_stream": "CUDA_SUCCESS",
    "host_func_other_stream": "CUDA_SUCCESS",
    "callback_other_stream": "CUDA_SUCCESS",
    "copy_other_stream": "CUDA_SUCCESS",
    "sync_other_stream": "CUDA_SUCCESS",
    "host_func_ran": "1",
    "callback_ran": "1",
    "query_other_stream": "CUDA_SUCCESS",
    "copy_other_stream_ok": "1",
    # page-locked host memory: the device (and context) current when it was allocated or registered
    "allochost_ordinal": "1",
    "allochost_ctx_is_p1": "1",
    "hostalloc_ordinal": "1",
    "hostalloc_ctx_is_p1": "1",
    "registered_ordinal": "1",
    "registered_ctx_is_p1": "1",
    "allochost_attrs": "1,1",
    "registered_attrs": "1,1",
    "managed_is_managed": "1",
    "managed_attrs": "1,1",
    # graph memory: the alloc node's pool location (a captured allocation: the capturing stream's device)
    "graph_mem_ordinal": "1",
    "graph_mem_node_location": "1",
    "captured_mem_ordinal": "1",
    "captured_node_location": "1",
    # pointers of device 1's IPC pool imported by another process: the pool's device
    "pool_export": "CUDA_SUCCESS",
    "child_ipc_ordinal": "1",
    "child_ipc_ctx_is_p1": "1",
    "child_ipc_attrs": "1,1",
    "child_ipc_data": str(0xC0FFEE),
    "child_status": "0",
    # what the reset context held is gone: the driver no longer knows these addresses
    "reset_active": "0",
    "reset_attr_host": "CUDA_ERROR_INVALID_VALUE",
    "reset_attr_dev": "CUDA_ERROR_INVALID_VALUE",
    "reset_host_flags": "CUDA_ERROR_INVALID_VALUE",
    "reset_free_host": "CUDA_ERROR_INVALID_VALUE",
    "reset_free_hostalloc": "CUDA_ERROR_INVALID_VALUE",
    "reset_unregister": "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED",
    "reset_free_dev": "CUDA_ERROR_INVALID_VALUE",
    "reset_free_managed": "CUDA_ERROR_INVALID_VALUE",
    "done": "1",
}


def test_handles_and_addresses_of_device_1_answer_for_device_1_while_device_0_is_current():
    kv = run_kv("multi_device_owners", flags=LCUDA, env=emu_env(TF_EMU_DEVICES=2))
    wrong = {k: (kv.get(k), v) for k, v in OWNERS_EXPECTED.items() if kv.get(k) != v}
    assert not wrong and set(kv) == set(OWNERS_EXPECTED), (wrong, set(kv) ^ set(OWNERS_EXPECTED))


def test_one_device_skips_the_owner_checks():
    assert run_kv("multi_device_owners", flags=LCUDA, env=emu_env()) == {"count": "1", "single": "1"}
