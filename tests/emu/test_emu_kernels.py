"""Emulated CUDA device end to end: nvcc-built programs (PTX for compute_80, nvcc's default
compression) run their kernels on build/emu/libcuda.so.1; results are checked against numpy
references computed here on random inputs."""
import re
import shutil
import subprocess

import numpy as np
import pytest

from cudabuild import write_arrays
from emu_run import CUDA_SRC, PTX_ARCH, emu_env, find_nvcc, parse_kv, run_kv, run_program
from tfclient import native

CUDARTS = ["static", "shared"]


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


@pytest.mark.parametrize("cudart", CUDARTS)
def test_vector_add_matches_numpy(tmp_path, rng, cudart):
    n = 5000
    a, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    run_kv("vector_add", n, write_arrays(tmp_path / "in", a, b), tmp_path / "out", cudart=cudart)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.float32), a + b)


def test_saxpy_matches_numpy(tmp_path, rng):
    n, alpha = 3001, np.float32(2.5)
    x, y = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    run_kv("saxpy", n, alpha, write_arrays(tmp_path / "in", x, y), tmp_path / "out")
    np.testing.assert_allclose(np.fromfile(tmp_path / "out", np.float32), alpha * x + y, rtol=1e-6, atol=1e-6)


def test_tiled_matmul_with_shared_memory_and_syncthreads(tmp_path, rng):
    m, n, k = 37, 45, 29  # not multiples of the 16x16 tile: exercises the guarded loads
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    run_kv("matmul_tiled", m, n, k, write_arrays(tmp_path / "in", a, b), tmp_path / "out")
    c = np.fromfile(tmp_path / "out", np.float32).reshape(m, n)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)


def test_reduction_with_warp_shuffles_and_atomics(tmp_path, rng):
    n = 20000
    x = rng.integers(-100000, 100000, n, dtype=np.int32)
    run_kv("reduce_shfl", n, write_arrays(tmp_path / "in", x), tmp_path / "out")
    out = np.fromfile(tmp_path / "out", np.int64)
    assert out[0] == int(x.astype(np.int64).sum())
    assert np.int32(out[1] & 0xFFFFFFFF) == x.max()


def test_histogram_with_shared_memory_atomics(tmp_path, rng):
    n, bins = 30000, 100
    v = rng.integers(0, 1 << 31, n, dtype=np.uint32)
    run_kv("histogram", n, bins, write_arrays(tmp_path / "in", v), tmp_path / "out")
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.uint32), np.bincount(v % bins, minlength=bins))


def collatz_reference(x):
    out = np.empty(len(x), np.int32)
    for i, raw in enumerate(x):
        v = int(raw) % 10000 + 1
        third = v % 3 == 0
        s = 0
        while v != 1 and s < 500:
            v = 3 * v + 1 if v & 1 else v >> 1
            s += 1
        out[i] = -s if third else s
    return out


def test_divergent_loops_and_branches(tmp_path, rng):
    n = 1000
    x = rng.integers(0, 1 << 32, n, dtype=np.uint32)
    run_kv("divergent_loops", n, write_arrays(tmp_path / "in", x), tmp_path / "out")
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.int32), collatz_reference(x))


def test_device_function_and_constant_memory(tmp_path, rng):
    n = 2000
    coef = rng.uniform(-2, 2, 8).astype(np.float32)
    x = rng.uniform(-1.5, 1.5, n).astype(np.float32)
    kv = run_kv("constant_func", n, write_arrays(tmp_path / "in", coef, x), tmp_path / "out")
    assert kv["symbol_roundtrip"] == "ok"
    ref = np.zeros(n, np.float64)
    for c in coef[::-1]:
        ref = ref * x + c
    np.testing.assert_allclose(np.fromfile(tmp_path / "out", np.float32), ref, rtol=1e-4, atol=1e-4)


