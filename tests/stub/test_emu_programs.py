"""The emulator's test programs (tests/cuda/*.cu, written for the emulated device) run unchanged
through the client stub -> data plane -> tf-executor -> emulated device, and give the same results as
numpy, with cudart static and shared.
"""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from cudabuild import parse_kv, write_arrays
from dp_helpers import run_via_stub, stub_dir

CUDARTS = ["static", "shared"]


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def kv_of(r: subprocess.CompletedProcess) -> dict:
    assert r.returncode == 0, r.stdout + r.stderr
    return parse_kv(r.stdout)


@pytest.mark.parametrize("cudart", CUDARTS)
def test_vector_add_through_the_stub(dataplane, cuda_program, tmp_path, rng, cudart):
    n = 100_003
    a, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    kv_of(run_via_stub(cuda_program("vector_add", cudart=cudart), dataplane.unix, n,
                       write_arrays(tmp_path / "in", a, b), tmp_path / "out"))
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.float32), a + b)


def test_saxpy_and_tiled_matmul_over_tcp(dataplane, cuda_program, tmp_path, rng):
    n = 4096
    x, y = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    kv_of(run_via_stub(cuda_program("saxpy"), dataplane.tcp, n, 2.5, write_arrays(tmp_path / "in", x, y),
                       tmp_path / "out"))
    np.testing.assert_allclose(np.fromfile(tmp_path / "out", np.float32), 2.5 * x + y, rtol=1e-6, atol=1e-6)
    m, k, nn = 33, 47, 29
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, nn), dtype=np.float32)
    kv_of(run_via_stub(cuda_program("matmul_tiled"), dataplane.tcp, m, nn, k, write_arrays(tmp_path / "in", a, b),
                       tmp_path / "out"))
    np.testing.assert_allclose(np.fromfile(tmp_path / "out", np.float32).reshape(m, nn), a @ b, rtol=1e-4, atol=1e-4)


def test_reduction_and_histogram_with_atomics(dataplane, cuda_program, tmp_path, rng):
    x = rng.integers(-1000, 1000, 50_000, dtype=np.int32)
    kv_of(run_via_stub(cuda_program("reduce_shfl"), dataplane.unix, x.size, write_arrays(tmp_path / "in", x),
                       tmp_path / "out"))
    out = np.fromfile(tmp_path / "out", np.uint8)
    assert int(out[:8].view(np.int64)[0]) == int(x.sum()) and int(out[8:12].view(np.int32)[0]) == int(x.max())
    v = rng.integers(0, 1 << 30, 20_000, dtype=np.uint32)
    kv_of(run_via_stub(cuda_program("histogram"), dataplane.unix, v.size, 37, write_arrays(tmp_path / "in", v),
                       tmp_path / "out"))
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.uint32), np.bincount(v % 37, minlength=37))


@pytest.mark.parametrize("cudart", CUDARTS)
def test_streams_events_pinned_memory_and_host_functions(dataplane, cuda_program, tmp_path, rng, cudart):
    n = 4099
    x = rng.standard_normal(n, dtype=np.float32)
    kv = kv_of(run_via_stub(cuda_program("streams_events", cudart=cudart), dataplane.unix, n,
                            write_arrays(tmp_path / "in", x), tmp_path / "out"))
    fma = (3.0 * x.astype(np.float64) + 1.0).astype(np.float32)
    np.testing.assert_allclose(np.fromfile(tmp_path / "out", np.float32), fma, rtol=1e-6, atol=1e-7)
    assert float(kv["elapsed_ms"]) > 0.0
    assert kv["host_fn_ran"] == "1" and kv["query"] == "cudaSuccess"


@pytest.mark.parametrize("cudart", CUDARTS)
def test_kernel_fault_is_sticky_through_the_stub(dataplane, cuda_program, cudart):
    kv = kv_of(run_via_stub(cuda_program("out_of_bounds", cudart=cudart), dataplane.unix))
    assert "cudaErrorIllegalAddress" in {kv["launch"], kv["sync"]}
    assert kv["sync"] == "cudaErrorIllegalAddress" and kv["after"] == "cudaErrorIllegalAddress"


@pytest.mark.parametrize("kind,how", [("ptx", "data"), ("fatbin", "file")])
def test_driver_api_modules_params_and_extra(dataplane, cuda_program, tmp_path, rng, kind, how):
    from cudabuild import CUDA_SRC, PTX_ARCH, find_nvcc
    from tfclient import native
    module = native.build_dir() / "cuda" / f"dp_driver_kernels.{kind}"
    if not module.exists():
        module.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([find_nvcc(), f"-{kind}", *PTX_ARCH, "-o", str(module), str(CUDA_SRC / "driver_kernels.cu")],
                       check=True)
    n = 1000
    x = rng.standard_normal(n, dtype=np.float32)
    prog = cuda_program("driver_api", flags=("-L", str(stub_dir()), "-lcuda"))
    kv = kv_of(run_via_stub(prog, dataplane.unix, module, how, n, write_arrays(tmp_path / "in", x), tmp_path / "out"))
    np.testing.assert_allclose(np.fromfile(tmp_path / "out", np.float32), x * 3.0 * 0.5, rtol=1e-6)
    assert kv["params"] == "0:8,8:4,12:4"
    assert int(kv["blocks_seen"]) == 2 * int(kv["blocks"])
    assert kv["bad_launch"] == "CUDA_ERROR_INVALID_VALUE"  # the driver API's answer (cudart's: InvalidConfiguration)


