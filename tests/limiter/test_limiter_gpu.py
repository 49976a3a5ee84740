"""Native limiter on a real NVIDIA GPU (run on a lent GPU host: pytest -m gpu tests/limiter).
Same programs as the emulator tests, against NVIDIA's libcuda: the VRAM cap, cuMemGetInfo and NVML
memory info report the cap, and two sessions at 25 % / 75 % get 1:3 throughput in closed loop on NVML
per-process utilization."""
import shutil
import subprocess
import sys
import time

import pytest

from limiter_helpers import limited_env, run_kv, session_id, start
from tfworker.limits import SessionLimits

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="no NVIDIA driver on this host")]

ITERS = 2_000_000   # ~ms-long kernels on a GPU
BLOCKS, THREADS = 264, 256


def test_gpu_vram_cap_and_mem_info():
    kv = run_kv("lim_vram", 64, env=limited_env({"TF_VRAM_LIMIT": "1Gi"}, emulated=False))
    assert kv["filled"] == "16" and kv["fill_error"] == "cudaErrorMemoryAllocation"
    assert int(kv["info_total"]) == 1 << 30 and int(kv["prop_total"]) == 1 << 30
    assert kv["realloc_after_free"] == "ok"
    for kind in ("pitch", "managed", "async"):
        assert kv[f"{kind}_over"] == "cudaErrorMemoryAllocation" and kv[f"{kind}_fit"] == "ok", kind


def test_gpu_nvml_memory_info_reports_the_cap():
    code = ("import pynvml; pynvml.nvmlInit(); h = pynvml.nvmlDeviceGetHandleByIndex(0); "
            "print(pynvml.nvmlDeviceGetMemoryInfo(h).total)")
    out = subprocess.run([sys.executable, "-c", code], env=limited_env({"TF_VRAM_LIMIT": "3Gi"}, emulated=False),
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert int(out.strip()) == 3 << 30


def test_gpu_shares_25_and_75_percent_give_throughput_1_to_3():
    a = SessionLimits.create(session_id("g25"), tflops_limit=25, device_tflops=100)
    b = SessionLimits.create(session_id("g75"), tflops_limit=75, device_tflops=100)
    try:
        ps = [start("lim_busy", 16, ITERS, BLOCKS, THREADS, env=limited_env(s.env, emulated=False)) for s in (a, b)]
        time.sleep(4.0)
        la0, lb0 = a.usage().launches, b.usage().launches
        time.sleep(10.0)
        la, lb = a.usage().launches - la0, b.usage().launches - lb0
        for p in ps:
            p.communicate(timeout=60)
        assert 2.7 <= lb / la <= 3.3, f"GPU throughput ratio {lb / la:.3f} ({la} vs {lb} launches in 10 s)"
    finally:
        a.close()
        b.close()
