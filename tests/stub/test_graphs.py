"""CUDA graphs and stream capture through the client stub: capture happens in the GPU worker process
(where the streams live), graphs/nodes/executable graphs are the worker's handles. The same program,
tests/cuda/graphs_remote.cu, runs on the emulated device directly (tests/emu/test_emu_kernels.py) and
here through stub -> data plane -> tf-executor -> emulated device; results are checked against numpy.
"""
from __future__ import annotations

import numpy as np
import pytest

from cudabuild import parse_kv
from dp_helpers import run_via_stub, stub_dir
from graphs_expect import (GRAPH_EXEC_UPDATE_N, GRAPH_MEM_LAUNCHES, GRAPH_MEM_N, GRAPH_NODE_PARAMS_N,
                           HOST_COPY_LAUNCHES, HOST_COPY_N, LAUNCHES, N, check_graph_conditional,
                           check_graph_exec_update, check_graph_host_copies, check_graph_mem_nodes,
                           check_graph_node_params, check_graphs, check_graphs_remote)


@pytest.mark.parametrize("cudart,transport", [("static", "unix"), ("shared", "tcp")])
def test_capture_instantiate_launch_and_explicit_graphs_through_the_stub(dataplane, cuda_program, tmp_path, cudart,
                                                                       transport, capfd):
    x = np.random.default_rng(11).standard_normal(N, dtype=np.float32)
    x.tofile(tmp_path / "in")
    r = run_via_stub(cuda_program("graphs_remote", cudart=cudart), getattr(dataplane, transport), N, LAUNCHES,
                     tmp_path / "in", tmp_path / "out", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    check_graphs_remote(kv, tmp_path / "out", x)
    # client host memory in a graph: a memcpy node on it and a captured host-to-device copy are accepted
    # (the worker's node copies a staging buffer that stands for the client's range)
    assert kv["host_copy_node"] == "cudaSuccess"
    assert kv["captured_h2d"] == "cudaSuccess" and kv["captured_h2d_end"] == "cudaSuccess"
    assert kv["sync_after"] == "cudaSuccess"  # nothing stale is left latched on the stream


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_graph_copies_of_client_host_memory_see_the_bytes_of_each_launch(dataplane, cuda_program, transport):
    """Memcpy nodes and captured cudaMemcpyAsync on the client's host memory: the graph runs in the GPU
    worker, yet each launch reads the input the client wrote just before it (after the capture too), the
    results are in the client's memory at cudaStreamSynchronize / cudaEventSynchronize /
    cudaDeviceSynchronize, and a host node after a device-to-host node sees what that node wrote."""
    r = run_via_stub(cuda_program("graph_host_copies"), getattr(dataplane, transport), HOST_COPY_N,
                     HOST_COPY_LAUNCHES, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    check_graph_host_copies(parse_kv(r.stdout))


def test_graphs_capturing_copies_of_client_host_memory_replay_with_new_inputs(dataplane, cuda_program, tmp_path):
    """tests/cuda/graphs.cu (the same program and checks as on the emulated device directly, tests/emu)
    captures copies between pinned host memory and the device and a host function, and launches the graph
    with new inputs written into that host memory between launches."""
    n, launches = 3000, 3
    x = np.random.default_rng(5).standard_normal(n, dtype=np.float32)
    x.tofile(tmp_path / "in")
    r = run_via_stub(cuda_program("graphs"), dataplane.unix, n, launches, tmp_path / "in", tmp_path / "out",
                     timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    check_graphs(parse_kv(r.stdout), tmp_path / "out", x, launches)


def test_bogus_graph_handles_and_ranges_are_refused_and_the_session_goes_on(dataplane, cuda_program):
    """Graphs, nodes and executable graphs are handles the worker tracks: bogus or dead ones, nodes past
    the end of an allocation and bogus kernels get an error code, never a crash of the GPU worker."""
    prog = cuda_program("dp_graph_bogus", flags=("-L", str(stub_dir()), "-lcuda"))
    r = run_via_stub(prog, dataplane.unix)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dp_graph_bogus ok" in r.stdout


def test_graph_memory_nodes_and_attributes_through_the_stub(dataplane, cuda_program):
    """cudaGraphAddMemAllocNode / cudaGraphAddMemFreeNode, their parameters (access descriptors included),
    the device's graph-memory attributes and trim through the stub: the same answers as on the emulated
    device directly (tests/emu), and the alloc node's address works as device memory in the client."""
    r = run_via_stub(cuda_program("graph_mem_nodes"), dataplane.unix, GRAPH_MEM_N, GRAPH_MEM_LAUNCHES, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    check_graph_mem_nodes(parse_kv(r.stdout))


def test_conditional_nodes_through_the_stub(dataplane, cuda_program):
    """cudaGraphConditionalHandleCreate, cudaGraphAddNode (kernel and conditional nodes) and the body graphs
    it hands back, driven by kernels calling cudaGraphSetConditional in the GPU worker: the same answers as
    on the emulated device directly (tests/emu)."""
    r = run_via_stub(cuda_program("graph_conditional"), dataplane.unix, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    check_graph_conditional(kv)
    # a copy of client host memory in a body graph is refused (a launch carries its top graph's ranges only)
    assert kv["host_copy_in_body"] == "cudaErrorNotSupported"


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_graph_node_params_and_exec_updates_through_the_stub(dataplane, cuda_program, transport):
    """tests/cuda/graph_node_params.cu through stub -> data plane -> tf-executor -> emulated device: the same
    lines as on the emulated device directly (tests/emu). Host nodes keep running the client's functions in
    the client (their parameters read back are the client's), memcpy nodes on client host memory read back
    the client's addresses, and launches after each update compute the new values."""
    r = run_via_stub(cuda_program("graph_node_params"), getattr(dataplane, transport), GRAPH_NODE_PARAMS_N,
                     timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    check_graph_node_params(parse_kv(r.stdout))


def test_graph_exec_update_through_the_stub(dataplane, cuda_program):
    """tests/cuda/graph_exec_update.cu through stub -> data plane (unix: user objects' destructors come back
    over the host-call channel) -> tf-executor -> emulated device: the same lines as on the emulated device
    directly (tests/emu): the worker forwards the per-node calls with the instantiation graph's nodes."""
    r = run_via_stub(cuda_program("graph_exec_update"), dataplane.unix, GRAPH_EXEC_UPDATE_N, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    check_graph_exec_update(parse_kv(r.stdout))