@pytest.mark.parametrize("cudart", CUDARTS)
def test_launch_configuration_checks_match_the_device(dataplane, cuda_program, cudart):
    """Config errors come back at the launch (checked in the stub), attribute/opt-in paths work remotely,
    and managed memory works (mapped at one address on both sides, kept coherent by the stub)."""
    r = run_via_stub(cuda_program("launch_config", cudart=cudart), dataplane.unix)
    kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert kv["ok_launch"] == "cudaSuccess" and kv["fill"] == "ok"
    assert kv["zero_grid"] == kv["big_block"] == kv["big_block_z"] == "cudaErrorInvalidConfiguration"
    assert kv["smem_default"] == "cudaErrorInvalidValue"
    assert kv["smem_optin"] == "cudaSuccess" and kv["smem_too_much"] == "cudaErrorInvalidValue"
    assert kv["after_errors"] == "cudaSuccess"
    assert kv["max_threads"] == "1024" and 1 <= int(kv["occupancy"]) <= 32
    assert kv["coop"] == "cudaSuccess" and kv["coop_sum"] == "ok"
    assert kv["async_alloc"] == "cudaSuccess"
    assert kv["managed"] == "ok" and "error" not in kv


def test_thrust_sort_and_cub_scan_built_for_compute_90_through_the_stub(dataplane, cuda_program, tmp_path, rng):
    # the capability and PTX_VERSION the stub forwards must agree with the PTX the worker runs
    n = 20_000
    x = rng.integers(-100_000, 100_000, n, dtype=np.int32)
    prog = cuda_program("cub_thrust_oneliners", arch=["-gencode", "arch=compute_90,code=compute_90"])
    kv = kv_of(run_via_stub(prog, dataplane.unix, n, write_arrays(tmp_path / "in", x), tmp_path / "out"))
    assert kv["cc"] == "12.1" and kv["ptx_version"] == "900"
    out = np.fromfile(tmp_path / "out", np.uint8)
    np.testing.assert_array_equal(out[:4 * n].view(np.int32), np.sort(x))
    np.testing.assert_array_equal(out[4 * n:].view(np.int64), np.cumsum(x.astype(np.int64)))


def test_arrive_wait_barrier_through_the_stub(dataplane, cuda_program, tmp_path, rng):
    n = 5000
    a, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    prog = cuda_program("aw_barrier", arch=["-gencode", "arch=compute_90,code=compute_90"])
    kv = kv_of(run_via_stub(prog, dataplane.unix, n, write_arrays(tmp_path / "in", a, b)))
    assert kv["rounds_ok"] == "1"
    assert float(kv["dot"]) == pytest.approx(float((a.astype(np.float64) * b).sum()), rel=1e-12, abs=1e-12)


def test_named_barriers_producer_consumer_through_the_stub(dataplane, cuda_program, tmp_path, rng):
    # bar.arrive / bar.sync with thread counts over named barriers (tests/cuda/named_barriers.cu), run by the
    # GPU worker process on the emulated device
    from test_emu_kernels import named_barrier_pipeline_reference
    blocks, rounds = 2, 4
    x = rng.integers(-1_000_000, 1_000_000, blocks * rounds * 128, dtype=np.int32)
    kv = kv_of(run_via_stub(cuda_program("named_barriers"), dataplane.unix, blocks, rounds,
                            write_arrays(tmp_path / "in", x), tmp_path / "out"))
    assert kv["rounds"] == str(rounds)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.uint32),
                                  named_barrier_pipeline_reference(x, blocks, rounds))


def test_wmma_gemm_through_the_stub(dataplane, cuda_program, tmp_path, rng):
    # a tensor-core GEMM (cudaTensorCoreGemm's shape in small) run by the GPU worker process on the emulated
    # device; integer-valued f16 inputs keep every sum exact, so the product is compared bit for bit
    m, n, k = 64, 64, 128
    a = rng.integers(-4, 5, (m, k)).astype(np.float16)
    bt = rng.integers(-4, 5, (n, k)).astype(np.float16)
    c = rng.integers(-1000, 1001, (m, n)).astype(np.float32)
    kv = kv_of(run_via_stub(cuda_program("wmma_gemm"), dataplane.unix, m, n, k, write_arrays(tmp_path / "in", a, bt, c),
                            tmp_path / "out"))
    assert kv["tiles"] == str(k // 16)
    want = (a.astype(np.float64) @ bt.astype(np.float64).T + c).astype(np.float32)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.float32).reshape(m, n), want)


def test_virtual_functions_through_the_stub(dataplane, cuda_program, tmp_path):
    n = 500
    kv_of(run_via_stub(cuda_program("virtual_newdelete"), dataplane.unix, n, tmp_path / "out"))
    i = np.arange(n)
    x = (i % 11 + 1).astype(np.float32)
    area = np.where(i % 3 == 0, x * x, np.where(i % 3 == 1, np.float32(0.5) * x * x, np.float32(3.0) * x * x))
    sides = np.where(i % 3 == 0, 4, np.where(i % 3 == 1, 3, 0)).astype(np.float32)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.float32), (area + 100 * sides).astype(np.float32))


def test_warp_aggregated_atomics_through_the_stub(dataplane, cuda_program, tmp_path, rng):
    n, nb = 3000, 5
    src = rng.integers(0, nb, n, dtype=np.int32)
    kv = kv_of(run_via_stub(cuda_program("warp_aggregated"), dataplane.unix, n, nb, write_arrays(tmp_path / "in", src),
                            tmp_path / "out"))
    out = np.fromfile(tmp_path / "out", np.int32)
    assert int(kv["nres"]) == out[0] == int((src > 0).sum())
    np.testing.assert_array_equal(out[1 + n:1 + n + nb], np.bincount(src, minlength=nb))
