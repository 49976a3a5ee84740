"""Scheduler and worker daemons as separate processes on loopback: two workers register their emulated
GPUs, the second allocation lands on the worker with room, real nvcc programs run through the stub on each,
a bad lease is refused, and a client that dies frees its session."""
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from cudabuild import build_cuda, build_example, parse_kv
from tfclient import native
from tfclient.protos import load
from tfclient.scheduler_client import SchedulerClient

scheduler_pb = load("scheduler_pb2")

CLI = [sys.executable, "-m", "tfclient.cli"]


def start(args, env, ready: str):
    """Starts a CLI service and waits for the line matching ready; returns (process, match)."""
    proc = subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(ready, line)
        if m:
            # keep reading its output: a service whose log pipe fills up blocks (and so do its GPU worker
            # processes, which share its stderr); the lines stay available for failure messages
            proc.log_lines = lines
            threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
            return proc, m
    proc.kill()
    pytest.fail(f"{args[0]} did not start:\n{''.join(lines)}")


TEST_SECRET = b"test-secret"   # running_cluster's TF_SECRET: the tests sign the scheduler's orders with it


def worker_usage(admin: str, worker_id: str):
    """GetUsage of the worker at admin, asked as the scheduler asks it (a "usage" order signed with the node's key)."""
    import grpc
    from tfscheduler import lease as leases
    order = leases.sign_order("usage", "", leases.node_key(TEST_SECRET, worker_id))
    with grpc.insecure_channel(admin) as channel:
        return load("worker_pb2_grpc").WorkerAdminStub(channel).GetUsage(
            load("worker_pb2").GetUsageRequest(auth_token=order), timeout=5)


workers: dict = {}   # node name -> worker process of the running cluster
worker_envs: dict = {}   # node name -> the environment its worker runs with (its worker token)


@contextlib.contextmanager
def running_cluster(tmp_path, nodes, worker_args=(), scheduler_args=(), extra_env=None):
    """One scheduler + a worker per node (1 GiB emulated GPU each); yields (env, scheduler address)."""
    env = dict(os.environ, TF_HOME=str(tmp_path), TF_SECRET="test-secret", TF_EMU_VRAM_MIB="1024",
               **(extra_env or {}))
    env.pop("TF_TOKEN", None)
    saved_token = os.environ.pop("TF_TOKEN", None)
    procs = []
    try:
        sched, m = start(["scheduler", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "s.db"),
                          "--heartbeat-interval", "0.5", "--node-timeout", "2", *scheduler_args], env,
                         r"listening on (\S+:\d+)")
        procs.append(sched)
        address = m.group(1)
        # the test process is this cluster's admin (first admin token, written by the scheduler)
        os.environ["TF_TOKEN"] = (tmp_path / "admin.token").read_text().strip()
        workers.clear()
        worker_envs.clear()
        for node in nodes:
            worker_token = subprocess.run([*CLI, "token", "--scheduler", address, "create", "--role", "worker",
                                           "--node", node], env=env, capture_output=True, text=True, timeout=60,
                                          check=True).stdout.strip()
            w, _ = start(["worker", "--scheduler", address, "--backend", "emu", "--node", node,
                          "--unix", str(tmp_path / f"{node}.sock"), *worker_args],
                         dict(env, TF_WORKER_TOKEN=worker_token), r"registered with")
            procs.append(w)
            workers[node] = w
            worker_envs[node] = dict(env, TF_WORKER_TOKEN=worker_token)
        yield env, address
    finally:
        os.environ.pop("TF_TOKEN", None)
        if saved_token is not None:
            os.environ["TF_TOKEN"] = saved_token
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def cluster(tmp_path):
    with running_cluster(tmp_path, ["node-a", "node-b"]) as c:
        yield c


@pytest.fixture
def one_worker(tmp_path):
    with running_cluster(tmp_path, ["node-a"]) as c:
        yield c


def run_with_lease(alloc, program, env):
    client_env = dict(env, TF_WORKER=f"unix:{alloc.endpoints.unix_path}", TF_LEASE=alloc.lease_token)
    client_env["LD_LIBRARY_PATH"] = str(native.stub_lib_dir())
    return subprocess.run([str(program)], env=client_env, capture_output=True, text=True, timeout=120)


def test_second_allocation_lands_on_the_worker_with_room(cluster):
    env, address = cluster
    program = build_example("vector_add")
    with SchedulerClient(address) as client:
        first = client.allocate(tflops=0.001, vram=768)
        second = client.allocate(tflops=0.001, vram=768)
        assert {first.node_name, second.node_name} == {"node-a", "node-b"}
        for alloc in (first, second):
            r = run_with_lease(alloc, program, env)
            assert r.returncode == 0, r.stdout + r.stderr
            assert "65536 elements correct" in r.stdout
        client.release(first.id)
        client.release(second.id)


def test_worker_refuses_a_forged_lease(cluster):
    env, address = cluster
    program = build_example("vector_add")
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=256)
        forged = alloc.lease_token[:-4] + ("AAAA" if not alloc.lease_token.endswith("AAAA") else "BBBB")
        alloc.lease_token = forged
        r = run_with_lease(alloc, program, env)
        assert r.returncode != 0
        assert "lease" in (r.stdout + r.stderr).lower()
        client.release(alloc.id)


