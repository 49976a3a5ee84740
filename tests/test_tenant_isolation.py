"""Tenant isolation, attacked: tenant B (its own token, its own allocation) tries everything a hostile tenant would
against tenant A's running session on the same worker, and each attempt is refused with an error naming what is
refused. The scheduler and the worker are real processes on loopback (tests/test_worker.py's running_cluster);
the sessions run tests/cuda/tenant_probe.cu through the stub.

Covered elsewhere and not repeated here: forged, expired, released and preempted lease tokens (test_worker.py),
close and limit orders not signed by the scheduler (test_worker.py), CUDA IPC and shareable handles of another
allocation (tests/stub/test_ipc.py, test_vmm_ipc.py), the limits CLI of another tenant (test_cluster_cli.py)."""
import base64
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from cudabuild import build_cuda
from tfclient import native
from tfclient.errors import NoCapacity, PermissionDenied, Unauthenticated
from tfclient.protos import load
from tfclient.scheduler_client import SchedulerClient
from tfscheduler import lease as leases
from tfworker.daemon import fnv1a64, ipc_scope_dir
from tfworker.dataplane import SessionGrant
from test_worker import CLI, running_cluster, wait_for, worker_usage

sys.path.insert(0, str(Path(__file__).resolve().parent / "stub"))
from dp_helpers import InProcessDataPlane, stub_env  # noqa: E402

worker_pb, worker_rpc = load("worker_pb2"), load("worker_pb2_grpc")
NOBODY = 65534


@pytest.fixture(scope="module")
def two_tenants(tmp_path_factory):
    """One worker (1 GiB emulated GPU); tenants team-a and team-b, each with its own token and a 256 MiB
    allocation. Yields (env, address, {name: (client, allocation)})."""
    tmp = tmp_path_factory.mktemp("tenants")
    with running_cluster(tmp, ["node-a"]) as (env, address):
        tenants = {}
        with SchedulerClient(address) as admin:
            for ns in ("team-a", "team-b"):
                token = admin.create_token("tenant", namespace=ns).token
                client = SchedulerClient(address, token=token)
                tenants[ns] = (client, client.allocate(vram=256, vram_limit=256))
        try:
            yield env, address, tenants
        finally:
            for client, _ in tenants.values():
                client.close()


def probe(alloc, env, steps: list[str], lease_token: str | None = None, extra_env=None) -> tuple[list[str], str]:
    """Runs tenant_probe in alloc's session with these stdin steps -> (its stdout lines, its stderr)."""
    client_env = dict(env, TF_WORKER=f"unix:{alloc.endpoints.unix_path}", TF_LEASE=lease_token or alloc.lease_token,
                      LD_LIBRARY_PATH=str(native.stub_lib_dir()), **(extra_env or {}))
    r = subprocess.run([str(build_cuda("tenant_probe"))], input="\n".join([*steps, "q"]) + "\n", env=client_env,
                       capture_output=True, text=True, timeout=180)
    return r.stdout.split(), r.stderr


# ---- the control plane: another tenant's allocation by id -----------------------------------------------------

def test_another_tenant_cannot_release_renew_read_resize_or_report_an_allocation(two_tenants):
    _, _, tenants = two_tenants
    (_, a), (b, _) = tenants["team-a"], tenants["team-b"]
    says = f"allocation {a.id} belongs to namespace 'team-a'; your token is for namespace 'team-b'"
    for attempt in (lambda: b.release(a.id), lambda: b.renew(a.id), lambda: b.get_allocation(a.id),
                    lambda: b.set_limits(a.id, vram=1024), lambda: b.report_worker_unreachable(a.id, "gone")):
        with pytest.raises(PermissionDenied) as err:
            attempt()
        assert says in str(err.value)
    a_client = tenants["team-a"][0]
    assert a_client.get_allocation(a.id).state == load("scheduler_pb2").ALLOCATION_ACTIVE   # untouched


