"""cuBLAS 13 (pip's libcublas, linked with -lcublas) through the client stub -> data plane -> tf-executor ->
emulated device: the capability the worker's emulator reports (TF_EMU_CC in the worker's environment) reaches
the client, and cuBLAS picks the same kernels as on the emulator directly (tests/emu/test_emu_cublas.py)."""
from __future__ import annotations

import numpy as np

from cudabuild import build_with_cublas, parse_kv
from dp_helpers import run_via_stub


def test_cublas_sgemm_through_the_stub_on_capability_13_matches_numpy(dataplane, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_EMU_CC", "13.0")             # inherited by the session's executor at spawn
    m, n, k, alpha, beta = 64, 48, 80, 1.5, -1.0
    rng = np.random.default_rng(11)
    a, b, c = (rng.standard_normal(s, dtype=np.float32) for s in ((k, m), (n, k), (n, m)))  # transposed = col-major
    (tmp_path / "in").write_bytes(a.tobytes() + b.tobytes() + c.tobytes())
    r = run_via_stub(build_with_cublas("cublas_sgemm"), dataplane.unix, m, n, k, alpha, beta, tmp_path / "in",
                     tmp_path / "out", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    kv = parse_kv(r.stdout)
    assert (kv["create"], kv["sgemm"], kv["sync"], kv["destroy"]) == ("0", "0", "cudaSuccess", "0")
    got = np.fromfile(tmp_path / "out", np.float32).reshape(n, m).T
    want = alpha * (a.T.astype(np.float64) @ b.T) + beta * c.T
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
