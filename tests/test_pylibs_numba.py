"""numba-cuda, unchanged, on the emulated device: @cuda.jit kernels run directly on build/emu/libcuda.so.1 and
through tfclient.attach (real scheduler, worker, executor and emulator processes), results checked against numpy.

How numba-cuda reaches a PTX-only device: NVVM emits PTX, then numba links it (CUDACodeLibrary.get_cubin) with
cuda.core's Linker. Without nvJitLink that Linker uses the driver's cuLink* (forwarded by the stub, run by the
emulator's emu_link.c), whose "cubin" the emulator loads; with nvJitLink (numba-cuda[cu13] installs it) the result
is SASS and cannot run here (tfclient/libenv.py says why no setting changes that).

numba-cuda is not a project dependency: install it (without the [cu13] extra) with
`pip install --target DIR numba-cuda` and set TF_NUMBA_PATH=DIR, or into the venv. The folder is added with
site.addsitedir because numba-cuda redirects `numba.cuda` with a .pth file (PYTHONPATH alone skips it).
"""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from attached import EmbeddedEmu, assert_clean
from cudabuild import REPO, env_with_lib_dir
from tfclient import native

NUMBA_PATH = os.environ.get("TF_NUMBA_PATH", "")
pytestmark = pytest.mark.skipif(
    not NUMBA_PATH and importlib.util.find_spec("numba_cuda") is None,
    reason="numba-cuda not importable (set TF_NUMBA_PATH to a `pip install --target` folder holding it)")

KERNELS = f"""
import os, site, sys
if {NUMBA_PATH!r}:
    site.addsitedir({NUMBA_PATH!r})
import numpy as np
from numba import cuda

@cuda.jit
def axpy(out, a, x, y):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a * x[i] + y[i]

@cuda.jit
def block_sums(out, x):
    # shared memory + barrier tree reduction per block, one atomic per block
    buf = cuda.shared.array(128, dtype=np.float32)
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    buf[t] = x[i] if i < x.size else 0.0
    cuda.syncthreads()
    s = 64
    while s > 0:
        if t < s:
            buf[t] += buf[t + s]
        cuda.syncthreads()
        s //= 2
    if t == 0:
        cuda.atomic.add(out, 0, buf[0])

@cuda.jit
def scale2d(m, f):
    r, c = cuda.grid(2)
    if r < m.shape[0] and c < m.shape[1]:
        m[r, c] = m[r, c] * f + r - c

x = np.arange(1000, dtype=np.float32)
y = np.linspace(-1, 1, 1000).astype(np.float32)
out = cuda.device_array_like(x)
axpy[8, 128](out, np.float32(2.5), cuda.to_device(x), cuda.to_device(y))
res = {{"axpy": out.copy_to_host()}}
total = cuda.to_device(np.zeros(1, np.float32))
block_sums[8, 128](total, cuda.to_device(x))
res["sum"] = total.copy_to_host()
m = cuda.to_device(np.ones((37, 53), np.float64))
scale2d[(3, 4), (16, 16)](m, 3.0)
res["scale2d"] = m.copy_to_host()
cuda.synchronize()
np.savez(os.path.join(os.getcwd(), "out.npz"), **res)
print("numba_ok", cuda.get_current_device().name)
"""


def check(out_dir):
    x = np.arange(1000, dtype=np.float32)
    y = np.linspace(-1, 1, 1000).astype(np.float32)
    with np.load(out_dir / "out.npz") as f:
        np.testing.assert_allclose(f["axpy"], np.float32(2.5) * x + y, rtol=1e-6)
        assert f["sum"][0] == pytest.approx(float(x.sum()), rel=1e-6)
        r, c = np.indices((37, 53))
        np.testing.assert_array_equal(f["scale2d"], 3.0 + r - c)


def test_numba_kernels_run_on_the_emulator_directly(tmp_path):
    script = tmp_path / "kernels.py"
    script.write_text(KERNELS)
    r = subprocess.run([sys.executable, str(script)], env=env_with_lib_dir(native.emu_lib_dir()), capture_output=True,
                       text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "numba_ok" in r.stdout
    check(tmp_path)


def test_numba_refuses_capability_13_which_is_why_the_emulator_defaults_to_12_1(tmp_path):
    """TF_EMU_CC=13.0 (what cuBLAS's GEMMs need) is not the default: numba-cuda's NVRTC knows no 13.0 target and
    refuses the device before any kernel reaches the driver (emu_c/README.md, "cuBLAS and CuPy", Default). When
    this starts passing, 13.0 as the default is worth reconsidering."""
    script = tmp_path / "kernels.py"
    script.write_text(KERNELS)
    r = subprocess.run([sys.executable, str(script)], env={**env_with_lib_dir(native.emu_lib_dir()), "TF_EMU_CC": "13.0"},
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode != 0 and "numba_ok" not in r.stdout
    assert "compute_130a" in r.stderr and "compute_121" in r.stderr, r.stderr[-2000:]


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    e = EmbeddedEmu(tmp_path_factory.mktemp("tfhome"))
    yield e
    e.stop()


def test_numba_kernels_run_through_attach_on_the_emulated_vgpu(emu, tmp_path):
    r = emu.run_script("import tfclient\nlease = tfclient.attach(vram='1Gi')\n" + KERNELS, tmp_path,
                       env={"PYTHONPATH": str(REPO)}, timeout=300)
    assert_clean(r)
    assert "numba_ok TensorFusion Emulated GPU (CPU)" in r.stdout, r.stdout
    check(tmp_path)


def test_numba_kernels_run_under_tensorfusion_run(emu, tmp_path):
    """No attach() in the script: `tensorfusion run` points the child's libcuda.so.1 at the stub."""
    script = tmp_path / "kernels.py"
    script.write_text(KERNELS)
    r = subprocess.run([sys.executable, "-m", "tfclient.cli", "run", "--vram", "512Mi", "--", sys.executable,
                        str(script)], env=emu.env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert_clean(r)
    assert "numba_ok TensorFusion Emulated GPU (CPU)" in r.stdout, r.stdout
    check(tmp_path)
