"""What GPU libraries must be told so their kernels run on the vGPU's device: environment variables set by
tfclient.attach (into os.environ, before the library is imported) and `tensorfusion run` (into the child).

The emulated device (the worker's `emu` backend) runs PTX only, never SASS. Libraries that compile kernels
at run time must then emit PTX:
  CuPy   CUPY_COMPILE_WITH_PTX=1: NVRTC compiles to compute_XX PTX instead of an sm_XX cubin (read at each
         compile). Kernels CuPy ships precompiled (CUB, cuRAND state setup) carry a compute_120 PTX entry
         that the emulator runs as is.
  numba-cuda  nothing can be set (checked on numba-cuda 0.30.4): it has no option to load PTX. NVVM emits
         PTX, then CUDACodeLibrary.get_cubin() always links it with cuda.core's Linker and loads the result;
         that Linker uses nvJitLink when cuda.bindings finds libnvJitLink (numba-cuda[cu13] installs it) and
         then yields an sm_XX cubin the emulator cannot run; without nvJitLink it falls back to the driver's
         cuLink* (RuntimeWarning "the driver APIs will be used instead"), which the emulator implements
         (emu_c/emu_link.c) but the stub does not forward yet: cuda.bindings raises FunctionNotFoundError
         "function cuLinkCreate_v2 is not found". So numba-cuda can reach the emulator only once the stub
         forwards cuLink*, and only in an environment without nvJitLink.
A variable the user already set is kept. On NVIDIA's driver nothing is set: SASS runs natively there.
"""
from __future__ import annotations

EMULATED_VENDOR = "tensorfusion"            # tfworker.gpus.emulated_gpu() registers the device under it
EMULATED_MODEL = "TensorFusion Emulated GPU (CPU)"

PTX_ONLY_ENV = {"CUPY_COMPILE_WITH_PTX": "1"}


def backend_of(vendor: str, model: str) -> str:
    """'emu' for the emulated device, else 'nvidia'."""
    return "emu" if vendor.lower() == EMULATED_VENDOR or model == EMULATED_MODEL else "nvidia"


def library_env(backend: str, environ: dict) -> dict:
    """Variables to add for a device of this backend ('emu' / 'nvidia'), leaving those set in environ."""
    if backend != "emu":
        return {}
    return {k: v for k, v in PTX_ONLY_ENV.items() if k not in environ}
