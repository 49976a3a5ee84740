"""GPU discovery for the worker daemon: NVIDIA GPUs through NVML, else the emulated device.

The daemon reports these to the scheduler at registration. TFLOPS are left to the scheduler's table of
known models (FP16 dense) unless TF_GPU_TFLOPS overrides them; the backend chosen here also decides
which libcuda.so.1 the GPU worker processes load (NVIDIA's driver, or build/emu's emulator).
"""
import hashlib
import os
import socket
import subprocess
import sys
from dataclasses import dataclass

from tfclient import native

EMULATED_MODEL = "TensorFusion Emulated GPU (CPU)"


@dataclass
class GpuInfo:
    index: int
    uuid: str
    model: str
    vendor: str
    vram_mib: int
    tflops: float = 0.0  # 0 = let the scheduler look the model up


@dataclass
class Backend:
    kind: str                   # "nvidia" or "emu"
    lib_dir: str | None         # folder of the libcuda.so.1 GPU workers load (None = system driver)
    gpus: list[GpuInfo]


def nvidia_gpus() -> list[GpuInfo]:
    """GPUs NVML sees; empty when there is no NVIDIA driver."""
    try:
        import pynvml
        pynvml.nvmlInit()
    except Exception:
        return []
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            uuid = pynvml.nvmlDeviceGetUUID(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            gpus.append(GpuInfo(i, _text(uuid), _text(name), "nvidia", mem.total // (1 << 20)))
        return gpus
    finally:
        pynvml.nvmlShutdown()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# Run in a child process with the worker's environment: the emulator's cuInit checks every TF_EMU_* value, and its
# threads stay out of the daemon. Prints the device count and device 0's memory in bytes; exits non-zero after the
# emulator's own line.
_EMU_PROBE = """import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
count, dev, size = ctypes.c_int(), ctypes.c_int(), ctypes.c_size_t()
rc = lib.cuInit(0) or lib.cuDeviceGetCount(ctypes.byref(count)) or lib.cuDeviceGet(ctypes.byref(dev), 0) or \
    lib.cuDeviceTotalMem_v2(ctypes.byref(size), dev)
if rc:
    sys.exit(f"the emulated device returned CUresult {rc} at start")
print(count.value, size.value)
"""


def emulator_devices(lib_dir: str) -> tuple[int, int]:
    """(device count, memory of each in MiB) of the emulated device as the emulator itself reports them
    (TF_EMU_DEVICES, default 1; TF_EMU_VRAM_MIB, default 16 GiB). RuntimeError (one line, the emulator's own
    reason) when the emulator refuses to start in this environment, e.g. TF_EMU_ENGINE=foo: the worker stops at
    start instead of failing every session."""
    try:
        r = subprocess.run([sys.executable, "-c", _EMU_PROBE, os.path.join(lib_dir, "libcuda.so.1")],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RuntimeError("the emulated device did not start within 120 s")
    fields = r.stdout.split()
    if r.returncode != 0 or len(fields) != 2 or not all(f.isdigit() for f in fields):
        lines = r.stderr.strip().splitlines()
        why = next((line for line in lines if line.startswith("tf-emu:")),
                   lines[-1] if lines else f"exit status {r.returncode}")
        raise RuntimeError(f"the emulated device does not start: {why}")
    return int(fields[0]), int(fields[1]) >> 20


def emulated_gpus(node: str | None = None, lib_dir: str | None = None) -> list[GpuInfo]:
    """One GpuInfo per emulated device (TF_EMU_DEVICES of the worker's environment)."""
    count, vram_mib = emulator_devices(lib_dir or str(native.emu_lib_dir()))
    gpus = []
    for index in range(count):
        # Stable per node name (and index), so a worker that restarts re-registers the same GPUs; device 0 keeps
        # the uuid of a worker with one device
        name = f"tf-emu:{node or socket.gethostname()}" + (f":{index}" if index else "")
        digest = hashlib.sha256(name.encode()).hexdigest()
        uuid = f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        gpus.append(GpuInfo(index, uuid, EMULATED_MODEL, "tensorfusion", vram_mib))
    return gpus


def session_env(backend: Backend, gpus: list[GpuInfo]) -> dict[str, str]:
    """What makes a GPU worker process see exactly gpus, in order, as its devices 0..N-1: CUDA_VISIBLE_DEVICES on
    NVIDIA's driver; on the emulator (identical devices, each process its own) TF_EMU_DEVICES=N."""
    if backend.kind == "nvidia":
        return {"CUDA_VISIBLE_DEVICES": ",".join(str(g.index) for g in gpus)}
    return {"TF_EMU_DEVICES": str(len(gpus))}


def choose_backend(requested: str = "auto", node: str | None = None) -> Backend:
    """'auto' uses the GPUs if NVML finds any, else the emulator; 'nvidia'/'emu' force one."""
    if requested not in ("auto", "nvidia", "emu"):
        raise ValueError(f"unknown backend {requested!r}: use auto, nvidia or emu")
    if requested in ("auto", "nvidia"):
        gpus = nvidia_gpus()
        if gpus:
            return Backend("nvidia", None, _with_override(gpus))
        if requested == "nvidia":
            raise RuntimeError("backend 'nvidia' requested but NVML finds no NVIDIA GPU on this host")
    lib = native.require(native.emu_lib_dir() / "libcuda.so.1")
    return Backend("emu", str(lib.parent), _with_override(emulated_gpus(node, str(lib.parent))))


def _with_override(gpus: list[GpuInfo]) -> list[GpuInfo]:
    value = os.environ.get("TF_GPU_TFLOPS")
    if value:
        from tfclient import quantity
        try:
            tflops = quantity.parse_tflops(value)
        except ValueError as e:
            raise ValueError(f"TF_GPU_TFLOPS: {e}") from None
        for g in gpus:
            g.tflops = tflops
    return gpus
