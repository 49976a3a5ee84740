"""Parses the resource quantities users write (`run --vram/--vram-limit/--tflops`, `limits`, the scheduler's
config and workload documents: this is the one parser of all of them), as Kubernetes resource quantities:

    <sign><number><suffix>   sign: + or - or none; number: 12, 1.5, .5, 1.
    suffix (case-sensitive): Ki Mi Gi Ti Pi Ei (1024^n) | m (10^-3) k M G T P E (1000^n) | e<n> / E<n> (10^n)

VRAM is returned in MiB (the unit of TensorFusion, as the seeds measure it): a bare number (or e<n>) is MiB, a
suffix scales bytes ("2Gi" = 2048 MiB, "2G" = 2*10^9 bytes = 1908 MiB); fractional MiB round up. `m` is refused for
VRAM: a thousandth of a byte is no size (Kubernetes warns about fractional bytes too). TFLOPS (FP16 dense) is a
quantity of TFLOPS: "10", "2.5", "500m" = 0.5, "2k" = 2000. Suffixes are exact: "2Gb", "2gi", "2GiB", "2K", a space
inside, are refused, as Kubernetes refuses them.
Allowed ranges: VRAM 0 to VRAM_MAX_MIB (1024Ti), TFLOPS 0 to TFLOPS_MAX (1000000); both far above any GPU, low
enough that every value fits the wire's int64/double fields. Anything else raises tfclient.errors.InvalidQuantity,
one line naming the accepted forms (a number out of range says the range). limiter_c/core/parse.c reads
TF_VRAM_LIMIT and TF_TFLOPS_LIMIT with the same grammar (tests/limiter/test_limiter_env.py checks both on one table).
"""
import math
import re

from tfclient.errors import InvalidQuantity

_MIB = 1024 * 1024
_SUFFIXES = {  # multiplier of the number
    "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
    "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}
# Kubernetes' grammar (k8s.io/apimachinery resource.Quantity); the exponent is tried before the suffix E (exa)
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_QUANTITY = re.compile(rf"({_NUMBER})(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E))?")
_WORD = re.compile(rf"{_NUMBER}([A-Za-z]\w*)")      # a number and some other unit: to name the unit refused
VRAM_MAX_MIB = 1 << 30          # 1024Ti
TFLOPS_MAX = 1e6

VRAM_HELP = ("use a Kubernetes quantity: MiB as a plain number (1024), or bytes with a case-sensitive suffix, "
             "Ki Mi Gi Ti (1024^n: 512Mi, 2Gi) or k M G T (1000^n: 2G)")
TFLOPS_HELP = ("use a Kubernetes quantity of FP16 TFLOPS: a number (10, 2.5) or one with a case-sensitive suffix, "
               "m (milli: 500m = 0.5) or k (1000)")


def _split(value: str, what: str, noun: str, help_text: str) -> tuple[float, str | None]:
    """"2Gi" -> (2.0, "Gi"); "1e3" -> (1000.0, None). InvalidQuantity naming the accepted forms."""
    m = _QUANTITY.fullmatch(value)
    if m is None:
        unit = _WORD.fullmatch(value)
        if unit:
            raise InvalidQuantity(f"{what} {value!r} has unknown unit {unit.group(1)!r} (suffixes are "
                                  f"case-sensitive): {help_text}")
        raise InvalidQuantity(f"{what} {value!r} is not {noun}: {help_text}")
    if m.group(2) is not None:        # float() reads "1.5e3" (and overflows to inf, out of range below)
        return float(f"{m.group(1)}e{m.group(2)}"), None
    return float(m.group(1)), m.group(3)


def parse_vram_mib(value) -> int:
    """VRAM quantity -> MiB (int, rounded up). Raises InvalidQuantity."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidQuantity(f"VRAM {value!r} is not a size: {VRAM_HELP}")
    if isinstance(value, str):
        number, suffix = _split(value, "VRAM", "a size", VRAM_HELP)
        if suffix == "m":
            raise InvalidQuantity(f"VRAM {value!r}: m is milli, a thousandth of a byte, not a size: {VRAM_HELP}")
        mib = number if suffix is None else number * _SUFFIXES[suffix] / _MIB
    else:
        mib = float(value)
    if not math.isfinite(mib) or not 0 <= mib <= VRAM_MAX_MIB:
        raise InvalidQuantity(f"VRAM {value!r} is out of range: allowed 0 to 1024Ti ({VRAM_MAX_MIB} MiB), "
                              f"e.g. 512Mi, 2Gi, 80G")
    return math.ceil(mib - 1e-9)


def parse_tflops(value) -> float:
    """TFLOPS quantity -> float TFLOPS (FP16 dense). Raises InvalidQuantity."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidQuantity(f"TFLOPS {value!r} is not a number: {TFLOPS_HELP}")
    if isinstance(value, str):
        number, suffix = _split(value, "TFLOPS", "a number", TFLOPS_HELP)
        tflops = number if suffix is None else number * _SUFFIXES[suffix]
    else:
        tflops = float(value)
    if not math.isfinite(tflops) or not 0 <= tflops <= TFLOPS_MAX:
        raise InvalidQuantity(f"TFLOPS {value!r} is out of range: allowed 0 to {TFLOPS_MAX:.0f} (FP16 TFLOPS), "
                              f"e.g. 10, 2.5, 500m")
    return tflops


def format_vram(mib: int) -> str:
    """Short human form: 81920 -> '80Gi', 1536 -> '1.5Gi', 300 -> '300Mi'."""
    if mib >= 1024 and mib % 64 == 0:
        return f"{mib / 1024:g}Gi"
    return f"{mib}Mi"
