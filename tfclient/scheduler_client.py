"""Clients of the scheduler's gRPC API: SchedulerClient (blocking: CLI, user code, tfclient.attach) and
AsyncSchedulerClient (grpc.aio: the worker daemon). Same methods, same arguments.

Several scheduler replicas (etcd, leader election): the address may be a comma-separated list ("a:7070,b:7070",
also in TF_SCHEDULER). A call answered UNAVAILABLE (replica down, a follower naming the leader, etcd away) or
DEADLINE_EXCEEDED (a replica frozen or its host unreachable) goes to the leader a follower named when it is in the
list, else to the next replica; ABORTED (a write raced another scheduler) is retried on the same one; all until
`failover_s` has passed. Allocate carries a request id, so a retried Allocate whose first try was committed returns
that allocation, never a second one.

TLS (tfclient.tls): with a CA (tls=ClientTLS(...), or TF_TLS_CA) every replica is dialed over TLS and verified
against that CA (TF_TLS_CERT/TF_TLS_KEY add a client certificate for schedulers that require one); without one,
plaintext. A handshake that fails on certificates is not retried once every replica failed that way, and is
raised as TlsHandshakeFailed with one line saying what to fix.

Quantities may be strings ("2Gi", "500m") and are parsed here (tfclient.quantity) so a typo fails
before any RPC; QoS may be "low"/"medium"/"high"/"critical" or the enum value. Every grpc.RpcError is
turned into the matching tfclient.errors class (NoCapacity, InvalidRequest, SchedulerUnreachable, ...).
"""
from __future__ import annotations

import asyncio
import re
import time
import uuid

import grpc

from tfclient import config, tls as tlsmod
from tfclient.errors import InvalidRequest, SchedulerUnreachable, TlsHandshakeFailed, from_rpc_error
from tfclient.protos import load
from tfclient.quantity import parse_tflops, parse_vram_mib

pb = load("scheduler_pb2")
cpb = load("common_pb2")
rpc = load("scheduler_pb2_grpc")

QOS = {"low": 1, "medium": 2, "high": 3, "critical": 4}
QOS_NAME = {v: k for k, v in QOS.items()}


def qos_value(qos) -> int:
    if isinstance(qos, int) and qos in QOS_NAME:
        return qos
    if isinstance(qos, str) and qos.lower() in QOS:
        return QOS[qos.lower()]
    raise InvalidRequest(f"qos {qos!r} unknown: use low, medium, high or critical")


def _address(address: str | None) -> str:
    addr = config.scheduler_address(address)
    if not addr:
        raise SchedulerUnreachable("no scheduler address: pass one, set TF_SCHEDULER, or run `tensorfusion up`")
    return addr


FAILOVER_S = 30.0     # longer than a leader change (leader TTL 5 s + campaign poll + state load)
# what a follower's refusal says (tfscheduler.election.Election.gate, EtcdStore's NotLeader): "leader: HOST:PORT"
_LEADER_NAMED = re.compile(r"\bleader(?: now)?: (\S+?:\d+)\b")


def split_addresses(address: str) -> list:
    """"a:1, b:2" -> ["a:1", "b:2"]."""
    out = [a.strip() for a in address.split(",") if a.strip()]
    if not out:
        raise SchedulerUnreachable(f"no scheduler address in {address!r}")
    return out


