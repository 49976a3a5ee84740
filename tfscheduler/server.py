"""The scheduler's gRPC edge (grpc.aio): protobuf <-> SchedulerState, typed errors -> status codes,
close orders -> WorkerAdmin.CloseSession, and the background tick (lease expiry, silent nodes).

Called by `python -m tfscheduler` and by `tensorfusion scheduler/up` (tfclient.cli) through serve().
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time

import grpc

from tfclient.errors import (InvalidRequest, NodeNameTaken, NotLeader, PermissionDenied, StoreConflict,
                             TensorFusionError, WorkerUnreachable, to_status)
from tfclient import tls as tlsmod
from tfclient.protos import load
from tfscheduler import auth, validate
from tfscheduler import lease as lease_tokens
from tfscheduler.state import Config, SchedulerState, load_config
from tfscheduler.etcd_store import EtcdStore
from tfscheduler.storage import SqliteStore

pb = load("scheduler_pb2")
cpb = load("common_pb2")
rpc = load("scheduler_pb2_grpc")
wpb = load("worker_pb2")
wrpc = load("worker_pb2_grpc")

log = logging.getLogger("tfscheduler")


def _res(tflops: float, vram: float) -> "cpb.Resources":
    return cpb.Resources(tflops=float(tflops), vram_mib=int(round(vram)))


class SchedulerService(rpc.SchedulerServicer):
    def __init__(self, state: SchedulerState, tokens: "auth.TokenRegistry",
                 worker_tls: "tlsmod.ClientTLS | None" = None):
        self.state = state
        self.tokens = tokens
        self.worker_tls = worker_tls    # how the workers' admin API is dialed (None: plaintext)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._tasks: set = set()
        self._probes: dict[str, asyncio.Task] = {}   # worker id -> its probe in flight (ReportWorkerUnreachable)
        self.credentials: dict[str, str] = {}        # worker id -> id of the token it last registered/heartbeat with
        self.metrics = None           # tfscheduler.metrics.SchedulerMetrics when metrics are served
        self.election = None          # tfscheduler.election.Election with replicas on etcd
        self.etcd = None              # the EtcdStore, when the state is in etcd

    # ---- helpers ----
    def _alloc_pb(self, a, token: str = "", preempted=()) -> "pb.Allocation":
        node = self.state.nodes.get(a.worker_id)
        ep = cpb.WorkerEndpoints(unix_path=node.unix_path, tcp=node.tcp, admin=node.admin) if node else None
        used = self.state.alloc_usage.get(a.id, (0.0, 0))
        return pb.Allocation(
            id=a.id, pool=a.pool, namespace=a.namespace, workload=a.workload, worker_id=a.worker_id,
            node_name=node.node_name if node else a.worker_id, gpu_uuids=list(a.gpu_uuids),
            requests=_res(a.tflops, a.vram_mib), limits=_res(a.lim_tflops, a.lim_vram_mib), qos=a.qos,
            endpoints=ep, lease_token=token, lease_expires_at=a.lease_expires_at, state=a.state, reason=a.reason,
            created_at=a.created_at, preempted=list(preempted), used=_res(*used))

    def _admin(self, target: str):
        ch = self._channels.get(target)
        if ch is None:
            ch = self._channels[target] = tlsmod.channel(target, self.worker_tls, aio=True)
        return wrpc.WorkerAdminStub(ch)

    async def _close_one(self, c) -> None:
        try:
            await self._admin(c.admin).CloseSession(
                wpb.CloseSessionRequest(allocation_id=c.allocation_id, reason=c.reason,
                                        auth_token=lease_tokens.sign_order(
                                            "close", c.allocation_id,
                                            lease_tokens.node_key(self.state.secret, c.worker_id))),
                timeout=self.state.cfg.admin_timeout_s)
        except grpc.RpcError as e:  # the heartbeat reply repeats the order
            hint = tlsmod.explain(e.details(), c.admin, self.worker_tls) or e.code()
            log.info("CloseSession(%s) on %s failed (%s); it goes out with the next heartbeat reply",
                     c.allocation_id, c.worker_id, hint)

    async def deliver_closes(self, closes) -> None:
        """Sends close orders and waits for the workers' answers (each bounded by admin_timeout_s), so that a
        released or preempted allocation's token is already void on its worker when the caller hears back."""
        for c in closes:
            log.info("closing %s on %s: %s", c.allocation_id, c.worker_id, c.reason)
        await asyncio.gather(*(self._close_one(c) for c in closes if c.admin))

    def send_closes(self, closes) -> None:
        for c in closes:
            log.info("closing %s on %s: %s", c.allocation_id, c.worker_id, c.reason)
            if c.admin:
                t = asyncio.get_running_loop().create_task(self._close_one(c))
                self._tasks.add(t)
                t.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for ch in self._channels.values():
            await ch.close()

    # ---- workers ----
    # ---- who may touch what (the role was checked by auth.AuthInterceptor) ----
    @staticmethod
    def _as_node(node_name: str) -> None:
        p = auth.caller()
        if p.role == auth.WORKER and p.node_name != node_name:
            raise PermissionDenied(f"this worker token is bound to node {p.node_name!r}, not {node_name!r}: "
                                   f"a worker registers and reports only as its own node")

    def _owned(self, aid: str):
        """The allocation aid if the caller may act on it (its namespace's tenant, the worker it runs on,
        or an admin); PermissionDenied otherwise. UnknownAllocation if it does not exist."""
        validate.token_like("allocation_id", aid)
        a = self.state.get(aid)
        p = auth.caller()
        if p.role == auth.TENANT and a.namespace != p.namespace:
            raise PermissionDenied(f"allocation {aid} belongs to namespace {a.namespace!r}; your token is for "
                                   f"namespace {p.namespace!r}")
        if p.role == auth.WORKER and a.worker_id != p.node_name:
            raise PermissionDenied(f"allocation {aid} is not placed on node {p.node_name!r}")
        return a

    async def RegisterWorker(self, request, context):
        self._as_node(request.node_name)
        ep = request.endpoints
        try:
            wid, gpus, closes = self.state.register_worker(
                request.node_name, request.pool, list(request.gpus), ep.unix_path, ep.tcp, ep.admin,
                dict(request.labels), list(request.active_allocation_ids), request.instance_id)
        except NodeNameTaken as e:
            log.warning("registration of node %r by another worker instance (admin %s) refused: %s",
                        request.node_name, ep.admin or "none", e)
            raise
        self.credentials[wid] = auth.caller().token_id
        log.info("worker %s registered: pool %s, %d GPU(s)", wid, self.state.nodes[wid].pool, len(gpus))
        cfg = self.state.cfg
        return pb.RegisterWorkerResponse(
            worker_id=wid, heartbeat_interval_s=cfg.heartbeat_interval_s, node_timeout_s=cfg.node_timeout_s,
            close_allocations=[pb.CloseOrder(allocation_id=i, reason=r) for i, r in closes],
            gpus=[cpb.GPUInfo(index=g.index, uuid=g.uuid, model=g.model, vendor=g.vendor, vram_mib=g.vram_mib,
                              tflops=g.tflops) for g in gpus],
            node_key=lease_tokens.node_key(self.state.secret, wid))

    async def Heartbeat(self, request, context):
        self._as_node(request.worker_id)
        usage = [(u.uuid, u.tflops_used, u.vram_used_mib, u.utilization) for u in request.gpus]
        sessions = [(s.allocation_id, s.tflops_used, s.vram_used_mib) for s in request.sessions]
        closes, rereg = self.state.heartbeat(request.worker_id, usage, list(request.active_allocation_ids), sessions,
                                             request.instance_id)
        if not rereg:
            self.credentials[request.worker_id] = auth.caller().token_id
        return pb.HeartbeatResponse(close_allocations=[pb.CloseOrder(allocation_id=i, reason=r) for i, r in closes],
                                    reregister=rereg, heartbeat_interval_s=self.state.cfg.heartbeat_interval_s)

    # ---- allocations ----
    async def Allocate(self, request, context):
        r = request
        t0 = time.perf_counter()
        namespace = r.namespace
        p = auth.caller()
        if p.role == auth.TENANT:
            if namespace and namespace != p.namespace:
                raise PermissionDenied(f"your token is for namespace {p.namespace!r}, not {namespace!r}: "
                                       f"allocate in your own namespace (leave it empty)")
            namespace = p.namespace
        g = self.state.allocate(
            r.requests.tflops, r.requests.vram_mib, r.limits.tflops, r.limits.vram_mib, r.qos, r.gpu_count, r.pool,
            namespace, r.workload, r.gpu_model, r.vendor, r.local_gpu, r.client_node, r.lease_ttl_s, r.request_id)
        out = self._alloc_pb(g.alloc, g.token, [c.allocation_id for c in g.closes])
        await self.deliver_closes(g.closes)        # the victims' tokens are void before this one is handed out
        if self.metrics is not None:
            self.metrics.allocate_seconds.observe(time.perf_counter() - t0)
        return out

    async def Release(self, request, context):
        self._owned(request.allocation_id)
        released, closes = self.state.release(request.allocation_id)
        await self.deliver_closes(closes)
        return pb.ReleaseResponse(released=released)

    async def RenewLease(self, request, context):
        self._owned(request.allocation_id)
        a = self.state.renew(request.allocation_id, request.ttl_s)
        return pb.Lease(allocation_id=a.id, lease_token=self.state.token(a), expires_at=a.lease_expires_at)

    async def GetAllocation(self, request, context):
        return self._alloc_pb(self._owned(request.allocation_id))

    async def ReportWorkerUnreachable(self, request, context):
        a = self._owned(request.allocation_id)
        validate.text("detail", request.detail)
        node = self.state.nodes.get(a.worker_id)
        if not self.state.placeable(a.worker_id):      # known already (reports, node timeout): no probe
            return pb.ReportWorkerUnreachableResponse(
                node_unavailable=True, reason=self.state.unreachable.get(a.worker_id) or
                f"worker {a.worker_id} missed its heartbeats")
        if not node.admin:
            return pb.ReportWorkerUnreachableResponse(node_unavailable=False,
                                                      reason=f"worker {a.worker_id} has no admin API to probe")
        why = await self._probe(a.worker_id, node.admin)
        if why is None:
            log.info("worker %s answers its probe although a client of %s could not reach it (%s)", a.worker_id,
                     a.id, request.detail)
            return pb.ReportWorkerUnreachableResponse(
                node_unavailable=False, reason=f"the scheduler reaches worker {a.worker_id} ({node.admin})")
        if self.state.mark_unreachable(a.worker_id, why):
            log.warning("worker %s takes no new allocations until it heartbeats: a client of %s could not reach it "
                        "(%s) and neither could its probe (%s)", a.worker_id, a.id, request.detail, why)
        return pb.ReportWorkerUnreachableResponse(node_unavailable=True, reason=why)

    async def _probe(self, worker_id: str, admin: str) -> str | None:
        """Asks worker_id's admin API for its usage on a fresh channel (one connection attempt: a cached channel
        in reconnect backoff would fail at once even for a worker that is back). -> None when it answered within
        admin_timeout_s, else what failed. Reports about one worker that arrive together share one probe."""
        task = self._probes.get(worker_id)
        if task is None:
            task = self._probes[worker_id] = asyncio.get_running_loop().create_task(self._probe_once(worker_id, admin))
            task.add_done_callback(lambda _: self._probes.pop(worker_id, None))
        return await asyncio.shield(task)

    async def _probe_once(self, worker_id: str, admin: str) -> str | None:
        channel = tlsmod.channel(admin, self.worker_tls, aio=True)
        order = lease_tokens.sign_order("usage", "", lease_tokens.node_key(self.state.secret, worker_id))
        try:
            await wrpc.WorkerAdminStub(channel).GetUsage(wpb.GetUsageRequest(auth_token=order),
                                                         timeout=self.state.cfg.admin_timeout_s)
            return None
        except grpc.RpcError as e:
            return (f"probe of {admin}: "
                    f"{tlsmod.explain(e.details(), admin, self.worker_tls) or f'{e.code().name}: {e.details()}'}")
        finally:
            await channel.close()

    async def order_limits(self, a, token: str) -> None:
        """Orders a's worker (signed SetSessionLimits) to enforce a's limits now. grpc.RpcError if it did not."""
        node = self.state.nodes.get(a.worker_id)
        if node and node.admin:
            await self._admin(node.admin).SetSessionLimits(
                wpb.SetSessionLimitsRequest(
                    allocation_id=a.id, limits=_res(a.lim_tflops, a.lim_vram_mib), lease_token=token,
                    auth_token=lease_tokens.sign_order("limits", a.id, lease_tokens.node_key(self.state.secret, a.worker_id),
                                                       tflops=float(a.lim_tflops),
                                                       vram_mib=int(round(a.lim_vram_mib)))),
                timeout=self.state.cfg.admin_timeout_s)

    async def autoscale(self) -> None:
        """One pass of the workload loop (state.autoscale) and the worker orders for what it changed."""
        changes = self.state.autoscale()

        async def one(new, old):
            try:
                await self.order_limits(new, self.state.token(new))
                log.info("autoscale: %s (workload %s/%s) now requests %g TFLOPS/%d MiB, limits %g TFLOPS/%d MiB",
                         new.id, new.namespace, new.workload, new.tflops, new.vram_mib, new.lim_tflops,
                         new.lim_vram_mib)
            except grpc.RpcError as e:
                self.state.autoscale_failed(new, old, f"worker {new.worker_id} did not apply the new limits "
                                                      f"({e.code().name}: {e.details()})")
        await asyncio.gather(*(one(n, o) for n, o in changes))

    async def SetAllocationLimits(self, request, context):
        old = self._owned(request.allocation_id)      # a tenant changes its own namespace's allocations only
        a = self.state.set_limits(request.allocation_id, request.limits.tflops, request.limits.vram_mib,
                                  request.requests.tflops, request.requests.vram_mib)
        token = self.state.token(a)
        node = self.state.nodes.get(a.worker_id)
        if node and node.admin:
            try:
                await self.order_limits(a, token)
            except grpc.RpcError as e:
                try:  # put the old figures back: the worker never saw the new ones
                    self.state.set_limits(a.id, old.lim_tflops, old.lim_vram_mib, old.tflops, old.vram_mib)
                except TensorFusionError:
                    pass
                why = tlsmod.explain(e.details(), node.admin, self.worker_tls) or f"{e.code().name}: {e.details()}"
                raise WorkerUnreachable(f"worker {a.worker_id} ({node.admin}) did not apply the new limits "
                                        f"({why}); limits unchanged, retry") from e
        return self._alloc_pb(a, token)

    async def ListPool(self, request, context):
        st = self.state
        p = auth.caller()
        validate.name("pool", request.pool)
        validate.name("namespace", request.namespace)
        namespace = request.namespace
        if p.role == auth.TENANT:
            if namespace and namespace != p.namespace:
                raise PermissionDenied(f"your token is for namespace {p.namespace!r}, not {namespace!r}: "
                                       f"only an admin lists other namespaces")
            namespace = p.namespace
        show_endpoints = p.role == auth.ADMIN      # a node's admin address is for the scheduler and admins
        if request.pool and request.pool not in st.index.policies:
            from tfclient.errors import UnknownPool
            raise UnknownPool(f"pool {request.pool!r} does not exist (pools: {', '.join(sorted(st.index.policies))})")
        out = pb.ListPoolResponse()
        totals: dict[str, list] = {}
        for wid, node in st.nodes.items():
            if request.pool and node.pool != request.pool:
                continue
            available = st.placeable(wid)
            ns = out.nodes.add(worker_id=wid, node_name=node.node_name, pool=node.pool, available=available,
                               last_heartbeat=st.last_seen.get(wid, 0.0),
                               endpoints=cpb.WorkerEndpoints(unix_path=node.unix_path, tcp=node.tcp, admin=node.admin)
                               if show_endpoints else None,
                               labels=node.labels)
            t = totals.setdefault(node.pool, [0.0, 0, 0.0, 0])
            for g in st.node_gpus.get(wid, []):
                if g.uuid not in st.index.rows:
                    continue
                c = st.index.gpu_charges(g.uuid)
                u = st.usage.get(g.uuid, (0.0, 0, 0.0))
                ns.gpus.add(info=cpb.GPUInfo(index=g.index, uuid=g.uuid, model=g.model, vendor=g.vendor,
                                             vram_mib=g.vram_mib, tflops=g.tflops),
                            allocated_requests=_res(c["req_tflops"], c["req_vram_mib"]),
                            allocated_limits=_res(c["lim_tflops"], c["lim_vram_mib"]),
                            limit_capacity=_res(c["lcap_tflops"], c["lcap_vram_mib"]),
                            usage=cpb.GPUUsage(uuid=g.uuid, tflops_used=u[0], vram_used_mib=int(u[1]),
                                               utilization=u[2]),
                            allocation_count=c["allocations"])
                if available:
                    t[0] += g.tflops
                    t[1] += g.vram_mib
                t[2] += c["req_tflops"]
                t[3] += c["req_vram_mib"]
        for name, pol in sorted(st.index.policies.items()):
            if request.pool and name != request.pool:
                continue
            t = totals.get(name, [0.0, 0, 0.0, 0])
            out.pools.add(name=name, strategy=pol.strategy, tflops_oversell_ratio=pol.tflops_oversell,
                          vram_oversell_ratio=pol.vram_oversell, capacity=_res(t[0], t[1]), allocated=_res(t[2], t[3]))
        if request.include_allocations:
            for a in st.allocs.values():
                if (not request.pool or a.pool == request.pool) and (not namespace or a.namespace == namespace):
                    out.allocations.append(self._alloc_pb(a))
        return out

    # ---- tokens (admin only, see auth.POLICY) ----
    @staticmethod
    def _token_pb(r) -> "pb.TokenInfo":
        return pb.TokenInfo(id=r.id, role=r.role, namespace=r.namespace, node_name=r.node_name,
                            description=r.description, created_at=r.created_at, revoked_at=r.revoked_at)

    async def CreateToken(self, request, context):
        validate.name("namespace", request.namespace)
        validate.name("node_name", request.node_name, validate.NODE_MAX)
        validate.text("description", request.description)
        rec, text = self.tokens.create(request.role, request.namespace, request.node_name, request.description)
        log.info("token %s created (%s) by %s", rec.id, rec.role, auth.caller().token_id)
        return pb.CreatedToken(info=self._token_pb(rec), token=text)

    async def RevokeToken(self, request, context):
        validate.token_like("id", request.id)
        revoked = self.tokens.revoke(request.id)
        log.info("token %s revoked by %s", request.id, auth.caller().token_id)
        for wid in [w for w, tid in self.credentials.items() if tid == request.id]:
            # its worker's heartbeats are refused from now on: no new allocation goes there meanwhile (its
            # allocations are left to the node timeout, as for any node that stops heartbeating)
            del self.credentials[wid]
            if self.state.mark_unreachable(wid, f"the worker token {request.id} it heartbeats with was revoked"):
                log.warning("worker %s takes no new allocations: its worker token %s was revoked", wid, request.id)
        return pb.RevokeTokenResponse(revoked=revoked)

    async def ListTokens(self, request, context):
        recs = sorted(self.tokens.by_id.values(), key=lambda r: r.created_at)
        return pb.ListTokensResponse(tokens=[self._token_pb(r) for r in recs
                                             if request.include_revoked or not r.revoked_at])


    # ---- workloads (seed 004) ----
    @staticmethod
    def _namespace(namespace: str) -> str:
        """The namespace a workload call acts in: "" = a tenant's own ("default" for an admin)."""
        validate.name("namespace", namespace)
        p = auth.caller()
        if p.role == auth.TENANT:
            if namespace and namespace != p.namespace:
                raise PermissionDenied(f"your token is for namespace {p.namespace!r}, not {namespace!r}: "
                                       f"only an admin acts in other namespaces")
            return p.namespace
        return namespace or "default"

    def _workload_pb(self, e) -> "pb.Workload":
        st = pb.WorkloadStatus(applied_recommended_replicas=e.applied_replicas,
                               active_cron_scaling_rule=e.active_rule)
        for c in e.conditions.values():
            st.conditions.add(type=c["type"], status=c["status"], reason=c["reason"], message=c["message"],
                              last_transition_time=c["lastTransitionTime"])
        for field_name, r in (("recommendation", e.recommendation), ("effective", e.effective)):
            if r is not None:
                getattr(st, field_name).CopyFrom(pb.ResourceRequirements(
                    requests=_res(r.tflops or 0.0, r.vram_mib or 0), limits=_res(r.lim_tflops or 0.0,
                                                                                r.lim_vram_mib or 0)))
        for field_name, est in (("tflops_estimate", e.est_tflops), ("vram_estimate", e.est_vram)):
            if est is not None:
                getattr(st, field_name).CopyFrom(pb.Estimate(target=est.target, lower_bound=est.lower_bound,
                                                             upper_bound=est.upper_bound))
        return pb.Workload(name=e.name, namespace=e.namespace, spec_json=json.dumps(e.doc), status=st,
                           allocation_ids=[a.id for a in self.state.workload_allocs(e)], updated_at=e.updated_at)

    async def ApplyWorkload(self, request, context):
        namespace = self._namespace(request.namespace)
        try:
            doc = json.loads(request.spec_json)
        except ValueError as e:
            raise InvalidRequest(f"spec_json: not a JSON document ({e})") from None
        e = self.state.apply_workload(namespace, doc)
        log.info("workload %s/%s applied by %s", namespace, e.name, auth.caller().token_id)
        return self._workload_pb(e)

    async def GetWorkload(self, request, context):
        validate.text("name", request.name)
        return self._workload_pb(self.state.get_workload(self._namespace(request.namespace), request.name))

    async def ListWorkloads(self, request, context):
        validate.name("namespace", request.namespace)
        namespace = request.namespace
        p = auth.caller()
        if p.role == auth.TENANT:
            namespace = self._namespace(namespace)
        entries = sorted(self.state.autoscaler.entries.values(), key=lambda e: e.key)
        return pb.ListWorkloadsResponse(workloads=[self._workload_pb(e) for e in entries
                                                   if not namespace or e.namespace == namespace])


