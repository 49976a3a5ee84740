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