def test_grid_stride_loop_covers_more_elements_than_threads(tmp_path, rng):
    n = 10007
    x = rng.standard_normal(n, dtype=np.float32)
    run_kv("grid_stride", n, write_arrays(tmp_path / "in", x), tmp_path / "out")
    ref = 2 * x + (np.arange(n) % 7).astype(np.float32)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.float32), ref)


@pytest.mark.parametrize("cudart", CUDARTS)
def test_streams_events_and_host_functions(tmp_path, rng, cudart):
    n = 4099
    x = rng.standard_normal(n, dtype=np.float32)
    kv = run_kv("streams_events", n, write_arrays(tmp_path / "in", x), tmp_path / "out", cudart=cudart)
    fma = (3.0 * x.astype(np.float64) + 1.0).astype(np.float32)  # nvcc contracts 3*x+1 into one fma
    np.testing.assert_allclose(np.fromfile(tmp_path / "out", np.float32), fma, rtol=1e-6, atol=1e-7)
    assert float(kv["elapsed_ms"]) > 0.0  # real wall-clock time of the recorded work
    assert kv["host_fn_ran"] == "1"
    assert kv["query"] == "cudaSuccess"


@pytest.mark.parametrize("cudart", CUDARTS)
def test_out_of_bounds_store_is_a_sticky_illegal_address(cudart):
    p = run_program("out_of_bounds", cudart=cudart)
    kv = parse_kv(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    errors = {kv["launch"], kv["sync"]}
    assert "cudaErrorIllegalAddress" in errors
    assert kv["sync"] == "cudaErrorIllegalAddress"
    assert kv["after"] == "cudaErrorIllegalAddress"  # sticky, as on a GPU
    assert kv["reset"] == "cudaSuccess"
    assert kv["after_reset"] == "cudaSuccess"  # cudaDeviceReset clears it
    assert b"tf-emu:" in p.stderr


@pytest.mark.parametrize("cudart", CUDARTS)
def test_sass_only_binary_fails_with_a_message_about_ptx(tmp_path, cudart):
    n = 64
    a = np.ones(n, np.float32)
    p = run_program("vector_add", n, write_arrays(tmp_path / "in", a, a), tmp_path / "out", cudart=cudart,
                    arch=["-gencode", "arch=compute_80,code=sm_80"])
    assert p.returncode != 0
    assert b"error=cudaErrorNoKernelImageForDevice" in p.stdout or b"error=cudaErrorInvalidKernelImage" in p.stdout \
        or b"error=" in p.stdout, p.stdout
    assert b"tf-emu:" in p.stderr and b"PTX" in p.stderr and b"compute_" in p.stderr


SM90 = ["-gencode", "arch=compute_90,code=compute_90"]


@pytest.mark.parametrize("cc", ["", "9.0"], ids=["default-cc", "cc-9.0"])
def test_thrust_sort_and_cub_inclusive_sum_built_for_compute_90(tmp_path, rng, cc):
    # CUB/Thrust pick their tuning from the device's capability and the kernel's PTX_VERSION: both must
    # be consistent with the PTX the device runs (cc 8.0 + PTX 80 for compute_90 code gave error 98)
    n = 30_000
    x = rng.integers(-100_000, 100_000, n, dtype=np.int32)
    env = emu_env(**({"TF_EMU_CC": cc} if cc else {}))
    # timeout: with TF_EMU_JIT_SYNC=1 and a cold disk cache the JIT compiles CUB's radix-sort kernels before their
    # first launch, the Onesweep kernel (2654 PTX instructions, bar.red) in ~60 s of CPU on a loaded machine
    kv = run_kv("cub_thrust_oneliners", n, write_arrays(tmp_path / "in", x), tmp_path / "out", arch=SM90, env=env,
                timeout=600)
    assert kv["cc"] == (cc or "12.1") and kv["ptx_version"] == "900"
    out = np.fromfile(tmp_path / "out", np.uint8)
    np.testing.assert_array_equal(out[:4 * n].view(np.int32), np.sort(x))
    np.testing.assert_array_equal(out[4 * n:].view(np.int64), np.cumsum(x.astype(np.int64)))


@pytest.mark.parametrize("cudart", CUDARTS)
def test_ptx_above_the_device_capability_is_no_kernel_image(tmp_path, cudart):
    # a driver never runs PTX for a newer device: compute_90 code on a cc 8.0 device has no image
    a = np.ones(64, np.float32)
    p = run_program("vector_add", 64, write_arrays(tmp_path / "in", a, a), tmp_path / "out", cudart=cudart, arch=SM90,
                    env=emu_env(TF_EMU_CC="8.0"))
    assert p.returncode == 1 and b"error=cudaErrorNoKernelImageForDevice" in p.stdout, p.stdout
    assert b"tf-emu:" in p.stderr and b"compute_90" in p.stderr and b"8.0" in p.stderr


def test_device_reports_the_capability_it_is_given():
    kv = run_kv("device_query", env=emu_env(TF_EMU_CC="9.0"))
    assert (kv["major"], kv["minor"], kv["sm_count"]) == ("9", "0", "132")
    kv = run_kv("device_query")
    assert (kv["major"], kv["minor"]) == ("12", "1")
    kv = run_kv("device_query", env=emu_env(TF_EMU_CC="13.0"))   # no part: the 12.0 part's figures
    assert (kv["major"], kv["minor"], kv["sm_count"]) == ("13", "0", "188")


@pytest.mark.parametrize("arch", ["compute_80", "compute_90"])
def test_arrive_wait_barrier_phases_as_simpleAWBarrier(tmp_path, rng, arch):
    # cuda::barrier in shared memory: mbarrier.arrive + test_wait (compute_80) / try_wait (compute_90)
    n = 10_000
    a, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    kv = run_kv("aw_barrier", n, write_arrays(tmp_path / "in", a, b), arch=["-gencode", f"arch={arch},code={arch}"])
    assert kv["rounds_ok"] == "1"
    assert float(kv["dot"]) == pytest.approx(float((a.astype(np.float64) * b).sum()), rel=1e-12, abs=1e-12)


def wmma_gemm_inputs(rng, m, n, k):
    """Integer-valued f16 A (m x k) and B (stored column-major, n x k) and f32 C: every partial sum is an
    integer below 2^24, so D = A x B + C is exact in any summation order (a GPU's tensor cores, the emulator's
    fma chain) and numpy's float64 product is the reference."""
    a = rng.integers(-4, 5, (m, k)).astype(np.float16)
    bt = rng.integers(-4, 5, (n, k)).astype(np.float16)
    c = rng.integers(-1000, 1001, (m, n)).astype(np.float32)
    want = (a.astype(np.float64) @ bt.astype(np.float64).T + c).astype(np.float32)
    return a, bt, c, want


def test_wmma_gemm_tiles_match_numpy(tmp_path, rng):
    # cudaTensorCoreGemm's shape in small: 4 warps per block, A/B staged in shared memory with a skewed stride,
    # one wmma.mma per 16-wide k chunk, C loaded and D stored row-major from global memory
    m, n, k = 64, 96, 256
    a, bt, c, want = wmma_gemm_inputs(rng, m, n, k)
    kv = run_kv("wmma_gemm", m, n, k, write_arrays(tmp_path / "in", a, bt, c), tmp_path / "out")
    assert kv["tiles"] == str(k // 16)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.float32).reshape(m, n), want)


def test_warp_aggregated_atomics_with_labeled_groups(tmp_path, rng):
    # warpAggregatedAtomicsCG: redux/match/shfl .sync over each labeled group's own member mask
    n, nb = 5000, 7
    src = rng.integers(0, nb, n, dtype=np.int32)
    kv = run_kv("warp_aggregated", n, nb, write_arrays(tmp_path / "in", src), tmp_path / "out")
    out = np.fromfile(tmp_path / "out", np.int32)
    nres, dst, count, index = out[0], out[1:1 + n], out[1 + n:1 + n + nb], out[1 + n + nb:]
    assert int(kv["nres"]) == nres == int((src > 0).sum())
    np.testing.assert_array_equal(np.sort(dst[:nres]), np.sort(src[src > 0]))
    np.testing.assert_array_equal(count, np.bincount(src, minlength=nb))
    for b in range(nb):  # each element got its own slot in its bucket
        np.testing.assert_array_equal(np.sort(index[src == b]), np.arange(count[b]))


def virtual_shapes_reference(n):
    i = np.arange(n)
    x = (i % 11 + 1).astype(np.float32)
    area = np.where(i % 3 == 0, x * x, np.where(i % 3 == 1, np.float32(0.5) * x * x, np.float32(3.0) * x * x))
    sides = np.where(i % 3 == 0, 4, np.where(i % 3 == 1, 3, 0)).astype(np.float32)
    return (area + np.float32(100.0) * sides).astype(np.float32)


@pytest.mark.parametrize("cudart", CUDARTS)
def test_virtual_functions_with_device_new_and_delete(tmp_path, cudart):
    n = 1000
    run_kv("virtual_newdelete", n, tmp_path / "out", cudart=cudart)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.float32), virtual_shapes_reference(n))


