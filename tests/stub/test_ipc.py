"""CUDA IPC through the client stub: two client processes on one worker are two sessions with two GPU worker
processes; a handle exported by the first (a cudaMalloc buffer, an interprocess event) opens in the second,
whose executor maps the first's memory. The same program and expectations as on the emulated device
directly (tests/emu/test_emu_ipc.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import run_ipc_child_in_allocation, run_via_stub

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emu"))
from test_emu_ipc import IPC_EXPECT  # noqa: E402


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_ipc_memory_and_event_handles_work_between_two_client_processes(dataplane, cuda_program, cudart):
    r = run_via_stub(cuda_program("ipc", cudart=cudart), dataplane.unix)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert {k: kv.get(k) for k in IPC_EXPECT} == IPC_EXPECT
    assert "not supported" not in r.stderr


@pytest.mark.parametrize("child_lease,opens", [("alloc-1", True), ("alloc-2", False)])
def test_ipc_handles_open_only_in_sessions_of_the_exporting_allocation(tmp_path, cuda_program, child_lease, opens):
    kv = parse_kv(run_ipc_child_in_allocation(tmp_path, cuda_program("ipc"), child_lease).stdout)
    if opens:   # 64 zero bytes are no handle of this allocation either: refused by the policy before the driver
        assert {k: kv.get(k) for k in IPC_EXPECT} == {**IPC_EXPECT, "open_bogus": "cudaErrorNotPermitted"}
    else:   # another tenant's memory never maps, whatever handle it is given
        assert kv["child_open"] == "cudaErrorNotPermitted"
        assert kv["parent_sees_child"] == "0"