def test_worker_refuses_an_expired_lease_token_while_its_allocation_lives(one_worker):
    """A copied token is good only until it expires: renewal hands out a fresh one, the old one is refused."""
    env, address = one_worker
    program = build_example("vector_add")
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=256, lease_ttl=3)
        old = alloc.lease_token
        deadline = time.time() + 4.0
        while time.time() < deadline:           # the owner keeps the allocation alive
            client.renew(alloc.id)
            time.sleep(0.5)
        assert client.get_allocation(alloc.id).state == scheduler_pb.ALLOCATION_ACTIVE
        r = run_with_lease(alloc, program, env)
        assert r.returncode != 0 and "expired" in (r.stdout + r.stderr), r.stdout + r.stderr
        alloc.lease_token = client.renew(alloc.id).lease_token
        assert alloc.lease_token != old
        r = run_with_lease(alloc, program, env)
        assert r.returncode == 0, r.stdout + r.stderr
        client.release(alloc.id)


def test_released_and_preempted_allocations_tokens_are_refused_at_once(one_worker):
    env, address = one_worker
    program = build_example("vector_add")
    with SchedulerClient(address) as client:
        released = client.allocate(tflops=0.001, vram=256)
        assert client.release(released.id)
        r = run_with_lease(released, program, env)          # its token has ~30 s of validity left
        assert r.returncode != 0 and "released" in (r.stdout + r.stderr), r.stdout + r.stderr
        low = client.allocate(tflops=0.001, vram=768, qos="low")
        critical = client.allocate(tflops=0.001, vram=768, qos="critical")
        assert list(critical.preempted) == [low.id]
        r = run_with_lease(low, program, env)
        assert r.returncode != 0 and "preempted" in (r.stdout + r.stderr), r.stdout + r.stderr
        client.release(critical.id)


def test_a_restarted_worker_still_refuses_a_released_allocations_token(tmp_path):
    """The worker forgets close orders when it restarts; it asks the scheduler the first time an allocation
    connects, so a still-unexpired token of a released allocation stays refused."""
    program = build_example("vector_add")
    with running_cluster(tmp_path, ["node-a"]) as (env, address):
        with SchedulerClient(address) as client:
            alloc = client.allocate(tflops=0.001, vram=256)
            assert client.release(alloc.id)
            old = workers["node-a"]
            old.send_signal(signal.SIGINT)
            old.wait(timeout=20)
            token = client.create_token("worker", node_name="node-a").token
            w, _ = start(["worker", "--scheduler", address, "--backend", "emu", "--node", "node-a",
                          "--unix", str(tmp_path / "node-a.sock")], dict(env, TF_WORKER_TOKEN=token), r"registered with")
            try:
                r = run_with_lease(alloc, program, env)
                assert r.returncode != 0 and "released" in (r.stdout + r.stderr), r.stdout + r.stderr
                live = client.allocate(tflops=0.001, vram=256)
                r = run_with_lease(live, program, env)         # confirmed active: accepted
                assert r.returncode == 0, r.stdout + r.stderr
                client.release(live.id)
            finally:
                w.send_signal(signal.SIGINT)
                w.wait(timeout=20)


def gpu_vram_used(client) -> int:
    return sum(g.usage.vram_used_mib for n in client.list_pool().nodes for g in n.gpus)


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def hold(alloc, env, mib, *extra):
    """Starts dp_hold (driver API program that allocates mib MiB and keeps it) on alloc's worker."""
    program = build_cuda("dp_hold", flags=("-L", str(native.stub_lib_dir()), "-lcuda"))
    client_env = dict(env, TF_WORKER=f"unix:{alloc.endpoints.unix_path}", TF_LEASE=alloc.lease_token,
                      LD_LIBRARY_PATH=str(native.stub_lib_dir()))
    proc = subprocess.Popen([str(program), str(mib), *extra], env=client_env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == f"holding {mib} MiB"
    return proc


def test_a_gpu_worker_process_holds_its_own_session_socket_and_nothing_else_of_the_daemon(one_worker, tmp_path):
    """Two sessions at once: each tf-executor has exactly one socket (its client's), not the other
    session's nor the daemon's listening or gRPC sockets, and no descriptor of the daemon's beyond its log."""
    from tfworker import gpu_process, limits
    env, address = one_worker
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=512)
        procs = [hold(alloc, env, 16), hold(alloc, env, 16)]
        try:
            pids = gpu_process.executors_of(limits.worker_tag(str(tmp_path), "node-a"))
            assert len(pids) == 2
            sockets = []
            for pid in pids:
                targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
                socks = [t for t in targets if t.startswith("socket:")]
                assert len(socks) == 1, (pid, targets)
                sockets += socks
                # stdin (/dev/null), the console's two pipes (each twice: fd 1/2 and its read end) and the log;
                # besides them only the emulated device's memory (one memfd per allocation, for IPC)
                assert len([t for t in targets if not t.startswith("/memfd:tf-emu")]) <= 7, (pid, targets)
            assert sockets[0] != sockets[1]
        finally:
            for p in procs:
                p.kill()
                p.wait()
        client.release(alloc.id)


