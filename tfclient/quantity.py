"""Parses the resource quantities users write: VRAM sizes and TFLOPS.

VRAM is always returned in MiB (the unit of TensorFusion): "1024" and 1024 are MiB; binary suffixes
Ki/Mi/Gi/Ti (optionally with a trailing B: "1.5GiB") and decimal K/M/G/T (k8s style, "2G" = 2e9 bytes)
and plain bytes "B" are accepted; fractional MiB round up. TFLOPS (FP16 dense) is a number, optionally
with "T"/"TFLOPS", "G"/"GFLOPS" (/1000) or the k8s milli suffix "m" ("500m" = 0.5 TFLOPS).
Allowed ranges: VRAM 0 to VRAM_MAX_MIB (1024Ti), TFLOPS 0 to TFLOPS_MAX (1000000); both far above any GPU,
low enough that every value fits the wire's int64/double fields. Anything else raises
tfclient.errors.InvalidQuantity saying what is accepted (a number out of range says the range).
"""
import math
import re

from tfclient.errors import InvalidQuantity

_MIB = 1024 * 1024
_VRAM_UNITS = {  # multiplier to bytes
    "b": 1,
    "ki": 1024, "kib": 1024, "mi": _MIB, "mib": _MIB, "gi": 1024 * _MIB, "gib": 1024 * _MIB,
    "ti": 1024 ** 2 * _MIB, "tib": 1024 ** 2 * _MIB,
    "k": 10 ** 3, "kb": 10 ** 3, "m": 10 ** 6, "mb": 10 ** 6, "g": 10 ** 9, "gb": 10 ** 9,
    "t": 10 ** 12, "tb": 10 ** 12,
}
_TFLOPS_UNITS = {"": 1.0, "t": 1.0, "tflops": 1.0, "g": 1e-3, "gflops": 1e-3, "m": 1e-3}
_NUM = re.compile(r"^\s*(-?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")
VRAM_MAX_MIB = 1 << 30          # 1024Ti
TFLOPS_MAX = 1e6

VRAM_HELP = 'use MiB as a number ("1024") or a size with a unit: 512Mi, 2Gi, 1.5GiB, 2G, 80GB'
TFLOPS_HELP = 'use a number of FP16 TFLOPS ("10", "2.5"), or 500G / 500GFLOPS, or 500m (= 0.5)'


def parse_vram_mib(value) -> int:
    """VRAM quantity -> MiB (int, rounded up). Raises InvalidQuantity."""
    if isinstance(value, bool):
        raise InvalidQuantity(f"VRAM {value!r} is not a size: {VRAM_HELP}")
    if isinstance(value, (int, float)):
        number, unit = float(value), "mi"
    elif isinstance(value, str):
        m = _NUM.match(value)
        if not m:
            raise InvalidQuantity(f"VRAM {value!r} is not a size: {VRAM_HELP}")
        number, unit = float(m.group(1)), (m.group(2).lower() or "mi")
        if unit not in _VRAM_UNITS:
            raise InvalidQuantity(f"VRAM {value!r} has unknown unit {m.group(2)!r}: {VRAM_HELP}")
    else:
        raise InvalidQuantity(f"VRAM {value!r} is not a size: {VRAM_HELP}")
    mib = number * _VRAM_UNITS[unit] / _MIB
    if not math.isfinite(mib) or not 0 <= mib <= VRAM_MAX_MIB:
        raise InvalidQuantity(f"VRAM {value!r} is out of range: allowed 0 to 1024Ti ({VRAM_MAX_MIB} MiB), "
                              f"e.g. 512Mi, 2Gi, 80GB")
    return math.ceil(mib - 1e-9)


def parse_tflops(value) -> float:
    """TFLOPS quantity -> float TFLOPS (FP16 dense). Raises InvalidQuantity."""
    if isinstance(value, bool):
        raise InvalidQuantity(f"TFLOPS {value!r} is not a number: {TFLOPS_HELP}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    elif isinstance(value, str):
        m = _NUM.match(value)
        if not m:
            raise InvalidQuantity(f"TFLOPS {value!r} is not a number: {TFLOPS_HELP}")
        number, unit = float(m.group(1)), m.group(2)
        # "m" is milli only in lower case; "M"/"P" etc. are not accepted.
        key = unit if unit == "m" else unit.lower()
        if key not in _TFLOPS_UNITS or unit == "M":
            raise InvalidQuantity(f"TFLOPS {value!r} has unknown unit {unit!r}: {TFLOPS_HELP}")
        unit = key
    else:
        raise InvalidQuantity(f"TFLOPS {value!r} is not a number: {TFLOPS_HELP}")
    tflops = number * _TFLOPS_UNITS[unit]
    if not math.isfinite(tflops) or not 0 <= tflops <= TFLOPS_MAX:
        raise InvalidQuantity(f"TFLOPS {value!r} is out of range: allowed 0 to {TFLOPS_MAX:.0f} (FP16 TFLOPS), "
                              f"e.g. 10, 2.5, 500m")
    return tflops


def format_vram(mib: int) -> str:
    """Short human form: 81920 -> '80Gi', 1536 -> '1.5Gi', 300 -> '300Mi'."""
    if mib >= 1024 and mib % 64 == 0:
        return f"{mib / 1024:g}Gi"
    return f"{mib}Mi"
