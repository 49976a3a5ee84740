"""Graph launches on a cudaStreamNonBlocking stream are never lost: after cudaStreamSynchronize every
launch queued on the stream has run (CUDA: cuStreamSynchronize "waits until the device has completed all
operations in the stream"), through the stub -> tf-executor (with and without the limiter preloaded) ->
emulated device, and directly on the emulated device. Each program loops inside itself (ROUNDS rounds of
reset, N launches, synchronize, copy back) and counts the rounds whose counter is short.

The intermittent `sum=6` of tests/stub/test_remote_limits.py came from the program, not from a layer:
graph_launches.cu reset its counter with cudaMemset (the legacy NULL stream) and launched on a non-blocking
stream, which does not wait for the NULL stream; a memset of device memory is asynchronous with respect to
the host ("API synchronization behavior"), so the reset could run after some of the launches. Looping that
pattern (graph_launches N ROUNDS) loses most rounds; the reset is now ordered on the stream itself."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import InProcessDataPlane, run_via_stub
from tfclient import native
from tfworker.dataplane import SessionGrant
from tfworker.limits import SessionLimits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emu"))
from emu_run import emu_env  # noqa: E402

MiB = 1 << 20
ROUNDS = 150


@pytest.fixture(params=["limiter", "plain"])
def dataplane_maybe_limited(request, tmp_path):
    if not (native.emu_lib_dir() / "libcuda.so.1").exists():
        pytest.skip("emulated device not built (build/emu/libcuda.so.1): run `make native`")
    regions = []
    authorize = None
    if request.param == "limiter":
        native.require(native.limiter_lib())

        async def authorize(token: bytes) -> SessionGrant:
            lim = SessionLimits.create(f"dp-race-{len(regions)}-{id(regions)}", vram_limit_bytes=320 * MiB)
            regions.append(lim)
            return SessionGrant(session_id=f"race{len(regions)}", env=lim.env, preload=lim.preload)

    dp = InProcessDataPlane(tmp_path, tcp=False, authorize=authorize)
    yield dp
    dp.close()
    for lim in regions:
        lim.close()


@pytest.fixture(params=["plain", "limiter"])
def direct_env(request):
    """Environment for a program run directly on the emulated device, with libtflimiter.so preloaded (and its
    own SessionLimits region) or not; the test adds TF_EMU_ENGINE."""
    if request.param == "plain":
        yield {}, None
        return
    native.require(native.limiter_lib())
    lim = SessionLimits.create(f"direct-race-{id(request)}", vram_limit_bytes=320 * MiB)
    try:
        yield {**lim.env, "LD_PRELOAD": ":".join(lim.preload)}, lim
    finally:
        lim.close()


def _run_direct(exe, *args, engine: str, extra: dict):
    return subprocess.run([str(exe), *map(str, args)], env=emu_env(TF_EMU_ENGINE=engine, **extra),
                          capture_output=True, text=True, timeout=300)


def _check(r, want_rounds: int):
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert kv["bad"] == "0", r.stdout
    if "rounds" in kv:
        assert kv["rounds"] == str(want_rounds)


def test_graph_launches_loop_through_the_stub(dataplane_maybe_limited, cuda_program):
    """graph_launches.cu's own pattern, ROUNDS times in one session: every round's counter is 3*N."""
    r = run_via_stub(cuda_program("graph_launches"), dataplane_maybe_limited.unix, 4, ROUNDS, timeout=300)
    _check(r, ROUNDS)
    assert "sum=12" in r.stdout


@pytest.mark.parametrize("engine", ["jit", "interp"])
def test_graph_launches_loop_directly(cuda_program, direct_env, engine):
    extra, lim = direct_env
    r = _run_direct(cuda_program("graph_launches"), 4, ROUNDS, engine=engine, extra=extra)
    _check(r, ROUNDS)
    assert "sum=12" in r.stdout
    if lim is not None:  # the limiter was there: it counted the 3 captured launches and each graph launch
        assert lim.usage().launches == 3 + 4 * ROUNDS, lim.usage()


# (reset, stream kind, streams): orders CUDA defines. A reset on the NULL stream is ordered before the launches
# of a blocking stream and of the per-thread default stream (which synchronizes with the legacy stream).
STRESS = [("async", "nonblocking", 3), ("legacy_sync", "nonblocking", 3), ("legacy", "blocking", 3),
          ("legacy", "perthread", 1)]


@pytest.mark.parametrize("reset,kind,streams", STRESS, ids=[f"{r}-{k}" for r, k, _ in STRESS])
def test_graph_launch_stress_through_the_stub(dataplane_maybe_limited, cuda_program, reset, kind, streams):
    """More nodes and several streams at once, the counter reset in an order CUDA defines."""
    r = run_via_stub(cuda_program("graph_launch_stress"), dataplane_maybe_limited.unix, ROUNDS, 6, 5, streams, reset,
                     kind, timeout=300)
    _check(r, ROUNDS)


@pytest.mark.parametrize("reset,kind,streams", STRESS, ids=[f"{r}-{k}" for r, k, _ in STRESS])
@pytest.mark.parametrize("engine", ["jit", "interp"])
def test_graph_launch_stress_directly(cuda_program, direct_env, engine, reset, kind, streams):
    r = _run_direct(cuda_program("graph_launch_stress"), ROUNDS, 6, 5, streams, reset, kind, engine=engine,
                    extra=direct_env[0])
    _check(r, ROUNDS)