class FailoverStub:
    """A SchedulerStub over several replicas (blocking): stub.Method(request, timeout=, metadata=) is tried on the
    current replica, then the next on a retryable status, until failover_s has passed."""

    def __init__(self, addresses: list, failover_s: float = FAILOVER_S, channel=None,
                 tls: "tlsmod.ClientTLS | None" = None):
        self.addresses, self.failover_s = addresses, failover_s
        self._channel = channel or (lambda a: tlsmod.channel(a, tls, CHANNEL_OPTIONS))
        self._i = 0
        self._stubs: dict = {}
        self._channels: list = []

    @property
    def address(self) -> str:
        return self.addresses[self._i]

    def _stub(self):
        a = self.address
        if a not in self._stubs:
            ch = self._channel(a)
            self._channels.append(ch)
            self._stubs[a] = rpc.SchedulerStub(ch)
        return self._stubs[a]

    def _next(self) -> None:
        self._i = (self._i + 1) % len(self.addresses)

    def _retry(self, e: grpc.RpcError, start: float, tls_failed: set) -> bool:
        """Retry e? UNAVAILABLE or DEADLINE_EXCEEDED (a replica down, frozen or unreachable) with another replica
        to try, ABORTED always, all within failover_s; a TLS verification failure only until every replica failed
        that way (a setting to fix, not a replica down)."""
        if time.monotonic() - start >= self.failover_s:
            return False
        if e.code() == grpc.StatusCode.UNAVAILABLE and tlsmod.is_verification_failure(e.details()):
            tls_failed.add(self.address)
            if len(tls_failed) >= len(self.addresses):
                return False
        return e.code() == grpc.StatusCode.ABORTED or \
            (e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and len(self.addresses) > 1)

    def _advance(self, e: grpc.RpcError, tries: int) -> bool:
        """Picks the replica for the retry of a call that failed with e (its tries-th failure): the leader a
        follower named, when it is one of ours, else the next. -> True after each round of as many tries as
        there are replicas (time to pause: an election is under way)."""
        m = _LEADER_NAMED.search(e.details() or "") if e.code() == grpc.StatusCode.UNAVAILABLE else None
        if m and m.group(1) in self.addresses and m.group(1) != self.address:
            self._i = self.addresses.index(m.group(1))
        else:
            self._next()
        return tries % len(self.addresses) == 0

    def __getattr__(self, method: str):
        def call(request, **kw):
            start, pause, tls_failed, tries = time.monotonic(), 0.05, set(), 0
            while True:
                try:
                    return getattr(self._stub(), method)(request, **kw)
                except grpc.RpcError as e:
                    if not self._retry(e, start, tls_failed):
                        raise
                    if e.code() == grpc.StatusCode.ABORTED:
                        continue                  # a write race on a shared store: the same replica, again
                    tries += 1
                    if self._advance(e, tries):     # went round every replica: give the election time
                        time.sleep(pause)
                        pause = min(pause * 2, 0.5)
        return call

    def close(self) -> None:
        for ch in self._channels:
            ch.close()


class AioFailoverStub(FailoverStub):
    """FailoverStub for grpc.aio (the worker daemon, AsyncSchedulerClient)."""

    def __init__(self, addresses: list, failover_s: float = FAILOVER_S, tls: "tlsmod.ClientTLS | None" = None):
        super().__init__(addresses, failover_s, lambda a: tlsmod.channel(a, tls, CHANNEL_OPTIONS, aio=True))

    def __getattr__(self, method: str):
        async def call(request, **kw):
            start, pause, tls_failed, tries = time.monotonic(), 0.05, set(), 0
            while True:
                try:
                    return await getattr(self._stub(), method)(request, **kw)
                except grpc.RpcError as e:
                    if not self._retry(e, start, tls_failed):
                        raise
                    if e.code() == grpc.StatusCode.ABORTED:
                        continue
                    tries += 1
                    if self._advance(e, tries):
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, 0.5)
        return call

    async def close(self) -> None:
        for ch in self._channels:
            await ch.close()


def gpu_info(g) -> "cpb.GPUInfo":
    """A GPUInfo from a GPUInfo or a dict with its fields (vram may be a quantity string as vram/vram_mib)."""
    if isinstance(g, cpb.GPUInfo):
        return g
    d = dict(g)
    if "vram" in d:
        d["vram_mib"] = parse_vram_mib(d.pop("vram"))
    return cpb.GPUInfo(**d)


def register_request(node_name, pool="", gpus=(), unix_path="", tcp="", admin="", labels=None,
                     active_allocation_ids=(), instance_id="") -> "pb.RegisterWorkerRequest":
    return pb.RegisterWorkerRequest(
        node_name=node_name, pool=pool, gpus=[gpu_info(g) for g in gpus],
        endpoints=cpb.WorkerEndpoints(unix_path=unix_path, tcp=tcp, admin=admin), labels=labels or {},
        active_allocation_ids=list(active_allocation_ids), instance_id=instance_id)


def allocate_request(tflops=0.0, vram=0, tflops_limit=None, vram_limit=None, qos="medium", gpu_count=1, pool="",
                     namespace="", workload="", model="", vendor="", local_gpu=False, client_node="",
                     lease_ttl=0.0, request_id=None) -> "pb.AllocateRequest":
    return pb.AllocateRequest(
        request_id=request_id or uuid.uuid4().hex,
        pool=pool, namespace=namespace, workload=workload,
        requests=cpb.Resources(tflops=parse_tflops(tflops), vram_mib=parse_vram_mib(vram)),
        limits=cpb.Resources(tflops=parse_tflops(tflops_limit or 0), vram_mib=parse_vram_mib(vram_limit or 0)),
        qos=qos_value(qos), gpu_count=int(gpu_count), gpu_model=model, vendor=vendor, local_gpu=local_gpu,
        client_node=client_node, lease_ttl_s=float(lease_ttl))


