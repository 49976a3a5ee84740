"""Native limiter, local-mode environment: TF_VRAM_LIMIT means what `--vram` means (Kubernetes quantities, as
tfclient/quantity.py reads them), HAMi's CUDA_DEVICE_MEMORY_LIMIT keeps HAMi's binary single letters, and a limit that
does not parse makes the program fail at CUDA initialisation with one line naming the variable - it never
runs without the cap it asked for."""
import subprocess

import pytest

from limiter_helpers import MiB, build_cuda, limited_env, parse_kv, run_kv
from tfclient import native
from tfclient.errors import InvalidQuantity
from tfclient.quantity import parse_vram_mib

GiB = 1 << 30

# spelling -> bytes (TF_VRAM_LIMIT); None = refused. quantity.py must agree (in MiB, rounded up) on
# every spelling with a unit; a bare number is bytes here and MiB on the command line (documented).
TABLE = {
    "1Gi": GiB, "2Gi": 2 * GiB, "1.5Gi": 3 * GiB // 2, "512Mi": 512 * MiB, "64Ki": 64 * 1024, "1Ti": 1 << 40,
    ".5Gi": GiB // 2, "+1Gi": GiB, "1Pi": 1 << 50, "1G": 10 ** 9, "1.5G": 1_500_000_000, "512M": 512_000_000,
    "80G": 80 * 10 ** 9, "2T": 2 * 10 ** 12, "64k": 64_000,
    # Kubernetes quantities: case-sensitive suffixes, no "B", no blanks; "m" (milli) is no size
    "1gi": None, "1GiB": None, "512MiB": None, "1g": None, "1GB": None, "1.5GB": None, "2Gb": None, "512m": None,
    "64K": None, "1048576B": None, "1048576b": None, " 3 Mi ": None, "3Mi ": None, "1e3M": None,
    "-1": None, "abc": None, "4Gx": None, "0x10": None, "nan": None, "inf": None, "1 G i": None, "Gi": None,
    "": None,
}


@pytest.fixture(scope="module")
def c_parse(tmp_path_factory):
    """The limiter's own parser (limiter_c/core/parse.c) as a tiny program: prints bytes or ERR per arg."""
    d = tmp_path_factory.mktemp("parse")
    src = d / "p.c"
    src.write_text('#include <stdio.h>\n#include "tfl_core.h"\nint main(int c, char **v) {\n'
                   '  for (int i = 1; i < c; i++) { unsigned long long b; uint64_t x;\n'
                   '    if (tfl_parse_bytes(v[i], TFL_UNITS_TF, &x)) puts("ERR"); else { b = x; printf("%llu\\n", b); } }\n'
                   '  return 0; }\n')
    exe = d / "p"
    core = native.REPO_ROOT / "limiter_c" / "core"
    subprocess.run(["cc", "-std=gnu11", "-Wall", "-Werror", "-I", str(core), "-o", str(exe), str(src),
                    str(core / "parse.c"), "-lm"], check=True)

    def parse(spellings):
        out = subprocess.run([str(exe), *spellings], capture_output=True, text=True, check=True).stdout.split("\n")
        return [None if x == "ERR" else int(x) for x in out[:len(spellings)]]
    return parse


def test_env_parser_and_quantity_agree_on_a_table_of_spellings(c_parse):
    spellings = list(TABLE)
    got = dict(zip(spellings, c_parse(spellings)))
    assert got == TABLE
    for s, b in TABLE.items():
        try:
            mib = parse_vram_mib(s)
        except InvalidQuantity:
            mib = None
        if b is None:
            assert mib is None, f"{s!r}: quantity.py accepts what the limiter refuses"
        else:
            assert mib == -(-b // MiB), f"{s!r}: limiter {b} bytes, quantity.py {mib} MiB"
    # the one documented difference: a bare number is bytes in the environment, MiB on the command line
    assert c_parse(["1024"]) == [1024] and parse_vram_mib("1024") == 1024


@pytest.mark.parametrize("var,value,cap", [
    ("TF_VRAM_LIMIT", "1Gi", GiB),
    ("TF_VRAM_LIMIT", "1G", 10 ** 9),                      # decimal, as `--vram 1G`
    ("CUDA_DEVICE_MEMORY_LIMIT", "1Gi", GiB),
    ("CUDA_DEVICE_MEMORY_LIMIT", "1g", GiB),               # HAMi's historical meaning: binary
    ("CUDA_DEVICE_MEMORY_LIMIT_0", "768m", 768 * MiB),
])
def test_vram_limit_spellings_cap_the_device_at_their_bytes(var, value, cap):
    kv = run_kv("lim_vram", 64, env=limited_env({var: value}))
    assert int(kv["info_total"]) == cap
    assert int(kv["filled"]) == cap // (64 * MiB)
    assert kv["fill_error"] == "cudaErrorMemoryAllocation"


@pytest.mark.parametrize("var,value", [
    ("TF_VRAM_LIMIT", "-1"), ("TF_VRAM_LIMIT", "abc"), ("TF_VRAM_LIMIT", "4Gx"), ("TF_VRAM_LIMIT", "0"),
    ("CUDA_DEVICE_MEMORY_LIMIT", "1GB"), ("CUDA_DEVICE_MEMORY_LIMIT", "lots"),
    ("TF_TFLOPS_LIMIT", "fast"), ("TF_DEVICE_TFLOPS", "5K"), ("CUDA_DEVICE_SM_LIMIT", "150"),
])
@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_an_unparseable_limit_refuses_cuda_initialisation_with_one_line(var, value, cudart):
    env = limited_env({var: value})
    if var == "TF_TFLOPS_LIMIT":
        env["TF_DEVICE_TFLOPS"] = "100"
    exe = build_cuda("lim_vram", cudart=cudart)
    p = subprocess.run([str(exe), "64"], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    kv = parse_kv(p.stdout.encode())
    assert "filled" not in kv                               # nothing ran, least of all uncapped
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("tflimiter")]
    assert len(lines) == 1, p.stderr
    assert f"{var}='{value}'" in lines[0] and "accepted:" in lines[0] and "fail closed" in lines[0]


def test_a_tflops_limit_without_the_device_tflops_fails_closed():
    p = subprocess.run([str(build_cuda("lim_vram")), "64"], env=limited_env({"TF_TFLOPS_LIMIT": "5"}),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "TF_TFLOPS_LIMIT='5' needs TF_DEVICE_TFLOPS" in p.stderr


def test_the_refusal_is_printed_even_when_the_limiter_is_quiet():
    p = subprocess.run([str(build_cuda("lim_vram")), "64"],
                       env=limited_env({"TF_VRAM_LIMIT": "4Gx", "TF_LIMITER_QUIET": "1"}),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "TF_VRAM_LIMIT='4Gx'" in p.stderr