def test_a_killed_gpu_worker_process_fails_its_client_and_the_worker_logs_why(one_worker, tmp_path):
    """The operator's side of a session that dies: the client gets a CUDA error, and the worker's log (at the
    default TF_LOG_LEVEL, INFO) has one line naming the session and how its GPU worker process ended."""
    from tfworker import gpu_process, limits
    env, address = one_worker
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=512)
        proc = hold(alloc, env, 16, "wait")
        [pid] = gpu_process.executors_of(limits.worker_tag(str(tmp_path), "node-a"))
        os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate("go\n", timeout=60)
        assert "after close: CUDA_ERROR_DEVICE_UNAVAILABLE" in out, out
        log = workers["node-a"].log_lines
        wait_for(lambda: any("GPU worker process killed by signal 9" in line for line in log),
                 what="the worker's log line")
        line = next(line for line in log if "killed by signal 9" in line)
        assert "tfworker INFO session alloc-" in line, line
        client.release(alloc.id)


@pytest.mark.parametrize("variable,value,says", [
    ("TF_EMU_ENGINE", "fast", "the emulated device does not start: tf-emu: TF_EMU_ENGINE=fast is not accepted"),
    ("TF_EMU_VRAM_MIB", "16G", "the emulated device does not start: tf-emu: TF_EMU_VRAM_MIB=16G is not accepted"),
    ("TF_GPU_TFLOPS", "lots", "TF_GPU_TFLOPS: TFLOPS 'lots' is not a number"),
    ("TF_LOG_LEVEL", "loud", "TF_LOG_LEVEL='loud' is not a log level: use DEBUG, INFO, WARNING, ERROR"),
])
def test_a_worker_with_a_setting_it_cannot_use_stops_at_start_with_one_line(tmp_path, variable, value, says):
    """A bad environment value stops the worker before it registers (rather than failing every session
    later): exit code 1, one line naming the variable; the scheduler is never dialled."""
    env = dict(os.environ, TF_HOME=str(tmp_path), TF_WORKER_TOKEN="unused", **{variable: value})
    r = subprocess.run([*CLI, "worker", "--scheduler", "127.0.0.1:1", "--backend", "emu"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tensorfusion worker: {says}"), r.stderr


def test_killed_client_frees_its_memory_in_the_pool_view(one_worker):
    env, address = one_worker
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=512)
        proc = hold(alloc, env, 300)
        wait_for(lambda: gpu_vram_used(client) >= 300, what="heartbeat to report 300 MiB used")
        proc.kill()
        proc.wait()
        wait_for(lambda: gpu_vram_used(client) == 0, what="usage back to 0 after the client died")
        client.release(alloc.id)


def test_higher_qos_request_preempts_and_the_worker_closes_the_session(one_worker):
    env, address = one_worker
    with SchedulerClient(address) as client:
        low = client.allocate(tflops=0.001, vram=768, qos="low")
        proc = hold(low, env, 256, "wait")
        critical = client.allocate(tflops=0.001, vram=768, qos="critical")
        assert list(critical.preempted) == [low.id]
        assert critical.node_name == "node-a"
        # The preempted client's next call fails instead of running on a GPU it no longer owns.
        time.sleep(1.0)
        out, _ = proc.communicate("go\n", timeout=30)
        assert "after close:" in out and "CUDA_SUCCESS" not in out, out
        assert client.get_allocation(low.id).state == scheduler_pb.ALLOCATION_PREEMPTED
        client.release(critical.id)


def test_live_limit_change_reaches_the_running_sessions_limiter(one_worker):
    env, address = one_worker
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=512)
        proc = hold(alloc, env, 64)
        client.set_limits(alloc.id, vram=900, tflops=0.004)
        usage = worker_usage(alloc.endpoints.admin, alloc.worker_id)
        [session] = [s for s in usage.sessions if s.allocation_id == alloc.id]
        assert session.limits.vram_mib == 900          # read back from the session's shared-memory region
        assert abs(session.limits.tflops - 0.004) < 1e-9
        assert session.pid > 0
        proc.kill()
        proc.wait()
        client.release(alloc.id)


def test_a_killed_worker_is_noticed_and_its_allocations_reported_lost(cluster):
    env, address = cluster
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=256)
        victim = workers[alloc.node_name]
        victim.kill()
        victim.wait()
        node_available = lambda: {n.node_name: n.available for n in client.list_pool().nodes}[alloc.node_name]
        wait_for(lambda: not node_available(), timeout=10, what="the dead worker's node to become unavailable")
        assert client.get_allocation(alloc.id).state == scheduler_pb.ALLOCATION_LOST
        # New work goes to the surviving worker.
        again = client.allocate(tflops=0.001, vram=256)
        assert again.node_name != alloc.node_name
        client.release(again.id)


