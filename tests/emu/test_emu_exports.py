"""The emulated device's libcuda.so.1 exports every function name cuda.h declares, as NVIDIA's driver
does: a program that resolves the driver API by name with dlsym (NVIDIA's cuda_drvapi_dynlink.c, used by
the matrixMulDynlinkJIT sample, requires the legacy cuCtxAttach, cuParamSetSize, cuTexRefCreate, ...)
starts on it. What the emulator does not implement answers CUDA_ERROR_NOT_SUPPORTED, once logged."""
import os
import subprocess
import sys

from emu_run import emu_env
from tfclient import native

sys.path.insert(0, os.path.join(native.REPO_ROOT, "proto"))
import cuda_api  # noqa: E402

CUDA_INC = subprocess.run([os.path.join(native.REPO_ROOT, "scripts", "cuda_include_dir.sh")], capture_output=True,
                          text=True).stdout.strip() or "/usr/local/cuda/include"

_DLSYM = r"""
import ctypes, sys
lib = ctypes.CDLL("libcuda.so.1")
missing = [n for n in sys.argv[1:] if not hasattr(lib, n)]
print("missing=" + ",".join(missing))
lib.cuInit.argtypes = [ctypes.c_uint]
print("init=%d" % lib.cuInit(0))
ver = ctypes.c_int()
print("version=%d" % lib.cuDriverGetVersion(ctypes.byref(ver)))
print("legacy=%d" % lib.cuParamSetSize(None, 0))
print("legacy_again=%d" % lib.cuParamSetSize(None, 0))
"""


def test_every_cuda_h_name_resolves_with_dlsym_and_unimplemented_ones_answer_not_supported():
    names = sorted(cuda_api.header_names(CUDA_INC))
    assert {"cuCtxAttach", "cuParamSetSize", "cuTexRefCreate", "cuCtxDestroy", "cuCtxDestroy_v2"} <= set(names)
    p = subprocess.run([sys.executable, "-c", _DLSYM, *names], env=emu_env(), capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    kv = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    assert kv["missing"] == "", f"not exported by the emulated device: {kv['missing'][:400]}"
    assert kv["init"] == "0" and kv["version"] == "0"      # implemented calls are the emulator's own
    assert kv["legacy"] == "801" and kv["legacy_again"] == "801"   # CUDA_ERROR_NOT_SUPPORTED
    assert p.stderr.count("cuParamSetSize is not implemented") == 1
