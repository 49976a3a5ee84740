"""CuPy, unchanged, on the emulated device through the stub: each test runs a script in its own interpreter
that calls tfclient.attach() and then imports CuPy (real scheduler, worker, executor and emulator processes);
results come back in an .npz file and are checked against numpy here; CuPy's own kernels and its CUB paths."""
import numpy as np
import pytest

from attached import EmbeddedEmu, assert_clean
from tfclient.scheduler_client import SchedulerClient
from tfclient.protos import load

pb = load("scheduler_pb2")

PRELUDE = """
import os, sys
import numpy as np
import tfclient
lease = tfclient.attach(vram="1Gi")
import cupy as cp
out = {}
"""
SAVE = """
np.savez(os.path.join(os.getcwd(), "out.npz"), **out)
"""


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    e = EmbeddedEmu(tmp_path_factory.mktemp("tfhome"))
    e.env["CUPY_CACHE_DIR"] = str(tmp_path_factory.mktemp("cupy-cache"))   # compiled here, not from ~/.cupy
    yield e
    e.stop()


def run_cupy(emu, tmp_path, body: str, env: dict | None = None) -> dict:
    r = emu.run_script(PRELUDE + body + SAVE, tmp_path, env=env)
    assert_clean(r)
    with np.load(tmp_path / "out.npz") as f:
        return {k: f[k] for k in f.files}


def test_attach_on_the_emulated_device_makes_cupy_emit_ptx(emu, tmp_path):
    got = run_cupy(emu, tmp_path, """
out["ptx"] = np.array(os.environ.get("CUPY_COMPILE_WITH_PTX", ""))
out["cc"] = np.array(cp.cuda.Device(0).compute_capability)
out["name"] = np.array(cp.cuda.runtime.getDeviceProperties(0)["name"].decode())
""")
    assert str(got["ptx"]) == "1"
    assert str(got["cc"]) == "121" and str(got["name"]) == "TensorFusion Emulated GPU (CPU)"


