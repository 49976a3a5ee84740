"""The worker daemon (one per GPU host): registers the host's GPUs with the scheduler, heartbeats usage,
checks lease tokens on data-plane connections, gives each session its limits, serves the WorkerAdmin gRPC
API, exports Prometheus metrics, and closes sessions the scheduler orders closed.

It composes three pieces and adds no hot-path work: tfworker.dataplane (accepts connections and hands each
socket to its own GPU worker process), tfworker.limits (the limiter's shared-memory region per session),
and the control plane (tensorfusion.v1 Scheduler / WorkerAdmin). Used by `tensorfusion up` and `worker`.
"""
import asyncio
import itertools
import logging
import os
import secrets
import shutil
import socket
import time
from dataclasses import dataclass, field

import grpc

from tfclient import config, native
from tfclient import tls as tlsmod
from tfclient.protos import load
from tfscheduler import lease, models
from tfworker import gpu_process, limits
from tfworker.dataplane import DataPlaneServer, SessionEnd, SessionGrant, TlsFiles
from tfworker.gpus import Backend, GpuInfo, session_env

pb = load("scheduler_pb2")
common = load("common_pb2")
worker_pb = load("worker_pb2")
scheduler_rpc = load("scheduler_pb2_grpc")
worker_rpc = load("worker_pb2_grpc")

log = logging.getLogger("tfworker")
# what the scheduler answers a worker it will not hear from (a revoked token, a node name another live worker
# holds, a malformed registration): not an outage to wait out, so the worker stops serving new sessions
REFUSALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.ALREADY_EXISTS,
            grpc.StatusCode.INVALID_ARGUMENT)


class RegistrationRefused(RuntimeError):
    """The scheduler refused this worker's registration (one of REFUSALS)."""
REVOKED_KEEP_S = 25 * 3600.0      # longer than the longest lease a scheduler grants (max_lease_ttl_s, 24 h)
MAX_SESSIONS_VAR = "TF_MAX_SESSIONS_PER_ALLOCATION"
DEFAULT_MAX_SESSIONS = 64


def max_sessions_per_allocation() -> int:
    """How many sessions (GPU worker processes) one allocation may hold on this worker at once:
    TF_MAX_SESSIONS_PER_ALLOCATION, default 64. Each session is a process with its own memory and threads that the
    allocation's VRAM and compute limits do not count, so without a bound one tenant's connections could exhaust
    the host its neighbours share. ValueError (one line) for a value that is not a positive integer."""
    text = os.environ.get(MAX_SESSIONS_VAR, "")
    if not text:
        return DEFAULT_MAX_SESSIONS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MAX_SESSIONS_VAR}={text!r}: use a whole number of sessions, 1 or more")
    return int(text)



def fnv1a64(data: bytes) -> int:
    """FNV-1a 64 of data: how tfworker/executor/exec_ipc.c names a scope's folder and the marks in it."""
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def ipc_scope_dir(scope: str) -> str:
    """Folder where the GPU worker processes of an allocation (TF_IPC_SCOPE=scope) mark the CUDA IPC handles they
    exported (tfworker/executor/exec_ipc.c names it with the same FNV-1a 64 hash of the scope)."""
    return f"/dev/shm/tf-ipc-{fnv1a64(scope.encode()):016x}"

@dataclass
class Session:
    session_id: str
    allocation_id: str
    gpus: list[GpuInfo]                   # the allocation's, in the lease's order: the process's devices 0..N-1
    limits: limits.SessionLimits | None   # None when the limiter is not built
    started_at: float = field(default_factory=time.time)