def test_worker_refuses_a_close_order_not_signed_by_the_scheduler(one_worker):
    import grpc
    env, address = one_worker
    worker_rpc, worker_pb = load("worker_pb2_grpc"), load("worker_pb2")
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=256)
        proc = hold(alloc, env, 32)
        with grpc.insecure_channel(alloc.endpoints.admin) as channel:
            admin = worker_rpc.WorkerAdminStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                admin.CloseSession(worker_pb.CloseSessionRequest(allocation_id=alloc.id, reason="forged",
                                                                 auth_token="bogus.token"), timeout=5)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert proc.poll() is None                      # the session is still there
        proc.kill()
        proc.wait()
        client.release(alloc.id)


def test_worker_refuses_limit_orders_not_signed_by_the_scheduler(one_worker):
    """Any local process can reach the admin port: an empty, forged, tenant-lease-backed, tampered or
    replayed SetSessionLimits must not raise a session's VRAM cap."""
    import grpc
    from tfscheduler import lease as leases
    env, address = one_worker
    worker_rpc, worker_pb, common_pb = load("worker_pb2_grpc"), load("worker_pb2"), load("common_pb2")
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=256)
        secret = leases.node_key(env["TF_SECRET"].encode(), alloc.worker_id)   # what the scheduler signs with
        proc = hold(alloc, env, 32)
        big = common_pb.Resources(tflops=1.0, vram_mib=1024)
        good = leases.sign_order("limits", alloc.id, secret, tflops=1.0, vram_mib=1024)
        attempts = {
            "empty": worker_pb.SetSessionLimitsRequest(allocation_id=alloc.id, limits=big),
            "tenant's own lease token": worker_pb.SetSessionLimitsRequest(allocation_id=alloc.id, limits=big,
                                                                           lease_token=alloc.lease_token),
            "forged": worker_pb.SetSessionLimitsRequest(allocation_id=alloc.id, limits=big,
                                                        auth_token=leases.sign_order("limits", alloc.id, b"guess",
                                                                                     tflops=1.0, vram_mib=1024)),
            "signed with the scheduler's secret, not this node's key": worker_pb.SetSessionLimitsRequest(
                allocation_id=alloc.id, limits=big, auth_token=leases.sign_order(
                    "limits", alloc.id, env["TF_SECRET"].encode(), tflops=1.0, vram_mib=1024)),
            "signed with another node's key": worker_pb.SetSessionLimitsRequest(
                allocation_id=alloc.id, limits=big, auth_token=leases.sign_order(
                    "limits", alloc.id, leases.node_key(env["TF_SECRET"].encode(), "node-b"),
                    tflops=1.0, vram_mib=1024)),
            "close order reused": worker_pb.SetSessionLimitsRequest(
                allocation_id=alloc.id, limits=big, auth_token=leases.sign_order("close", alloc.id, secret)),
            "signed for smaller limits": worker_pb.SetSessionLimitsRequest(
                allocation_id=alloc.id, limits=big,
                auth_token=leases.sign_order("limits", alloc.id, secret, tflops=1.0, vram_mib=300)),
        }
        with grpc.insecure_channel(alloc.endpoints.admin) as channel:
            admin = worker_rpc.WorkerAdminStub(channel)
            for what, request in attempts.items():
                with pytest.raises(grpc.RpcError) as err:
                    admin.SetSessionLimits(request, timeout=5)
                assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, what
                assert "limits order rejected" in err.value.details(), what
            usage = worker_usage(alloc.endpoints.admin, alloc.worker_id)
            [session] = [s for s in usage.sessions if s.allocation_id == alloc.id]
            assert session.limits.vram_mib == 256                 # unchanged
            # the scheduler's own order applies once; the same order replayed is refused
            signed = worker_pb.SetSessionLimitsRequest(allocation_id=alloc.id, limits=big, auth_token=good)
            assert admin.SetSessionLimits(signed, timeout=5).applied
            with pytest.raises(grpc.RpcError) as err:
                admin.SetSessionLimits(signed, timeout=5)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "replayed" in err.value.details()
        proc.kill()
        proc.wait()
        client.release(alloc.id)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_worker_exports_prometheus_metrics_of_its_sessions(tmp_path):
    port = free_port()
    with running_cluster(tmp_path, ["node-a"], worker_args=["--metrics-port", str(port)]) as (env, address):
        with SchedulerClient(address) as client:
            alloc = client.allocate(tflops=0.001, vram=256)
            proc = hold(alloc, env, 100)
            vram_lines = lambda: [line for line in scrape(port).splitlines()
                                  if line.startswith("tensorfusion_gpu_vram_used_mib{")]
            wait_for(lambda: any(line.endswith(" 100.0") for line in vram_lines()), what="metrics to show 100 MiB")
            assert 'tensorfusion_worker_sessions{worker="' in scrape(port)
            # per GPU: its size and how busy it is (a ratio of its TFLOPS)
            per_gpu = {ln.split("{")[0]: float(ln.rsplit(" ", 1)[1]) for ln in scrape(port).splitlines()
                       if ln.startswith("tensorfusion_gpu_")}
            assert per_gpu["tensorfusion_gpu_vram_total_mib"] > 0 and per_gpu["tensorfusion_gpu_tflops_capacity"] > 0
            assert 0.0 <= per_gpu["tensorfusion_gpu_utilization"] <= 1.0, per_gpu
            # per allocation: usage against the cap, and a refusal over it counted
            over, line = hold_attempt(alloc, env, 200)
            over.wait()
            assert line == "FAIL setup CUDA_ERROR_OUT_OF_MEMORY", line
            per_alloc = {ln.split("{")[0]: float(ln.rsplit(" ", 1)[1]) for ln in scrape(port).splitlines()
                         if ln.startswith("tensorfusion_allocation_") and f'allocation="{alloc.id}"' in ln}
            assert per_alloc["tensorfusion_allocation_vram_used_mib"] == 100.0, per_alloc
            assert per_alloc["tensorfusion_allocation_vram_limit_mib"] == 256.0, per_alloc
            assert per_alloc["tensorfusion_allocation_oom_refusals_total"] == 1.0, per_alloc
            assert "tensorfusion_allocation_throttled_seconds_total" in per_alloc
            proc.kill()
            proc.wait()
            wait_for(lambda: all(line.endswith(" 0.0") for line in vram_lines()), what="metrics back to 0")
            client.release(alloc.id)


