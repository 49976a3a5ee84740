"""PyTorch starts through the stub on the emulated device (scripts/torch_smoke.py in its own interpreter,
real scheduler/worker/emulator processes). Runs only where torch is importable: torch is not a project
dependency (its CUDA wheels are ~5 GB installed, ~6 min to install here): scripts/setup.sh installs it into
.venv/torch (`pip install --target`), which CI uses; TF_TORCH_PATH names another such folder; or install it into
the venv."""
import importlib.util
import os
import sys

import pytest

from attached import EmbeddedEmu
from cudabuild import REPO, parse_kv

_SETUP_TORCH = REPO / ".venv" / "torch"
TORCH_PATH = os.environ.get("TF_TORCH_PATH", "") or (str(_SETUP_TORCH) if (_SETUP_TORCH / "torch").is_dir() else "")
pytestmark = pytest.mark.skipif(
    not TORCH_PATH and importlib.util.find_spec("torch") is None,
    reason="torch not importable (set TF_TORCH_PATH to a `pip install --target` folder holding it)")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke script's output, `step=ok ...` / `step=FAILED ...` lines, as a dict (+ its exit code)."""
    emu = EmbeddedEmu(tmp_path_factory.mktemp("tfhome"))
    try:
        env = {"PYTHONPATH": os.pathsep.join(p for p in (TORCH_PATH, str(REPO)) if p)}
        r = emu.run_script((REPO / "scripts" / "torch_smoke.py").read_text(), tmp_path_factory.mktemp("run"),
                           env=env, timeout=600)
    finally:
        emu.stop()
    assert "Traceback" not in r.stderr, r.stderr
    return parse_kv(r.stdout), r.returncode, r.stdout + r.stderr


def test_torch_sees_the_vgpu_and_its_properties(smoke):
    steps, _, out = smoke
    assert steps.get("cuda_available", "").startswith("ok device_count=1"), out
    assert steps.get("device_properties", "").startswith("ok name='TensorFusion Emulated GPU (CPU)' cc=12.1"), out


def test_torch_allocates_copies_and_counts_memory(smoke):
    steps, rc, out = smoke
    assert rc == 0, out
    for step in ("empty_on_device", "copy_round_trip", "memory_allocated", "free_and_sync"):
        assert steps[step].startswith("ok"), out