def limits_request(allocation_id, tflops=None, vram=None, tflops_request=None, vram_request=None):
    return pb.SetAllocationLimitsRequest(
        allocation_id=allocation_id,
        limits=cpb.Resources(tflops=parse_tflops(tflops or 0), vram_mib=parse_vram_mib(vram or 0)),
        requests=cpb.Resources(tflops=parse_tflops(tflops_request or 0), vram_mib=parse_vram_mib(vram_request or 0)))


def heartbeat_request(worker_id, gpus=(), active_allocation_ids=(), sessions=(), instance_id=""):
    return pb.HeartbeatRequest(worker_id=worker_id, instance_id=instance_id,
                               gpus=[g if isinstance(g, cpb.GPUUsage) else cpb.GPUUsage(**g) for g in gpus],
                               active_allocation_ids=list(active_allocation_ids),
                               sessions=[s if isinstance(s, cpb.SessionUsage) else cpb.SessionUsage(**s)
                                         for s in sessions])


def rpc_error(e: grpc.RpcError, target: str, tls: "tlsmod.ClientTLS | None"):
    """The typed error for e; a connection that failed on TLS as TlsHandshakeFailed with one line on what to fix."""
    err = from_rpc_error(e, target)
    if isinstance(err, SchedulerUnreachable):
        hint = tlsmod.explain(e.details() if hasattr(e, "details") else "", target, tls)
        if hint:
            return TlsHandshakeFailed(f"scheduler {target}: {hint}")
    return err


def _metadata(token: str | None) -> tuple:
    # Over plaintext this header can be sniffed: plaintext is allowed on loopback only (tfclient.tls.check_listen)
    # or with an explicit --insecure; over TLS it travels encrypted.
    return (("authorization", f"Bearer {token}"),) if token else ()


# Explicit sizes: the server refuses bigger messages with RESOURCE_EXHAUSTED naming the limit.
MAX_MESSAGE_BYTES = 4 << 20
CHANNEL_OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", 64 << 20)]


class _ClientBase:
    """What both clients share: the bearer token's metadata, TLS, and a failover stub (_stub_type) over the
    scheduler replicas."""
    _stub_type: type

    def __init__(self, address: str | None = None, timeout: float = 5.0, token: str | None = None,
                 failover_s: float = FAILOVER_S, tls: "tlsmod.ClientTLS | None" = None):
        self.timeout = timeout
        self._metadata = _metadata(config.client_token(token))
        self._tls = tls if tls is not None else tlsmod.ClientTLS.resolve()
        if self._tls is not None:
            self._tls.credentials()      # an unreadable or non-PEM file: one clear error now, not at the first call
        self._stub = self._stub_type(split_addresses(_address(address)), failover_s, tls=self._tls)

    @property
    def address(self) -> str:
        """The replica in use now."""
        return self._stub.address

    @property
    def addresses(self) -> str:
        """Every replica, comma-separated (what TF_SCHEDULER takes)."""
        return ",".join(self._stub.addresses)