@pytest.mark.parametrize("mode", ["-no-compress", "-compress-mode=size", "-compress-mode=speed",
                                  "-compress-mode=balance", "-compress-mode=default"])
def test_every_nvcc_compression_mode_loads(tmp_path, rng, mode):
    n = 777
    a, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    run_kv("vector_add", n, write_arrays(tmp_path / "in", a, b), tmp_path / "out", flags=(mode,))
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.float32), a + b)


@pytest.fixture(scope="module")
def driver_modules():
    """driver_kernels.cu compiled to a PTX file and to a (compressed) fatbin."""
    src = CUDA_SRC / "driver_kernels.cu"
    out = {}
    for kind in ("ptx", "fatbin"):
        path = native.build_dir() / "cuda" / f"driver_kernels.{kind}"
        if not path.exists() or path.stat().st_mtime < src.stat().st_mtime:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            subprocess.run([find_nvcc(), f"-{kind}", *PTX_ARCH, "-o", str(tmp), str(src)], check=True)
            tmp.rename(path)
        out[kind] = path
    return out


@pytest.mark.parametrize("kind,how,stream", [("ptx", "file", "legacy"), ("ptx", "data", "legacy"),
                                             ("fatbin", "data", "legacy"), ("fatbin", "file", "per-thread")])