class WorkerDaemon:
    def __init__(self, *, scheduler: str, backend: Backend, unix_path: str | None,
                 tcp: tuple[str, int] | None = None, advertise: str | None = None, admin_listen: str = "127.0.0.1:0",
                 pool: str = "default", node: str | None = None, metrics_port: "int | str | None" = None,
                 token: str | None = None, home: str | None = None, admin_tls=None, scheduler_tls=None,
                 tls: "TlsFiles | None" = None):
        """admin_tls: tfclient.tls.ServerTLS of the admin gRPC server (None: plaintext); scheduler_tls:
        tfclient.tls.ClientTLS the scheduler is dialed with (None: plaintext); tls: the TCP data plane's
        certificate files (its listener then speaks TLS only; Unix sockets stay plain); metrics_port: serve
        Prometheus metrics on this port (all interfaces) or "HOST:PORT" (port 0: a free one, see metrics_bound)."""
        self.scheduler_address = scheduler
        self.node_key = b""     # from the scheduler at registration (lease.node_key); until then no token passes
        self.admin_tls = admin_tls
        self.scheduler_tls = scheduler_tls
        # the worker's bearer token: bound by the scheduler to this node name
        self._md = (("authorization", f"Bearer {token}"),) if token else ()
        self.backend = backend
        self.unix_path = unix_path
        self.tcp = tcp
        self.advertise = advertise
        self.admin_listen = admin_listen
        self.pool = pool
        self.node = node or socket.gethostname()
        self.metrics_port = metrics_port
        self.home = str(home or config.home())   # with the node name: this daemon's identity (limits.worker_tag)
        self.identity: limits.WorkerIdentity | None = None
        self.instance_id = ""         # from the identity at start: who this daemon is to the scheduler
        # why the scheduler refuses this worker (its token revoked, its node name held by another worker), or
        # "": while set, no new session is served (fail closed); heartbeats go on, so that it can end
        self.refused = ""
        self.worker_id = ""
        self.heartbeat_interval_s = 2.0
        self.sessions: dict[str, Session] = {}
        self.max_sessions = max_sessions_per_allocation()
        self.regions: dict[str, limits.SessionLimits] = {}     # allocation -> its limiter region (all its sessions)
        # allocation -> its CUDA IPC scope (TF_IPC_SCOPE): the id and a random part, so that no local user can tell
        # the name of its folder in world-writable /dev/shm before the worker makes it (and make it first)
        self.ipc_scopes: dict[str, str] = {}
        self.pending_limits: dict[str, common.Resources] = {}   # allocation -> limits set before it connected
        self._counter = itertools.count(1)
        self._seen_orders: dict[tuple, float] = {}      # signed admin orders applied (replay guard)
        self.revoked: dict[str, tuple] = {}             # allocation id -> (when, reason): its tokens are void
        self.confirmed: set[str] = set()                # allocations the scheduler confirmed active
        self._seen_prune_at = 0.0
        self._channel: grpc.aio.Channel | None = None
        self._stub = None
        self._admin: grpc.aio.Server | None = None
        self._admin_port = 0
        self._heartbeat_task: asyncio.Task | None = None
        self._metrics = None
        self.tls = tls if tcp else None    # TLS is for the TCP data plane; Unix sockets stay plain
        self.dataplane = DataPlaneServer(unix_path=unix_path, tcp=tcp, backend_lib_dir=backend.lib_dir,
                                         authorize=self._authorize, on_end=self._on_session_end, tls=self.tls,
                                         spawn_env=self._tls_spawn_env)

    @property
    def metrics_bound(self) -> int | None:
        """The port the Prometheus metrics are served on, None when they are not."""
        return self._metrics.port if self._metrics is not None else None

    # ---- lifecycle ----

    async def start(self) -> None:
        self._reap_previous_life()
        await self.dataplane.start()
        self._admin = grpc.aio.server()
        worker_rpc.add_WorkerAdminServicer_to_server(_AdminServicer(self), self._admin)
        self._admin_port = tlsmod.bind(self._admin, self.admin_listen,
                                       self.admin_tls.credentials() if self.admin_tls is not None else None,
                                       what="worker admin")
        await self._admin.start()
        from tfclient.scheduler_client import AioFailoverStub, split_addresses
        # "a,b,c": scheduler replicas; calls move to the next one when one is down or a follower
        self._channel = AioFailoverStub(split_addresses(self.scheduler_address), tls=self.scheduler_tls)
        self._stub = self._channel
        await self._register()
        if self.metrics_port is not None:
            from tfworker.metrics import WorkerMetrics
            self._metrics = WorkerMetrics(self, self.metrics_port)
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())

    async def stop(self) -> None:
        if self._heartbeat_task:
            self._heartbeat_task.cancel()
            try:
                await self._heartbeat_task
            except asyncio.CancelledError:
                pass
        await self.dataplane.stop()
        for s in list(self.sessions.values()):
            self._drop_session(s.session_id)
        if self._admin:
            await self._admin.stop(grace=1.0)
        if self._channel:
            await self._channel.close()
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self.identity is not None:
            self.identity.close()

    def _reap_previous_life(self) -> None:
        """A daemon that died (kill -9, OOM) left its executors and limiter regions behind: end them
        before serving, so their memory is free and their regions do not pile up in /dev/shm.
        A second live daemon of the same TF_HOME and node does not start: the scheduler keeps one registration
        per node, so it would take over the first one's endpoints while the first kept heartbeating the node
        alive, and once either stopped every session of the node went to a dead socket."""
        self.identity = limits.WorkerIdentity(self.home, self.node)
        if not self.identity.reaps:
            raise RuntimeError(f"another worker daemon with TF_HOME={self.home} and node {self.node} is running "
                               f"(`tensorfusion up` runs one too): stop it first, or give this one another --node "
                               f"(and a worker token for that node)")
        self.instance_id = self.identity.instance_id()
        pids = gpu_process.reap_executors(self.identity.tag)
        regions = limits.reap_regions(self.identity.tag)
        if pids or regions:
            log.info("reaped %d GPU worker process(es) and %d limiter region(s) of a previous life",
                     len(pids), len(regions))

    # ---- control plane ----

    def _endpoints(self):
        host = self.advertise or (self.tcp[0] if self.tcp and self.tcp[0] not in ("0.0.0.0", "") else "127.0.0.1")
        admin_host = self.admin_listen.rsplit(":", 1)[0]
        if admin_host in ("0.0.0.0", "[::]", ""):
            admin_host = self.advertise or "127.0.0.1"
        # "tls:host:port" tells clients the listener speaks TLS only (a client that does not know the prefix
        # fails to dial: it never falls back to plaintext)
        tcp = f"{'tls:' if self.tls else ''}{host}:{self.dataplane.tcp_port}" if self.tcp else ""
        return common.WorkerEndpoints(unix_path=self.unix_path or "", tcp=tcp,
                                      admin=f"{admin_host}:{self._admin_port}")

    async def _register(self) -> None:
        request = pb.RegisterWorkerRequest(
            node_name=self.node, pool=self.pool, endpoints=self._endpoints(),
            gpus=[common.GPUInfo(index=g.index, uuid=g.uuid, model=g.model, vendor=g.vendor, vram_mib=g.vram_mib,
                                 tflops=g.tflops) for g in self.backend.gpus],
            active_allocation_ids=sorted({s.allocation_id for s in self.sessions.values()}),
            instance_id=self.instance_id)
        try:
            response = await self._stub.RegisterWorker(request, timeout=10, metadata=self._md)
        except grpc.aio.AioRpcError as e:
            from tfclient.tls import explain
            hint = explain(e.details(), self._stub.address, self.scheduler_tls)
            if hint:
                raise RuntimeError(f"cannot register with scheduler {self.scheduler_address}: {hint}") from None
            if e.code() in REFUSALS:
                raise RegistrationRefused(f"scheduler {self.scheduler_address} refused registration: "
                                          f"{e.details() or e.code().name}") from None
            raise RuntimeError(f"scheduler {self.scheduler_address} unreachable or refused registration: "
                               f"{e.details() or e.code().name}") from None
        if not response.node_key:
            raise RuntimeError(f"scheduler {self.scheduler_address} gave this worker no node key (a scheduler "
                               "older than this worker?): it cannot check lease tokens, so it does not serve")
        self.worker_id = response.worker_id
        self.node_key = response.node_key   # checks this node's lease tokens and orders
        self.heartbeat_interval_s = response.heartbeat_interval_s or self.heartbeat_interval_s
        accepted = {g.uuid: g.tflops for g in response.gpus}
        for g in self.backend.gpus:
            g.tflops = accepted.get(g.uuid) or g.tflops or (models.lookup_tflops(g.model) or 0.0)
        await self._apply_close_orders(response.close_allocations)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            try:
                await self._heartbeat()
            except grpc.aio.AioRpcError as e:
                if e.code() in REFUSALS:
                    self._refuse(f"{e.code().name}: {e.details()}")
                else:
                    log.warning("heartbeat to %s failed: %s (%s)", self.scheduler_address, e.code().name,
                                e.details())
            except RegistrationRefused as e:
                self._refuse(str(e))
            except Exception:  # keep beating whatever one round hit
                log.exception("heartbeat round failed")

    def _refuse(self, why: str) -> None:
        """The scheduler refuses this worker: no new sessions from now on (the scheduler ends the node's
        allocations at its node timeout); one log line per distinct reason, not one per heartbeat."""
        if why != self.refused:
            log.error("the scheduler refuses this worker, which serves no new sessions until it accepts it "
                      "again: %s", why)
        self.refused = why

    async def _heartbeat(self) -> None:
        request = pb.HeartbeatRequest(worker_id=self.worker_id, gpus=self.gpu_usage(),
                                      active_allocation_ids=sorted({s.allocation_id for s in self.sessions.values()}),
                                      sessions=self.session_usage(), instance_id=self.instance_id)
        response = await self._stub.Heartbeat(request, timeout=10, metadata=self._md)
        if response.reregister:
            await self._register()
        if self.refused:
            log.warning("the scheduler accepts this worker again: it serves new sessions")
            self.refused = ""
        if response.heartbeat_interval_s:
            self.heartbeat_interval_s = response.heartbeat_interval_s
        await self._apply_close_orders(response.close_allocations)

    async def _apply_close_orders(self, orders) -> None:
        for order in orders:
            await self.close_allocation(order.allocation_id, order.reason)

    # ---- sessions ----

    async def _authorize(self, token: bytes) -> SessionGrant:
        if self.refused:
            raise PermissionError(f"this worker serves no new sessions: the scheduler refuses it ({self.refused})")
        claims = await self._claims_of(token.decode("utf-8", "replace"))
        if claims.worker_id != self.worker_id:     # (before registration worker_id is "": nothing matches)
            raise PermissionError(f"lease is for worker {claims.worker_id}, this is {self.worker_id or 'unregistered'}")
        mine = {g.uuid: g for g in self.backend.gpus}
        missing = [u for u in claims.gpu_uuids if u not in mine]
        if missing:
            raise PermissionError(f"lease names GPU {missing[0]}, which is not on this worker")
        gpus = [mine[u] for u in claims.gpu_uuids]
        held = sum(1 for s in self.sessions.values() if s.allocation_id == claims.allocation_id)
        if held >= self.max_sessions:
            raise PermissionError(f"allocation {claims.allocation_id} already has {held} sessions on this worker, the "
                                  f"most one allocation may hold ({MAX_SESSIONS_VAR}): end one first")
        session_id = f"{claims.allocation_id}-{next(self._counter)}"
        pending = self.pending_limits.get(claims.allocation_id)
        vram_mib = pending.vram_mib if pending and pending.vram_mib else claims.vram_limit_mib
        tflops = pending.tflops if pending and pending.tflops else claims.tflops_limit
        # one region per allocation: its sessions share the VRAM cap and the compute share
        limits = self.regions.get(claims.allocation_id)
        if limits is None:
            limits = self._create_limits(claims.allocation_id, vram_mib, tflops, gpus)
            if limits is not None:
                self.regions[claims.allocation_id] = limits
        self.sessions[session_id] = Session(session_id, claims.allocation_id, gpus, limits)
        env = session_env(self.backend, gpus)
        if self.identity is not None:
            env[gpu_process.TAG_VAR] = self.identity.tag   # found again by a restarted daemon
        # CUDA IPC handles open only within one allocation
        env["TF_IPC_SCOPE"] = self.ipc_scopes.setdefault(claims.allocation_id,
                                                         f"{claims.allocation_id}.{secrets.token_hex(16)}")
        if limits is None:
            return SessionGrant(session_id=session_id, env=env, preload=[])
        env.update(limits.env)
        return SessionGrant(session_id=session_id, env=env, preload=list(limits.preload))

    def _tls_spawn_env(self) -> tuple[dict[str, str], list[str]]:
        """What a TLS executor starts with before its client is known: this daemon's tag (found again by a
        restarted daemon in /proc/PID/environ, which setenv does not change) and the limiter, preloaded
        whenever it is built since a grant may carry limits (its TF_LIMITER_* arrive with the grant)."""
        env = {gpu_process.TAG_VAR: self.identity.tag} if self.identity is not None else {}
        lib = native.limiter_lib()
        return env, [str(lib)] if lib.exists() else []

    async def _claims_of(self, token: str) -> "lease.LeaseClaims":
        """Verified claims of a client's lease token. Refused: a bad signature, a token past its expiry (the
        client renews and gets a fresh one), an allocation the scheduler told us to close (released,
        preempted, expired, lost), and an allocation the scheduler does not confirm active the first time
        it connects here (a restarted worker has no memory of closes). Fails closed if the scheduler cannot
        be asked."""
        try:
            claims = lease.verify(token, self.node_key)
        except lease.LeaseError as e:
            raise PermissionError(f"lease rejected: {e}") from None
        aid = claims.allocation_id
        self._check_not_revoked(aid)
        if aid not in self.confirmed:
            try:
                alloc = await self._stub.GetAllocation(pb.GetAllocationRequest(allocation_id=aid), timeout=5,
                                                       metadata=self._md)
            except grpc.aio.AioRpcError as e:
                raise PermissionError(f"lease rejected: the scheduler could not confirm allocation {aid} "
                                      f"({e.code().name}: {e.details()})") from None
            if alloc.state != pb.ALLOCATION_ACTIVE:
                self.revoke(aid, alloc.reason or pb.AllocationState.Name(alloc.state).lower())
            self._check_not_revoked(aid)     # also catches a close order that arrived while we asked
            self.confirmed.add(aid)
        return claims

    def _check_not_revoked(self, aid: str) -> None:
        gone = self.revoked.get(aid)
        if gone is not None:
            raise PermissionError(f"lease rejected: allocation {aid} is closed ({gone[1]}); allocate again")

    def revoke(self, aid: str, reason: str) -> None:
        """Remembers that aid's tokens are void (for longer than any token can live)."""
        now = time.time()
        if len(self.revoked) >= 100_000:
            horizon = now - REVOKED_KEEP_S
            self.revoked = {k: v for k, v in self.revoked.items() if v[0] > horizon}
        self.revoked[aid] = (now, reason)
        self.confirmed.discard(aid)

    def _create_limits(self, allocation_id: str, vram_mib: int, tflops: float, gpus: list[GpuInfo]):
        """The allocation's limiter region. Limits are per GPU; the limiter keeps one VRAM ledger per region, so
        an allocation of N GPUs gets N times the per-GPU VRAM limit over all its devices together (one device may
        hold more than its share), and its launches on all of them share the per-GPU compute share."""
        if not native.limiter_lib().exists():
            log.warning("limiter not built (%s): allocation %s runs without limits", native.limiter_lib(), allocation_id)
            return None
        gpu = gpus[0]
        device_tflops = gpu.tflops or (models.lookup_tflops(gpu.model) or 0.0)
        if tflops and not device_tflops:
            log.warning("GPU model %r has no known TFLOPS (set TF_GPU_TFLOPS): allocation %s gets no compute limit",
                        gpu.model, allocation_id)
        region = f"{self.identity.tag}-{allocation_id}" if self.identity is not None else allocation_id
        return limits.SessionLimits.create(region, vram_limit_bytes=(vram_mib * len(gpus)) << 20,
                                           tflops_limit=tflops if device_tflops else 0.0, device_tflops=device_tflops)

    async def _on_session_end(self, end: SessionEnd) -> None:
        if end.returncode not in (0, None):
            log.info("session %s ended: %s (exit %s)", end.session_id, end.reason, end.returncode)
        self._drop_session(end.session_id)

    def _drop_session(self, session_id: str) -> None:
        """Forgets a session; the allocation's region goes with its last session (a dead process's charges
        in it are given back by the limiters of the sessions that remain)."""
        session = self.sessions.pop(session_id, None)
        if session is None or any(s.allocation_id == session.allocation_id for s in self.sessions.values()):
            return
        region = self.regions.pop(session.allocation_id, None)
        if region is not None:
            region.close()
        scope = self.ipc_scopes.pop(session.allocation_id, None)
        if scope is not None:
            shutil.rmtree(ipc_scope_dir(scope), ignore_errors=True)   # its IPC handles died with it

    async def close_allocation(self, allocation_id: str, reason: str) -> bool:
        self.revoke(allocation_id, reason)
        self.pending_limits.pop(allocation_id, None)
        targets = [s.session_id for s in self.sessions.values() if s.allocation_id == allocation_id]
        for session_id in targets:
            await self.dataplane.close_session(session_id, reason)
            self._drop_session(session_id)
        return bool(targets)

    def accept_order_once(self, order: dict) -> bool:
        """False when this signed order was seen before (a replay); remembers it for its lifetime."""
        now = time.time()
        if len(self._seen_orders) > 10_000 or now >= self._seen_prune_at:
            self._seen_prune_at = now + 10.0
            horizon = now - 2 * lease.ORDER_MAX_AGE_S
            self._seen_orders = {k: t for k, t in self._seen_orders.items() if t > horizon}
        key = (order.get("action"), order.get("allocation_id"), order.get("nonce"), order.get("issued_at"))
        if key in self._seen_orders:
            return False
        self._seen_orders[key] = float(order.get("issued_at", now))
        return True

    def set_limits(self, allocation_id: str, limits) -> bool:
        """New per-GPU limits for allocation_id: written into its live region (as _create_limits scales them),
        else kept for its first session."""
        self.pending_limits[allocation_id] = limits
        region = self.regions.get(allocation_id)
        if region is None:
            return False
        count = next((len(s.gpus) for s in self.sessions.values() if s.allocation_id == allocation_id), 1)
        region.update(vram_limit_bytes=(limits.vram_mib * count << 20) if limits.vram_mib else None,
                      tflops_limit=limits.tflops or None)
        return True

    # ---- usage ----

    def session_usage(self) -> list:
        """One entry per allocation (its region counts all its sessions; pid: one of them)."""
        out = []
        pids = {sid: info.pid for sid, info in self.dataplane.sessions().items()}
        seen = set()
        for s in self.sessions.values():
            if s.allocation_id in seen:
                continue
            seen.add(s.allocation_id)
            used_mib, tflops_used, limits = 0, 0.0, common.Resources()
            if s.limits is not None:
                u = s.limits.usage()
                used_mib = u.vram_used >> 20
                limits = common.Resources(tflops=s.limits.tflops_limit, vram_mib=s.limits.vram_limit_bytes >> 20)
                tflops_used = getattr(u, "tflops_used", 0.0)
            out.append(common.SessionUsage(allocation_id=s.allocation_id, gpu_uuid=s.gpus[0].uuid,
                                           vram_used_mib=used_mib, tflops_used=tflops_used, limits=limits,
                                           pid=pids.get(s.session_id, 0)))
        return out

    def gpu_usage(self) -> list:
        """-> [GPUUsage] of this node's GPUs: the sum of their sessions' VRAM (MiB) and TFLOPS, and utilization =
        TFLOPS used / the GPU's TFLOPS (0..1; 0 when the model's TFLOPS are unknown here)."""
        per_gpu = {g.uuid: common.GPUUsage(uuid=g.uuid) for g in self.backend.gpus}
        gpus_of = {s.allocation_id: s.gpus for s in self.sessions.values()}
        for u in self.session_usage():
            gpus = gpus_of[u.allocation_id]     # one region for all of them: shared out evenly
            for g in gpus:
                per_gpu[g.uuid].vram_used_mib += u.vram_used_mib // len(gpus)
                per_gpu[g.uuid].tflops_used += u.tflops_used / len(gpus)
        for g in self.backend.gpus:
            cap = g.tflops or models.lookup_tflops(g.model) or 0.0
            if cap > 0:
                per_gpu[g.uuid].utilization = min(1.0, per_gpu[g.uuid].tflops_used / cap)
        return list(per_gpu.values())


