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
from graphs_expect import LAUNCHES, N, check_graphs_remote


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
    # client host memory cannot be part of a graph that runs in the GPU worker: refused, with a message
    # saying why, and the capture that tried is invalidated
    assert kv["host_copy_node"] == "cudaErrorNotSupported"
    assert kv["captured_h2d"] == "cudaErrorStreamCaptureUnsupported"
    assert kv["captured_h2d_end"] == "cudaErrorStreamCaptureInvalidated"
    assert kv["sync_after"] == "cudaSuccess"  # nothing stale is left latched on the stream
    assert "can only copy device memory" in r.stderr
    worker_log = capfd.readouterr().err  # the GPU worker process (a child of this one) says why it refused
    assert "cuMemcpyHtoDAsync_v2: a copy between client host memory and the device cannot be captured" in worker_log



def test_capturing_a_copy_of_client_host_memory_is_refused_at_the_call(dataplane, cuda_program, tmp_path):
    """tests/cuda/graphs.cu captures copies between pinned host memory and the device (it runs on the
    emulated device directly, tests/emu): through the stub the client's memory is on another machine than
    the graph, so the copy is refused at the call, as the driver refuses an unsupported call in a capture."""
    np.zeros(64, dtype=np.float32).tofile(tmp_path / "in")
    r = run_via_stub(cuda_program("graphs"), dataplane.unix, 64, 2, tmp_path / "in", tmp_path / "out")
    assert r.returncode == 1
    assert "error=cudaErrorStreamCaptureUnsupported at cudaMemcpyAsync(dx, hx" in r.stdout


def test_bogus_graph_handles_and_ranges_are_refused_and_the_session_goes_on(dataplane, cuda_program):
    """Graphs, nodes and executable graphs are handles the worker tracks: bogus or dead ones, nodes past
    the end of an allocation and bogus kernels get an error code, never a crash of the GPU worker."""
    prog = cuda_program("dp_graph_bogus", flags=("-L", str(stub_dir()), "-lcuda"))
    r = run_via_stub(prog, dataplane.unix)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dp_graph_bogus ok" in r.stdout
