"""Native limiter, NVML: a program that dlopens libnvidia-ml.so.1 (nvidia-smi, pynvml, frameworks) and
asks for memory info sees the VRAM cap in local mode; the limiter's NVML utilization source reads the
session's own process on the device CUDA_VISIBLE_DEVICES names. NVIDIA's library is replaced by a small stand-in
(fake_nvml.c: an 80 GiB device) on hosts without the driver; the hook under test is the real one."""
import subprocess
import sys
import time

import pytest

from limiter_helpers import base_env, limited_env, parse_kv, session_id, start, wait_ready
from tfworker.limits import SessionLimits
from tfclient import native

PROBE = """
import ctypes
class M1(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]
class M2(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("total", ctypes.c_ulonglong), ("reserved", ctypes.c_ulonglong),
                ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]
nvml = ctypes.CDLL("libnvidia-ml.so.1")
assert nvml.nvmlInit_v2() == 0
dev = ctypes.c_void_p()
assert nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(dev)) == 0
m1, m2 = M1(), M2(version=(2 << 24) | ctypes.sizeof(M2))
assert nvml.nvmlDeviceGetMemoryInfo(dev, ctypes.byref(m1)) == 0
assert nvml.nvmlDeviceGetMemoryInfo_v2(dev, ctypes.byref(m2)) == 0
print(m1.total, m1.free, m1.used, m2.total, m2.free, m2.used)
"""


@pytest.fixture(scope="module")
def fake_nvml_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("nvml")
    subprocess.run(["cc", "-shared", "-fPIC", "-Wall", "-Werror", "-o", str(d / "libnvidia-ml.so.1"),
                    str(native.REPO_ROOT / "tests" / "limiter" / "fake_nvml.c")], check=True)
    return d


def _probe(env: dict, nvml_dir) -> list[int]:
    env = dict(env)
    env["LD_LIBRARY_PATH"] = f"{nvml_dir}:{env.get('LD_LIBRARY_PATH', '')}"
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [int(x) for x in out.stdout.split()]


def test_nvml_memory_info_reports_the_cap(fake_nvml_dir):
    gib = 1 << 30
    assert _probe(base_env(), fake_nvml_dir) == [80 * gib, 79 * gib, gib] * 2
    assert _probe(limited_env({"TF_VRAM_LIMIT": "3Gi"}), fake_nvml_dir) == [3 * gib, 3 * gib, 0] * 2
    assert _probe(limited_env(), fake_nvml_dir) == [80 * gib, 79 * gib, gib] * 2   # no cap: untouched


@pytest.mark.parametrize("visible", ["2", "2,0"])
def test_nvml_utilization_is_read_for_the_visible_device(fake_nvml_dir, visible):
    """TF_LIMITER_BUSY=nvml: busy time comes from NVML per-process samples of this process (50 % here) on
    the device CUDA's device 0 maps to (NVML numbers GPUs physically)."""
    with SessionLimits.create(session_id("nvml"), tflops_limit=30, device_tflops=100) as lim:
        env = limited_env({**lim.env, "TF_LIMITER_BUSY": "nvml", "CUDA_VISIBLE_DEVICES": visible,
                           "FAKE_NVML_INDEX": "2", "FAKE_NVML_SM_UTIL": "50"})
        env["LD_LIBRARY_PATH"] = f"{fake_nvml_dir}:{env['LD_LIBRARY_PATH']}"
        p = start("lim_busy", 3.5, 2000, env=env)
        wait_ready(p)               # start-up takes seconds on a loaded host
        time.sleep(0.3)
        # over the limiter's own clock (the times it wrote the counters): a loaded host delays its controller
        # steps, and a reader's clock then counts time whose busy share is not written yet
        u0 = lim.usage()
        time.sleep(2.0)             # steps ~250 ms apart at load 20: a window of several
        u1 = lim.usage()
        share = (u1.busy_ns - u0.busy_ns) / (u1.updated_ns - u0.updated_ns)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and parse_kv(out)["check"] == "ok", err.decode()
        assert 0.4 <= share <= 0.6, f"busy share from NVML {share:.3f}, the fake reports 50 %"
        assert b"NVML has no device" not in err
