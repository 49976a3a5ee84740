"""Asynchronous streams through the client stub -> GPU worker process -> emulated device: the program of
tests/emu/test_emu_streams.py, the same answers (the GPU worker's streams are the emulator's)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import run_via_stub

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emu"))
from test_emu_streams import CHECKS, TIMEOUT  # noqa: E402


STUB_GAPS: dict = {}


@pytest.mark.parametrize("mode", [pytest.param(m, marks=STUB_GAPS[m]) if m in STUB_GAPS else m for m in CHECKS])
def test_stream_work_runs_after_the_call_returns_through_the_stub(dataplane, cuda_program, mode):
    r = run_via_stub(cuda_program("async_streams"), dataplane.unix, mode,
                     timeout=20 if mode in STUB_GAPS else TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    CHECKS[mode](parse_kv(r.stdout))