def test_driver_api_program_loads_modules_and_launches(tmp_path, rng, driver_modules, kind, how, stream):
    n = 1000
    x = rng.standard_normal(n, dtype=np.float32)
    # per-thread: cuda.h renames the calls to their _ptds/_ptsz exports
    kv = run_kv("driver_api", driver_modules[kind], how, n, write_arrays(tmp_path / "in", x), tmp_path / "out",
                flags=(f"-L{native.emu_lib_dir()}", "-lcuda", "--default-stream", stream))
    np.testing.assert_allclose(np.fromfile(tmp_path / "out", np.float32), x * 3.0 * 0.5, rtol=1e-6)
    assert kv["params"] == "0:8,8:4,12:4"
    assert int(kv["blocks_seen"]) == 2 * int(kv["blocks"])
    assert kv["global_size"] == "4"
    assert kv["bad_launch"] == "CUDA_ERROR_INVALID_VALUE"  # the driver API's answer (cudart's: InvalidConfiguration)
    # the limiter's utilization source: kernel time is counted, and never more than wall time
    assert 0 < int(kv["busy_ns"]) <= int(kv["wall_ns"])


@pytest.mark.parametrize("cudart", CUDARTS)
def test_launch_configuration_checks_attributes_and_allocation_paths(cudart):
    kv = run_kv("launch_config", cudart=cudart)
    assert kv["ok_launch"] == "cudaSuccess" and kv["fill"] == "ok"
    # what a GPU reports for each misconfiguration, and none of them poisons the context
    assert kv["zero_grid"] == "cudaErrorInvalidConfiguration"
    assert kv["big_block"] == "cudaErrorInvalidConfiguration"
    assert kv["big_block_z"] == "cudaErrorInvalidConfiguration"
    assert kv["smem_default"] == "cudaErrorInvalidValue"
    assert kv["smem_optin"] == "cudaSuccess"
    assert kv["smem_too_much"] == "cudaErrorInvalidValue"
    assert kv["after_errors"] == "cudaSuccess"
    assert kv["max_threads"] == "1024" and kv["static_smem"] == "0"
    assert 1 <= int(kv["occupancy"]) <= 32
    assert kv["coop"] == "cudaSuccess" and kv["coop_sum"] == "ok"
    assert kv["async_alloc"] == "cudaSuccess"
    assert kv["managed"] == "ok"