def scrape(port: int) -> str:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def test_vram_cap_of_the_lease_holds_through_the_remote_stub(one_worker):
    """The whole path: lease limits -> worker -> limiter in the GPU worker process -> answers through the stub."""
    env, address = one_worker
    program = build_cuda("lim_vram")
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=256, vram_limit=320)
        client_env = dict(env, TF_WORKER=f"unix:{alloc.endpoints.unix_path}", TF_LEASE=alloc.lease_token,
                          LD_LIBRARY_PATH=str(native.stub_lib_dir()))
        r = subprocess.run([str(program), "64"], env=client_env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        kv = parse_kv(r.stdout)
        assert int(kv["info_total"]) == 320 << 20            # the limit, not the request or the device
        assert kv["filled"] == "5"                           # 5 x 64 MiB fit under 320 MiB, the 6th does not
        assert kv["fill_error"] == "cudaErrorMemoryAllocation"
        assert kv["realloc_after_free"] == "ok"
        assert int(kv["info_free_end"]) == 320 << 20
        client.release(alloc.id)


def executors_of(parent_pid: int) -> set[int]:
    """Live tf-executor processes whose parent is parent_pid (zombies count as gone)."""
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if comm == "tf-executor" and int(ppid) == parent_pid and state != "Z":
            out.add(int(d))
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killed_client_with_a_running_kernel_ends_its_session(one_worker):
    """kill -9 of a client whose kernel never ends: its executor exits within seconds, the pool shows the
    memory free again, and the worker stops renewing the allocation's lease."""
    env, address = one_worker
    program = build_cuda("dp_endless")
    worker = workers["node-a"]
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=512)
        client_env = dict(env, TF_WORKER=f"unix:{alloc.endpoints.unix_path}", TF_LEASE=alloc.lease_token,
                          LD_LIBRARY_PATH=str(native.stub_lib_dir()))
        proc = subprocess.Popen([str(program), "200"], env=client_env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout.readline().strip() == "running 200 MiB"
        wait_for(lambda: gpu_vram_used(client) >= 200, what="heartbeat to report 200 MiB used")
        pids = executors_of(worker.pid)
        assert len(pids) == 1
        time.sleep(1.0)                                   # the kernel runs; the synchronize waits
        assert proc.poll() is None
        proc.kill()
        proc.wait()
        t0 = time.time()
        wait_for(lambda: not any(alive(p) for p in pids), timeout=5, what="the executor to exit")
        assert time.time() - t0 < 5
        wait_for(lambda: gpu_vram_used(client) == 0, what="usage back to 0 after the client died")
        wait_for(lambda: client.get_allocation(alloc.id).used.vram_mib == 0,
                 what="the allocation's own usage back to 0 too")
        first = client.get_allocation(alloc.id).lease_expires_at
        time.sleep(1.5)                                   # three heartbeats
        assert client.get_allocation(alloc.id).lease_expires_at == first, "the worker still renews the lease"
        client.release(alloc.id)


def test_a_restarted_worker_reaps_what_its_previous_life_left_behind(tmp_path):
    """kill -9 of the worker daemon leaves its limiter regions (and any executor not yet dead) behind; the
    next daemon with the same TF_HOME and node removes them before serving, and nothing of another's."""
    from tfworker import gpu_process, limits
    with running_cluster(tmp_path, ["node-a"]) as (env, address):
        tag = limits.worker_tag(str(tmp_path), "node-a")
        foreign = limits.SessionLimits.create(f"{limits.worker_tag(str(tmp_path), 'node-b')}-alloc-x-1")
        restarted = None
        try:
            with SchedulerClient(address) as client:
                alloc = client.allocate(tflops=0.001, vram=512)
                proc = hold(alloc, env, 64)
                assert len(limits.regions_of(tag)) == 1
                assert len(gpu_process.executors_of(tag)) == 1
                old = workers["node-a"]
                old.kill()
                old.wait()
                proc.kill()
                proc.wait()
                assert limits.regions_of(tag), "the killed daemon's region should still be there"
                restarted, _ = start(["worker", "--scheduler", address, "--backend", "emu", "--node", "node-a",
                                      "--unix", str(tmp_path / "node-a.sock")], worker_envs["node-a"],
                                     r"registered with")
                assert limits.regions_of(tag) == []
                assert gpu_process.executors_of(tag) == []
                assert os.path.exists(foreign.path)          # another daemon's region is not ours to reap
                # and the new life serves
                again = client.allocate(tflops=0.001, vram=256)
                r = run_with_lease(again, build_example("vector_add"), env)
                assert r.returncode == 0, r.stdout + r.stderr
                client.release(again.id)
        finally:
            foreign.close()
            if restarted is not None:
                restarted.send_signal(signal.SIGINT)
                try:
                    restarted.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    restarted.kill()


def test_a_second_worker_daemon_of_the_same_node_and_home_does_not_start(tmp_path):
    """The scheduler keeps one registration per node. A second live daemon of the same TF_HOME and node (a
    `tensorfusion worker` next to `tensorfusion up`, which finds the embedded worker token) took over the node's
    endpoints while the first kept heartbeating it alive: once either stopped, every session of the node went to a
    dead socket. It now stops at start with one line, and the first keeps serving."""
    with running_cluster(tmp_path, ["node-a"]) as (env, address):
        r = subprocess.run([*CLI, "worker", "--scheduler", address, "--backend", "emu", "--node", "node-a",
                            "--unix", str(tmp_path / "node-a-second.sock")], env=worker_envs["node-a"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r.stderr
        assert r.stderr.startswith(f"tensorfusion worker: another worker daemon with TF_HOME={tmp_path} and node "
                                   f"node-a is running"), r.stderr
        assert not (tmp_path / "node-a-second.sock").exists()
        with SchedulerClient(address) as client:
            [node] = client.list_pool().nodes
            assert node.endpoints.unix_path == str(tmp_path / "node-a.sock")
            alloc = client.allocate(tflops=0.001, vram=256)
            r = run_with_lease(alloc, build_example("vector_add"), env)
            assert r.returncode == 0, r.stdout + r.stderr
            client.release(alloc.id)


def test_a_worker_whose_token_was_revoked_is_refused_and_serves_no_new_session(tmp_path):
    """Revoking a worker's token: the scheduler refuses its heartbeats with a status naming the token and what to
    do (it used to be "unknown, revoked or malformed") and places nothing more on its node; the worker logs one
    line saying why (not one per heartbeat) and serves no new session, not even of an allocation it had already
    confirmed (it used to, for as long as its node was not timed out)."""
    from tfclient.errors import NoCapacity, Unauthenticated
    with running_cluster(tmp_path, ["node-a"], scheduler_args=["--node-timeout", "30"]) as (env, address):
        program = build_example("vector_add")
        with SchedulerClient(address) as client:
            alloc = client.allocate(tflops=0.001, vram=256)
            r = run_with_lease(alloc, program, env)
            assert r.returncode == 0, r.stdout + r.stderr           # confirmed on the worker
            [worker_token] = [t for t in client.list_tokens() if t.node_name == "node-a"]
            assert client.revoke_token(worker_token.id)
            [node] = client.list_pool().nodes
            assert not node.available                               # at once, not after the node timeout
            with pytest.raises(NoCapacity):
                client.allocate(tflops=0.001, vram=256)
        with SchedulerClient(address, token=worker_envs["node-a"]["TF_WORKER_TOKEN"]) as revoked:
            with pytest.raises(Unauthenticated, match=f"^the worker token {worker_token.id} of node 'node-a' was "
                                                      f"revoked at .* UTC: an admin makes a new one "
                                                      f"\\(`tensorfusion token create --role worker --node node-a`\\)"):
                revoked.heartbeat("node-a")
        refusal = "the scheduler refuses this worker, which serves no new sessions until it accepts it again: " \
                  f"UNAUTHENTICATED: the worker token {worker_token.id} of node 'node-a' was revoked at "
        wait_for(lambda: any(refusal in line for line in workers["node-a"].log_lines),
                 what="the worker's log line naming the revoked token")
        time.sleep(2.0)                                             # four more refused heartbeats
        assert sum(refusal in line for line in workers["node-a"].log_lines) == 1, workers["node-a"].log_lines
        assert not any("heartbeat to" in line for line in workers["node-a"].log_lines)
        r = run_with_lease(alloc, program, env)
        assert r.returncode != 0 and "65536 elements correct" not in r.stdout, r.stdout + r.stderr
        assert "tf-stub: worker refused the session (800): this worker serves no new sessions: the scheduler " \
               f"refuses it (UNAUTHENTICATED: the worker token {worker_token.id} of node 'node-a' was revoked" in \
               r.stderr, r.stderr


def test_a_second_worker_with_a_live_workers_node_name_is_refused_and_a_restart_is_not(tmp_path):
    """Two hosts started with the same node name (here: another TF_HOME, the first one's worker token copied):
    the second used to take the first's registration over. A node name is an identity: the second stops at start
    with one line naming the node and what to change, the first keeps serving; the first worker restarted (same
    TF_HOME: the same instance) registers again at once, well within the node timeout."""
    with running_cluster(tmp_path, ["node-a"], scheduler_args=["--node-timeout", "30"]) as (env, address):
        other_host = tmp_path / "other-host"
        other_host.mkdir()
        r = subprocess.run([*CLI, "worker", "--scheduler", address, "--backend", "emu", "--node", "node-a",
                            "--unix", str(other_host / "w.sock")],
                           env=dict(worker_envs["node-a"], TF_HOME=str(other_host)),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith(f"tensorfusion worker: scheduler {address} refused registration: node 'node-a' "
                                   f"is registered by another live worker (admin 127.0.0.1:"), r.stderr
        assert "start this worker with another --node name (and a worker token for it), or stop the other " \
               "one" in r.stderr, r.stderr
        program = build_example("vector_add")
        with SchedulerClient(address) as client:
            [node] = client.list_pool().nodes
            assert node.available and node.endpoints.unix_path == str(tmp_path / "node-a.sock")
            alloc = client.allocate(tflops=0.001, vram=256)
            r = run_with_lease(alloc, program, env)
            assert r.returncode == 0, r.stdout + r.stderr
            client.release(alloc.id)
            workers["node-a"].kill()
            workers["node-a"].wait()
            killed = time.monotonic()
            restarted, _ = start(["worker", "--scheduler", address, "--backend", "emu", "--node", "node-a",
                                  "--unix", str(tmp_path / "node-a.sock")], worker_envs["node-a"], r"registered with")
            try:
                assert time.monotonic() - killed < 30
                again = client.allocate(tflops=0.001, vram=256)
                r = run_with_lease(again, program, env)
                assert r.returncode == 0, r.stdout + r.stderr
            finally:
                restarted.send_signal(signal.SIGINT)
                restarted.wait(timeout=20)


def hold_attempt(alloc, env, mib):
    """Starts dp_hold for mib MiB; returns (process, first line): "holding <mib> MiB" or "FAIL setup <error>"."""
    program = build_cuda("dp_hold", flags=("-L", str(native.stub_lib_dir()), "-lcuda"))
    client_env = dict(env, TF_WORKER=f"unix:{alloc.endpoints.unix_path}", TF_LEASE=alloc.lease_token,
                      LD_LIBRARY_PATH=str(native.stub_lib_dir()))
    proc = subprocess.Popen([str(program), str(mib)], env=client_env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, proc.stdout.readline().strip()


def test_processes_of_one_allocation_share_its_vram_cap(one_worker):
    """Four processes on one 256 MiB vGPU, 80 MiB each: three fit, the fourth gets CUDA_ERROR_OUT_OF_MEMORY
    (the cap belongs to the allocation, not to each process); the pool shows the allocation's total; a
    holder killed with -9 gives its 80 MiB back and a new process fits again."""
    env, address = one_worker
    with SchedulerClient(address) as client:
        alloc = client.allocate(tflops=0.001, vram=256)
        holders = []
        try:
            for _ in range(3):
                proc, line = hold_attempt(alloc, env, 80)
                holders.append(proc)
                assert line == "holding 80 MiB"
            proc, line = hold_attempt(alloc, env, 80)
            holders.append(proc)
            assert line == "FAIL setup CUDA_ERROR_OUT_OF_MEMORY"
            proc.wait(timeout=30)
            wait_for(lambda: gpu_vram_used(client) == 240, what="the pool to show the allocation's 240 MiB")
            wait_for(lambda: client.get_allocation(alloc.id).used.vram_mib == 240,
                     what="the allocation's own usage: its three processes together")
            victim = holders[0]
            victim.kill()
            victim.wait()
            wait_for(lambda: gpu_vram_used(client) == 160, what="the killed holder's 80 MiB given back")
            proc, line = hold_attempt(alloc, env, 80)
            holders.append(proc)
            assert line == "holding 80 MiB"
        finally:
            for p in holders:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        wait_for(lambda: gpu_vram_used(client) == 0, what="usage back to 0")
        client.release(alloc.id)


def test_run_vram_cap_holds_for_all_processes_of_the_command(one_worker, tmp_path):
    """The issue's reproduction: `tensorfusion run --vram 256Mi -- sh -c 'hold & hold & hold & hold'`
    through the scheduler and the worker: 80 MiB each, three fit, the fourth is refused."""
    env, address = one_worker
    hold = build_cuda("dp_hold", flags=("-L", str(native.stub_lib_dir()), "-lcuda"))
    out = tmp_path / "holds.out"
    script = (f"for i in 1 2 3 4; do {hold} 80 >> {out} & done; "
              f"for t in $(seq 600); do [ $(wc -l < {out}) -ge 4 ] && break; sleep 0.1; done; "
              f"for p in $(jobs -p); do kill $p 2>/dev/null; done; wait; cat {out}")
    r = subprocess.run([*CLI, "run", "--scheduler", address, "--vram", "256Mi", "--tflops", "0.001", "--",
                        "bash", "-c", script], env=env, capture_output=True, text=True, timeout=180)
    lines = sorted(line for line in r.stdout.splitlines() if line.strip())
    assert lines == ["FAIL setup CUDA_ERROR_OUT_OF_MEMORY"] + ["holding 80 MiB"] * 3, \
        r.stdout + r.stderr + "\nworker log:\n" + "".join(workers["node-a"].log_lines[-60:])


def test_workload_using_more_compute_than_its_limit_gets_a_raised_limit_live(tmp_path):
    """Autoscaling end to end (seed 004): a workload with autoSetResources enabled for TFLOPS runs a busy
    kernel loop at its 2-TFLOPS limit; the worker's heartbeats feed the scheduler's histogram, the autoscale
    loop recommends more, and the new limit lands in the running session's limiter region (no restart)."""
    cfg = tmp_path / "sched.toml"
    cfg.write_text("autoscale_interval_s = 1.0\nvram_peak_interval_s = 2.0\n")
    # the emulated GPU counts as a 10-TFLOPS device, so 2 TFLOPS is a 20% duty cycle. The kernel is long
    # against a launch's round trip, which on a loaded host takes tens of ms (short kernels then cannot use
    # 20% of the device, and nothing asks for more), and compiled before its first launch (TF_EMU_JIT_SYNC=1:
    # no interpreted launches whose cost misleads the limiter for seconds)
    with running_cluster(tmp_path, ["node-a"], scheduler_args=["--config", str(cfg)],
                         extra_env={"TF_GPU_TFLOPS": "10", "TF_EMU_JIT_SYNC": "1"}) as (env, address):
        with SchedulerClient(address) as client:
            client.apply_workload({
                "name": "busy", "resources": {"requests": {"tflops": "1", "vram": "256Mi"},
                                              "limits": {"tflops": "2", "vram": "512Mi"}},
                "autoScalingConfig": {"autoSetResources": {"enable": True, "targetResource": "tflops",
                                                           "confidenceInterval": "10s"}}})
            alloc = client.allocate(workload="busy", lease_ttl=120)
            assert (alloc.requests.tflops, alloc.limits.tflops) == (1, 2)
            program = build_cuda("lim_busy")
            client_env = dict(env, TF_WORKER=f"unix:{alloc.endpoints.unix_path}", TF_LEASE=alloc.lease_token,
                              LD_LIBRARY_PATH=str(native.stub_lib_dir()))
            proc = subprocess.Popen([str(program), "60", "2000000"], env=client_env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            try:
                def session():
                    usage = worker_usage(alloc.endpoints.admin, alloc.worker_id)
                    return next((s for s in usage.sessions if s.allocation_id == alloc.id), None)

                region_limit = lambda: (s := session()) and s.limits.tflops or 0.0
                wait_for(lambda: region_limit() == 2.0, timeout=30,
                         what="the session's region with its 2-TFLOPS limit")
                # the condition as the loop writes it each tick: read while it names the TFLOPS step (a later
                # tick may name only VRAM, which is recommended too but not applied: the target is TFLOPS)
                seen = []

                def tflops_scaled_up() -> bool:
                    w = client.get_workload("busy")
                    cond = next((c for c in w.status.conditions if c.type == "RecommendationProvided"), None)
                    if cond is not None and "TFLOPS scaled up" in cond.message:
                        seen.append(cond)
                    return bool(seen)
                wait_for(tflops_scaled_up, timeout=45, what="a TFLOPS scale-up in the workload's condition")
                wait_for(lambda: region_limit() > 2.0, timeout=45, what="a raised TFLOPS limit in the region")
                # and the throughput follows: the session now uses more than its old limit allowed
                wait_for(lambda: (s := session()) is not None and s.tflops_used > 2.0 * 1.05, timeout=30,
                         what="measured TFLOPS above the old 2-TFLOPS limit")
                assert proc.poll() is None, "the session was restarted or ended: " + (proc.stdout.read() or "")
                w = client.get_workload("busy")
                cond = seen[0]
                assert (cond.status, cond.reason) == ("True", "OutOfEstimatedBound")
                # the request it scaled from: the original 1 TFLOPS, or an earlier raise of it when the loop
                # already stepped twice before this read (a fast engine reaches each new limit within a tick)
                m = re.match(r"TFLOPS scaled up due to \(([0-9.]+)\) below lower bound \(([0-9.]+)\)", cond.message)
                assert m and 1 <= float(m.group(1)) < float(m.group(2)), cond.message
                now = client.get_allocation(alloc.id)
                assert now.limits.tflops == pytest.approx(region_limit()) and now.limits.tflops > 2
                assert now.limits.vram_mib == 512                       # target tflops only
                assert w.status.applied_recommended_replicas == 1
            finally:
                proc.kill()
                proc.wait()
            client.release(alloc.id)
