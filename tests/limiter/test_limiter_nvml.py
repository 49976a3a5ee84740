"""Native limiter, NVML: a program that dlopens libnvidia-ml.so.1 (nvidia-smi, pynvml, frameworks) and
asks for memory info sees the VRAM cap in local mode. NVIDIA's library is replaced by a small stand-in
(fake_nvml.c: an 80 GiB device) on hosts without the driver; the hook under test is the real one."""
import subprocess
import sys

import pytest

from limiter_helpers import base_env, limited_env
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
    assert _probe(limited_env({"TF_VRAM_LIMIT": "3GiB"}), fake_nvml_dir) == [3 * gib, 3 * gib, 0] * 2
    assert _probe(limited_env(), fake_nvml_dir) == [80 * gib, 79 * gib, gib] * 2   # no cap: untouched
