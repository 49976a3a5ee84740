"""What tests/cuda/graphs_remote.cu (and graphs.cu, graph_host_copies.cu, graph_mem_nodes.cu,
graph_conditional.cu, graph_node_params.cu, graph_exec_update.cu) print on every backend that runs CUDA graphs
correctly: the emulated device directly (tests/emu/test_emu_kernels.py) and through the stub (tests/stub/test_graphs.py).
"""
import numpy as np

N, LAUNCHES = 3001, 4


def expected_w(x: np.ndarray, r: int) -> np.ndarray:
    xr = x + np.float32(r)
    y = np.where(np.arange(x.size) < x.size // 2, xr * 2 + 1, xr * 2 - 1)
    return y * 3


def check_graphs(kv: dict, out_path, x: np.ndarray, launches: int) -> None:
    """What graphs.cu prints after `launches` replays of its captured graph on input x (host function calls:
    one a launch, and one of the graph built by hand)."""
    assert kv["launch_ok"] == str(launches)
    assert kv["host_calls"] == str(launches + 1)
    assert kv["built_graph"] == "ok"
    np.testing.assert_allclose(np.fromfile(out_path, np.float32), expected_w(x, launches - 1), rtol=1e-5, atol=1e-5)


def check_graphs_remote(kv: dict, out_path, x: np.ndarray) -> None:
    """What graphs_remote prints on any backend that runs graphs correctly (the part both agree on)."""
    assert kv["status_before"] == "0" and kv["status_during"] == "1" and kv["status_after"] == "0"
    assert kv["info_status"] == "1" and kv["capture_id_nonzero"] == "1" and kv["capture_deps"] == "1"
    # 3 kernels, memset, copy; fork/join edges: k1->memset, k2->memset, memset->k3, k3->copy
    assert kv["nodes"] == "5" and kv["edges"] == "4"
    assert kv["launch_ok"] == str(LAUNCHES)
    np.testing.assert_allclose(np.fromfile(out_path, np.float32), expected_w(x, LAUNCHES - 1), rtol=1e-5, atol=1e-4)
    # capture modes: Global prohibits the capturing thread's cudaMalloc and invalidates the capture,
    # Relaxed allows it, another thread's ThreadLocal capture does not bind this thread, its Global one does
    assert kv["malloc_global"] == "cudaErrorStreamCaptureUnsupported"
    assert kv["status_invalidated"] == "2"  # cudaStreamCaptureStatusInvalidated
    assert kv["end_invalidated"] == "cudaErrorStreamCaptureInvalidated" and kv["graph_null"] == "1"
    assert kv["malloc_relaxed"] == "cudaSuccess" and kv["end_relaxed"] == "cudaSuccess"
    assert kv["threadlocal_begin"] == "cudaSuccess" and kv["threadlocal_end"] == "cudaSuccess"
    assert kv["malloc_other_threadlocal"] == "cudaSuccess"
    assert kv["global_begin"] == "cudaSuccess"
    assert kv["malloc_other_global"] == "cudaErrorStreamCaptureUnsupported"
    assert kv["global_end"] == "cudaErrorStreamCaptureInvalidated"
    assert kv["capture_to_graph"] == "ok" and kv["capture_to_graph_same"] == "1"
    assert kv["capture_to_graph_nodes"] == "2" and kv["capture_to_graph_edges"] == "1"  # memset -> kernel
    assert kv["capture_to_graph_deps"] == "ok" and kv["update_capture_deps"] == "cudaSuccess"
    assert kv["explicit_graph"] == "ok"
    assert (kv["explicit_nodes"], kv["explicit_edges"], kv["explicit_roots"]) == ("4", "3", "1")
    assert (kv["root_type"], kv["kernel_type"], kv["copy_type"]) == ("2", "0", "1")  # memset, kernel, memcpy
    assert kv["exec_set_params"] == "ok" and kv["get_params"] == "ok"
    assert kv["exec_update"] == "ok" and kv["update_result"] == "0"
    assert kv["child_graph"] == "ok" and kv["dot"] == "ok"
    assert kv["bogus_exec"] == "cudaErrorInvalidResourceHandle"
    # graph memory (PyTorch's cudaMallocAsync path): alloc node, two kernels, free node
    assert (kv["graph_mem_nodes"], kv["mem_alloc_nodes"], kv["mem_free_nodes"]) == ("4", "1", "1")
    assert kv["graph_mem_launch_ok"] == "3"
    # host nodes run the program's own function, once per launch, never at capture time
    assert kv["host_node"] == "cudaSuccess"
    assert kv["host_node_calls"] == "3" and kv["host_calls_at_capture"] == "0" and kv["captured_host_calls"] == "20"
    assert kv["done"] == "1"


HOST_COPY_N, HOST_COPY_LAUNCHES = 1000, 3


def check_graph_host_copies(kv: dict) -> None:
    """What tests/cuda/graph_host_copies.cu prints where graph copies read and write the program's host
    memory in stream order (the emulated device directly, and through the stub)."""
    L = str(HOST_COPY_LAUNCHES)
    # memcpy nodes on pageable memory: each launch reads the input written just before it, and the result
    # is in host memory after cudaStreamSynchronize; the host node after the D2H node already sees it
    assert kv["explicit_ok"] == L
    assert kv["host_node_calls"] == L and kv["host_node_saw_ok"] == L
    # pitched host matrices with offsets: only the block moves, both ways
    assert kv["rect_ok"] == "2"
    # captured cudaMemcpyAsync: a node on the range, never a snapshot of the bytes at capture time
    assert kv["captured_nodes"] == "3"
    assert kv["captured_ok"] == L
    assert kv["relaunch_ok"] == "1"
    # cudaGraphExecUpdate: the executable graph copies the new graph's host buffers from then on
    assert kv["update_ok"] == "1"
    # cudaGraphExecMemcpyNodeSetParams1D: that executable graph alone copies the new host buffers
    assert kv["exec_set_params_ok"] == "1"
    assert kv["done"] == "1"


GRAPH_MEM_N, GRAPH_MEM_LAUNCHES = 777, 3


def check_graph_mem_nodes(kv: dict) -> None:
    """What tests/cuda/graph_mem_nodes.cu prints where graph memory nodes follow CUDA's rules."""
    nbytes = GRAPH_MEM_N * 4
    assert kv["alloc_addr_nonzero"] == "1" and kv["get_bytesize_ok"] == "1" and kv["get_dptr_ok"] == "1"
    assert kv["get_descs"] == "1" and kv["get_desc_ok"] == "1" and kv["free_dptr_ok"] == "1"
    assert (kv["alloc_type"], kv["free_type"]) == ("10", "11")  # cudaGraphNodeTypeMemAlloc / MemFree
    assert kv["launch_ok"] == str(GRAPH_MEM_LAUNCHES)
    # the footprint (what NVIDIA's graphMemoryFootprint shows): memory is associated with graphs from a
    # launch on, freed in the graph or not, until a trim gives back what is not outstanding
    assert kv["used_after_freeing_graph"] == str(nbytes) and kv["reserved_after_freeing_graph"] == str(nbytes)
    assert kv["reserved_high_covers"] == "1"
    # left to the stream: readable after the launch; freeing it does not shrink the footprint, a trim does
    assert kv["unfreed_result_ok"] == "1"
    assert kv["used_while_allocated"] == str(2 * nbytes) and kv["used_after_free_async"] == str(2 * nbytes)
    assert kv["used_high_covers"] == "1"
    assert kv["used_before_trim"] == str(2 * nbytes) and kv["used_after_trim"] == "0"
    assert kv["relaunch_after_free_ok"] == "2"  # freed with cudaFree outside the graph, allocated again
    # only the high-water marks can be set, and only to 0 (they restart from the current use)
    assert kv["reset_high"] == "cudaSuccess" and kv["used_high_after_reset"] == "0"
    assert kv["set_current"] == "cudaErrorInvalidValue" and kv["set_high_nonzero"] == "cudaErrorInvalidValue"
    assert kv["trim"] == "cudaSuccess"
    assert kv["zero_bytes"] == "cudaErrorInvalidValue" and kv["bad_alloc_type"] == "cudaErrorInvalidValue"
    assert kv["free_of_plain_memory"] == "cudaErrorInvalidValue"
    assert kv["done"] == "1"


def check_graph_conditional(kv: dict) -> None:
    """What tests/cuda/graph_conditional.cu prints where conditional nodes follow CUDA's rules."""
    assert kv["cond_type"] == "13"  # cudaGraphNodeTypeConditional
    assert kv["if_results"] == "2,1,2"  # else body for 0, then body otherwise, at each launch
    assert kv["while_iters"] == "5,3"  # the handle restarts at its default (1) at each launch
    assert kv["switch_results"] == "10,11,12,-1"  # no body for a value past the last
    for key in ("while_two_bodies", "if_three_bodies", "bogus_handle", "bad_flags", "destroy_body"):
        assert kv[key] == "cudaErrorInvalidValue", key
    assert kv["done"] == "1"


GRAPH_NODE_PARAMS_N = 300

# Everything tests/cuda/graph_node_params.cu prints (run with GRAPH_NODE_PARAMS_N): parameters read back
# after each set (an executable graph's update leaves the graph's node as it was), the driver's answers for
# a node of another kind or of another graph and for refused parameters (CUDA_ERROR_INVALID_VALUE), kinds
# that cannot be updated (CUDA_ERROR_NOT_SUPPORTED), and the values launches compute after each update.
GRAPH_NODE_PARAMS = {
    "host_get_ok": "1",
    "host_set": "cudaSuccess",
    "host_get_after_set_ok": "1",
    "host_set_null_fn": "cudaErrorInvalidValue",
    "host_get_wrong_kind": "cudaErrorInvalidValue",
    "host_set_wrong_kind": "cudaErrorInvalidValue",
    "host_launch": "0,10",
    "exec_host_set": "cudaSuccess",
    "exec_host_launch": "1,10",
    "exec_host_node_unchanged": "1",
    "exec_host_wrong_kind": "cudaErrorInvalidValue",
    "exec_host_foreign_node": "cudaErrorInvalidValue",
    "exec_host_null_fn": "cudaErrorInvalidValue",
    "memset_get": "1,7,4,300,1",
    "memset_set": "cudaSuccess",
    "memset_get_after_set": "9",
    "memset_set_bad_elem": "cudaErrorInvalidValue",
    "memset_get_wrong_kind": "cudaErrorInvalidValue",
    "memset_set_wrong_kind": "cudaErrorInvalidValue",
    "memset_launch": "9",
    "exec_memset_set": "cudaSuccess",
    "exec_memset_launch": "0,11",
    "exec_memset_node_unchanged": "1",
    "exec_memset_1d_to_2d": "cudaErrorInvalidValue",
    "exec_memset_zero_width": "cudaErrorInvalidValue",
    "exec_memset_wrong_kind": "cudaErrorInvalidValue",
    "exec_memset_foreign_node": "cudaErrorInvalidValue",
    "memcpy_get_ok": "1",
    "memcpy_set": "cudaSuccess",
    "memcpy_get_after_set_ok": "1",
    "memcpy_get_wrong_kind": "cudaErrorInvalidValue",
    "memcpy_launch": "0,3",
    "memcpy_host_get_ok": "1",
    "memcpy_host_get_after_set_ok": "1",
    "memcpy_host_launch": "8",
    "exec_memcpy_host_set": "cudaSuccess",
    "exec_memcpy_host_launch": "6",
    "enabled_initially": "1",
    "disable_kernel": "cudaSuccess",
    "enabled_after_disable": "0",
    "disabled_kernel_launch": "0,0",
    "disabled_memcpy_launch": "3,0",
    "reenabled_launch": "3,3",
    "enable_empty_node": "cudaErrorInvalidValue",
    "get_enabled_empty_node": "cudaErrorInvalidValue",
    "enable_foreign_node": "cudaErrorInvalidValue",
    "get_enabled_null": "cudaErrorInvalidValue",
    "exec_node_set_kernel": "cudaSuccess",
    "exec_node_set_kernel_launch": "4",
    "exec_node_set_kind_mismatch": "cudaErrorInvalidValue",
    "record_get_ok": "1",
    "record_set": "cudaSuccess",
    "record_get_after_set_ok": "1",
    "wait_get_ok": "1",
    "wait_set": "cudaSuccess",
    "wait_get_after_set_ok": "1",
    "record_get_wrong_kind": "cudaErrorInvalidValue",
    "record_set_wrong_kind": "cudaErrorInvalidValue",
    "wait_get_wrong_kind": "cudaErrorInvalidValue",
    "wait_set_wrong_kind": "cudaErrorInvalidValue",
    "exec_record_set": "cudaSuccess",
    "exec_wait_set": "cudaSuccess",
    "exec_record_wrong_kind": "cudaErrorInvalidValue",
    "exec_wait_wrong_kind": "cudaErrorInvalidValue",
    "exec_record_foreign_node": "cudaErrorInvalidValue",
    "exec_record_launch": "cudaSuccess",
    "exec_record_node_unchanged": "1",
    "node_set_record": "cudaSuccess",
    "node_set_record_get_ok": "1",
    "exec_node_set_wait": "cudaSuccess",
    "child_get_graph_nodes": "1",
    "child_get_graph_wrong_kind": "cudaErrorInvalidValue",
    "child_launch": "3,0",
    "exec_child_set": "cudaSuccess",
    "exec_child_launch": "0,4",
    "exec_child_other_topology": "cudaErrorInvalidValue",
    "exec_child_other_kind": "cudaErrorInvalidValue",
    "exec_child_wrong_kind": "cudaErrorInvalidValue",
    "exec_node_set_child": "cudaSuccess",
    "exec_node_set_child_launch": "3,0",
    "node_set_child": "cudaSuccess",
    "node_set_child_nodes": "2",
    "node_set_child_old_exec_launch": "3,0",
    "node_set_child_new_exec_launch": "0,4",
    "node_set_memset": "cudaSuccess",
    "node_set_memset_get": "22",
    "node_set_host": "cudaSuccess",
    "node_set_kind_mismatch": "cudaErrorInvalidValue",
    "exec_node_set_memset": "cudaSuccess",
    "exec_node_set_host": "cudaSuccess",
    "exec_node_set_launch": "23,1,0",
    "exec_node_set_foreign_node": "cudaErrorInvalidValue",
    "node_set_child_wrong_kind": "cudaErrorInvalidValue",
    "node_set_mem_alloc": "cudaErrorNotSupported",
    "sync_after": "cudaSuccess",
    "done": "1",
}


def check_graph_node_params(kv: dict) -> None:
    """graph_node_params.cu's output is exactly GRAPH_NODE_PARAMS (on every backend: the same bits)."""
    differ = {k: (kv.get(k), v) for k, v in GRAPH_NODE_PARAMS.items() if kv.get(k) != v}
    assert not differ, f"(got, expected) per key: {differ}"
    assert set(kv) == set(GRAPH_NODE_PARAMS), set(kv) ^ set(GRAPH_NODE_PARAMS)


GRAPH_EXEC_UPDATE_N = 300

# Everything tests/cuda/graph_exec_update.cu prints (run with GRAPH_EXEC_UPDATE_N), as CUDA documents
# cudaGraphExecUpdate: the executable graph answers to its instantiation graph's nodes after an update (the
# update graph's are cudaErrorInvalidValue); failed updates name the update graph's node (errorNode; NULL for
# another node count) and, for a dependency on another node, that dependency (errorFromNode), and leave the
# executable graph as it was; a kernel's function may change; the update graph's user-object references
# replace the executable graph's (a's object dies at the update, b's with the executable graph).
GRAPH_EXEC_UPDATE = {
    "first_d1": "1",
    "first_d2": "2",
    "update_same_shape": "cudaSuccess",
    "update_same_shape_result": "Success",
    "update_same_shape_error_node": "null",
    "update_same_shape_error_from_node": "null",
    "updated_d1": "3",
    "updated_d2": "4",
    "exec_kernel_set_original_node": "cudaSuccess",
    "exec_kernel_set_update_node": "cudaErrorInvalidValue",
    "exec_memset_set_original_node": "cudaSuccess",
    "exec_memset_set_update_node": "cudaErrorInvalidValue",
    "set_d1": "6",
    "set_d2": "5",
    "exec_node_set_original_node": "cudaSuccess",
    "exec_node_set_update_node": "cudaErrorInvalidValue",
    "enable_original_node": "cudaSuccess",
    "enable_update_node": "cudaErrorInvalidValue",
    "get_enabled_original_node": "cudaSuccess",
    "get_enabled_original_value": "0",
    "get_enabled_update_node": "cudaErrorInvalidValue",
    "disabled_d1": "7",
    "disabled_d2": "0",
    "update_node_count": "cudaErrorGraphExecUpdateFailure",
    "update_node_count_result": "TopologyChanged",
    "update_node_count_error_node": "null",
    "update_node_count_error_from_node": "null",
    "update_node_type": "cudaErrorGraphExecUpdateFailure",
    "update_node_type_result": "NodeTypeChanged",
    "update_node_type_error_node": "t_host",
    "update_node_type_error_from_node": "null",
    "after_failures_d1": "7",
    "after_failures_d2": "5",
    "update_function": "cudaSuccess",
    "update_function_result": "Success",
    "update_function_error_node": "null",
    "update_function_error_from_node": "null",
    "function_d1": "9",
    "function_d2": "110",
    "update_other_dependency": "cudaErrorGraphExecUpdateFailure",
    "update_other_dependency_result": "TopologyChanged",
    "update_other_dependency_error_node": "p2",
    "update_other_dependency_error_from_node": "p1",
    "update_more_dependencies": "cudaErrorGraphExecUpdateFailure",
    "update_more_dependencies_result": "TopologyChanged",
    "update_more_dependencies_error_node": "p2",
    "update_more_dependencies_error_from_node": "null",
    "update_same_edges": "cudaSuccess",
    "update_same_edges_result": "Success",
    "update_same_edges_error_node": "null",
    "update_same_edges_error_from_node": "null",
    "update_memset_2d_value": "cudaSuccess",
    "update_memset_2d_value_result": "Success",
    "update_memset_2d_value_error_node": "null",
    "update_memset_2d_value_error_from_node": "null",
    "update_memset_2d_width": "cudaErrorGraphExecUpdateFailure",
    "update_memset_2d_width_result": "ParametersChanged",
    "update_memset_2d_width_error_node": "m2",
    "update_memset_2d_width_error_from_node": "null",
    "memset_2d_d3": "12",
    "uo_a_destroyed_before_update": "0",
    "update_user_objects": "cudaSuccess",
    "update_user_objects_result": "Success",
    "update_user_objects_error_node": "null",
    "update_user_objects_error_from_node": "null",
    "uo_a_destroyed_after_update": "1",
    "uo_launch_d1": "16",
    "uo_launch_d2": "17",
    "uo_b_destroyed_before_exec_destroy": "0",
    "uo_a_destroyed": "1",
    "uo_b_destroyed": "1",
    "sync_after": "cudaSuccess",
    "done": "1",
}


def check_graph_exec_update(kv: dict) -> None:
    """graph_exec_update.cu's output is exactly GRAPH_EXEC_UPDATE (on every backend: the same bits)."""
    differ = {k: (kv.get(k), v) for k, v in GRAPH_EXEC_UPDATE.items() if kv.get(k) != v}
    assert not differ, f"(got, expected) per key: {differ}"
    assert set(kv) == set(GRAPH_EXEC_UPDATE), set(kv) ^ set(GRAPH_EXEC_UPDATE)