@pytest.mark.parametrize("cudart", CUDARTS)
def test_host_threads_share_the_device_concurrently(cudart):
    kv = run_kv("multithread", 6, 5, cudart=cudart)
    assert kv["errors"] == "none"
    assert kv["threads_ok"] == "6"
    # busy time is the union of kernel intervals: concurrent launches never count twice
    assert 0 < int(kv["busy_ns"]) <= int(kv["wall_ns"])


@pytest.mark.parametrize("cudart", CUDARTS)
def test_graphs_from_stream_capture_and_built_by_hand_replay_correctly(tmp_path, rng, cudart):
    from graphs_expect import check_graphs
    n, launches = 3000, 3
    x = rng.standard_normal(n, dtype=np.float32)
    kv = run_kv("graphs", n, launches, write_arrays(tmp_path / "in", x), tmp_path / "out", cudart=cudart)
    assert kv["capture_status"] == "1"  # cudaStreamCaptureStatusActive
    assert int(kv["nodes"]) >= 6  # copy, event, 3 kernels, copy, host (+ the join event)
    check_graphs(kv, tmp_path / "out", x, launches)


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_graphs_capture_modes_explicit_nodes_update_and_clone(tmp_path, rng, cudart):
    from graphs_expect import LAUNCHES, N, check_graphs_remote
    x = rng.standard_normal(N, dtype=np.float32)
    kv = run_kv("graphs_remote", N, LAUNCHES, write_arrays(tmp_path / "in", x), tmp_path / "out", cudart=cudart,
                timeout=300)
    check_graphs_remote(kv, tmp_path / "out", x)
    # the device is in this process: host memory and host functions may be part of a graph
    assert kv["host_copy_node"] == "cudaSuccess"
    assert kv["captured_h2d"] == "cudaSuccess" and kv["captured_h2d_end"] == "cudaSuccess"
    assert kv["sync_after"] == "cudaSuccess"


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_graph_copies_of_host_memory_see_the_bytes_of_each_launch(cudart):
    from graphs_expect import HOST_COPY_LAUNCHES, HOST_COPY_N, check_graph_host_copies
    kv = run_kv("graph_host_copies", HOST_COPY_N, HOST_COPY_LAUNCHES, cudart=cudart, timeout=300)
    check_graph_host_copies(kv)


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_graph_memory_alloc_and_free_nodes_attributes_and_refusals(cudart):
    from graphs_expect import GRAPH_MEM_LAUNCHES, GRAPH_MEM_N, check_graph_mem_nodes
    kv = run_kv("graph_mem_nodes", GRAPH_MEM_N, GRAPH_MEM_LAUNCHES, cudart=cudart, timeout=300)
    check_graph_mem_nodes(kv)


