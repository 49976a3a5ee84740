"""What GPU libraries must be told so their kernels run on the vGPU's device: environment variables set by
tfclient.attach (into os.environ, before the library is imported) and `tensorfusion run` (into the child).

The emulated device (the worker's `emu` backend) runs PTX only, never SASS. Libraries that compile kernels
at run time must then emit PTX:
  CuPy   CUPY_COMPILE_WITH_PTX=1: NVRTC compiles to compute_XX PTX instead of an sm_XX cubin (read at each
         compile). Kernels CuPy ships precompiled (CUB, cuRAND state setup) carry a compute_120 PTX entry
         that the emulator runs as is.
  numba-cuda  nothing to set, and nothing can be (checked on numba-cuda 0.30.4): it has no option to load
         PTX. NVVM emits PTX, then CUDACodeLibrary.get_cubin() always links it with cuda.core's Linker and
         loads the result. Without nvJitLink (cuda.pathfinder finds no libnvJitLink.so.13/12) that Linker
         uses the driver's cuLink*, forwarded by the stub and run by the emulator (emu_c/emu_link.c), whose
         output the emulator loads: @cuda.jit kernels run (tests/test_pylibs_numba.py), with numba's one
         RuntimeWarning "the driver APIs will be used instead". With nvJitLink (numba-cuda[cu13] installs
         nvidia-nvjitlink) it links LTO to an sm_XX cubin, SASS only, which the emulator cannot run, and
         neither numba-cuda nor cuda.pathfinder has a variable to turn nvJitLink off: install numba-cuda
         without the [cu13] extra for the emulated device.
  cuBLAS  nothing can be set on the client: it ships compiled kernels and picks them for the device's capability.
         nvidia-cublas 13.0.0.19 (scripts/fatbin_inventory.py): libcublas.so.13 has 193 fatbins, 188 with a
         compute_120 PTX entry; libcublasLt.so.13 has 3158, 288 with PTX (287 compute_120) and 2870 SASS only
         (sm_75 .. sm_121). On the emulator's default capability 12.1 cublasCreate succeeds but GEMM picks
         sm_120 SASS cubins (cutlass_80_simt_sgemm_*): CUBLAS_STATUS_INTERNAL_ERROR. With TF_EMU_CC=13.0 in the
         worker's environment (a capability above every SASS target) cuBLAS runs its PTX forward-compatibility
         kernels and cupy.matmul / cublasSgemm are correct (emu_c/README.md, "cuBLAS and CuPy").
A variable the user already set is kept. On NVIDIA's driver nothing is set: SASS runs natively there.
"""
from __future__ import annotations

EMULATED_VENDOR = "tensorfusion"            # tfworker.gpus.emulated_gpus() registers the devices under it
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
