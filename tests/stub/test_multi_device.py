"""Several GPUs through the stub: a session whose GPU worker has two emulated devices (TF_EMU_DEVICES=2, as
`tensorfusion run --gpus 2` gives it) runs tests/cuda/multi_device.cu through stub -> data plane -> tf-executor and
sees what the same program sees directly on the emulator (tests/emu/test_emu_multi_device.py): every call that
answers per device or per context (stream/event/context getters, pointer ordinals, primary contexts, pools) answers
for the device the handle belongs to, over unix and TCP, with cudart static and shared; so does
tests/cuda/multi_device_owners.cu (events and streams used from the other device, the ordinal and context of pinned
host memory, graph memory and IPC-pool imports, addresses of a reset context)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import InProcessDataPlane, run_via_stub, stub_dir
from tfworker.dataplane import SessionGrant
from tfworker.gpus import Backend, GpuInfo, session_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emu"))
from test_emu_multi_device import EXPECTED_TWO, OWNERS_EXPECTED  # noqa: E402  (one list of CUDA's answers for both paths)


@pytest.fixture
def two_device_dataplane(tmp_path):
    """A data plane whose sessions get what the worker daemon gives a session of 2 emulated GPUs (run --gpus 2)."""
    gpus = [GpuInfo(i, f"GPU-test-{i}", "emu", "tensorfusion", 1024) for i in range(2)]
    env = session_env(Backend("emu", None, gpus), gpus)

    async def authorize(token: bytes) -> SessionGrant:
        return SessionGrant(session_id="multi", env=env)

    dp = InProcessDataPlane(tmp_path, authorize=authorize)
    yield dp
    dp.close()


@pytest.mark.parametrize("transport,cudart", [("unix", "static"), ("unix", "shared"), ("tcp", "static")])
def test_two_devices_through_the_stub_answer_as_on_the_emulator(two_device_dataplane, cuda_program, transport, cudart):
    binary = cuda_program("multi_device", cudart=cudart, flags=(f"-L{stub_dir()}", "-lcuda"))
    r = run_via_stub(binary, getattr(two_device_dataplane, transport))
    kv = parse_kv(r.stdout)
    wrong = {k: (kv.get(k), v) for k, v in EXPECTED_TWO.items() if kv.get(k) != v}
    assert not wrong and r.returncode == 0, (wrong, r.stdout[-2000:], r.stderr[-2000:])


# Over TCP no POSIX descriptor reaches the client: the IPC pool cannot be exported, so its child never runs.
_NO_IPC_POOL = {k: v for k, v in OWNERS_EXPECTED.items() if not k.startswith("child_")}


@pytest.mark.parametrize("transport,expected", [
    ("unix", OWNERS_EXPECTED),
    ("tcp", {**_NO_IPC_POOL, "pool_export": "CUDA_ERROR_NOT_SUPPORTED"}),
])
def test_what_device_1_owns_answers_for_device_1_through_the_stub(two_device_dataplane, cuda_program, transport,
                                                                   expected):
    binary = cuda_program("multi_device_owners", flags=(f"-L{stub_dir()}", "-lcuda"))
    r = run_via_stub(binary, getattr(two_device_dataplane, transport))
    kv = parse_kv(r.stdout)
    wrong = {k: (kv.get(k), v) for k, v in expected.items() if kv.get(k) != v}
    assert not wrong and set(kv) == set(expected) and r.returncode == 0, (wrong, r.stdout[-2000:], r.stderr[-2000:])
