"""Driver-API areas beyond launches and copies, forwarded by calls.tbl rows (issue #9): virtual memory
management, memory pools, managed-memory hints (api_vmm.cu), occupancy, JIT linking, enumerating
libraries/modules, names, peer copies and stream memory operations (api_module_ext.cu). Each program
runs on the emulated device directly and through the remote stub; a user sees the values CUDA
documents, and the same answers both ways - except where the stub documents a refusal."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dp_helpers import run_via_stub, stub_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emu"))
from emu_run import emu_env  # noqa: E402

from cudabuild import parse_kv  # noqa: E402


def _direct(prog, *args) -> dict:
    r = subprocess.run([str(prog), *args], env=emu_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def _remote(dataplane, prog, *args) -> tuple[dict, str]:
    r = run_via_stub(prog, dataplane.unix, *args, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line), r.stderr


def _direct_and_remote(dataplane, prog, documented: dict) -> tuple[dict, dict, str]:
    """prog's answers on the emulated device directly and through the stub (with the stub's stderr): both
    give every documented answer."""
    direct = _direct(prog)
    remote, err = _remote(dataplane, prog)
    for k, want in documented.items():
        assert direct.get(k) == want, ("direct", k, direct.get(k))
        assert remote.get(k) == want, ("remote", k, remote.get(k), err)
    return direct, remote, err


def _program(cuda_program, name):
    return cuda_program(name, flags=("-L", str(stub_dir()), "-lcuda"))


VMM_DOCUMENTED = {
    # reserve, create, map, set access: success; a copy to reserved-but-unmapped VA, freeing a mapped
    # reservation, releasing a released handle, freeing a freed range: CUDA_ERROR_INVALID_VALUE (1)
    "granularity_rc": "0", "granularity_ok": "1", "reserve": "0", "create": "0", "copy_unmapped": "1",
    "map_bogus_handle_rejected": "1", "set_access_unmapped": "1", "retain_unmapped": "1", "map_outside": "1",
    "props_bogus": "1", "unmap_unmapped": "1", "map": "0", "set_access": "0", "get_access": "0",
    "access_flags": "3",  # CU_MEM_ACCESS_FLAGS_PROT_READWRITE
    "memcpy_in": "0", "kernel": "0", "memcpy_out": "0", "vmm_data": "ok",
    "ptr_attr": "0", "ptr_memtype": "2",  # CU_MEMORYTYPE_DEVICE
    "props": "0", "props_type": "1", "props_loc": "1",  # PINNED on a DEVICE
    "retain": "0", "retain_same": "1", "retain_release": "0",
    "reserve2": "0", "map2": "0", "alias_value": "11",  # host wrote 10, the kernel added 1
    "free_mapped": "1", "unmap2": "0", "unmap": "0", "copy_after_unmap": "1", "release": "0",
    "release_again": "1", "free": "0", "free2": "0", "free_again": "1",
    # generic compression is reported and a compressible allocation says so (CU_MEM_ALLOCATION_COMP_GENERIC)
    "compression_attr": "0", "compression_supported": "1", "create_compressible": "0", "compressible_props": "0",
    "compression_type": "1", "compressible_release": "0",
    "pool_create": "0", "pool_set_threshold": "0", "pool_get_threshold": "0", "pool_set_opportunistic": "0",
    "pool_threshold": str(1 << 20), "pool_opportunistic": "0",  # what was set is what is read back
    "pool_get_access": "0", "pool_access_flags": "3", "pool_alloc": "0", "pool_value": "42", "pool_used_ok": "1",
    "pool_free": "0", "set_mempool": "0", "mempool_is_ours": "1", "pool_trim": "0", "pool_destroy": "0",
    "pool_destroy_again_rejected": "1",
    "managed_alloc": "0", "advise": "0", "prefetch_device": "0", "prefetch_host": "0", "managed_sync": "0",
    "managed_data": "ok", "prefetch_bogus": "1", "done": "1",
}


def test_vmm_pools_and_managed_hints_on_the_emulator_and_through_the_stub(dataplane, cuda_program):
    prog = _program(cuda_program, "api_vmm")
    direct, remote, err = _direct_and_remote(dataplane, prog, VMM_DOCUMENTED)
    # a managed region's advice and last prefetch read back as CUDA documents them: kept by the emulated
    # device (emu_managed_advice.c) directly, by the stub through it (api_vmm.c)
    for kv in (direct, remote):
        assert kv["range_attr"] == "0" and kv["range_read_mostly"] == "1", err
        assert kv["range_last_prefetch"] == "-1"  # CU_DEVICE_CPU: prefetched to the host last
        assert kv["range_attrs"] == "0" and kv["range_preferred"] == "0", err
        assert kv["range_accessed_by"] == "0,-2" and kv["range_read_mostly_after"] == "0"  # -2: CU_DEVICE_INVALID
    # a POSIX fd of an allocation created without that handle type: CUDA_ERROR_INVALID_VALUE, as the driver
    # answers, both ways (POSIX-fd sharing itself works on one host: tests/stub/test_vmm_ipc.py)
    assert direct["export_fd"] == remote["export_fd"] == "1", err


def test_vmm_allocation_over_the_lease_vram_cap_is_out_of_memory(tmp_path, cuda_program):
    """The limiter in the GPU worker process charges cuMemCreate like cuMemAlloc (cap: 320 MiB)."""
    from dp_helpers import InProcessDataPlane
    from tfclient import native
    from tfworker.dataplane import SessionGrant
    from tfworker.limits import SessionLimits

    native.require(native.limiter_lib())
    regions = []

    async def authorize(token: bytes) -> SessionGrant:
        lim = SessionLimits.create(f"api-ext-{id(regions)}", vram_limit_bytes=320 << 20)
        regions.append(lim)
        return SessionGrant(session_id="apiext", env=lim.env, preload=lim.preload)

    dp = InProcessDataPlane(tmp_path, tcp=False, authorize=authorize)
    try:
        kv, err = _remote(dp, _program(cuda_program, "api_vmm"), "over", "512")
        assert kv["over_create"] == "2", err  # CUDA_ERROR_OUT_OF_MEMORY
        assert kv["fit_create"] == "0" and kv["fit_release"] == "0", err
        u = regions[0].usage()
        assert u.vram_peak == 64 << 20 and u.vram_used == 0
    finally:
        dp.close()
        for lim in regions:
            lim.close()


MODULE_DOCUMENTED = {
    "occ_plain": "0", "occ_cb": "0", "occ_cb_same": "1", "occ_cb_called": "1", "occ_cb_smem": "0",
    "occ_cb_smem_block": "128", "occ_active": "0",
    "link_create": "0", "link_add": "0", "link_complete": "0", "link_size_ok": "1", "link_load": "0",
    "link_getfunc": "0", "link_launch": "0", "link_kernel": "ok", "link_destroy": "0", "link_addfile": "0",
    "link_addfile_missing": "301",  # CUDA_ERROR_FILE_NOT_FOUND
    "link_complete_file": "0",
    "lib_load": "0", "lib_count": "0", "lib_kernels": "2", "lib_enumerate": "0", "lib_names_rc": "0",
    "lib_names": "k_add,k_smem", "kernel_name_rc": "0", "kernel_name": "k_smem", "kernel_name_bogus_rejected": "1",
    "kernel_library": "0", "kernel_library_same": "1", "mod_enumerate": "0",
    "lib_unload": "0", "mod_count": "0", "mod_functions": "2", "func_name_rc": "0", "func_name": "k_smem",
    "can_access_peer_rc": "0", "can_access_peer": "0",  # a device is not its own peer
    "peer_copy": "0", "peer_value": "77", "peer_copy_async": "0", "peer_async_value": "78",
    "peer_copy_bogus_rejected": "1", "done": "1",
    "loading_mode_rc": "0", "loading_mode": "2",  # CU_MODULE_LAZY_LOADING, CUDA's default (emu_c/README "Module loading")
}


def test_occupancy_linking_enumeration_names_and_peers_on_the_emulator_and_through_the_stub(dataplane, cuda_program):
    prog = _program(cuda_program, "api_module_ext")
    direct, remote, err = _direct_and_remote(dataplane, prog, MODULE_DOCUMENTED)
    # the callback search runs in the stub, the device's own search on the emulator: same answers
    for k in ("occ_block", "occ_grid", "occ_cb_smem_grid", "occ_active_blocks"):
        assert remote[k] == direct[k], k
    # the cluster calculator (compute capability 12.1 has clusters) answers directly and through the stub
    assert direct["cluster_size"] == remote["cluster_size"] == "0"
    # one device is not its own peer: CUDA_ERROR_INVALID_DEVICE
    assert direct["enable_peer"] == remote["enable_peer"] == "101"
    # stream memory operations: written at stream order, waits met, batches run
    for kv in (direct, remote):
        assert kv["write_value"] == "0" and kv["write_value_sync"] == "0" and kv["write_value_result"] == "1234"
        assert kv["wait_value"] == "0" and kv["wait_value_sync"] == "0"
        assert kv["batch"] == "0" and kv["batch_sync"] == "0" and kv["batch_result"] == "99"
