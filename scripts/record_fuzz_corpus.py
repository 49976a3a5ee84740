#!/usr/bin/env python3
"""Re-records the executor's fuzz corpus (tests/fuzz/*.bin) from real sessions: each program below runs through
the stub against a standalone data plane whose tf-executor keeps every request frame (TF_EXECUTOR_RECORD).
Run it after a change to proto/calls.tbl (the call ids and table hash move, and old recordings then mostly
exercise the unknown-call path):

    .venv/bin/python scripts/record_fuzz_corpus.py

Used by: tfworker/executor/tests/fuzz_frames.c (make asan-test) and tests/stub/test_bad_input.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from cudabuild import build_cuda  # noqa: E402
from tfclient import native  # noqa: E402

LCUDA = ("-L", str(native.stub_lib_dir()), "-lcuda")
# corpus file -> (program, build flags, arguments); sessions with small copies send them as frames (TF_SHM=0),
# the others' big copies go through the shared-memory window so the corpus stays small
SESSIONS = {
    "driver_api_session": ("dp_driver", LCUDA, ("65536",)),
    "bogus_handles_session": ("dp_bogus", LCUDA, ()),
    "copies_2d_session": ("dp_2d", (), ("64", "16")),
    "cudart_kernel_session": ("dp_runtime", (), ("4096", "kernel")),
    "graphs_session": ("dp_graph_bogus", LCUDA, ()),
    "vmm_session": ("api_vmm", LCUDA, ()),
    "async_dtoh_session": ("async_dtoh", LCUDA, ("device",)),  # staged copies to page-locked memory (TF_SHM=0)
}

FRAMED = {"driver_api_session", "copies_2d_session", "cudart_kernel_session", "graphs_session", "async_dtoh_session"}


def _settled(path: Path) -> bool:
    size = path.stat().st_size
    time.sleep(0.3)
    return path.stat().st_size == size


def record(name: str, program: str, flags: tuple, args: tuple, tmp: Path) -> int:
    binary = build_cuda(program, flags=flags)
    sock = tmp / f"{name}.sock"
    out = REPO / "tests" / "fuzz" / f"{name}.bin"
    out.unlink(missing_ok=True)  # the executor appends
    env = dict(os.environ, TF_EXECUTOR_RECORD=str(out))
    dp = subprocess.Popen([sys.executable, "-m", "tfworker.dataplane", "--unix", str(sock)], env=env,
                          stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        if not dp.stdout.readline().startswith("ready"):
            raise SystemExit(f"record_fuzz_corpus: the data plane did not start for {name}")
        client = dict(os.environ, LD_LIBRARY_PATH=str(native.stub_lib_dir()), TF_WORKER=f"unix:{sock}", TF_LEASE="",
                      TF_SHM="0" if name in FRAMED else "1")
        r = subprocess.run([str(binary), *args], env=client, capture_output=True, text=True, timeout=300)
        # the session's executor writes the recording as it ends (the client is gone): let it finish
        deadline = time.time() + 10
        while time.time() < deadline and not (out.exists() and out.stat().st_size and _settled(out)):
            time.sleep(0.1)
    finally:
        dp.terminate()
        dp.wait(20)
    size = out.stat().st_size if out.exists() else 0
    print(f"{name}: {program} exit {r.returncode}, {size} bytes")
    return size


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        empty = [n for n, (p, f, a) in SESSIONS.items() if not record(n, p, f, a, Path(tmp))]
    if empty:
        raise SystemExit(f"record_fuzz_corpus: nothing recorded for {', '.join(empty)}")


if __name__ == "__main__":
    main()