class SchedulerClient(_ClientBase):
    """Blocking client. address: "host:port" (default: tfclient.config.scheduler_address()).
    token: bearer token (default: tfclient.config.client_token(): TF_TOKEN, then $TF_HOME token files).
    tls: tfclient.tls.ClientTLS (default: TF_TLS_CA/TF_TLS_CERT/TF_TLS_KEY; none set = plaintext)."""
    _stub_type = FailoverStub

    def _call(self, method: str, request):
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise rpc_error(e, self.address, self._tls) from None

    def create_token(self, role, namespace="", node_name="", description=""):
        """-> scheduler_pb2.CreatedToken (info, token text). Admin only."""
        return self._call("CreateToken", pb.CreateTokenRequest(role=role, namespace=namespace, node_name=node_name,
                                                               description=description))

    def revoke_token(self, token_id) -> bool:
        return self._call("RevokeToken", pb.RevokeTokenRequest(id=token_id)).revoked

    def list_tokens(self, include_revoked=False):
        return self._call("ListTokens", pb.ListTokensRequest(include_revoked=include_revoked)).tokens

    def register_worker(self, node_name, pool="", gpus=(), unix_path="", tcp="", admin="", labels=None,
                        active_allocation_ids=(), instance_id=""):
        return self._call("RegisterWorker", register_request(node_name, pool, gpus, unix_path, tcp, admin, labels,
                                                             active_allocation_ids, instance_id))

    def heartbeat(self, worker_id, gpus=(), active_allocation_ids=(), sessions=(), instance_id=""):
        return self._call("Heartbeat", heartbeat_request(worker_id, gpus, active_allocation_ids, sessions,
                                                         instance_id))

    def allocate(self, tflops=0.0, vram=0, **kw):
        """-> scheduler_pb2.Allocation (id, endpoints, lease_token, ...). kw: see allocate_request."""
        return self._call("Allocate", allocate_request(tflops, vram, **kw))

    def release(self, allocation_id) -> bool:
        return self._call("Release", pb.ReleaseRequest(allocation_id=allocation_id)).released

    def renew(self, allocation_id, ttl=0.0):
        return self._call("RenewLease", pb.RenewLeaseRequest(allocation_id=allocation_id, ttl_s=ttl))

    def get_allocation(self, allocation_id):
        return self._call("GetAllocation", pb.GetAllocationRequest(allocation_id=allocation_id))

    def list_pool(self, pool="", include_allocations=False, namespace=""):
        return self._call("ListPool", pb.ListPoolRequest(pool=pool, include_allocations=include_allocations,
                                                         namespace=namespace))

    def report_worker_unreachable(self, allocation_id, detail=""):
        """-> ReportWorkerUnreachableResponse (node_unavailable: the scheduler's probe failed too, reason)."""
        return self._call("ReportWorkerUnreachable", pb.ReportWorkerUnreachableRequest(
            allocation_id=allocation_id, detail=detail[:200]))

    def set_limits(self, allocation_id, tflops=None, vram=None, tflops_request=None, vram_request=None):
        return self._call("SetAllocationLimits", limits_request(allocation_id, tflops, vram, tflops_request,
                                                                vram_request))

    # workloads (seed 004): doc = the workload document as a dict (YAML/JSON loaded)
    def apply_workload(self, doc: dict, namespace=""):
        import json
        return self._call("ApplyWorkload", pb.ApplyWorkloadRequest(namespace=namespace, spec_json=json.dumps(doc)))

    def get_workload(self, name, namespace=""):
        return self._call("GetWorkload", pb.GetWorkloadRequest(namespace=namespace, name=name))

    def list_workloads(self, namespace=""):
        return list(self._call("ListWorkloads", pb.ListWorkloadsRequest(namespace=namespace)).workloads)

    def close(self) -> None:
        self._stub.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AsyncSchedulerClient(_ClientBase):
    """grpc.aio client with the same methods as SchedulerClient (awaitable); tls as there."""
    _stub_type = AioFailoverStub

    async def _call(self, method: str, request):
        try:
            return await getattr(self._stub, method)(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise rpc_error(e, self.address, self._tls) from None

    async def register_worker(self, node_name, pool="", gpus=(), unix_path="", tcp="", admin="", labels=None,
                              active_allocation_ids=(), instance_id=""):
        return await self._call("RegisterWorker", register_request(node_name, pool, gpus, unix_path, tcp, admin,
                                                                   labels, active_allocation_ids, instance_id))

    async def heartbeat(self, worker_id, gpus=(), active_allocation_ids=(), sessions=(), instance_id=""):
        return await self._call("Heartbeat", heartbeat_request(worker_id, gpus, active_allocation_ids, sessions,
                                                               instance_id))

    async def allocate(self, tflops=0.0, vram=0, **kw):
        return await self._call("Allocate", allocate_request(tflops, vram, **kw))

    async def release(self, allocation_id) -> bool:
        return (await self._call("Release", pb.ReleaseRequest(allocation_id=allocation_id))).released

    async def renew(self, allocation_id, ttl=0.0):
        return await self._call("RenewLease", pb.RenewLeaseRequest(allocation_id=allocation_id, ttl_s=ttl))

    async def get_allocation(self, allocation_id):
        return await self._call("GetAllocation", pb.GetAllocationRequest(allocation_id=allocation_id))

    async def list_pool(self, pool="", include_allocations=False, namespace=""):
        return await self._call("ListPool", pb.ListPoolRequest(pool=pool, include_allocations=include_allocations,
                                                               namespace=namespace))

    async def set_limits(self, allocation_id, tflops=None, vram=None, tflops_request=None, vram_request=None):
        return await self._call("SetAllocationLimits", limits_request(allocation_id, tflops, vram, tflops_request,
                                                                      vram_request))

    async def close(self) -> None:
        await self._stub.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