def test_graph_node_params_get_set_exec_updates_and_enabled_nodes_on_both_engines():
    """Host, memset, memcpy, event and child graph nodes' parameters read back and changed, in graphs and in
    executable graphs (per-kind calls and cudaGraph(Exec)NodeSetParams), cudaGraphNodeSetEnabled, with the
    driver's error answers and launches computing the new values: the interpreter and the JIT print the
    same lines, and those are what CUDA's rules give (graphs_expect.GRAPH_NODE_PARAMS)."""
    from graphs_expect import GRAPH_NODE_PARAMS_N, check_graph_node_params
    runs = {engine: run_kv("graph_node_params", GRAPH_NODE_PARAMS_N, timeout=300,
                           env=emu_env(TF_EMU_ENGINE=engine, TF_EMU_JIT_SYNC=1)) for engine in ("interp", "jit")}
    assert runs["interp"] == runs["jit"]
    check_graph_node_params(runs["interp"])


def test_graph_exec_update_keeps_the_instantiation_nodes_and_answers_as_cuda_documents_on_both_engines():
    """cudaGraphExecUpdate: the executable graph answers to its instantiation graph's nodes afterwards, failed
    updates (node count, edges, node kind, a 2D memset's shape) name the update graph's nodes and change
    nothing, a kernel's function may change, and the update graph's user objects replace the executable
    graph's: the interpreter and the JIT print the same lines, graphs_expect.GRAPH_EXEC_UPDATE."""
    from graphs_expect import GRAPH_EXEC_UPDATE_N, check_graph_exec_update
    runs = {engine: run_kv("graph_exec_update", GRAPH_EXEC_UPDATE_N, timeout=300,
                           env=emu_env(TF_EMU_ENGINE=engine, TF_EMU_JIT_SYNC=1)) for engine in ("interp", "jit")}
    assert runs["interp"] == runs["jit"]
    check_graph_exec_update(runs["interp"])


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_conditional_nodes_if_else_while_switch_driven_by_kernels(cudart):
    from graphs_expect import check_graph_conditional
    kv = run_kv("graph_conditional", cudart=cudart, timeout=300)
    check_graph_conditional(kv)
    assert kv["host_copy_in_body"] == "cudaSuccess"  # the device is in this process


def test_thrust_sort_and_reduce_library_code(tmp_path, rng):
    n = 20000
    x = rng.standard_normal(n, dtype=np.float32)
    k = rng.integers(-1000, 1000, n, dtype=np.int32)
    # timeout: as the compute_90 sort test's (CUB's Onesweep kernels compile before their first launch under
    # TF_EMU_JIT_SYNC=1 with a cold disk cache)
    kv = run_kv("thrust_sort", n, write_arrays(tmp_path / "in", x, k), tmp_path / "out", timeout=600)
    assert int(kv["sum_k"]) == int(k.astype(np.int64).sum())
    out = np.fromfile(tmp_path / "out", np.uint8)
    order = np.argsort(x, kind="stable")
    np.testing.assert_array_equal(out[:4 * n].view(np.float32), x[order])
    np.testing.assert_array_equal(out[4 * n:].view(np.int32), k[order])


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_managed_variables_are_shared_by_host_and_kernels(cudart):
    blocks = 7
    kv = run_kv("managed_var", blocks, cudart=cudart)
    assert int(kv["counter"]) == 5 + blocks * 32
    assert int(kv["sum"]) == sum(2 * i for i in range(256))


