"""A worker that dies or freezes in the middle of a session, with the scheduler, two workers and `tensorfusion run`
as real processes on loopback (tests/test_worker.py's running_cluster) and a real nvcc program through the stub
(tests/cuda/dp_lost_worker.cu) busy in a kernel or in copies: the program ends with a CUDA error within a bound,
never hangs, and the next run is placed on the live worker (tfscheduler/README.md, Node liveness)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from cudabuild import build_cuda, build_example
from tfclient.scheduler_client import SchedulerClient
from tfworker import gpu_process, limits
from test_cluster_cli import only_allocation, stop, tenant_env, tf
from test_worker import running_cluster, wait_for, workers

CLI = [sys.executable, "-m", "tfclient.cli"]
LOST = "cudaErrorDevicesUnavailable"   # CUDA_ERROR_DEVICE_UNAVAILABLE: stub_c/README.md, A lost worker


def busy_run(env, mode: str):
    """`run -- dp_lost_worker MODE`, once the program is busy; -> (run's process, the allocation's node)."""
    program = str(build_cuda("dp_lost_worker"))
    proc = subprocess.Popen([*CLI, "run", "--vram", "256Mi", "--", program, mode], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line == f"busy {mode}", line + proc.stderr.read() if proc.poll() is not None else line
    time.sleep(0.5)                                   # well inside the kernel or the copies
    with SchedulerClient(env["TF_SCHEDULER"]) as client:
        node = client.get_allocation(only_allocation(env["TF_SCHEDULER"])).node_name
    return proc, node


def ends_with_lost_device(proc, since: float, bound_s: float) -> str:
    """Waits for run to end (at most bound_s after `since`); -> its output, which names the lost device."""
    try:
        out, err = proc.communicate(timeout=max(bound_s - (time.monotonic() - since), 1))
    except subprocess.TimeoutExpired:
        stop(proc)
        pytest.fail(f"the program still runs {bound_s} s after its worker was lost")
    took = time.monotonic() - since
    assert proc.returncode == 1, (proc.returncode, out, err)
    assert f"lost {LOST} in" in out, out + err
    print(f"ended {took:.1f} s after the loss: {out.strip()}")
    return out + err


@pytest.mark.parametrize("mode", ["kernel", "copy"])
@pytest.mark.parametrize("victim", ["daemon", "gpu worker process"])
def test_a_worker_killed_mid_session_ends_the_program_with_a_cuda_error_and_runs_go_elsewhere(tmp_path, victim,
                                                                                               mode):
    """kill -9 of the worker daemon (its GPU worker processes die with it) or of the session's GPU worker process
    alone, while the program waits on a kernel or copies: the program's pending call returns
    cudaErrorDevicesUnavailable within seconds. A dead daemon is reported by run, the scheduler's probe fails, the
    node leaves placement and the next run lands on the other worker; a worker whose daemon lives stays placeable."""
    with running_cluster(tmp_path, ["node-a", "node-b"], scheduler_args=["--node-timeout", "60"]) as (env, address):
        team = tenant_env(env, address, "team-a")
        proc, node = busy_run(team, mode)
        if victim == "daemon":
            workers[node].kill()
        else:
            [pid] = gpu_process.executors_of(limits.worker_tag(str(tmp_path), node))
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        ends_with_lost_device(proc, killed, 10)
        with SchedulerClient(address) as admin:
            nodes = {n.node_name: n.available for n in admin.list_pool().nodes}
        other = ({"node-a", "node-b"} - {node}).pop()
        assert nodes == {node: victim != "daemon", other: True}
        if victim == "daemon":
            r = tf("run", "--vram", "256Mi", "--", str(build_example("vector_add")), env=team, timeout=120)
            assert r.returncode == 0, r.stdout + r.stderr
