"""CUDA IPC through the client stub: two client processes on one worker are two sessions with two GPU worker
processes; a handle exported by the first (a cudaMalloc buffer, an interprocess event) opens in the second,
whose executor maps the first's memory. The same program and expectations as on the emulated device
directly (tests/emu/test_emu_ipc.py)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import InProcessDataPlane, run_via_stub, stub_env
from tfworker.daemon import ipc_scope_dir
from tfworker.dataplane import SessionGrant

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
    # the worker daemon names each session's allocation in TF_IPC_SCOPE; here the lease token is the allocation
    async def authorize(token: bytes) -> SessionGrant:
        return SessionGrant(session_id=f"s-{token.decode()}-{len(tokens)}", env={"TF_IPC_SCOPE": token.decode()})
    tokens: list[str] = []
    dp = InProcessDataPlane(tmp_path, authorize=authorize)
    try:
        env = stub_env(dp.unix, lease="alloc-1")
        env["IPC_CHILD_LEASE"] = child_lease
        r = subprocess.run([str(cuda_program("ipc"))], env=env, capture_output=True, text=True, timeout=120)
    finally:
        dp.close()
    assert r.returncode == 0, r.stdout + r.stderr
    marks = Path(ipc_scope_dir("alloc-1"))   # where the exporting executor marked its handles; the daemon
    assert marks.is_dir() and any(marks.iterdir())   # removes it with the allocation's last session
    shutil.rmtree(marks)
    kv = parse_kv(r.stdout)
    if opens:   # 64 zero bytes are no handle of this allocation either: refused by the policy before the driver
        assert {k: kv.get(k) for k in IPC_EXPECT} == {**IPC_EXPECT, "open_bogus": "cudaErrorNotPermitted"}
    else:   # another tenant's memory never maps, whatever handle it is given
        assert kv["child_open"] == "cudaErrorNotPermitted"
        assert kv["parent_sees_child"] == "0"
