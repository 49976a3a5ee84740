"""NVIDIA's cuBLAS 13 (pip's nvidia-cublas, linked with -lcublas) on the emulated device directly: which of its
kernels the device can run depends on the capability it reports (emu_c/README.md, "cuBLAS and CuPy").

On 12.1 (the default) cuBLAS picks an sm_120 SASS cubin for SGEMM (cutlass_80_simt_sgemm_*), which a PTX device
cannot load; on 13.0, above every SASS target the library ships, it takes its PTX forward-compatibility kernels
(sgemm_largek_lds64, scal_kernel, gemv2N_kernel), which run. Each program start loads ~2,800 cuBLAS modules
(~30 s here), so each case is one run."""
import subprocess

import numpy as np

from cudabuild import build_with_cublas, parse_kv
from emu_run import emu_env

CUBLAS_STATUS_INTERNAL_ERROR = 14


def run_sgemm(tmp_path, m, n, k, alpha, beta, **env) -> tuple[subprocess.CompletedProcess, dict, tuple]:
    """Runs tests/cuda/cublas_sgemm.cu on random column-major inputs; -> (process, its key=values, (a, b, c))."""
    rng = np.random.default_rng(m * 10_000 + n * 100 + k)
    a, b, c = (rng.standard_normal(s, dtype=np.float32) for s in ((k, m), (n, k), (n, m)))  # transposed = col-major
    (tmp_path / "in").write_bytes(a.tobytes() + b.tobytes() + c.tobytes())
    p = subprocess.run([str(build_with_cublas("cublas_sgemm")), str(m), str(n), str(k), str(alpha), str(beta),
                        str(tmp_path / "in"), str(tmp_path / "out")], env=emu_env(**env), capture_output=True,
                       text=True, timeout=600)
    return p, parse_kv(p.stdout), (a.T, b.T, c.T)


def expected(abc, alpha, beta):
    a, b, c = (x.astype(np.float64) for x in abc)
    return alpha * (a @ b) + beta * c


def test_cublas_sgemm_on_capability_13_runs_its_ptx_kernels_and_matches_numpy(tmp_path):
    m, n, k, alpha, beta = 100, 37, 300, 0.5, 2.0
    p, kv, abc = run_sgemm(tmp_path, m, n, k, alpha, beta, TF_EMU_CC="13.0", TF_EMU_TRACE="2")
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    assert (kv["create"], kv["sgemm"], kv["sync"], kv["destroy"]) == ("0", "0", "cudaSuccess", "0")
    launched = [line.split()[2] for line in p.stderr.splitlines() if line.startswith("tf-emu: launch ")]
    assert any("sgemm_largek_lds64" in name for name in launched), launched   # PTX compute_120 in libcublasLt
    got = np.fromfile(tmp_path / "out", np.float32).reshape(n, m).T
    np.testing.assert_allclose(got, expected(abc, alpha, beta), rtol=1e-4, atol=1e-4)


def test_cublas_sgemm_at_the_default_capability_fails_on_a_sass_cubin_and_says_what_to_set(tmp_path):
    p, kv, _ = run_sgemm(tmp_path, 64, 64, 64, 1.0, 0.0)
    assert kv["create"] == "0"                                   # cublasCreate's own modules carry compute_120 PTX
    assert kv["sgemm"] == str(CUBLAS_STATUS_INTERNAL_ERROR) and p.returncode == 3, p.stdout
    assert "SASS cubin (ELF, sm_120)" in p.stderr and "TF_EMU_CC=13.0" in p.stderr
    assert "TF_EMU_CC=13.0 tensorfusion up" in p.stderr      # through the stub the worker's environment counts
    # lazy loading (cuModuleGetLoadingMode LAZY): cudart loads only the modules cuBLAS uses, and SASS-only fatbins
    # refused at load are one summary line, not one line each (~2,500 with eager loading)
    assert sum(line.startswith("tf-emu:") for line in p.stderr.splitlines()) <= 5, p.stderr[-3000:]
