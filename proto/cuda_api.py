#!/usr/bin/env python3
"""The whole driver API of a cuda.h: every exported ABI name and every (name, version, ptds) entry
cuGetProcAddress can be asked for.

Used by gen_calls.py --stub (every name no calls.tbl row serves gets a generated NOT_SUPPORTED
function and cuGetProcAddress entries) and by tests/stub/test_api_surface.py, which compares the
stub's exports against exactly this list. `python3 proto/cuda_api.py [--cuda-include DIR]` prints it.

How the names are found (no list is written by hand):
  * ABI names: cuda.h run through the C preprocessor twice, as a user includes it and with
    __CUDA_API_VERSION_INTERNAL (what the driver itself is built with: it declares the legacy
    names - cuMemAlloc, cuCtxCreate, ... - and the _ptds/_ptsz per-thread-stream variants);
    every `CUresult name(` declaration of either is an exported symbol of libcuda.so.1.
  * versions: cudaTypedefs.h declares PFN_<api>_v<version>[_ptds|_ptsz] for every version
    cuGetProcAddress serves. For one api the plain versions in ascending order are the symbols
    api, api_v2, api_v3, ... (cuCtxCreate v2000/3020/11040/12050 = cuCtxCreate/_v2/_v3/_v4); a
    per-thread variant of version V is the symbol of the newest plain version <= V plus _ptds/_ptsz
    (cuMemcpyHtoD v7000_ptds = cuMemcpyHtoD_v2_ptds). Every symbol so derived must be a declared
    name (checked); declared names with no PFN typedef get the version in NO_TYPEDEF_VERSION.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys

# cuda.h functions cudaTypedefs.h has no PFN typedef for: the CUDA version that introduced them
# (the version cuGetProcAddress serves them from). Unknown ones default to DEFAULT_VERSION.
NO_TYPEDEF_VERSION = {
    "cuCoredumpGetAttribute": 12010, "cuCoredumpGetAttributeGlobal": 12010,
    "cuCoredumpSetAttribute": 12010, "cuCoredumpSetAttributeGlobal": 12010,
    "cuCtxRecordEvent": 12050, "cuCtxWaitEvent": 12050,
    "cuGreenCtxGetId": 12090,
}
DEFAULT_VERSION = 12040

_DECL = re.compile(r"\bCUresult\s+(?:__attribute__\s*\(\(\s*\w+\s*\)\)\s*)*(cu\w+)\s*\(")
_PFN = re.compile(r"typedef\s+CUresult\s+\(CUDAAPI\s+\*PFN_(\w+?)_v(\d+)(_ptds|_ptsz)?\)")


# The driver library's API: cuda.h plus the profiler control of cudaProfiler.h (libcuda exports both).
TYPEDEF_HEADERS = ("cudaTypedefs.h", "cudaProfilerTypedefs.h")


def _preprocess(cuda_include: str, defines: list) -> str:
    cc = shlex.split(os.environ.get("CC") or "cc")
    cmd = cc + ["-E", "-P", "-x", "c", f"-I{cuda_include}", *defines, "-"]
    r = subprocess.run(cmd, input="#include <cuda.h>\n#include <cudaProfiler.h>\n", capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"cuda_api.py: preprocessing cuda.h failed: {r.stderr.strip()[:400]}")
    return r.stdout


def header_names(cuda_include: str) -> set:
    """Every function name cuda.h declares, as an exported ABI symbol (cuMemAlloc_v2, cuMemAlloc,
    cuMemcpyHtoD_v2_ptds, ...)."""
    names = set()
    for defines in ([], ["-D__CUDA_API_VERSION_INTERNAL"]):
        names |= set(_DECL.findall(_preprocess(cuda_include, defines)))
    return names


def typedef_versions(cuda_include: str) -> dict:
    """api -> set of (version, '' | 'ptds' | 'ptsz') from cudaTypedefs.h."""
    text = "".join(open(os.path.join(cuda_include, h), encoding="utf-8").read() for h in TYPEDEF_HEADERS)
    out = {}
    for m in _PFN.finditer(text):
        out.setdefault(m.group(1), set()).add((int(m.group(2)), (m.group(3) or "").lstrip("_")))
    return out


def api_entries(cuda_include: str) -> list:
    """[(api, version, variant, symbol)] sorted: every cuGetProcAddress entry of the header, plus one
    entry per declared name that has no typedef. Exits if a derived symbol is not declared."""
    names = header_names(cuda_include)
    entries = {}
    for api, vs in typedef_versions(cuda_include).items():
        plain = sorted(v for v, var in vs if not var)
        sym_of = {}
        for i, v in enumerate(plain):
            sym_of[v] = api if i == 0 else f"{api}_v{i + 1}"
            entries[(api, v, "")] = sym_of[v]
        for v, var in vs:
            if var:
                lower = [p for p in plain if p <= v]
                entries[(api, v, var)] = f"{sym_of[max(lower)] if lower else api}_{var}"
    bad = sorted(s for s in entries.values() if s not in names)
    if bad:
        sys.exit(f"cuda_api.py: typedef versions name symbols cuda.h does not declare: {bad[:10]}")
    served = set(entries.values())
    for n in sorted(names - served):
        entries[(n, NO_TYPEDEF_VERSION.get(n, DEFAULT_VERSION), "")] = n
    return sorted((a, v, var, s) for (a, v, var), s in entries.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cuda-include", default=os.environ.get("CUDA_INC", "/usr/local/cuda/include"))
    ap.add_argument("--names", action="store_true", help="print only the ABI names")
    a = ap.parse_args()
    if a.names:
        print("\n".join(sorted(header_names(a.cuda_include))))
        return
    for api, ver, var, sym in api_entries(a.cuda_include):
        print(f"{api:45s} {ver:6d} {var or '-':5s} {sym}")


if __name__ == "__main__":
    main()