def _typed_errors(method):
    """Turns TensorFusionError raised by a handler into its status code + "tf-error" metadata.
    (A decorator rather than a grpc.aio interceptor: interceptors cost ~0.1 ms per call here.)"""
    @functools.wraps(method)
    async def wrapped(self, request, context):
        try:
            return await method(self, request, context)
        except TensorFusionError as e:
            if isinstance(e, NotLeader) and self.election is not None:
                self.election.lost(getattr(e, "leader", ""))   # another replica leads now: follow at once
                self.etcd.guard = FOLLOWER_GUARD
            elif isinstance(e, StoreConflict):
                self.state.resync()                   # another scheduler wrote the same GPUs: see it for the retry
            code, msg, md = to_status(e)
            await context.abort(code, msg, trailing_metadata=md)
    return wrapped


for _name in ("RegisterWorker", "Heartbeat", "Allocate", "Release", "RenewLease", "GetAllocation",
              "ReportWorkerUnreachable", "ListPool",
              "SetAllocationLimits", "CreateToken", "RevokeToken", "ListTokens", "ApplyWorkload", "GetWorkload",
              "ListWorkloads"):
    setattr(SchedulerService, _name, _typed_errors(getattr(SchedulerService, _name)))


# Explicit bounds: a bigger request is refused by grpc with RESOURCE_EXHAUSTED ("Received message larger than
# max (N vs. 4194304)"); metadata (the bearer token) is small, so headers beyond 16 KiB are refused too.
MAX_REQUEST_BYTES = 4 << 20
MAX_RESPONSE_BYTES = 64 << 20           # ListPool of a large pool with its allocations
MAX_METADATA_BYTES = 16 << 10
SERVER_OPTIONS = [("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
                  ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
                  ("grpc.max_metadata_size", MAX_METADATA_BYTES)]


class SchedulerServer:
    """Handle returned by serve(): the bound address, the state, stop()."""

    def __init__(self, server, service: SchedulerService, state: SchedulerState, port: int, host: str):
        self.server, self.service, self.state, self.port, self.host = server, service, state, port, host
        self.tokens = service.tokens
        self._ticker: asyncio.Task | None = None
        self._autoscaler: asyncio.Task | None = None
        self._campaign: asyncio.Task | None = None
        self._etcd: EtcdStore | None = None
        self.metrics_port: int | None = None

    @property
    def election(self):
        return self.service.election

    @property
    def leading(self) -> bool:
        """True unless this is a follower replica (SQLite, or etcd without election: always True)."""
        return self.service.election is None or self.service.election.leading

    async def settled(self, timeout_s: float = 30.0) -> None:
        """Returns once this replica leads or knows who does (at once without election)."""
        deadline = time.monotonic() + timeout_s
        while self.service.election is not None and not self.leading and not self.service.election.leader:
            if time.monotonic() > deadline:
                raise TimeoutError("no scheduler leader elected: is etcd reachable?")
            await asyncio.sleep(0.05)

    def _swap_state(self, state: SchedulerState) -> None:
        self.state = self.service.state = state
        if self.service.metrics is not None:
            self.service.metrics.state = state

    async def _on_elected(self, guard) -> None:
        """This replica now leads: read everything back (nodes get a full node_timeout_s from now to heartbeat,
        leases a full TTL, as after a restart) and the tokens created under the previous leader."""
        store = self._etcd
        store.guard = guard
        self._swap_state(SchedulerState(store, self.state.secret, self.state.cfg, clock=self.state.clock))
        self.tokens.by_id = {r.id: r for r in store.load_tokens()}
        log.info("leading: %d node(s), %d allocation(s) restored", len(self.state.nodes), len(self.state.allocs))

    async def _on_lost(self) -> None:
        self._etcd.guard = FOLLOWER_GUARD

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def _tick_loop(self) -> None:
        last = self.state.clock()
        while True:
            await asyncio.sleep(self.state.cfg.tick_s)
            now = self.state.clock()
            away, last = now - last - self.state.cfg.tick_s, now
            if self.service.election is not None and not self.service.election.leading:
                continue                    # a follower's state is not the truth: the leader expires and times out
            try:
                if away > self.state.cfg.heartbeat_interval_s:
                    # stopped (SIGSTOP, a suspended VM) for longer than a heartbeat: the renewals and heartbeats
                    # of that time were never received; without this, the first tick would close every session
                    log.warning("scheduler did not run for %.0f s: leases and node timeouts move on by as much",
                                away)
                    self.state.discount(away)
                self.service.send_closes(self.state.tick())
            except Exception:  # a bad tick must not stop expiry for good
                log.exception("scheduler tick failed")

    async def _autoscale_loop(self) -> None:
        while True:
            await asyncio.sleep(self.state.cfg.autoscale_interval_s)
            if not self.leading:       # a follower replica holds no live state: the leader scales
                continue
            try:
                await self.service.autoscale()
            except Exception:  # a bad pass must not stop the loop for good
                log.exception("autoscale pass failed")

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()

    async def stop(self, grace: float | None = 1.0) -> None:
        for t in (self._ticker, self._autoscaler):
            if t:
                t.cancel()
        if self.service.election is not None:
            await self.service.election.resign()      # the next replica leads without waiting for the lease
            if self._campaign:
                self._campaign.cancel()
        await self.server.stop(grace)
        await self.service.close()
        if self.service.metrics is not None:
            self.service.metrics.close()
        self.state.store.close()


FOLLOWER_GUARD = (b"", -1)       # EtcdStore.guard that no transaction passes: a follower writes nothing


async def serve(listen: str, db_path: str, secret: bytes, config: Config | None = None,
                config_path: str | None = None, metrics_listen: str | None = None, clock=None,
                store: str | None = None, etcd: dict | None = None, elect: bool = True,
                advertise: str | None = None, leader_ttl_s: int = 5, etcd_prefix: str = "/tensorfusion/",
                tls: "tlsmod.ServerTLS | None" = None, insecure: bool = False,
                worker_tls: "tlsmod.ClientTLS | None" = None, **overrides) -> SchedulerServer:
    """Starts the scheduler on listen ("host:port", port 0 = any free port) with state in db_path.
    store: "etcd://h:2379,h:2379" to keep the state in etcd instead (db_path unused); etcd: EtcdClient options
    (cacert, cert, key, user, password, timeout_s). elect: with etcd, run as one of several replicas (leader
    election, tfscheduler.election; advertise = the address clients reach this replica at, default listen's).
    elect=False lets several schedulers write one etcd at once (safe, but each sees only its own heartbeats:
    for tests of the transactions, not for production).
    metrics_listen: "host:port" for Prometheus metrics (handle.metrics_port tells the bound port).
    clock: the state's time source (unix seconds; default time.time), for tests of time-driven behaviour.
    tls: serve over TLS (tfclient.tls.ServerTLS: certificate, key, optional client CA = client certificates
    required). Without it, a listen address beyond loopback raises ValueError unless insecure=True.
    worker_tls: how the workers' admin API is dialed for close/limit orders (tfclient.tls.ClientTLS; None =
    plaintext).
    overrides: Config fields (lease_ttl_s=..., node_timeout_s=..., tick_s=..., autoscale_interval_s=...; 0
    turns the autoscale loop off)."""
    tlsmod.check_listen(listen, tls, insecure)
    if metrics_listen:
        tlsmod.check_listen(metrics_listen, None, insecure=True, what="metrics")
    server_creds = tls.credentials() if tls else None     # a bad file fails here, before any state is opened
    if not secret:
        raise ValueError("the lease secret is empty: pass the shared secret (tfclient.config.secret())")
    cfg = config or load_config(config_path, **overrides)
    if config is not None:
        for k, v in overrides.items():
            setattr(cfg, k, v)
    election = estore = None
    if store and store.startswith("etcd://"):
        from tfscheduler.etcd_store import wait_ready
        estore = EtcdStore.from_url(store, etcd_prefix, **(etcd or {}))
        await asyncio.to_thread(wait_ready, estore.c)
        if elect:       # a follower serves nothing: an empty placeholder until it leads
            estore.guard = FOLLOWER_GUARD
            state = SchedulerState(SqliteStore(":memory:"), secret, cfg, clock=clock or time.time)
        else:
            state = SchedulerState(estore, secret, cfg, clock=clock or time.time)
        tokens = auth.TokenRegistry(estore)
        db_path = store
    elif store:
        raise ValueError(f"store {store!r}: use etcd://HOST:PORT[,HOST:PORT...] (or --db FILE for SQLite)")
    else:
        if os.path.dirname(db_path):
            os.makedirs(os.path.dirname(db_path), exist_ok=True)
        state = SchedulerState(SqliteStore(db_path), secret, cfg, clock=clock or time.time)
        tokens = auth.TokenRegistry(state.store)
    service = SchedulerService(state, tokens, worker_tls)
    if estore is not None and elect:
        from tfscheduler.election import Election
        service.etcd = estore
        election = service.election = Election(estore.c, estore.k("leader"), advertise or "", leader_ttl_s)
    server = grpc.aio.server(interceptors=[auth.AuthInterceptor(tokens, gate=election.gate if election else None)],
                             options=SERVER_OPTIONS)
    rpc.add_SchedulerServicer_to_server(service, server)
    port = tlsmod.bind(server, listen, server_creds)
    await server.start()
    host = listen.rsplit(":", 1)[0] or "0.0.0.0"
    if election is not None and not election.address:
        election.address = f"{host}:{port}"
    handle = SchedulerServer(server, service, state, port, host)
    handle._etcd = estore
    if metrics_listen:
        from tfscheduler.metrics import SchedulerMetrics
        service.metrics = SchedulerMetrics(state, metrics_listen)
        handle.metrics_port = service.metrics.port
    handle._ticker = asyncio.get_running_loop().create_task(handle._tick_loop())
    if cfg.autoscale_interval_s > 0:
        handle._autoscaler = asyncio.get_running_loop().create_task(handle._autoscale_loop())
    if election is not None:
        handle._campaign = asyncio.get_running_loop().create_task(election.run(handle._on_elected, handle._on_lost))
    log.info("tfscheduler listening on %s%s (db %s, %d node(s), %d allocation(s) restored)", handle.address,
             "" if tls is None else " with TLS" + (" (client certificates required)" if tls.client_ca else ""),
             db_path, len(state.nodes), len(state.allocs))
    return handle
