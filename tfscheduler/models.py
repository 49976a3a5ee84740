"""Known GPU models and their FP16 dense TFLOPS (the unit TensorFusion schedules compute in).

Used by the scheduler when a worker registers a GPU without a TFLOPS figure (GPUInfo.tflops == 0).
Figures are NVIDIA datasheet FP16 Tensor Core numbers *without* sparsity:
  H100 SXM 989.4, H100 PCIe 756, H200 989.4 (same GH100 compute as H100 SXM), A100 312, L40S 362,
  L4 121, A10 125, T4 65, V100 125 (V100 tensor cores: FP16 with FP32 accumulate).
  RTX 4090 165.2: the GeForce datasheet's FP16 tensor figure *with FP32 accumulate*, dense (with FP16
  accumulate it is 330.3; GeForce cards halve the FP32-accumulate rate). Training frameworks use FP32
  accumulate, so 165.2 is the honest number for scheduling.
  TensorFusion Emulated GPU (CPU) 0.01: an accounting figure for the PTX interpreter (emu_c), which runs
  kernels on the CPU; it is a nominal small capacity so fractional requests (e.g. 0.001 TFLOPS) can be
  scheduled and limited in tests, not a measured throughput (the interpreter is slower still).
Matching is by regular expression on the model name as the driver/NVML reports it; the most specific
pattern comes first (H100 PCIe before H100, L40S before L4, A100 before A10). A config [models] table
(exact names or regexes) overrides all of this.
"""
import re

EMULATED_MODEL = "TensorFusion Emulated GPU (CPU)"

KNOWN_MODELS = [  # (pattern, FP16 dense TFLOPS, canonical name)
    (r"emulated", 0.01, EMULATED_MODEL),
    (r"h100.*pcie|h100\s*pcie", 756.0, "H100 PCIe"),
    (r"h100.*nvl", 835.0, "H100 NVL"),
    (r"h100", 989.4, "H100 SXM"),
    (r"h200", 989.4, "H200"),
    (r"a100", 312.0, "A100"),
    (r"l40s", 362.0, "L40S"),
    (r"\bl4\b", 121.0, "L4"),
    (r"rtx\s*4090", 165.2, "RTX 4090"),
    (r"\ba10\b", 125.0, "A10"),
    (r"\bt4\b", 65.0, "T4"),
    (r"v100", 125.0, "V100"),
]
_COMPILED = [(re.compile(p, re.I), t, n) for p, t, n in KNOWN_MODELS]


def match_override(model: str, overrides: dict | None) -> float | None:
    """TFLOPS from a config table {exact name or regex: tflops}, or None."""
    for key, tflops in (overrides or {}).items():
        if key.lower() == model.lower() or re.search(key, model, re.I):
            return float(tflops)
    return None


def lookup_tflops(model: str, overrides: dict | None = None) -> float | None:
    """FP16 dense TFLOPS of a model name (config overrides first), or None if unknown."""
    hit = match_override(model, overrides)
    if hit is not None:
        return hit
    for rx, tflops, _ in _COMPILED:
        if rx.search(model):
            return tflops
    return None
