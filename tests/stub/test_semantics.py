"""CUDA's semantics in the corner cases programs rely on, through the client stub -> tf-executor ->
emulated device: the same programs as tests/emu/test_emu_semantics.py, the same answers."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import run_via_stub, stub_dir

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emu"))
from emu_run import run_program  # noqa: E402
from test_emu_semantics import (CTX_LIFETIME, NEW_THREAD, NULL_FREE, PRINTF_ORDER, check_bad_instruction,  # noqa: E402
                                check_clock_rate, check_launch_errors, check_occupancy, check_printf_fifo)

CUDARTS = ["static", "shared"]
LCUDA = ("-L", str(stub_dir()), "-lcuda")


def kv_of(r) -> dict:
    assert r.returncode == 0, r.stdout + r.stderr
    return parse_kv(r.stdout)


@pytest.mark.parametrize("cudart", CUDARTS)
def test_freeing_null_is_a_no_op_where_cuda_says_so(dataplane, cuda_program, cudart):
    kv = kv_of(run_via_stub(cuda_program("null_free", cudart=cudart, flags=LCUDA), dataplane.unix))
    assert {k: kv.get(k) for k in NULL_FREE} == NULL_FREE


@pytest.mark.parametrize("cudart", CUDARTS)
def test_a_new_host_thread_uses_the_device_without_cudaSetDevice(dataplane, cuda_program, cudart):
    kv = kv_of(run_via_stub(cuda_program("new_thread", cudart=cudart, flags=LCUDA), dataplane.unix))
    assert {k: kv.get(k) for k in NEW_THREAD} == NEW_THREAD


@pytest.mark.parametrize("cudart", CUDARTS)
def test_launch_errors_come_back_from_the_launch_itself(dataplane, cuda_program, cudart):
    """The stub refuses what the device would (grid/block, dynamic shared memory over the function's limit,
    .maxntid) before queueing the launch, and waits for the worker's answer on cooperative launches."""
    check_launch_errors(kv_of(run_via_stub(cuda_program("launch_errors", cudart=cudart, flags=LCUDA), dataplane.unix)))


def test_occupancy_honours_each_kernels_attributes(dataplane, cuda_program):
    check_occupancy(kv_of(run_via_stub(cuda_program("occupancy", flags=LCUDA), dataplane.unix)))


@pytest.mark.parametrize("cudart", CUDARTS)
def test_device_printf_reaches_the_clients_stdout_in_order(dataplane, cuda_program, cudart):
    """Kernel printf output travels back with the reply of the call that flushed it and is written to the
    client's stdout before that call returns: the same bytes, in the same order, as on the emulator."""
    r = run_via_stub(cuda_program("device_printf", cudart=cudart), dataplane.unix, "order")
    assert r.returncode == 0, r.stderr
    assert r.stdout == PRINTF_ORDER
    direct = run_program("device_printf", "order", cudart=cudart)
    assert r.stdout == direct.stdout.decode()


def test_device_printf_fifo_size_is_honoured_through_the_stub(dataplane, cuda_program):
    r = run_via_stub(cuda_program("device_printf"), dataplane.unix, "fifo")
    assert r.returncode == 0, r.stderr
    check_printf_fifo(r.stdout)
    assert r.stdout == run_program("device_printf", "fifo").stdout.decode()


def test_worker_diagnostics_reach_the_clients_stderr_once(dataplane, cuda_program, capfd):
    """The emulator's line naming an unsupported PTX instruction is in the client's stderr (once), and
    still in the worker's log (the GPU worker process's own stderr, here the test's)."""
    r = run_via_stub(cuda_program("device_printf"), dataplane.unix, "bad")
    assert r.returncode == 0, r.stderr
    check_bad_instruction(r.stdout, r.stderr)
    assert "tfemu.no.such.instruction" in capfd.readouterr().err


PROFILER = {"start": "cudaSuccess", "stop": "cudaSuccess", "kernel": "ok"}


@pytest.mark.parametrize("cudart", CUDARTS)
def test_profiler_start_and_stop_succeed_on_the_emulator_and_through_the_stub(dataplane, cuda_program, cudart):
    """asyncAPI and matrixMul of NVIDIA's samples begin with cudaProfilerStart: it used to fail through the stub
    (cudaErrorCallRequiresNewerDriver: cuProfilerStart was not resolvable)."""
    direct = run_program("profiler_control", cudart=cudart)
    assert direct.returncode == 0, direct.stdout + direct.stderr
    assert {k: v for k, v in parse_kv(direct.stdout.decode()).items() if k in PROFILER} == PROFILER
    prog = cuda_program("profiler_control", cudart=cudart)
    assert {k: v for k, v in kv_of(run_via_stub(prog, dataplane.unix)).items() if k in PROFILER} == PROFILER


LEGACY_PROPS = {"cc_rc": "0", "cc_match": "1", "cc_bad_device": "101", "cc_null": "1", "props_rc": "0",
                "props_match": "1", "props_null": "1"}


def test_deprecated_device_queries_answer_like_the_attributes(dataplane, cuda_program):
    """cuDeviceComputeCapability / cuDeviceGetProperties (deprecated, still in the driver: matrixMulDynlinkJIT
    calls them) agree with cuDeviceGetAttribute on the emulator and through the stub (they were NOT_SUPPORTED
    there). 101 = CUDA_ERROR_INVALID_DEVICE, 1 = CUDA_ERROR_INVALID_VALUE."""
    link = ("-L", str(stub_dir()), "-lcuda")   # any libcuda.so.1 to link against; which one runs is the env's
    prog = cuda_program("device_legacy_props", flags=link)
    direct = run_program("device_legacy_props", flags=link)
    assert parse_kv(direct.stdout.decode()) == LEGACY_PROPS, direct.stdout + direct.stderr
    assert kv_of(run_via_stub(prog, dataplane.unix)) == LEGACY_PROPS


def test_clock_ticks_at_the_reported_clock_rate_through_the_stub(dataplane, cuda_program):
    """The GPU worker's device: %clock64 at the clock rate the stub reports (cached attribute)."""
    check_clock_rate(kv_of(run_via_stub(cuda_program("clock_rate"), dataplane.unix)))


def test_a_contexts_end_answers_as_the_driver_documents(dataplane, cuda_program):
    kv = kv_of(run_via_stub(cuda_program("ctx_lifetime", flags=LCUDA), dataplane.unix))
    assert {k: kv.get(k) for k in CTX_LIFETIME} == CTX_LIFETIME