class _AdminServicer(worker_rpc.WorkerAdminServicer):
    """WorkerAdmin gRPC API, called by the scheduler."""

    def __init__(self, daemon: WorkerDaemon):
        self.daemon = daemon

    async def SetSessionLimits(self, request, context):
        # Only the scheduler (the holder of this node's key) may change limits: a signed "limits" order that
        # names this allocation and these exact figures, fresh, and never seen before (no replay).
        try:
            order = lease.verify_order(request.auth_token, "limits", request.allocation_id, self.daemon.node_key)
            signed = (float(order.get("tflops", -1)), int(order.get("vram_mib", -1)))
        except (lease.LeaseError, TypeError, ValueError) as e:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"limits order rejected: {e}")
        if signed != (float(request.limits.tflops), int(request.limits.vram_mib)):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                f"limits order rejected: the request's limits ({request.limits.tflops:g} TFLOPS, "
                                f"{request.limits.vram_mib} MiB) differ from the signed ones ({signed[0]:g}, "
                                f"{signed[1]})")
        if not self.daemon.accept_order_once(order):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                "limits order rejected: already applied (replayed order)")
        applied = self.daemon.set_limits(request.allocation_id, request.limits)
        return worker_pb.SetSessionLimitsResponse(applied=applied)

    async def CloseSession(self, request, context):
        # Only the scheduler (the holder of this node's key) may end a client's session.
        try:
            lease.verify_order(request.auth_token, "close", request.allocation_id, self.daemon.node_key)
        except lease.LeaseError as e:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"close order rejected: {e}")
        closed = await self.daemon.close_allocation(request.allocation_id, request.reason or "closed by scheduler")
        return worker_pb.CloseSessionResponse(closed=closed)

    async def GetUsage(self, request, context):
        # Which allocations run here, their processes and usage: the scheduler's to read (its probe), not a
        # tenant's that found the admin port on this host.
        try:
            lease.verify_order(request.auth_token, "usage", "", self.daemon.node_key)
        except lease.LeaseError as e:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"usage request rejected: {e}")
        return worker_pb.GetUsageResponse(gpus=self.daemon.gpu_usage(), sessions=self.daemon.session_usage())


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def configure_logging() -> None:
    """The worker's log lines (a session that ended badly and why, failed heartbeats, reaped processes) on
    stderr at TF_LOG_LEVEL (default INFO); called by `tensorfusion worker` and `up` before the daemon starts.
    ValueError (one line) for a level that is not one of LOG_LEVELS."""
    level = os.environ.get("TF_LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"TF_LOG_LEVEL={os.environ['TF_LOG_LEVEL']!r} is not a log level: use "
                         f"{', '.join(LOG_LEVELS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
