"""What a user of a cluster meets through the `tensorfusion` CLI, with the scheduler and workers as separate
processes on loopback (tests/test_worker.py's running_cluster): `limits` changes a running program's limits
(owner tenant or admin only); `run --gpus N` gives the command N devices of one worker, which answer per device as
two GPUs do (multi_device.cu); a worker killed with -9
gets no more `run`s long before its node timeout; a `run` killed with -9 takes its command and its vGPU with it."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cudabuild import build_cuda, build_example
from tfclient.scheduler_client import SchedulerClient
from tfclient import native
from tfclient.protos import load
from test_worker import alive, running_cluster, wait_for, worker_usage, workers

CLI = [sys.executable, "-m", "tfclient.cli"]
scheduler_pb = load("scheduler_pb2")


def tf(*args, env, timeout=60):
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def tenant_env(env, address, namespace):
    """env with a fresh tenant token of namespace (made by the test's admin) and the scheduler's address."""
    token = tf("token", "--scheduler", address, "create", "--role", "tenant", "--namespace", namespace, env=env)
    assert token.returncode == 0, token.stderr
    return dict(env, TF_TOKEN=token.stdout.strip(), TF_SCHEDULER=address)


def start_run(env, *args):
    """`tensorfusion run ARGS` with pipes (stdin for programs that take steps)."""
    return subprocess.Popen([*CLI, "run", *args], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def only_allocation(address) -> str:
    """The id of the one active allocation (the test's admin token sees every namespace)."""
    with SchedulerClient(address) as client:
        found = []
        wait_for(lambda: found.extend(a.id for a in client.list_pool(include_allocations=True).allocations)
                 or found, timeout=60, what="the run's allocation")
    [aid] = found
    return aid


def stop(proc) -> None:
    """Ends a started `run` as Ctrl-C would not: SIGTERM (it kills its command and releases the vGPU)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def step(proc, line: str) -> str:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def session_of(address, aid):
    """The worker's view of aid's session (GetUsage): its limits as in its limiter region, its usage."""
    with SchedulerClient(address) as client:
        alloc = client.get_allocation(aid)
    usage = worker_usage(alloc.endpoints.admin, alloc.worker_id)
    return next((s for s in usage.sessions if s.allocation_id == aid), None)


def test_limits_lowers_a_running_programs_vram_cap_and_another_tenant_is_refused(tmp_path):
    with running_cluster(tmp_path, ["node-a"]) as (env, address):
        team_a, team_b = tenant_env(env, address, "team-a"), tenant_env(env, address, "team-b")
        proc = start_run(team_a, "--vram", "64Mi", "--vram-limit", "512Mi", "--", str(build_cuda("lim_vram_steps")))
        try:
            assert step(proc, "a 200") == "alloc=ok"
            aid = only_allocation(address)
            refused = tf("limits", aid, "--vram-limit", "128Mi", env=team_b)
            assert refused.returncode == 1 and refused.stdout == ""
            assert refused.stderr.strip() == (f"tensorfusion limits: allocation {aid} belongs to namespace "
                                              f"'team-a'; your token is for namespace 'team-b'")
            assert step(proc, "a 16") == "alloc=ok"            # the refused change changed nothing
            lowered = tf("limits", aid, "--vram-limit", "128Mi", env=team_a)
            assert lowered.returncode == 0, lowered.stderr
            assert lowered.stdout.strip() == (f"allocation {aid}: limits 0 TFLOPS, 128Mi per GPU "
                                              f"(requests 0 TFLOPS, 64Mi)")
            assert step(proc, "a 16") == "alloc=cudaErrorMemoryAllocation"   # 216 MiB held, 128 allowed
            raised = tf("limits", aid, "--vram-limit", "1Gi", env=dict(env, TF_SCHEDULER=address))  # the admin
            assert raised.returncode == 0, raised.stderr
            assert step(proc, "a 16") == "alloc=ok"
            below = tf("limits", aid, "--vram-limit", "32Mi", env=team_a)
            assert below.returncode == 1
            assert "vram limit 32 MiB is below the request 64 MiB" in below.stderr
            proc.stdin.write("q\n")
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0, proc.stderr.read()
        finally:
            stop(proc)


@pytest.mark.parametrize("flags, says", [
    ((), "nothing to change: give --tflops-limit and/or --vram-limit"),
    (("--vram-limit", "0"), "--vram-limit 0: must be above 0 (omit --vram-limit to keep the current one)"),
    (("--tflops-limit", "lots"), "TFLOPS 'lots' is not a number"),
])
def test_limits_refuses_bad_quantities_in_one_line_before_dialing(tmp_path, flags, says):
    import os
    env = dict(os.environ, TF_HOME=str(tmp_path), TF_SCHEDULER="127.0.0.1:9")   # nothing listens there
    r = tf("limits", "alloc-x", *flags, env=env)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("tensorfusion limits: ") and says in r.stderr, r.stderr


def test_limits_raises_a_running_programs_compute_share(tmp_path):
    # the emulated GPU counts as 10 TFLOPS: a 1-TFLOPS limit is a 10% duty cycle; the kernel is long against a
    # launch's round trip and compiled before its first launch (TF_EMU_JIT_SYNC=1), as in test_worker's
    # autoscaling test
    with running_cluster(tmp_path, ["node-a"], extra_env={"TF_GPU_TFLOPS": "10", "TF_EMU_JIT_SYNC": "1"}) \
            as (env, address):
        team_a = tenant_env(env, address, "team-a")
        proc = start_run(team_a, "--tflops", "0.5", "--tflops-limit", "1", "--vram", "64Mi", "--",
                         str(build_cuda("lim_busy")), "90", "2000000")
        try:
            aid = only_allocation(address)
            wait_for(lambda: (s := session_of(address, aid)) is not None and s.limits.tflops == 1.0, timeout=60,
                     what="the session's region with its 1-TFLOPS limit")
            r = tf("limits", aid, "--tflops-limit", "8", env=team_a)
            assert r.returncode == 0, r.stderr
            assert session_of(address, aid).limits.tflops == 8.0     # in the region before the command returned
            wait_for(lambda: session_of(address, aid).tflops_used > 1.5, timeout=45,
                     what="measured TFLOPS well above the old 1-TFLOPS limit")
            assert proc.poll() is None, "the program was restarted or ended: " + proc.stderr.read()
        finally:
            stop(proc)


def test_runs_after_a_worker_is_killed_go_to_the_other_worker_before_its_node_timeout(tmp_path):
    """kill -9 of a worker: the scheduler hears nothing for node_timeout_s (30 s here) and would go on placing on
    it. The first `run` that cannot open its data plane tells the scheduler, whose own probe fails too: that
    run and every later one land on the live worker at once; the dead node's allocations are left to its
    timeout. A worker that is alive is not taken out on a client's word."""
    with running_cluster(tmp_path, ["node-a", "node-b"], scheduler_args=["--node-timeout", "30"]) as (env, address):
        team = tenant_env(env, address, "team-a")
        program = str(build_example("vector_add"))
        with SchedulerClient(address) as admin:
            probe = admin.allocate(vram=256)          # where the next such run goes: kill that worker
            victim = probe.node_name
            admin.release(probe.id)
            verdict = admin.report_worker_unreachable(probe.id, "a client with a broken network")
            assert not verdict.node_unavailable        # alive: its probe answers, it stays in placement
            workers[victim].kill()
            workers[victim].wait()
            killed = time.monotonic()
            for _ in range(3):
                r = tf("run", "--vram", "256Mi", "--", program, env=team, timeout=120)
                assert r.returncode == 0, r.stdout + r.stderr
            elapsed = time.monotonic() - killed
            nodes = {n.node_name: n.available for n in admin.list_pool().nodes}
        assert elapsed < 30, f"the runs took {elapsed:.1f} s: as long as the node timeout"
        assert nodes == {victim: False, ({"node-a", "node-b"} - {victim}).pop(): True}


def test_run_gpus_gives_the_command_that_many_devices_of_one_worker(tmp_path):
    """A worker on an emulated host of 3 devices (TF_EMU_DEVICES=3) registers 3 GPUs; `run --gpus 2` holds two of
    them and the program sees exactly 2 devices through the stub (cudaGetDeviceCount), `run` without it sees 1,
    and more GPUs than a worker has is one line saying so. The limiter keeps one VRAM ledger per allocation: 2 GPUs
    of 128 MiB each share a 256 MiB cap, which each device reports as its memory."""
    with running_cluster(tmp_path, ["node-a"], extra_env={"TF_EMU_DEVICES": "3"}) as (env, address):
        with SchedulerClient(address) as admin:
            [node] = admin.list_pool().nodes
        assert len(node.gpus) == 3 and len({g.info.uuid for g in node.gpus}) == 3
        team = tenant_env(env, address, "team-a")
        program = str(build_example("device_query"))
        two = tf("run", "--gpus", "2", "--vram", "128Mi", "--", program, env=team, timeout=120)
        assert two.returncode == 0, two.stdout + two.stderr
        lines = two.stdout.strip().splitlines()
        assert [line.split(":")[0] for line in lines] == ["device 0", "device 1"], two.stdout
        assert all("256 MiB total" in line for line in lines), two.stdout
        one = tf("run", "--vram", "128Mi", "--", program, env=team, timeout=120)
        assert one.returncode == 0, one.stdout + one.stderr
        [line] = one.stdout.strip().splitlines()
        assert line.startswith("device 0:") and "128 MiB total" in line
        four = tf("run", "--gpus", "4", "--vram", "128Mi", "--", program, env=team)
        assert four.returncode == 1 and len(four.stderr.strip().splitlines()) == 1, four.stderr
        assert "gpu_count 4" in four.stderr, four.stderr
        bad = tf("run", "--gpus", "0", "--", program, env=team)
        assert bad.returncode == 1 and bad.stderr.strip() == \
            "tensorfusion run: --gpus 0: use a whole number of GPUs from 1 to 256 (all on one worker)"


def test_run_gpus_2_runs_multi_device_as_on_two_gpus(tmp_path):
    """tests/cuda/multi_device.cu through `run --gpus 2` (stub, data plane, limiter, executor on 2 emulated devices)
    gives what it gives on the emulator directly (tests/emu/test_emu_multi_device.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "emu"))
    from test_emu_multi_device import EXPECTED_TWO
    from tfclient import native
    with running_cluster(tmp_path, ["node-a"], extra_env={"TF_EMU_DEVICES": "2"}) as (env, address):
        team = tenant_env(env, address, "team-a")
        program = str(build_cuda("multi_device", flags=(f"-L{native.stub_lib_dir()}", "-lcuda")))
        r = tf("run", "--gpus", "2", "--vram", "512Mi", "--", program, env=team, timeout=180)
        kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
        wrong = {k: (kv.get(k), v) for k, v in EXPECTED_TWO.items() if kv.get(k) != v}
        assert not wrong and r.returncode == 0, (wrong, r.stdout[-1500:], r.stderr[-1500:])


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def test_run_killed_with_sigkill_ends_its_command_and_the_allocation_expires(tmp_path):
    """kill -9 of `run` gives it no chance to stop its command or release the vGPU. The command used to go on
    running, its session alive on the worker, whose heartbeats kept renewing the allocation for as long as it
    ran. Now the kernel ends the command with `run` (PR_SET_PDEATHSIG), the worker ends its session, and with
    nobody renewing the lease the allocation expires (lease TTL 3 s here)."""
    with running_cluster(tmp_path, ["node-a"], scheduler_args=["--lease-ttl", "3"]) as (env, address):
        team = tenant_env(env, address, "team-a")
        program = build_cuda("dp_hold", flags=("-L", str(native.stub_lib_dir()), "-lcuda"))
        proc = start_run(team, "--vram", "64Mi", "--", str(program), "32")
        try:
            assert proc.stdout.readline().strip() == "holding 32 MiB", proc.stderr.read()
            [command] = children_of(proc.pid)
            aid = only_allocation(address)
            proc.kill()
            proc.wait()
            wait_for(lambda: not alive(command), timeout=10, what="the command to end with its `run`")
            wait_for(lambda: session_of(address, aid) is None, timeout=10, what="the worker to end the session")
            with SchedulerClient(address) as admin:
                wait_for(lambda: admin.get_allocation(aid).state != scheduler_pb.ALLOCATION_ACTIVE, timeout=20,
                         what="the allocation to end")
                gone = admin.get_allocation(aid)
            assert (gone.state, gone.reason) == (scheduler_pb.ALLOCATION_EXPIRED, "lease expired")
        finally:
            stop(proc)


def test_status_shows_an_unavailable_nodes_gpus_with_no_free_capacity(tmp_path):
    """A node that stopped heartbeating kept its last-reported VRAM in `status` as if it could be used. Its GPUs
    now show no free capacity and no current usage, in the table and in `status -o json`."""
    with running_cluster(tmp_path, ["node-a", "node-b"]) as (env, address):
        admin = dict(env, TF_SCHEDULER=address)
        workers["node-b"].kill()
        workers["node-b"].wait()
        wait_for(lambda: "UNAVAILABLE" in tf("status", env=admin).stdout, timeout=30, what="node-b unavailable")
        table = tf("status", env=admin)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        header = next(line.split() for line in lines if line.startswith("node "))
        rows = {line.split()[0]: line for line in lines if line.startswith(("node-a ", "node-b "))}
        # the model name has spaces: read the cells after it from the right
        tail = header[header.index("free"):]          # free tflops, free vram, req tflops, req vram, used vram, allocs
        assert tail == ["free", "tflops", "free", "vram", "req", "tflops", "req", "vram", "used", "vram", "allocs"]
        b = rows["node-b"].split()
        assert b[1] == "UNAVAILABLE" and b[-6:] == ["0", "0", "0", "0", "-", "0"], rows["node-b"]
        a = rows["node-a"].split()
        assert a[1] == "up" and a[-5] == "1024", rows["node-a"]
        doc = json.loads(tf("status", "-o", "json", env=admin).stdout)
        nodes = {n["name"]: n for n in doc["nodes"]}
        assert nodes["node-b"]["state"] == "unavailable"
        [gb] = nodes["node-b"]["gpus"]
        assert gb["free"] == {"tflops": 0.0, "vram_mib": 0} and gb["used"] is None and gb["vram_mib"] == 1024
        [ga] = nodes["node-a"]["gpus"]
        assert nodes["node-a"]["state"] == "up" and ga["free"]["vram_mib"] == 1024 and ga["used"] is not None
        [pool] = doc["pools"]
        assert pool["capacity"]["vram_mib"] == 1024          # node-a's only
