"""Asynchronous streams through the client stub -> GPU worker process -> emulated device: the program of
tests/emu/test_emu_streams.py, the same answers (the GPU worker's streams are the emulator's); host functions
and stream callbacks (stub_c/api_hostcalls.c, tfworker/executor/exec_host_calls.c) and per-thread default
streams (stub_c/api_streams.c) as CUDA specifies them, on the emulator directly and through the stub."""
from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import run_via_stub, stub_env, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emu"))
from emu_run import run_program  # noqa: E402
from test_emu_streams import CHECKS, TIMEOUT  # noqa: E402


@pytest.mark.parametrize("mode", list(CHECKS))
def test_stream_work_runs_after_the_call_returns_through_the_stub(dataplane, cuda_program, mode):
    r = run_via_stub(cuda_program("async_streams"), dataplane.unix, mode, timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    CHECKS[mode](parse_kv(r.stdout))


# host_calls.cu: what each mode must print, on the emulator directly and through the stub
HOST_CALL_CHECKS = {
    ("order", "40"): {"streams": "3", "count": "240", "in_order": "1", "other_thread": "1"},
    ("waits",): {"waited": "1"},       # the kernel after a host function saw what the function wrote
    ("blocking",): {"fn_ran": "1", "value": "7"},  # a blocking copy on the legacy stream waited for it
    # a graph launch returns at once although the graph holds a host node (behind a spinning kernel)
    ("graph",): {"ran_before_release": "0", "ran": "2", "other_thread": "1"},
    # refused calls answer INVALID_VALUE and never run; the stream is unharmed
    ("bad",): {"null_fn": "cudaErrorInvalidValue", "null_callback": "cudaErrorInvalidValue",
               "flags": "cudaErrorInvalidValue", "sync": "cudaSuccess", "refused_ran": "0"},
}


@pytest.mark.parametrize("args", list(HOST_CALL_CHECKS), ids="-".join)
def test_host_functions_run_in_stream_order_on_the_emulator(args):
    p = run_program("host_calls", *args, timeout=TIMEOUT)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    assert parse_kv(p.stdout) == HOST_CALL_CHECKS[args]


@pytest.mark.parametrize("args", list(HOST_CALL_CHECKS), ids="-".join)
def test_host_functions_run_in_stream_order_through_the_stub(dataplane, cuda_program, args):
    r = run_via_stub(cuda_program("host_calls"), dataplane.unix, *args, timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert parse_kv(r.stdout) == HOST_CALL_CHECKS[args]


def test_host_functions_keep_stream_order_over_tcp(dataplane, cuda_program):
    """No descriptor travels over TCP: the stub runs the function in the caller after a synchronize of the
    stream (order and results hold; the call waits for the stream's earlier work)."""
    r = run_via_stub(cuda_program("host_calls"), dataplane.tcp, "order", "10", timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert kv["count"] == "60" and kv["in_order"] == "1"


def _pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_client_killed_while_its_host_function_holds_a_stream_ends_the_session(dataplane, cuda_program):
    """cudaLaunchHostFunc returns before its function runs; then the worker's stream waits on the client's
    function and its frame loop on a synchronize of that stream: killing the client must still end the
    session and its GPU worker process (the driver frees its memory)."""
    p = subprocess.Popen([str(cuda_program("host_calls")), "hang"], env=stub_env(dataplane.unix),
                         stdout=subprocess.PIPE, text=True)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a call that waited would never print "returned"
            lines = pool.submit(lambda: {p.stdout.readline().strip() for _ in range(2)})
            try:
                assert lines.result(timeout=20) == {"returned=1", "in_callback=1"}
            except concurrent.futures.TimeoutError:
                p.kill()
                raise
        (info,) = dataplane.sessions().values()
        assert not _pid_gone(info.pid)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        assert wait_until(lambda: dataplane.sessions() == {})
        assert wait_until(lambda: _pid_gone(info.pid))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


PTDS_THREADS = {"ids_differ": "1", "flags": "0,0", "query": "cudaSuccess,cudaSuccess",
                "capture": "cudaSuccess,cudaSuccess", "nodes": "1,1", "values": "11,22"}


def test_each_client_thread_has_its_own_per_thread_stream_through_the_stub(dataplane, cuda_program):
    """Two threads' cudaStreamPerThread: different ids, flags 0, idle queries succeed, and both capture it
    into a graph at the same time (thread-local mode), each graph holding its own thread's kernel."""
    r = run_via_stub(cuda_program("ptds_threads"), dataplane.unix, timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert parse_kv(r.stdout) == PTDS_THREADS


def test_each_thread_has_its_own_per_thread_stream_on_the_emulator():
    """Each host thread's cudaStreamPerThread is a stream of its own (id, flags 0, capturable in
    thread-local mode while the other thread captures its own: CUDA forbids capturing only the legacy stream)."""
    p = run_program("ptds_threads", timeout=TIMEOUT)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    assert parse_kv(p.stdout) == PTDS_THREADS


def test_per_thread_stream_programs_work_after_a_device_reset_through_the_stub(dataplane, cuda_program):
    """--default-stream per-thread: the thread's stream went with the reset context; the stub makes a new one
    in the fresh context instead of sending the gone handle."""
    prog = cuda_program("dp_runtime", flags=("--default-stream", "per-thread"))
    r = run_via_stub(prog, dataplane.unix, 1000, "kernel", "reset", timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("dp_runtime ok 1000")
