"""Asynchronous streams on the emulated device (emu_c/emu_stream_queue.c), as CUDA's "Stream
synchronization behavior" describes them and as a program sees them: tests/cuda/async_streams.cu run on
build/emu/libcuda.so.1 directly. tests/stub/test_streams.py runs the same program through the stub and
checks the same answers with the check_* functions here."""
from __future__ import annotations

import pytest

from emu_run import parse_kv, run_program

CUDARTS = ["static", "shared"]
TIMEOUT = 60  # every mode finishes in well under a second when streams are asynchronous


def check_latch(kv: dict) -> None:
    """UnifiedMemoryPerf's pattern: a kernel spins on page-locked host memory that the host writes only
    after the launch (and more queued work) returned; queries answer NOT_READY while it spins."""
    assert kv.get("launch_returned") == "1"
    assert kv["query"] == "cudaErrorNotReady" and kv["event_query"] == "cudaErrorNotReady"
    assert kv["after_query"] == "cudaSuccess" and kv["after_event_query"] == "cudaSuccess"
    assert kv["value"] == "42"  # the copies and the kernel queued behind the spinning one ran, in order


def check_overlap(kv: dict) -> None:
    assert kv["done"] == "1"  # each stream's kernel ran while the other's was running


def check_waitevent(kv: dict) -> None:
    assert kv["pending"] == "cudaErrorNotReady" and kv["early_value"] == "0"
    assert kv["value"] == "2"  # stream b's kernel ran after stream a's store, not before


def check_callbacks(kv: dict) -> None:
    assert kv["ran_before_release"] == "0"  # queued behind a kernel: not run by the call
    assert kv["order"] == "1,2,3,4"
    assert kv["seen"] == "42"  # the kernel queued before host function 2 had run
    assert kv["other_thread"] == "1"  # never on the thread that queued them
    assert kv["status"] == "cudaSuccess"


def check_legacy(kv: dict) -> None:
    assert kv["nonblocking_ran"] == "1"  # a non-blocking stream does not wait for the NULL stream
    assert kv["null_pending"] == "cudaErrorNotReady"
    assert kv["legacy_waited"] == "1" and kv["legacy_value"] == "1"
    assert kv["blocking_waited"] == "1" and kv["blocking_value"] == "7"


def check_elapsed(kv: dict) -> None:
    assert kv["elapsed_pending"] == "cudaErrorNotReady"
    # the events bracket a kernel the host released 200 ms after queueing it: the time is when it ran
    assert float(kv["elapsed_ms"]) >= 150.0


def check_fault(kv: dict) -> None:
    assert kv["launch"] == "cudaSuccess"  # the fault is the kernel's, found when it runs
    assert kv["sync"] == "cudaErrorIllegalAddress"
    assert kv["after"] == "cudaErrorIllegalAddress"  # sticky


def check_perthread(kv: dict) -> None:
    assert kv == {"b_done": "1", "a_waiting": "1", "a_done": "1"}


def check_shortops(kv: dict) -> None:
    assert kv == {"copy_held": "1", "memset_held": "1", "copy_value": "5", "memset_value": str(0x7F7F7F7F),
                  "legacy_held": "1", "legacy_value": "0"}


CHECKS = {"latch": check_latch, "overlap": check_overlap, "waitevent": check_waitevent,
          "callbacks": check_callbacks, "legacy": check_legacy, "elapsed": check_elapsed, "fault": check_fault,
          "perthread": check_perthread, "shortops": check_shortops}


@pytest.mark.parametrize("mode", list(CHECKS))
def test_stream_work_runs_after_the_call_returns_in_stream_order(mode):
    p = run_program("async_streams", mode, timeout=TIMEOUT)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    CHECKS[mode](parse_kv(p.stdout))


@pytest.mark.parametrize("cudart", CUDARTS)
def test_a_kernel_spinning_on_a_host_flag_set_after_the_launch_finishes(cudart):
    p = run_program("async_streams", "latch", cudart=cudart, timeout=TIMEOUT)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    check_latch(parse_kv(p.stdout))


def test_sync_streams_debug_mode_runs_work_inside_the_call():
    """TF_EMU_SYNC_STREAMS=1 keeps the former model (work runs in the call): a fault is the launch's answer."""
    from emu_run import emu_env
    p = run_program("async_streams", "fault", env=emu_env(TF_EMU_SYNC_STREAMS=1), timeout=TIMEOUT)
    kv = parse_kv(p.stdout)
    assert p.returncode == 0 and kv["launch"] == "cudaErrorIllegalAddress" and kv["sync"] == "cudaErrorIllegalAddress"


@pytest.mark.parametrize("cudart", CUDARTS)
def test_default_stream_per_thread_programs_get_a_stream_per_host_thread(cudart):
    """nvcc --default-stream per-thread: cudart asks cuGetProcAddress for the per-thread default stream
    variants (_ptsz/_ptds), whose stream 0 is the calling thread's own stream."""
    p = run_program("ptds_default_stream", cudart=cudart, flags=("--default-stream", "per-thread"), timeout=TIMEOUT)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    assert parse_kv(p.stdout) == {"b_value": "7", "a_waiting": "1", "a_value": "1"}
