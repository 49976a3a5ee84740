"""The stub is the whole driver API of the cuda.h it is built against: every function name the header
declares (with the versioned ABI names it #defines, the legacy names and the _ptds/_ptsz variants) is
exported, and every (name, version, per-thread flag) cuGetProcAddress can be asked for resolves to that
very symbol. What no calls.tbl row forwards answers CUDA_ERROR_NOT_SUPPORTED and says so once."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dp_helpers import run_via_stub, stub_dir
from tfclient import native

sys.path.insert(0, os.path.join(native.REPO_ROOT, "proto"))
import cuda_api  # noqa: E402  (the generator's own reading of the header)

CUDA_INC = subprocess.run([os.path.join(native.REPO_ROOT, "scripts", "cuda_include_dir.sh")], capture_output=True,
                          text=True).stdout.strip() or "/usr/local/cuda/include"
NOT_SUPPORTED = 801


def _stub_lib():
    lib = stub_dir() / "libcuda.so.1"
    native.require(lib)
    return lib


def _exported(lib) -> set:
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.split() and line.split()[-1].startswith("cu")}


def test_stub_exports_every_function_cuda_h_declares():
    names = cuda_api.header_names(CUDA_INC)
    # the header is really read: the versioned ABI names cuda.h #defines, legacy ones, per-thread variants
    assert {"cuMemAlloc_v2", "cuMemAlloc", "cuCtxCreate_v4", "cuMemcpyHtoD_v2_ptds", "cuLaunchKernel_ptsz",
            "cuMemAddressReserve", "cuGreenCtxCreate"} <= names
    assert len(names) > 600
    exported = _exported(_stub_lib())
    missing = sorted(names - exported)
    assert not missing, f"{len(missing)} cuda.h functions not exported by the stub: {missing[:40]}"
    extra = sorted(n for n in exported - names if not n.startswith("cuda"))
    assert not extra, f"the stub exports names cuda.h does not declare: {extra}"


_RESOLVE = r"""
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
gpa = lib.cuGetProcAddress_v2
gpa.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_uint64, ctypes.POINTER(ctypes.c_int)]
# the launch calls resolve to cudart's flavour of the same function (bad grid/block answered with the code
# cudart reports as cudaErrorInvalidConfiguration; stub_c/api_launch.c), tested by tests/stub/test_semantics.py
RUNTIME_FLAVOURED = {"cuLaunchKernel", "cuLaunchKernelEx", "cuLaunchCooperativeKernel"}
bad = []
for api, ver, var, sym in json.load(sys.stdin):
    fn, st = ctypes.c_void_p(), ctypes.c_int(-1)
    rc = gpa(api.encode(), ctypes.byref(fn), ver, 2 if var else 0, ctypes.byref(st))
    want = ctypes.cast(getattr(lib, sym), ctypes.c_void_p).value
    if api in RUNTIME_FLAVOURED and fn.value and fn.value != want:
        want = fn.value
    if rc != 0 or st.value != 0 or fn.value != want:
        bad.append([api, ver, var, sym, rc, st.value])
print(json.dumps(bad))
"""


def test_every_version_cuGetProcAddress_can_ask_for_resolves_to_its_symbol():
    entries = cuda_api.api_entries(CUDA_INC)
    assert len(entries) >= len(cuda_api.header_names(CUDA_INC))
    r = subprocess.run([sys.executable, "-c", _RESOLVE, str(_stub_lib())], input=json.dumps(entries),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    bad = json.loads(r.stdout)
    assert not bad, f"{len(bad)} entries resolve wrongly (api, version, variant, symbol, rc, status): {bad[:20]}"


def test_unforwarded_functions_answer_not_supported_through_the_stub(dataplane, cuda_program):
    prog = cuda_program("api_unsupported", flags=("-L", str(stub_dir()), "-lcuda"))
    r = run_via_stub(prog, dataplane.unix)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    for key in ("graphics_unregister", "graphics_unregister_again", "exec_affinity", "legacy_call"):
        assert int(kv[key]) == NOT_SUPPORTED, (key, r.stdout)
    assert kv["ipc_get"] == "1"   # cuIpcGetMemHandle is forwarded (tests/stub/test_ipc.py): 0 is no allocation
    assert kv["after_count"] == "0"
    assert kv["proc_legacy"] == "0" and kv["proc_legacy_found"] == "0"
    assert kv["proc_green"] == "0" and kv["proc_green_found"] == "0"
    # named once on stderr, however often it is called
    assert r.stderr.count("tf-stub: cuGraphicsUnregisterResource is not supported through the remote stub") == 1, r.stderr
    assert "tf-stub: cuMemAlloc is not supported through the remote stub" in r.stderr


@pytest.mark.parametrize("where", ["emulator", "stub"])
def test_deprecated_device_queries_answer_the_attributes(where, dataplane, cuda_program):
    """cuDeviceComputeCapability / cuDeviceGetProperties (the matrixMulDynlinkJIT sample calls them) report what
    cuDeviceGetAttribute does, directly on the emulated device and through the stub (answered from the
    attributes cached at attach); NULL outputs and a bad device are errors as on the driver."""
    from cudabuild import env_with_lib_dir
    prog = cuda_program("legacy_device_props", flags=("-L", str(stub_dir()), "-lcuda"))
    if where == "stub":
        r = run_via_stub(prog, dataplane.unix)
    else:
        r = subprocess.run([str(prog)], env=env_with_lib_dir(native.emu_lib_dir()), capture_output=True,
                           text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert kv["cc_rc"] == "0" and kv["cc_match"] == "1", r.stdout
    assert kv["prop_rc"] == "0" and kv["prop_match"] == "1", r.stdout
    assert kv["cc_null"] == kv["prop_null"] == "1"          # CUDA_ERROR_INVALID_VALUE
    assert kv["cc_bad_dev"] == kv["prop_bad_dev"] == "101"  # CUDA_ERROR_INVALID_DEVICE
