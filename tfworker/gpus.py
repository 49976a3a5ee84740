"""GPU discovery for the worker daemon: NVIDIA GPUs through NVML, else the emulated device.

The daemon reports these to the scheduler at registration. TFLOPS are left to the scheduler's table of
known models (FP16 dense) unless TF_GPU_TFLOPS overrides them; the backend chosen here also decides
which libcuda.so.1 the GPU worker processes load (NVIDIA's driver, or build/emu's emulator).
"""
import hashlib
import os
import socket
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


def emulated_gpu(node: str | None = None) -> GpuInfo:
    vram_mib = int(os.environ.get("TF_EMU_VRAM_MIB", "16384"))
    # Stable per node name, so a worker that restarts re-registers the same GPU.
    digest = hashlib.sha256(f"tf-emu:{node or socket.gethostname()}".encode()).hexdigest()
    uuid = f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    return GpuInfo(0, uuid, EMULATED_MODEL, "tensorfusion", vram_mib)


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
    return Backend("emu", str(lib.parent), _with_override([emulated_gpu(node)]))


def _with_override(gpus: list[GpuInfo]) -> list[GpuInfo]:
    if os.environ.get("TF_GPU_TFLOPS"):
        for g in gpus:
            g.tflops = float(os.environ["TF_GPU_TFLOPS"])
    return gpus