def test_a_tenant_lists_only_its_own_allocations(two_tenants):
    _, _, tenants = two_tenants
    b, own = tenants["team-b"]
    listed = b.list_pool(include_allocations=True)
    assert [x.id for x in listed.allocations] == [own.id]
    assert all(not n.endpoints.admin for n in listed.nodes)          # a node's admin API is not a tenant's
    with pytest.raises(PermissionDenied) as err:
        b.list_pool(include_allocations=True, namespace="team-a")
    assert "your token is for namespace 'team-b', not 'team-a'" in str(err.value)
    with pytest.raises(PermissionDenied):
        b.allocate(vram=16, namespace="team-a")


def test_a_tenant_acts_neither_as_a_worker_nor_in_another_namespaces_workloads(two_tenants):
    _, _, tenants = two_tenants
    b, own = tenants["team-b"]
    for attempt in (lambda: b.register_worker("node-a", unix_path="/tmp/evil.sock"),
                    lambda: b.heartbeat(own.worker_id)):
        with pytest.raises(PermissionDenied) as err:
            attempt()
        assert "is not allowed to a tenant token" in str(err.value)
    doc = {"name": "train", "pool": "default", "resources": {"requests": {"vram": "64Mi"}}}
    for attempt in (lambda: b.apply_workload(doc, namespace="team-a"), lambda: b.get_workload("train", "team-a"),
                    lambda: b.list_workloads(namespace="team-a")):
        with pytest.raises(PermissionDenied) as err:
            attempt()
        assert "your token is for namespace 'team-b', not 'team-a'" in str(err.value)


def test_a_tenant_raises_its_own_limits_only_within_the_gpus_room(two_tenants):
    """B may change its own allocation's limits (`tensorfusion limits`), never past what its GPU has left."""
    _, _, tenants = two_tenants
    b, own = tenants["team-b"]
    for change in ({"vram": 64 << 10}, {"tflops": 1e6}):
        with pytest.raises(NoCapacity) as err:
            b.set_limits(own.id, **change)
        assert f"of allocation {own.id} have no room" in str(err.value)
    assert b.get_allocation(own.id).limits.vram_mib == 256          # unchanged


def test_a_revoked_or_made_up_tenant_token_is_refused(two_tenants):
    _, address, _ = two_tenants
    with SchedulerClient(address) as admin:
        created = admin.create_token("tenant", namespace="team-c")
        admin.revoke_token(created.info.id)
    prefix, tid, _ = created.token.split(".")
    # only the holder of the whole revoked token learns that it was revoked (and its namespace)
    expected = {created.token: "of namespace 'team-c' was revoked at",
                f"{prefix}.{tid}.{'A' * 43}": "the bearer token is unknown or malformed",
                "not-a-token": "the bearer token is unknown or malformed"}
    for token, answer in expected.items():
        with SchedulerClient(address, token=token) as c:
            with pytest.raises(Unauthenticated) as err:
                c.allocate(vram=16)
            assert answer in str(err.value)
            if token != created.token:
                assert "team-c" not in str(err.value)


# ---- the worker: its admin API and its data plane ---------------------------------------------------------------

