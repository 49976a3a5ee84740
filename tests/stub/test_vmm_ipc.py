"""Virtual-memory IPC with POSIX file descriptors through the client stub (memMapIPCDrv's pattern, issue #9):
the exporting client gets its GPU worker's own descriptor of the allocation (over the Unix socket, SCM_RIGHTS),
passes it to another client process with SCM_RIGHTS, and that process's GPU worker imports the very file, so
both sessions share the memory. Same program and answers as on the emulated device directly; the import is
refused (CUDA_ERROR_NOT_PERMITTED) in a session of another allocation, and over TCP the export answers
CUDA_ERROR_NOT_SUPPORTED with a reason, never a descriptor that means nothing here. IPC memory pools
(streamOrderedAllocationIPC's pattern, tests/cuda/mempool_ipc.cu) share their descriptor the same way."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import run_ipc_child_in_allocation, run_via_stub, stub_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emu"))
from emu_run import emu_env  # noqa: E402
from test_emu_ipc import MEMPOOL_IPC_EXPECT  # noqa: E402

NOT_PERMITTED, NOT_SUPPORTED = "800", "801"

# CUDA's answers (cuMemExportToShareableHandle: INVALID_VALUE for a handle created without the type; an
# import of a descriptor no driver exported: INVALID_VALUE); the child sees and changes the parent's memory.
VMM_IPC_EXPECT = {
    "posix_supported": "1", "export_unrequested": "1", "export": "0", "fd_valid": "1", "import_bogus": "1",
    "child_import": "0", "child_map": "0", "child_saw_parent": "1", "child_kernel": "0", "child_release": "0",
    "child_status": "0", "parent_sees_child": "1",
}


def _program(cuda_program):
    return cuda_program("vmm_ipc", flags=("-L", str(stub_dir()), "-lcuda"))


def test_posix_fd_vmm_ipc_on_the_emulated_device_directly(cuda_program):
    r = subprocess.run([str(_program(cuda_program))], env=emu_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert {k: kv.get(k) for k in VMM_IPC_EXPECT} == VMM_IPC_EXPECT


def test_posix_fd_vmm_ipc_between_two_client_processes(dataplane, cuda_program):
    r = run_via_stub(_program(cuda_program), dataplane.unix)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert {k: kv.get(k) for k in VMM_IPC_EXPECT} == VMM_IPC_EXPECT
    assert "not supported" not in r.stderr


@pytest.mark.parametrize("child_lease,imports", [("alloc-1", True), ("alloc-2", False)])
def test_posix_fd_imports_only_in_sessions_of_the_exporting_allocation(tmp_path, cuda_program, child_lease, imports):
    kv = parse_kv(run_ipc_child_in_allocation(tmp_path, _program(cuda_program), child_lease).stdout)
    if imports:   # /dev/null was exported by no session of this allocation: refused before the driver
        assert {k: kv.get(k) for k in VMM_IPC_EXPECT} == {**VMM_IPC_EXPECT, "import_bogus": NOT_PERMITTED}
    else:   # another tenant's session never maps this memory, even holding the real descriptor
        assert kv["child_import"] == NOT_PERMITTED
        assert kv["parent_sees_child"] == "0"


def test_posix_fd_export_over_tcp_is_refused_with_a_reason(dataplane, cuda_program):
    r = run_via_stub(_program(cuda_program), dataplane.tcp)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert kv["export"] == NOT_SUPPORTED and kv["fd_valid"] == "0"
    assert "POSIX file descriptor" in r.stderr and "Unix socket" in r.stderr


# ---- IPC memory pools: the same program and answers as on the emulated device directly (tests/emu/test_emu_ipc.py)
def test_mempool_ipc_between_two_client_processes(dataplane, cuda_program):
    r = run_via_stub(cuda_program("mempool_ipc"), dataplane.unix)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert {k: kv.get(k) for k in MEMPOOL_IPC_EXPECT} == MEMPOOL_IPC_EXPECT
    assert "not supported" not in r.stderr


@pytest.mark.parametrize("child_lease,imports", [("alloc-1", True), ("alloc-2", False)])
def test_mempool_imports_only_in_sessions_of_the_exporting_allocation(tmp_path, cuda_program, child_lease, imports):
    kv = parse_kv(run_ipc_child_in_allocation(tmp_path, cuda_program("mempool_ipc"), child_lease).stdout)
    if imports:   # /dev/null was exported by no session of this allocation: refused before the driver
        assert {k: kv.get(k) for k in MEMPOOL_IPC_EXPECT} == {**MEMPOOL_IPC_EXPECT,
                                                              "import_bogus": "cudaErrorNotPermitted"}
    else:   # another tenant's session never maps this pool, even holding the real descriptor
        assert kv["child_import"] == "cudaErrorNotPermitted"
        assert kv["parent_sees_child"] == "0"


def test_mempool_export_over_tcp_is_refused_with_a_reason(dataplane, cuda_program):
    r = run_via_stub(cuda_program("mempool_ipc"), dataplane.tcp)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert kv["handle_types"] == "0"   # what a program checks first (the sample then waives)
    assert kv["export"] == "cudaErrorNotSupported" and kv["fd_valid"] == "0"
    assert "POSIX file descriptor" in r.stderr and "Unix socket" in r.stderr
