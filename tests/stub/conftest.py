"""Fixtures for the remote data path tests: a real data-plane server (tfworker.dataplane) with real
tf-executor processes over the emulated device.

`dataplane` runs DataPlaneServer inside the test process (on its own event-loop thread) so tests can
look at sessions() and the SessionEnd reports; `standalone_dataplane` runs `python -m tfworker.dataplane`
as its own process, as users do.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from dp_helpers import InProcessDataPlane
from tfclient import native

REPO = native.REPO_ROOT


def _need_emu():
    # the emulated device is another layer (emu_c); until it is built there is no backend to forward to
    if not (native.emu_lib_dir() / "libcuda.so.1").exists():
        pytest.skip("emulated device not built (build/emu/libcuda.so.1): run `make native`")


@pytest.fixture
def dataplane(tmp_path):
    _need_emu()
    dp = InProcessDataPlane(tmp_path)
    yield dp
    dp.close()


@pytest.fixture
def standalone_dataplane(tmp_path):
    """`python -m tfworker.dataplane` in its own process; yields a function(token="") -> (unix, tcp)."""
    procs = []

    def start(token: str = "", backend: str = "emu"):
        if backend == "emu":
            _need_emu()
        path = tmp_path / f"sa{len(procs)}.sock"
        p = subprocess.Popen([sys.executable, "-m", "tfworker.dataplane", "--unix", str(path), "--tcp", "127.0.0.1:0",
                              "--backend", backend, "--token", token], stdout=subprocess.PIPE, text=True, cwd=REPO)
        procs.append(p)
        line = p.stdout.readline().strip()
        assert line.startswith("ready"), f"dataplane did not start: {line!r}"
        port = int(line.split("tcp_port=")[1])
        return f"unix:{path}", f"tcp:127.0.0.1:{port}"

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
