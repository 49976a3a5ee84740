"""CUDA IPC on the emulated device directly: a cudaMalloc buffer and an interprocess event exported by one
process are opened by another (a copy of the program started with fork + exec, as NVIDIA's simpleIPC does),
which sees the exporter's data and whose kernel's writes the exporter then reads. The same program runs
through the client stub in tests/stub/test_ipc.py and must give the same answers."""
from __future__ import annotations

import pytest

from emu_run import run_kv

# What a user sees, per the driver API documentation (cuIpcGetMemHandle wants an allocation's base;
# cuIpcOpenMemHandle refuses the exporting process - CUDA_ERROR_INVALID_CONTEXT, which cudart names
# cudaErrorDeviceUninitialized - and counts repeated opens; cuIpcCloseMemHandle only takes what
# cuIpcOpenMemHandle returned; cuIpcGetEventHandle needs CU_EVENT_INTERPROCESS | CU_EVENT_DISABLE_TIMING).
# Shared with tests/stub/test_ipc.py.
IPC_EXPECT = {
    "same_handle": "1", "open_self": "cudaErrorDeviceUninitialized", "get_offset": "cudaErrorInvalidValue",
    "close_not_opened": "cudaErrorInvalidValue", "open_bogus": "cudaErrorInvalidValue",
    "event_no_ipc_flag": "cudaErrorInvalidValue",
    "child_open": "ok", "child_same_ptr": "1", "child_saw_parent": "1", "child_event": "ok",
    "child_close_again": "cudaErrorInvalidValue", "child_status": "0", "parent_sees_child": "1",
    # the exporter freed the buffer: its handle no longer opens (the driver leaves this undefined; we refuse)
    "open_freed": "cudaErrorInvalidResourceHandle",
    # the importer's free memory does not drop: the bytes are the exporter's
    "child_free_delta": "0",
}


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_ipc_memory_and_event_handles_work_between_two_processes(cudart):
    kv = run_kv("ipc", cudart=cudart)
    assert {k: kv.get(k) for k in IPC_EXPECT} == IPC_EXPECT


# Stream-ordered memory pools between processes (NVIDIA's streamOrderedAllocationIPC), per the driver API
# documentation: CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES reports POSIX file descriptors; a pool
# created without a handle type cannot be exported (INVALID_VALUE); cuMemPoolExportPointer wants an allocation
# of an IPC pool; an imported pool makes no allocations and refuses another pool's pointer data (the sample
# finds each pool's pointer by that error); the importer's writes are the exporter's memory and not charged
# to it; cuMemPoolDestroy with an allocation outstanding returns at once and the memory lives until freed.
# Win32 handles do not exist here (NOT_SUPPORTED). Shared with tests/stub/test_vmm_ipc.py.
MEMPOOL_IPC_EXPECT = {
    "handle_types": "1", "export_plain": "cudaErrorInvalidValue", "create_win32": "cudaErrorNotSupported",
    "export": "cudaSuccess", "fd_valid": "1", "export_ptr_plain": "cudaErrorInvalidValue",
    "export_ptr_inside": "cudaErrorInvalidValue", "import_bogus": "cudaErrorInvalidValue",
    "child_import": "cudaSuccess", "child_access": "3", "child_import_ptr": "cudaSuccess", "child_free_delta": "0",
    "child_same_ptr": "1", "child_wrong_pool": "cudaErrorInvalidValue",
    "child_alloc_imported": "cudaErrorInvalidValue", "child_saw_parent": "1", "child_kernel": "cudaSuccess",
    "child_free": "cudaSuccess", "child_destroy": "cudaSuccess", "child_status": "0", "parent_sees_child": "1",
    "destroy_outstanding": "cudaSuccess", "outstanding_usable": "1", "outstanding_free": "cudaSuccess",
}


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_mempool_export_import_shares_pool_allocations_between_two_processes(cudart):
    kv = run_kv("mempool_ipc", cudart=cudart)
    assert {k: kv.get(k) for k in MEMPOOL_IPC_EXPECT} == MEMPOOL_IPC_EXPECT


# An interprocess event orders work across processes (CUDA: a cudaStreamWaitEvent on an event opened with
# cudaIpcOpenEventHandle waits for the exporter's - or any process's - most recent record): the child's record
# follows a ~1.5 s kernel; the parent's query right after it is issued says not ready, and the parent's copy
# ordered after the event sees the kernel's values (NVIDIA's simpleIPC with two devices relies on it).
@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_an_interprocess_event_orders_the_parents_work_after_the_childs_record(cudart):
    kv = run_kv("ipc_event_order", cudart=cudart, timeout=120)
    assert kv == {"query_while_child_runs": "cudaErrorNotReady", "waited_copy_ok": "1", "sync_ok": "1",
                  "child_status": "0"}, kv