def test_elementwise_ops_match_numpy(emu, tmp_path):
    got = run_cupy(emu, tmp_path, """
x = cp.linspace(-3, 3, 5000, dtype=cp.float32)
m = cp.arange(12, dtype=cp.int32).reshape(3, 4)
out["axpb"] = cp.asnumpy(x * 2.5 + 1)
out["sin"] = cp.asnumpy(cp.sin(x))
out["exp"] = cp.asnumpy(cp.exp(x))
out["where"] = cp.asnumpy(cp.where(x > 0, x, -x))
out["bcast"] = cp.asnumpy(m * cp.arange(4, dtype=cp.int32) - 7)
out["f64"] = cp.asnumpy(cp.sqrt(cp.arange(100, dtype=cp.float64)))
out["cast"] = cp.asnumpy((x * 10).astype(cp.int64))
""")
    x = np.linspace(-3, 3, 5000, dtype=np.float32)
    m = np.arange(12, dtype=np.int32).reshape(3, 4)
    np.testing.assert_allclose(got["axpb"], x * 2.5 + 1, rtol=1e-6)
    np.testing.assert_allclose(got["sin"], np.sin(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["exp"], np.exp(x), rtol=1e-5)
    np.testing.assert_array_equal(got["where"], np.abs(x))
    np.testing.assert_array_equal(got["bcast"], m * np.arange(4, dtype=np.int32) - 7)
    np.testing.assert_allclose(got["f64"], np.sqrt(np.arange(100.0)), rtol=1e-15)
    np.testing.assert_array_equal(got["cast"], (x * 10).astype(np.int64))


def test_elementwise_kernel_matches_numpy(emu, tmp_path):
    got = run_cupy(emu, tmp_path, """
k = cp.ElementwiseKernel("float32 x, float32 y, float32 a", "float32 z", "z = a * x * x + y", "axx_plus_y")
x = cp.arange(3000, dtype=cp.float32) / 100
y = cp.ones(3000, dtype=cp.float32)
out["z"] = cp.asnumpy(k(x, y, cp.float32(0.5)))
""")
    x = np.arange(3000, dtype=np.float32) / 100
    np.testing.assert_allclose(got["z"], 0.5 * x * x + 1, rtol=1e-6)


def test_raw_kernel_matches_numpy(emu, tmp_path):
    got = run_cupy(emu, tmp_path, r"""
src = '''
extern "C" __global__ void saxpy_rev(const float* x, const float* y, float* out, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a * x[i] + y[n - 1 - i];
}'''
k = cp.RawKernel(src, "saxpy_rev")
n = 10000
x = cp.arange(n, dtype=cp.float32)
y = cp.arange(n, dtype=cp.float32) * 2
o = cp.empty_like(x)
k(((n + 255) // 256,), (256,), (x, y, o, cp.float32(3.0), cp.int32(n)))
out["o"] = cp.asnumpy(o)
""")
    n = 10000
    x = np.arange(n, dtype=np.float32)
    np.testing.assert_allclose(got["o"], 3 * x + (x * 2)[::-1], rtol=1e-6)


def test_reductions_with_cupys_own_kernels_match_numpy(emu, tmp_path):
    """CuPy's reduction kernels (NVRTC-compiled, here to PTX); CUB is switched off (next test)."""
    got = run_cupy(emu, tmp_path, """
x = cp.sin(cp.arange(20000, dtype=cp.float64))
m = cp.arange(60, dtype=cp.float32).reshape(6, 10)
out["sum"] = cp.asnumpy(x.sum())
out["mean"] = cp.asnumpy(x.mean())
out["max"] = cp.asnumpy(x.max())
out["argmin"] = cp.asnumpy(x.argmin())
out["axis0"] = cp.asnumpy(m.sum(axis=0))
out["axis1"] = cp.asnumpy(m.max(axis=1))
out["isum"] = cp.asnumpy(cp.arange(100000, dtype=cp.int64).sum())
""", env={"CUPY_ACCELERATORS": ""})
    x = np.sin(np.arange(20000, dtype=np.float64))
    m = np.arange(60, dtype=np.float32).reshape(6, 10)
    np.testing.assert_allclose(got["sum"], x.sum(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got["mean"], x.mean(), rtol=1e-9, atol=1e-12)
    assert got["max"] == x.max() and got["argmin"] == x.argmin()
    np.testing.assert_array_equal(got["axis0"], m.sum(axis=0))
    np.testing.assert_array_equal(got["axis1"], m.max(axis=1))
    assert int(got["isum"]) == 100000 * 99999 // 2


# CuPy's precompiled CUB (cupy/cuda/cub.so) has SASS sm_75..sm_120 and PTX compute_120 only (PTX ISA 9.2): the
# emulated device (cc 12.1, a CUDA 13.2 driver) runs that PTX and answers PTX_VERSION 120 for it, so CUB's host
# dispatch and its device code agree on the tuning policy.
def test_cub_device_reduce_matches_numpy(emu, tmp_path):
    got = run_cupy(emu, tmp_path, """
from cupy._core import _accelerator
out["acc"] = np.array(_accelerator.get_routine_accelerators())
out["sum"] = cp.asnumpy(cp.arange(1000, dtype=cp.float32).sum())
""", env={"CUPY_ACCELERATORS": "cub"})
    assert list(got["acc"]) == [1]          # cupy._core._accelerator.ACCELERATOR_CUB: the CUB path was taken
    assert float(got["sum"]) == 499500.0


def test_cublas_dot_matches_numpy(emu, tmp_path):
    """cupy.dot of two vectors is cuBLAS (cublasSdot / cublasDdot): libcublas's kernels that carry PTX run on the
    emulated device through the stub (cublas asks the driver's private tables for the current context, its id,
    and the stream's id on the way). GEMM: test_cublas_matmul_* (on 12.1 cuBLAS picks SASS-only cublasLt kernels
    for it; on 13.0 its PTX ones)."""
    got = run_cupy(emu, tmp_path, """
rng = np.random.default_rng(7)
x = rng.standard_normal(1000).astype(np.float32)
y = rng.standard_normal(1000).astype(np.float32)
out["x"], out["y"] = x, y
out["sdot"] = cp.asnumpy(cp.dot(cp.asarray(x), cp.asarray(y)))
out["ddot"] = cp.asnumpy(cp.dot(cp.asarray(x, dtype=cp.float64), cp.asarray(y, dtype=cp.float64)))
out["lib"] = np.array(cp.cuda.cublas.getVersion(cp.cuda.device.get_cublas_handle()))
""")
    assert int(got["lib"]) >= 130000
    x, y = got["x"].astype(np.float64), got["y"].astype(np.float64)
    np.testing.assert_allclose(float(got["sdot"]), x @ y, rtol=1e-4)
    np.testing.assert_allclose(float(got["ddot"]), x @ y, rtol=1e-12)


@pytest.fixture(scope="module")
def emu13(tmp_path_factory):
    """The embedded default with the worker's emulator on capability 13.0 (TF_EMU_CC, read by its executors)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TF_EMU_CC", "13.0")
        e = EmbeddedEmu(tmp_path_factory.mktemp("tfhome13"))
    e.env["CUPY_CACHE_DIR"] = str(tmp_path_factory.mktemp("cupy-cache13"))
    yield e
    e.stop()


def test_cublas_matmul_on_capability_13_matches_numpy(emu13, tmp_path):
    """cupy.matmul is cuBLAS GEMM (SGEMM, DGEMM). On 12.1 (the `emu` fixture) cuBLAS picks sm_120 SASS cubins and
    answers CUBLAS_STATUS_INTERNAL_ERROR; on 13.0, above every SASS target of libcublasLt 13.0, it runs its PTX
    forward-compatibility kernels (sgemm_largek_lds64 / dgemm_largek, scal_kernel), and CUB's sum still runs."""
    got = run_cupy(emu13, tmp_path, """
rng = np.random.default_rng(5)
a = rng.standard_normal((64, 64)).astype(np.float32)
b = rng.standard_normal((64, 96)).astype(np.float32)
out["a"], out["b"] = a, b
out["cc"] = np.array(cp.cuda.Device(0).compute_capability)
out["s"] = cp.asnumpy(cp.matmul(cp.asarray(a), cp.asarray(b)))
out["d"] = cp.asnumpy(cp.asarray(a, dtype=cp.float64) @ cp.asarray(b, dtype=cp.float64))
out["sum"] = cp.asnumpy(cp.arange(1000, dtype=cp.float32).sum())
""", env={"CUPY_ACCELERATORS": "cub"})
    assert str(got["cc"]) == "130"
    want = got["a"].astype(np.float64) @ got["b"]
    np.testing.assert_allclose(got["s"], want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["d"], want, rtol=1e-12, atol=1e-12)
    assert float(got["sum"]) == 499500.0


def test_cublas_matmul_at_the_default_capability_is_a_cublas_error(emu, tmp_path):
    """What a user sees on 12.1: a CUBLASError naming the status, not a crash or a wrong result."""
    got = run_cupy(emu, tmp_path, """
try:
    cp.matmul(cp.ones((64, 64), dtype=cp.float32), cp.ones((64, 64), dtype=cp.float32))
    out["err"] = np.array("none")
except cp.cuda.cublas.CUBLASError as e:
    out["err"] = np.array(str(e))
""")
    assert "CUBLAS_STATUS_INTERNAL_ERROR" in str(got["err"])


CUMSUM = """
x = cp.arange(1, 5001, dtype=cp.float64) / 7
out["cs"] = cp.asnumpy(cp.cumsum(x))
out["ics"] = cp.asnumpy(cp.cumsum(cp.arange(3000, dtype=cp.int32)))
out["cs2"] = cp.asnumpy(cp.cumsum(cp.arange(12, dtype=cp.float32).reshape(3, 4), axis=1))
"""


def check_cumsum(got):
    x = np.arange(1, 5001, dtype=np.float64) / 7
    np.testing.assert_allclose(got["cs"], np.cumsum(x), rtol=1e-12)
    np.testing.assert_array_equal(got["ics"], np.cumsum(np.arange(3000, dtype=np.int32)))
    np.testing.assert_array_equal(got["cs2"], np.cumsum(np.arange(12, dtype=np.float32).reshape(3, 4), axis=1))


def test_cumsum_with_cupys_own_kernels_matches_numpy(emu, tmp_path):
    check_cumsum(run_cupy(emu, tmp_path, CUMSUM, env={"CUPY_ACCELERATORS": ""}))


def test_cub_device_scan_cumsum_matches_numpy(emu, tmp_path):
    check_cumsum(run_cupy(emu, tmp_path, CUMSUM, env={"CUPY_ACCELERATORS": "cub"}))


RNG_CHECKS = """
a = g.random(20000)
out["a"] = cp.asnumpy(a)
out["again"] = cp.asnumpy(again.random(20000))
out["other"] = cp.asnumpy(other.random(20000))
out["normal"] = cp.asnumpy(g.standard_normal(20000))
out["ints"] = cp.asnumpy(g.integers(0, 10, size=20000))
"""


def check_rng(got):
    a = got["a"]
    assert a.dtype == np.float64 and a.min() >= 0 and a.max() < 1
    assert abs(a.mean() - 0.5) < 0.01 and abs(a.std() - np.sqrt(1 / 12)) < 0.01
    np.testing.assert_array_equal(got["again"], a)                 # same seed, same stream
    assert not np.array_equal(got["other"], a)                      # another seed, another stream
    assert abs(got["normal"].mean()) < 0.03 and abs(got["normal"].std() - 1) < 0.03
    counts = np.bincount(got["ints"], minlength=10)
    assert counts.min() > 1700 and counts.max() < 2300              # 2000 expected per value


def test_random_generator_over_xorwow_states(emu, tmp_path):
    """cupy.random.Generator over cuRAND XORWOW (what default_rng builds), with few states: quick."""
    check_rng(run_cupy(emu, tmp_path, """
g = cp.random.Generator(cp.random.XORWOW(1234, size=4096))
again = cp.random.Generator(cp.random.XORWOW(1234, size=4096))
other = cp.random.Generator(cp.random.XORWOW(99, size=4096))
""" + RNG_CHECKS))


@pytest.mark.slow
def test_default_rng(emu, tmp_path):
    """default_rng itself: XORWOW with its default 256000 states, whose curand_init skip-ahead takes ~80 s of
    emulated device time on 2 cores (hence slow, and one generator; seeds are checked in the test above)."""
    got = run_cupy(emu, tmp_path, """
g = cp.random.default_rng(1234)
out["a"] = cp.asnumpy(g.random(20000))
out["normal"] = cp.asnumpy(g.standard_normal(20000))
""")
    a = got["a"]
    assert a.dtype == np.float64 and a.min() >= 0 and a.max() < 1
    assert abs(a.mean() - 0.5) < 0.01 and abs(a.std() - np.sqrt(1 / 12)) < 0.01
    assert abs(got["normal"].mean()) < 0.03 and abs(got["normal"].std() - 1) < 0.03


def allocation_state(emu, alloc_id: str) -> int:
    from pathlib import Path
    token = (Path(emu.env["TF_HOME"]) / "tenant.token").read_text().strip()   # the embedded default's tenant
    with SchedulerClient(emu.env.get("TF_SCHEDULER") or _embedded_address(emu), token=token) as c:
        return c.get_allocation(alloc_id).state


def _embedded_address(emu) -> str:
    import json
    from pathlib import Path
    return json.loads((Path(emu.env["TF_HOME"]) / "embedded.json").read_text())["scheduler"]


def wait_state(emu, alloc_id: str, state: int, timeout: float = 15.0) -> None:
    import time
    deadline = time.time() + timeout
    while (got := allocation_state(emu, alloc_id)) != state:
        assert time.time() < deadline, f"allocation {alloc_id} is in state {got}, expected {state}"
        time.sleep(0.1)


@pytest.mark.parametrize("style", ["with", "plain"])
def test_exit_is_clean_and_the_vgpu_is_released_after_the_process(emu, tmp_path, style):
    """CuPy unloads modules and frees memory in finalizers after atexit: the stub must still serve them.
    With `with attach()` the release waits for the process's end (CuPy still works after the block); a
    plain attach() is released at exit too (not left to expire). RELEASED (not EXPIRED, TTL 30 s) proves
    the release was done, after the process was gone."""
    code = """
import sys, tfclient
from tfclient.scheduler_client import SchedulerClient
if sys.argv[1] == "with":
    with tfclient.attach(vram="512Mi") as lease:
        import cupy as cp
        a = cp.arange(1000, dtype=cp.float32)
        k = cp.ElementwiseKernel("float32 x", "float32 y", "y = x + 1", "inc")
        s = float(k(a).sum())
else:
    lease = tfclient.attach(vram="512Mi")
    import cupy as cp
    a = cp.arange(1000, dtype=cp.float32)
    s = float((a + 1).sum())
print("id", lease.id)
with SchedulerClient(lease.client.address) as c:
    print("state-after-block", c.get_allocation(lease.id).state)
print("after", s, float((a * 2).sum()))   # the device still answers after the with block
"""
    r = emu.run_script(code, tmp_path, style, env={"CUPY_ACCELERATORS": ""})
    assert_clean(r)
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert lines["after"] == "500500.0 999000.0"
    assert int(lines["state-after-block"]) == pb.ALLOCATION_ACTIVE
    wait_state(emu, lines["id"], pb.ALLOCATION_RELEASED)


def test_cupy_under_tensorfusion_run_gets_ptx_and_computes(emu, tmp_path):
    """`tensorfusion run -- python script.py`: no attach() in the script; run sets the stub and the
    library settings (a value the user set is kept: checked with the env var the child prints)."""
    import subprocess
    import sys
    script = tmp_path / "plain_cupy.py"
    script.write_text("import os, cupy as cp\n"
                      "x = cp.arange(10, dtype=cp.float32)\n"
                      "print('ptx', os.environ.get('CUPY_COMPILE_WITH_PTX'), float((x * x).sum()))\n")
    cmd = [sys.executable, "-m", "tfclient.cli", "run", "--vram", "512Mi", "--", sys.executable, str(script)]
    r = subprocess.run(cmd, env={**emu.env, "CUPY_ACCELERATORS": ""}, capture_output=True, text=True, timeout=300)
    assert_clean(r)
    assert "ptx 1 285.0" in r.stdout
    r = subprocess.run(cmd, env={**emu.env, "CUPY_COMPILE_WITH_PTX": "0"}, capture_output=True, text=True,
                       timeout=300)
    assert "no kernel image" in r.stderr.lower() or "NO_BINARY_FOR_GPU" in r.stderr   # SASS asked for: refused
    assert "ptx" not in r.stdout
