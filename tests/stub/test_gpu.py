"""The remote data path against NVIDIA's driver (run on a lent GPU host: pytest -m gpu tests/stub).

The same programs as over the emulator, now with tf-executor on the real libcuda.so.1, plus a PyTorch
matmul (cuBLAS) through the stub when torch is installed.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dp_helpers import run_via_stub, stub_dir, stub_env

pytestmark = pytest.mark.gpu


@pytest.fixture
def gpu_worker(standalone_dataplane):
    if not shutil.which("nvidia-smi") or subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode != 0:
        pytest.fail("marked gpu but no NVIDIA GPU is visible (nvidia-smi -L failed)")
    unix, tcp = standalone_dataplane(backend="nvidia")
    return unix, tcp


def test_driver_and_runtime_programs_on_a_real_gpu(gpu_worker, cuda_program):
    unix, tcp = gpu_worker
    r = run_via_stub(cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda")), unix, 64 << 20)
    assert r.returncode == 0, r.stdout + r.stderr
    for cudart in ("static", "shared"):
        for worker in (unix, tcp):
            r = run_via_stub(cuda_program("dp_runtime", cudart=cudart), worker, 1 << 20, "kernel")
            assert r.returncode == 0, r.stdout + r.stderr


def test_bogus_handles_and_faults_on_a_real_gpu(gpu_worker, cuda_program):
    unix, _ = gpu_worker
    r = run_via_stub(cuda_program("dp_bogus", flags=("-L", str(stub_dir()), "-lcuda")), unix)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_via_stub(cuda_program("dp_fault"), unix)
    assert "fault seen: an illegal memory access" in r.stdout, r.stdout + r.stderr


def test_vector_add_and_threads_on_a_real_gpu(gpu_worker, cuda_program, tmp_path):
    unix, _ = gpu_worker
    rng = np.random.default_rng(3)
    n = 1 << 20
    a, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    (tmp_path / "in").write_bytes(a.tobytes() + b.tobytes())
    r = run_via_stub(cuda_program("vector_add"), unix, n, tmp_path / "in", tmp_path / "out")
    assert r.returncode == 0, r.stdout + r.stderr
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out", np.float32), a + b)
    r = run_via_stub(cuda_program("dp_threads"), unix, 8, 100000, 5)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pytorch_matmul_through_the_stub(gpu_worker):
    pytest.importorskip("torch")
    unix, _ = gpu_worker
    script = textwrap.dedent("""
        import torch
        assert torch.cuda.is_available(), "no CUDA through the stub"
        torch.manual_seed(0)
        a = torch.randn(512, 384)
        b = torch.randn(384, 256)
        c = (a.cuda() @ b.cuda()).cpu()
        torch.testing.assert_close(c, a @ b, rtol=1e-3, atol=1e-3)
        print("torch ok", torch.cuda.get_device_name(0))
    """)
    r = subprocess.run([sys.executable, "-c", script], env=stub_env(unix), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "torch ok" in r.stdout


def test_ipc_between_two_client_processes_on_a_real_gpu(gpu_worker, cuda_program):
    # two sessions, two tf-executor processes on NVIDIA's driver: the child's executor opens the parent's handle
    from cudabuild import parse_kv
    unix, _ = gpu_worker
    r = run_via_stub(cuda_program("ipc"), unix)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    for key, want in {"same_handle": "1", "open_self": "cudaErrorDeviceUninitialized", "child_open": "ok",
                      "child_same_ptr": "1", "child_saw_parent": "1", "child_event": "ok", "child_status": "0",
                      "parent_sees_child": "1"}.items():
        assert kv.get(key) == want, (key, r.stdout)


def test_managed_range_written_by_host_and_device_between_two_syncs_on_a_real_gpu(gpu_worker, cuda_program):
    from cudabuild import parse_kv
    unix, tcp = gpu_worker
    for worker in (unix, tcp):
        r = run_via_stub(cuda_program("managed_both_sides"), worker, "disjoint")
        assert r.returncode == 0, r.stdout + r.stderr
        assert parse_kv(r.stdout)["disjoint_bad"] == "0", worker