def test_the_worker_admin_api_tells_a_tenant_nothing_and_obeys_nothing(two_tenants):
    """B finds the worker's admin port (its own allocation names it) and asks which sessions run there, then tries
    to close or resize A's with its own lease token as the order: each is PERMISSION_DENIED."""
    _, _, tenants = two_tenants
    (_, a), (b, own) = tenants["team-a"], tenants["team-b"]
    admin_addr = b.get_allocation(own.id).endpoints.admin
    with grpc.insecure_channel(admin_addr) as channel:
        admin = worker_rpc.WorkerAdminStub(channel)
        for token in ("", own.lease_token, leases.sign_order("usage", "", b"guessed secret")):
            with pytest.raises(grpc.RpcError) as err:
                admin.GetUsage(worker_pb.GetUsageRequest(auth_token=token), timeout=5)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert err.value.details().startswith("usage request rejected: ")
        with pytest.raises(grpc.RpcError) as err:
            admin.CloseSession(worker_pb.CloseSessionRequest(allocation_id=a.id, auth_token=own.lease_token),
                               timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # the scheduler's own order is answered
    assert worker_usage(admin_addr, own.worker_id) is not None


def _reclaim(token: str, allocation_id: str) -> str:
    """token with its claims' allocation id replaced, signature kept."""
    payload, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["allocation_id"] = allocation_id
    body = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{body.rstrip(b'=').decode()}.{mac}"


def test_a_tenant_cannot_name_another_allocation_in_its_lease(two_tenants):
    """The data plane's hello carries only the lease: B's lease with A's allocation id in its claims no longer
    verifies, so no session joins A's allocation (its limiter region, its IPC scope)."""
    env, _, tenants = two_tenants
    (_, a), (_, own) = tenants["team-a"], tenants["team-b"]
    out, err = probe(own, env, [], lease_token=_reclaim(own.lease_token, a.id))
    assert out == ["error=init"] and "lease token signature does not verify" in err, err


# ---- B's own limits ---------------------------------------------------------------------------------------------

def test_a_tenant_cannot_raise_its_vram_cap_from_the_client_side(two_tenants):
    """The limiter runs in the worker's GPU worker process: the client's own limiter variables and a preloaded
    limiter on the client change nothing there."""
    env, _, tenants = two_tenants
    _, own = tenants["team-b"]
    out, _ = probe(own, env, ["w 200 1", "w 100 1"],
                   extra_env={"TF_VRAM_LIMIT": "100Gi", "CUDA_DEVICE_MEMORY_LIMIT": "100g",
                              "LD_PRELOAD": str(native.limiter_lib())})
    assert out == ["write=ok", "write=cudaErrorMemoryAllocation"]


def test_module_globals_and_the_device_heap_count_against_the_vram_cap(two_tenants):
    """Memory the driver allocates on its own is device memory too: a module's .global array and the kernels'
    malloc() heap are charged, so neither holds more than the 256 MiB cap (the GPU has 1 GiB)."""
    env, _, tenants = two_tenants
    _, own = tenants["team-b"]
    out, _ = probe(own, env, ["g 600", "h 512", "m 64", "h 32", "m 64", "g 100", "w 128 1"])
    assert out == ["global=CUDA_ERROR_OUT_OF_MEMORY",     # 600 MiB of .global: over the cap, the module is gone
                   "heap=cudaErrorMemoryAllocation",     # a 512 MiB heap: refused, the heap keeps its 8 MiB
                   "device_malloc=8",                    # malloc() stops at the heap's end
                   "heap=ok", "device_malloc=24",        # a 32 MiB heap (charged): 24 MiB more
                   "global=ok",                          # 100 MiB of .global within the cap
                   "write=cudaErrorMemoryAllocation"]    # 32 + 100 + 128 MiB > 256 MiB


def test_destroying_a_context_does_not_refund_module_globals_the_device_keeps(two_tenants):
    """The emulated device keeps a module's globals past its context: loading 100 MiB of .global in a context and
    destroying it, again and again, stops at the 256 MiB cap."""
    env, _, tenants = two_tenants
    _, own = tenants["team-b"]
    out, _ = probe(own, env, ["c 100", "c 100", "c 100"])
    assert out == ["ctx_global=ok", "ctx_global=ok", "ctx_global=CUDA_ERROR_OUT_OF_MEMORY"]


# ---- device memory between sessions ---------------------------------------------------------------------------

def test_memory_another_session_freed_reads_as_zero(two_tenants):
    """A fills 256 MiB with 0xAB, frees it and ends; B's next allocation of the same size holds none of it."""
    env, _, tenants = two_tenants
    (_, a), (_, own) = tenants["team-a"], tenants["team-b"]
    assert probe(a, env, ["w 250 171", "f"])[0] == ["write=ok", "free=ok"]
    assert probe(own, env, ["r 250"])[0] == ["nonzero=0"]


# ---- what lives on the host: sockets and shared memory --------------------------------------------------------

def _as_nobody(attempts: dict) -> dict:
    """Runs each attempt (a callable raising OSError when refused) in a child with uid/gid nobody ->
    {name: 'refused' | 'allowed'}."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            out = {}
            for name, attempt in attempts.items():
                try:
                    attempt()
                    out[name] = "allowed"
                except OSError:
                    out[name] = "refused"
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return json.loads(text)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another local user")
def test_another_local_user_cannot_reach_the_data_plane_socket_or_a_sessions_limiter_region(two_tenants):
    """While A's session runs, a local user other than the worker's cannot connect to the Unix data plane or open
    A's limiter region in /dev/shm (where its limits live): both are 0600, the worker's."""
    env, _, tenants = two_tenants
    _, a = tenants["team-a"]
    client_env = dict(env, TF_WORKER=f"unix:{a.endpoints.unix_path}", TF_LEASE=a.lease_token,
                      LD_LIBRARY_PATH=str(native.stub_lib_dir()))
    proc = subprocess.Popen([str(build_cuda("tenant_probe"))], env=client_env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdin.write("w 16 1\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "write=ok"
        regions = [os.path.join("/dev/shm", n) for n in os.listdir("/dev/shm") if n.endswith(f"-{a.id}")]
        assert len(regions) == 1, regions
        for path in (regions[0], a.endpoints.unix_path):
            st = os.stat(path)
            assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid(), path

        def connect():
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(a.endpoints.unix_path)

        def open_region():
            os.close(os.open(regions[0], os.O_RDWR))

        assert _as_nobody({"connect": connect, "region": open_region}) == {"connect": "refused", "region": "refused"}
        proc.stdin.write("q\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _plant_mark(scope: str, handle_hex: str) -> str:
    """As another local user (nobody): makes scope's IPC folder in /dev/shm, open to all, and the mark of
    handle_hex in it -> the folder (the caller removes it)."""
    folder = ipc_scope_dir(scope)
    mark = f"{folder}/{fnv1a64(bytes.fromhex(handle_hex)):016x}"

    def plant():
        os.mkdir(folder, 0o777)
        os.chmod(folder, 0o777)
        os.close(os.open(mark, os.O_CREAT | os.O_WRONLY, 0o666))

    assert _as_nobody({"plant": plant}) == {"plant": "allowed"}      # /dev/shm lets anyone make it
    return folder


def _export(env: dict) -> tuple[subprocess.Popen, str]:
    """tenant_probe exporting 1 MiB of 0xAB under env -> (the process, still running; its handle in hex)."""
    proc = subprocess.Popen([str(build_cuda("tenant_probe"))], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write("x 171\n")
    proc.stdin.flush()
    handle = proc.stdout.readline().strip().removeprefix("handle=")
    assert len(handle) == 128, handle
    return proc, handle


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another local user")
def test_a_scope_folder_another_local_user_made_first_opens_no_handle(tmp_path):
    """The executor opens a CUDA IPC handle only if a session of its own allocation marked it, in
    /dev/shm/tf-ipc-<hash of TF_IPC_SCOPE>/. A tenant who is a local user and knows its session's scope makes
    that folder first (world-writable /dev/shm) and writes the mark of another allocation's handle into it: the
    open is refused, since the folder is not the worker user's own 0700 one. (A real attacker needs no leaked
    handle: the emulator's names the exporter's pid, visible in /proc, a small fd number, an inode near its own
    memfds', and fields the importer never checks.) Before the fix B read A's 0xAB."""
    run = os.urandom(6).hex()

    async def authorize(token: bytes) -> SessionGrant:
        return SessionGrant(session_id=f"s-{token.decode()}-{os.urandom(4).hex()}", env={"TF_IPC_SCOPE": token.decode()})
    dp = InProcessDataPlane(tmp_path, authorize=authorize)
    exporter, folder = None, None
    try:
        exporter, handle = _export(stub_env(dp.unix, lease=f"scope-a-{run}"))
        folder = _plant_mark(f"scope-b-{run}", handle)
        r = subprocess.run([str(build_cuda("tenant_probe"))], input=f"o {handle}\nq\n", capture_output=True,
                           text=True, timeout=120, env=stub_env(dp.unix, lease=f"scope-b-{run}"))
        assert r.stdout.split() == ["opened=cudaErrorNotPermitted"], r.stdout + r.stderr
    finally:
        if exporter is not None:
            exporter.kill()
            exporter.wait()
        dp.close()
        for f in (folder, ipc_scope_dir(f"scope-a-{run}")):
            if f:
                shutil.rmtree(f, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another local user")
def test_a_tenant_cannot_tell_its_ipc_scope_folder_before_the_worker_makes_it(two_tenants):
    """Through the worker daemon the scope is the allocation id and a random part: B, knowing its allocation id,
    plants the mark of A's handle in the folder that id alone names, and A's handle still does not open."""
    env, _, tenants = two_tenants
    (_, a), (_, own) = tenants["team-a"], tenants["team-b"]
    exporter, handle = _export(dict(env, TF_WORKER=f"unix:{a.endpoints.unix_path}", TF_LEASE=a.lease_token,
                                    LD_LIBRARY_PATH=str(native.stub_lib_dir())))
    folder = None
    try:
        folder = _plant_mark(own.id, handle)
        out, err = probe(own, env, [f"o {handle}"])
        assert out == ["opened=cudaErrorNotPermitted"], (out, err)
    finally:
        exporter.kill()
        exporter.wait()
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


# ---- starving A ---------------------------------------------------------------------------------------------------

def _open_session(alloc, env) -> subprocess.Popen:
    """tenant_probe in a session of alloc, holding 16 MiB and waiting for its next step."""
    client_env = dict(env, TF_WORKER=f"unix:{alloc.endpoints.unix_path}", TF_LEASE=alloc.lease_token,
                      LD_LIBRARY_PATH=str(native.stub_lib_dir()))
    proc = subprocess.Popen([str(build_cuda("tenant_probe"))], env=client_env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write("w 16 1\n")
    proc.stdin.flush()
    return proc


def test_one_allocation_holds_a_bounded_number_of_sessions(tmp_path):
    """Every session is a GPU worker process the allocation's limits do not count (its memory, its threads): B opens
    as many as the worker allows (TF_MAX_SESSIONS_PER_ALLOCATION, 2 here) and the next is refused with a line that
    says why, while A still gets its session; once one of B's ends, B may open another."""
    with running_cluster(tmp_path, ["node-a"], extra_env={"TF_MAX_SESSIONS_PER_ALLOCATION": "2"}) as (env, address):
        with SchedulerClient(address) as admin:
            a, b = (admin.allocate(vram=128, namespace=ns) for ns in ("team-a", "team-b"))
        held = [_open_session(b, env) for _ in range(2)]
        try:
            assert [p.stdout.readline().strip() for p in held] == ["write=ok", "write=ok"]
            out, err = probe(b, env, ["w 16 1"])
            assert out == ["error=init"]
            assert f"allocation {b.id} already has 2 sessions on this worker" in err, err
            assert probe(a, env, ["w 16 1"])[0] == ["write=ok"]
            held[0].communicate("q\n", timeout=60)
            # the worker counts the session until it has seen its GPU worker process end (a moment after the client)
            wait_for(lambda: probe(b, env, ["w 16 1"])[0] == ["write=ok"], timeout=20,
                     what="B's next session once one of its two ended")
        finally:
            for p in held:
                if p.poll() is None:
                    p.kill()
                    p.wait()


def test_a_worker_refuses_a_session_bound_that_is_not_a_positive_number(tmp_path):
    env = dict(os.environ, TF_HOME=str(tmp_path), TF_WORKER_TOKEN="unused", TF_MAX_SESSIONS_PER_ALLOCATION="0")
    r = subprocess.run([*CLI, "worker", "--scheduler", "127.0.0.1:1", "--backend", "emu"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip() == ("tensorfusion worker: TF_MAX_SESSIONS_PER_ALLOCATION='0': use a whole number of "
                                "sessions, 1 or more"), r.stderr
