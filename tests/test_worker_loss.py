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


@pytest.mark.parametrize("mode", ["kernel", "copy"])
def test_a_stopped_gpu_worker_process_is_ended_by_its_daemon_and_the_program_gets_a_cuda_error(tmp_path, mode):
    """SIGSTOP of the session's GPU worker process while the program waits on a kernel or copies: nothing on the
    socket tells the program (the process exists, its socket is open), but its daemon sees it stopped and kills
    it after dataplane.STOPPED_LIMIT_S, so the pending call returns cudaErrorDevicesUnavailable. The daemon
    answers its probe: the node stays in placement."""
    from tfworker.dataplane import STOPPED_LIMIT_S
    with running_cluster(tmp_path, ["node-a", "node-b"], scheduler_args=["--node-timeout", "60"]) as (env, address):
        team = tenant_env(env, address, "team-a")
        proc, node = busy_run(team, mode)
        [pid] = gpu_process.executors_of(limits.worker_tag(str(tmp_path), node))
        os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        ends_with_lost_device(proc, stopped, STOPPED_LIMIT_S + 10)
        assert time.monotonic() - stopped >= STOPPED_LIMIT_S - 1   # not before the daemon's limit
        wait_for(lambda: any("stopped (SIGSTOP)" in line for line in workers[node].log_lines), timeout=10,
                 what="the daemon's line about the stopped process")
        with SchedulerClient(address) as admin:
            assert all(n.available for n in admin.list_pool().nodes)


def test_a_stopped_worker_is_reported_after_the_handshake_deadline_and_runs_go_elsewhere(tmp_path):
    """SIGSTOP of a worker daemon within its node timeout: its listen backlog still completes connects, so `run`'s
    start check passes, but the program's hello gets no answer: cuInit fails (no device) after the stub's handshake
    deadline (30 s) instead of hanging, run reports it, the scheduler's probe times out (admin_timeout_s) and the
    node leaves placement; the next run lands on the other worker."""
    with running_cluster(tmp_path, ["node-a", "node-b"], scheduler_args=["--node-timeout", "120"]) as (env, address):
        team = tenant_env(env, address, "team-a")
        program = str(build_example("vector_add"))
        with SchedulerClient(address) as admin:
            probe = admin.allocate(vram=256)          # where the next run goes: stop that worker
            victim = probe.node_name
            admin.release(probe.id)
            workers[victim].send_signal(signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                first = tf("run", "--vram", "256Mi", "--", program, env=team, timeout=90)
                took = time.monotonic() - t0
                nodes = {n.node_name: n.available for n in admin.list_pool().nodes}
                second = tf("run", "--vram", "256Mi", "--", program, env=team, timeout=120)
            finally:
                workers[victim].send_signal(signal.SIGCONT)
        print(f"the run on the stopped worker ended after {took:.1f} s")
        assert first.returncode != 0, first.stdout
        assert "did not answer within 30 s" in first.stderr, first.stderr
        assert 30 <= took < 60
        assert nodes == {victim: False, ({"node-a", "node-b"} - {victim}).pop(): True}
        assert second.returncode == 0, second.stdout + second.stderr


@pytest.mark.parametrize("mode", ["kernel", "copy"])
@pytest.mark.parametrize("frozen", ["daemon", "daemon and gpu worker process"])
def test_a_worker_frozen_mid_session_ends_the_program_once_the_scheduler_ends_the_allocation(tmp_path, frozen, mode):
    """SIGSTOP of the worker daemon, or of the whole worker (daemon and the session's GPU worker process: a frozen
    host), while the program waits on a kernel or copies: nothing on the worker side can close the session, and its
    socket stays open. The scheduler hears no heartbeat for node_timeout_s and ends the allocation LOST; run's next
    lease renewal learns it and writes TF_ALLOCATION_ENDED_FILE, and the program's pending or next call returns
    cudaErrorDevicesUnavailable within a second of that, instead of waiting for a worker that may never run again."""
    with running_cluster(tmp_path, ["node-a", "node-b"],
                         scheduler_args=["--node-timeout", "3", "--lease-ttl", "3"]) as (env, address):
        team = tenant_env(env, address, "team-a")
        proc, node = busy_run(team, mode)
        [pid] = gpu_process.executors_of(limits.worker_tag(str(tmp_path), node))
        stopped = [workers[node].pid] + ([pid] if frozen != "daemon" else [])
        for p in stopped:
            os.kill(p, signal.SIGSTOP)
        try:
            frozen_at = time.monotonic()
            # node timeout 3 s, a renewal every TTL/3 = 1 s, the stub's check every 1 s: 5 s and slack for load
            out = ends_with_lost_device(proc, frozen_at, 30)
            assert "allocation ended under the session" in out, out
        finally:
            for p in stopped:
                os.kill(p, signal.SIGCONT)