def cub_warp_reference(x):
    n = x.size
    x64 = x.astype(np.int64)
    warps = x64.reshape(-1, 32)
    nw = n // 32
    part = np.array([warps[w, :1 + w % 32].sum() for w in range(nw)])
    padded = np.concatenate([x64, np.zeros(-n % 80, np.int64)])
    tiles = x64.reshape(-1, 8)
    low3 = (x & 7).reshape(-1, 32)
    match = np.array([[sum(1 << j for j in range(32) if low3[w, j] == low3[w, l]) for l in range(32)] for w in range(nw)])
    pos = (x > 0).reshape(-1, 32)
    odd_ballot = np.array([sum(1 << j for j in range(1, 32, 2) if pos[w, j]) for w in range(nw)])
    ballot = np.where(np.arange(32) % 2 == 1, odd_ballot[:, None], 16)
    parts = [warps.sum(1), part, np.cumsum(warps, 1).ravel(), x64.reshape(-1, 96).sum(1), padded.reshape(-1, 80).sum(1),
             np.repeat(tiles.sum(1), 8), np.repeat(tiles.max(1), 8), match.ravel(), ballot.ravel()]
    return np.concatenate([np.asarray(p, np.int64).astype(np.uint32).astype(np.int32) for p in parts])


@pytest.mark.parametrize("engine", ["interp", pytest.param("jit", marks=pytest.mark.skipif(
    not shutil.which("llvm-config-14"), reason="the PTX JIT needs LLVM 14 (llvm-14-dev)"))])
def test_cub_warp_and_block_collectives(tmp_path, rng, engine):
    # cub::WarpReduce/WarpScan/BlockReduce (full, valid_items, an 80-thread block), cg::reduce over 8-lane tiles,
    # __match_any_sync and a ballot inside a branch: the JIT compiles both kernels (no interpreter fallback)
    n = 96 * 7
    x = rng.integers(-100000, 100000, n, dtype=np.int32)
    env = emu_env(TF_EMU_ENGINE=engine, TF_EMU_TRACE=1, TF_EMU_JIT_SYNC=1, TF_EMU_JIT_CACHE="off")
    p = run_program("cub_warp", n, write_arrays(tmp_path / "in", x), tmp_path / "out", env=env, timeout=600)
    err = p.stderr.decode()
    assert p.returncode == 0, f"stdout:\n{p.stdout.decode()}\nstderr:\n{err}"
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.int32), cub_warp_reference(x))
    if engine == "jit":
        for kernel in ("warp_collectives", "block80"):
            assert re.search(rf"kernel \S*{kernel}\S* compiled in", err), err
        assert "runs on the interpreter" not in err, err


def named_barrier_pipeline_reference(x, blocks, rounds):
    """named_barriers.cu's output computed in numpy: per block, each consumer c folds acc = acc*7 + v over the
    rounds, v = buf[(c ^ 33) ^ 5] with buf[p] = x[p]*3 + round; then the count of odd inputs of the last round."""
    x = x.reshape(blocks, rounds, 128).astype(np.int64)
    c = np.arange(128)
    acc = np.zeros((blocks, 128), np.uint64)
    for r in range(rounds):
        v = (x[:, r, (c ^ 33) ^ 5] * 3 + r).astype(np.uint32).astype(np.uint64)
        acc = (acc * 7 + v) & 0xFFFFFFFF
    odd = (x[:, rounds - 1, :] & 1).sum(axis=1)
    return np.concatenate([acc.astype(np.uint32), odd[:, None].astype(np.uint32)], axis=1).ravel()


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_named_barriers_producer_consumer_with_bar_arrive(tmp_path, rng, engine):
    # producers and consumers wait on each other's named barriers (bar.arrive / bar.sync with a thread count),
    # consumers pair up on barriers of 64 threads given in registers; same bits on both engines
    blocks, rounds = 3, 5
    x = rng.integers(-1_000_000, 1_000_000, blocks * rounds * 128, dtype=np.int32)
    kv = run_kv("named_barriers", blocks, rounds, write_arrays(tmp_path / "in", x), tmp_path / "out",
                env=emu_env(TF_EMU_ENGINE=engine, TF_EMU_JIT_SYNC=1))
    assert kv["rounds"] == str(rounds)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.uint32),
                                  named_barrier_pipeline_reference(x, blocks, rounds))
