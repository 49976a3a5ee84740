"""Driver calls that used to answer CUDA_ERROR_NOT_SUPPORTED on the emulated device or through the stub
(tests/cuda/api_gaps.cu): user objects, graph edge queries, kernel node attributes, cuCtxSetFlags,
cuFuncIsLoaded/cuFuncLoad, occupancy with flags and for clusters, managed-memory range attributes. The
program gives the same answers on the emulated device with either PTX engine and through the remote stub;
the answers are the ones CUDA documents (success and errors), and a user object's destructor runs once, on
a thread of the driver's, after the graph launch that held the object finished."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dp_helpers import run_via_stub, stub_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emu"))
from emu_run import emu_env  # noqa: E402

from cudabuild import parse_kv  # noqa: E402

INVALID_VALUE, INVALID_HANDLE, NOT_SUPPORTED, INVALID_CLUSTER_SIZE = "1", "400", "801", "912"

DOCUMENTED = {
    # cuCtxSetFlags / cuFuncLoad / cuFuncIsLoaded
    "ctx_set_flags": "0", "ctx_get_flags": "0", "ctx_flags_sched": "4",  # CU_CTX_SCHED_BLOCKING_SYNC
    "func_load": "0", "func_is_loaded": "0", "func_loaded": "1", "func_is_loaded_null": INVALID_VALUE,
    "func_load_bogus": INVALID_HANDLE,
    # occupancy: CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE changes nothing on this device; clusters (CC 12.1)
    "occ_plain": "0", "occ_flags": "0", "occ_flags_same": "1", "occ_bad_flags": INVALID_VALUE,
    "cluster_size_rc": "0", "cluster_size": "8",  # the portable maximum
    "active_clusters_no_size": INVALID_CLUSTER_SIZE, "active_clusters_rc": "0",
    "active_clusters_too_big": INVALID_CLUSTER_SIZE, "active_clusters_not_dividing": INVALID_CLUSTER_SIZE,
    # user objects: the one flag is required, counts are 1..INT_MAX, a graph holds what it retained
    "uo_create_no_flag": INVALID_VALUE, "uo_create_zero_refs": INVALID_VALUE, "uo_create_no_destructor": INVALID_VALUE,
    "uo_create": "0", "uo_retain": "0", "uo_retain_zero": INVALID_VALUE, "uo_release": "0",
    "uo_release_bogus": INVALID_VALUE, "uo_graph_retain_bad_flags": INVALID_VALUE,
    "uo_graph_retain_bogus_graph": INVALID_HANDLE, "uo_graph_retain_move": "0", "uo_graph_retain": "0",
    "uo_graph_release_too_many": INVALID_VALUE, "uo_graph_release": "0", "uo_destroyed_while_held": "0",
    "instantiate": "0", "graph_destroy": "0", "graph_launch": "0", "exec_destroy": "0",
    "uo_destroyed": "1", "uo_destroyed_after_launch": "1", "uo_destroyed_on_main_thread": "0",
    "stream_sync": "0", "graph_result": "12",
    # edges: h depends on k and k2; arrays longer than the answer end in NULLs; default edges, zero edge data
    "deps_count": "2", "deps_rc": "0", "deps_n": "2", "deps_first": "k", "deps_second": "k2", "deps_rest_null": "1",
    "deps_edge_data_zero": "1", "deps_short_n": "1", "deps_null_count": INVALID_VALUE,
    "deps_data_without_nodes": INVALID_VALUE, "dependents_n": "1", "dependents_first": "h",
    "dependents_of_leaf": "0", "deps_bogus_node": INVALID_HANDLE, "deps_v1_rc": "0", "deps_v1_n": "2",
    "dependents_v1_rc": "0", "dependents_v1_n": "1", "dependents_v1_first": "h", "edges": "2",
    # kernel node attributes: what was set reads back (priority within the device's range), copies carry all
    "attr_priority_default": "0", "attr_set_priority": "0", "attr_priority": "-3", "attr_set_cooperative": "0",
    "attr_cooperative": "1", "attr_set_sync_domain": "0", "attr_set_bad_window": INVALID_VALUE,
    "attr_set_bad_domain": INVALID_VALUE, "attr_set_launch_only": INVALID_VALUE,
    "attr_set_device_updatable": NOT_SUPPORTED, "attr_set_on_host_node": INVALID_VALUE,
    "attr_get_null": INVALID_VALUE, "attr_get_bogus_node": INVALID_HANDLE, "attr_copy": "0",
    "attr_copied_priority": "-3", "attr_copied_sync_domain": "1", "attr_copy_from_host_node": INVALID_VALUE,
    # managed-memory range attributes: advice and prefetches read back; device memory is refused
    "range_fresh_rc": "0", "range_fresh_preferred": "-2",  # CU_DEVICE_INVALID: no preferred location
    "range_read_mostly": "1", "range_preferred": "0", "range_last_prefetch": "-1",  # CU_DEVICE_CPU
    "range_accessed_by": "0,-2,-2", "range_preferred_type": "1",  # CU_MEM_LOCATION_TYPE_DEVICE
    "range_attrs_rc": "0", "range_attrs": "0,0", "range_bad_size": INVALID_VALUE, "range_null_data": INVALID_VALUE,
    "range_device_memory": INVALID_VALUE, "done": "1",
}


def _program(cuda_program):
    return cuda_program("api_gaps", flags=("-L", str(stub_dir()), "-lcuda"))


def _kv(r: subprocess.CompletedProcess) -> dict:
    assert r.returncode == 0, r.stdout + r.stderr
    return parse_kv(r.stdout)


def _direct(prog, engine: str) -> dict:
    env = emu_env(TF_EMU_ENGINE=engine, TF_EMU_JIT_SYNC="1")
    return _kv(subprocess.run([str(prog)], env=env, capture_output=True, text=True, timeout=300))


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_former_gaps_answer_as_documented_on_the_emulator(cuda_program, engine):
    kv = _direct(_program(cuda_program), engine)
    for k, want in DOCUMENTED.items():
        assert kv.get(k) == want, (k, kv.get(k))


def test_former_gaps_answer_the_same_through_the_stub(dataplane, cuda_program):
    prog = _program(cuda_program)
    direct = _direct(prog, "interp")
    r = run_via_stub(prog, dataplane.unix, timeout=300)
    remote = _kv(r)
    for k, want in DOCUMENTED.items():
        assert remote.get(k) == want, (k, remote.get(k), r.stderr)
    assert remote == direct, r.stderr  # every line, the figures without a documented value too


def test_user_objects_are_refused_over_tcp_where_no_destructor_could_run(dataplane, cuda_program):
    """Over TCP no descriptor can travel, so there is no host-call channel for the worker to ask this
    process to run a destructor: cuUserObjectCreate answers CUDA_ERROR_NOT_SUPPORTED, with one log line."""
    r = run_via_stub(_program(cuda_program), dataplane.tcp, timeout=300)
    kv = _kv(r)
    assert kv["uo_create"] == NOT_SUPPORTED and "cuUserObjectCreate: not supported over TCP/TLS" in r.stderr
    assert kv["attr_copy"] == "0" and kv["deps_n"] == "2" and kv["range_read_mostly"] == "1"
