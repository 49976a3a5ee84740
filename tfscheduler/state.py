"""The scheduler's state machine: workers, GPUs, allocations and leases, kept in memory (the placement
index) and written through to a Store before any change is visible.

Synchronous and free of gRPC: tfscheduler.server calls it from the event loop (one call = one atomic
step, which is why concurrent Allocate calls can never over-commit a GPU) and turns what it returns
into protobuf messages and WorkerAdmin calls. Time comes from `clock` so tests can drive it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import time
import tomllib
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import timedelta

from tfclient.errors import (AllocationInactive, InvalidQuantity, InvalidRequest, NoCapacity, NodeNameTaken,
                             QuotaExceeded, StoreConflict, TensorFusionError, UnknownAllocation, UnknownWorkload)
from tfclient.quantity import parse_tflops, parse_vram_mib
from tfscheduler import lease as leases
from tfscheduler import validate
from tfscheduler.models import lookup_tflops, match_override
from tfscheduler.placement import (MEDIUM, QOS_BY_NAME, QOS_NAMES, Alloc, Gpu, PlacementIndex, PoolPolicy, Quota,
                                   Request)
from tfscheduler.autoscaler import RESOURCES_APPLIED, Autoscaler, Res, WorkloadEntry, matches
from tfscheduler.recommender import MIN_TFLOPS, MIN_VRAM_MIB
from tfscheduler.storage import (AllocationRecord, GpuRecord, NodeRecord, PoolRecord, QuotaRecord, Store,
                                 WorkloadRecord)
from tfscheduler.workload_config import WorkloadConfigError

# scheduler_pb2.AllocationState values (kept here so this module needs no generated code)
ACTIVE, RELEASED, EXPIRED, PREEMPTED, LOST = 1, 2, 3, 4, 5
STATE_NAMES = {ACTIVE: "active", RELEASED: "released", EXPIRED: "expired", PREEMPTED: "preempted", LOST: "lost"}
ENDED_KEPT = 100_000          # ended allocations remembered for GetAllocation


@dataclass
class Profile:
    """The default vGPU profile: what a request with neither TFLOPS nor VRAM (nor limits) gets, e.g.
    `tensorfusion run -- CMD` or attach() with no arguments. tflops: FP16 TFLOPS request and limit (0 = no
    compute reservation and no compute limit). VRAM: vram_mib MiB if > 0, else vram_share of the chosen
    GPU's VRAM (1.0 = the whole GPU's memory). Default: the whole VRAM of one GPU, no compute limit."""
    tflops: float = 0.0
    vram_mib: int = 0
    vram_share: float = 1.0


def parse_profile(table: dict, where: str) -> Profile:
    """[default_profile]-style table {tflops = 10, vram = "8Gi" | 2048 | "50%"} -> Profile. ValueError."""
    bad = set(table) - {"tflops", "vram"}
    if bad:
        raise ValueError(f"{where} has unknown key(s) {', '.join(sorted(bad))}; known: tflops, vram")
    prof = Profile(tflops=parse_tflops(table.get("tflops", 0)))
    vram = table.get("vram", "100%")
    if isinstance(vram, str) and vram.strip().endswith("%"):
        try:
            share = float(vram.strip()[:-1]) / 100.0
        except ValueError:
            share = -1.0
        if not 0 < share <= 1:
            raise ValueError(f"{where} vram = {vram!r}: a share must be a percentage in (0%, 100%]")
        prof.vram_share = share
    else:
        prof.vram_mib = parse_vram_mib(vram)
        if prof.vram_mib <= 0:
            raise ValueError(f"{where} vram = {vram!r}: use a size > 0 (\"8Gi\") or a share (\"100%\")")
    return prof


@dataclass
class Config:
    lease_ttl_s: float = 30.0
    max_lease_ttl_s: float = 24 * 3600.0
    heartbeat_interval_s: float = 5.0
    node_timeout_s: float = 15.0
    tick_s: float = 1.0
    admin_timeout_s: float = 2.0
    autoscale_interval_s: float = 30.0     # the workload loop: estimates, cron rules, live limit changes
    vram_peak_interval_s: float = 300.0    # VRAM samples are the peak per allocation over this long
    histogram_half_life_s: float = 86400.0  # usage samples lose half their weight this often (VPA: 24h)
    recommendation_min_tflops: float = MIN_TFLOPS     # the smallest recommendation (VPA's minimum resources)
    recommendation_min_vram_mib: int = int(MIN_VRAM_MIB)
    default_policy: PoolPolicy = field(default_factory=PoolPolicy)
    pools: dict = field(default_factory=dict)       # name -> PoolPolicy
    quotas: dict = field(default_factory=dict)      # namespace -> Quota
    models: dict = field(default_factory=dict)      # model name or regex -> TFLOPS
    default_profile: Profile = field(default_factory=Profile)
    profiles: dict = field(default_factory=dict)    # pool name -> Profile (overrides default_profile)

    def profile_for(self, pool: str) -> Profile:
        return self.profiles.get(pool, self.default_profile)


def load_config(path: str | None, **overrides) -> Config:
    """Config from a TOML file (all keys optional), then keyword overrides.

    lease_ttl_s = 30 / heartbeat_interval_s = 5 / node_timeout_s = 15 / tick_s = 1
    [default_pool] strategy, tflops_oversell, vram_oversell, tflops_weight, vram_weight, qos = ["high", ...]
    [pools.<name>]  same keys as default_pool
    [quotas.<namespace>] tflops = 100, vram = "80Gi", allocations = 10
    [models] "NVIDIA A10G" = 70.0
    [default_profile] tflops = 0, vram = "100%"   (what a request with no resources gets; see Profile)
    [profiles.<pool>] same keys, for one pool
    """
    cfg = Config()
    data = {}
    if path:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    for key in ("lease_ttl_s", "max_lease_ttl_s", "heartbeat_interval_s", "node_timeout_s", "tick_s",
                "admin_timeout_s", "autoscale_interval_s", "vram_peak_interval_s", "histogram_half_life_s",
                "recommendation_min_tflops"):
        if key in data:
            setattr(cfg, key, float(data[key]))
    for key in ("histogram_half_life_s", "vram_peak_interval_s", "recommendation_min_tflops"):
        if not getattr(cfg, key) > 0:
            raise ValueError(f"config {path}: {key} = {data.get(key)!r}: must be > 0")
    if "recommendation_min_vram" in data:
        try:
            cfg.recommendation_min_vram_mib = parse_vram_mib(data["recommendation_min_vram"])
        except InvalidQuantity as e:
            raise ValueError(f"config {path}: recommendation_min_vram: {e}") from None
        if cfg.recommendation_min_vram_mib <= 0:
            raise ValueError(f"config {path}: recommendation_min_vram = {data['recommendation_min_vram']!r}: "
                             "must be > 0")
    known = set(PoolPolicy.__dataclass_fields__)
    for section, table in [("default_pool", data.get("default_pool", {}))] + \
            [(f"pools.{n}", t) for n, t in data.get("pools", {}).items()]:
        bad = set(table) - known
        if bad:
            raise ValueError(f"config {path}: [{section}] has unknown key(s) {', '.join(sorted(bad))}; "
                             f"known: {', '.join(sorted(known))}")
    def qos_levels(table: dict, section: str) -> dict:
        if "qos" in table:
            try:
                table = {**table, "qos": tuple(QOS_BY_NAME[q.lower()] for q in table["qos"])}
            except (KeyError, AttributeError):
                raise ValueError(f"config {path}: [{section}] qos = {table['qos']!r}: use a list of "
                                 f"low, medium, high, critical") from None
        return table
    if "default_pool" in data:
        cfg.default_policy = PoolPolicy(**qos_levels(data["default_pool"], "default_pool"))
    for name, p in data.get("pools", {}).items():
        cfg.pools[name] = PoolPolicy(**{**cfg.default_policy.__dict__, **qos_levels(p, f"pools.{name}")})
    for ns, q in data.get("quotas", {}).items():
        bad = set(q) - {"tflops", "vram", "allocations"}
        if bad:
            raise ValueError(f"config {path}: [quotas.{ns}] has unknown key(s) {', '.join(sorted(bad))}; "
                             f"known: tflops, vram, allocations")
        cfg.quotas[ns] = Quota(tflops=parse_tflops(q["tflops"]) if "tflops" in q else None,
                               vram_mib=parse_vram_mib(q["vram"]) if "vram" in q else None,
                               allocations=int(q["allocations"]) if "allocations" in q else None)
    cfg.models.update({k: float(v) for k, v in data.get("models", {}).items()})
    try:
        if "default_profile" in data:
            cfg.default_profile = parse_profile(data["default_profile"], f"config {path}: [default_profile]")
        for name, t in data.get("profiles", {}).items():
            cfg.profiles[name] = parse_profile(t, f"config {path}: [profiles.{name}]")
    except InvalidRequest as e:       # a bad quantity inside a profile
        raise ValueError(f"config {path}: default profile: {e}") from None
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    check_timings(cfg, path, overrides)
    return cfg


# timings in seconds: each a finite number > 0 (a negative --lease-ttl made every lease expire at once);
# autoscale_interval_s may also be 0 (no autoscale loop)
TIMINGS = ("lease_ttl_s", "max_lease_ttl_s", "heartbeat_interval_s", "node_timeout_s", "tick_s", "admin_timeout_s",
           "autoscale_interval_s")


def check_timings(cfg: Config, path: str | None, overrides: dict) -> None:
    """ValueError (one line naming the flag, or the config key) for a timing out of range."""
    for key in TIMINGS:
        v = getattr(cfg, key)
        off_allowed = key == "autoscale_interval_s"
        if math.isfinite(v) and (v > 0 or (off_allowed and v == 0)):
            continue
        where = (f"--{key.removesuffix('_s').replace('_', '-')} {v:g}" if overrides.get(key) is not None
                 else f"config {path}: {key} = {v:g}")
        raise ValueError(f"{where}: use a number of seconds > 0{' (or 0: off)' if off_allowed else ''}")


@dataclass
class Close:
    """An order to close a session on a worker (sent via WorkerAdmin and in the heartbeat reply)."""
    worker_id: str
    admin: str
    allocation_id: str
    reason: str


@dataclass
class Granted:
    alloc: AllocationRecord
    token: str
    closes: list                  # Close orders for preempted allocations


class SchedulerState:
    def __init__(self, store: Store, secret: bytes, config: Config | None = None, clock=time.time):
        self.store, self.secret, self.cfg, self.clock = store, secret, config or Config(), clock
        self.index = PlacementIndex()
        self.nodes: dict[str, NodeRecord] = {}
        self.node_gpus: dict[str, list] = {}
        self.last_seen: dict[str, float] = {}
        self.usage: dict[str, tuple] = {}          # gpu uuid -> (tflops_used, vram_used_mib, utilization)
        self.alloc_usage: dict[str, tuple] = {}    # allocation id -> (tflops_used, vram_used_mib) per GPU
        self.allocs: dict[str, AllocationRecord] = {}
        self.ended: OrderedDict[str, AllocationRecord] = OrderedDict()
        self.pending: dict[str, dict] = {}          # worker id -> {allocation id: reason}
        # worker id -> why: out of placement until its next heartbeat (mark_unreachable); in memory only, as
        # a restart gives every node a fresh node_timeout_s anyway
        self.unreachable: dict[str, str] = {}
        self.ended_counts: dict[str, int] = {}      # state name -> allocations ended so (metrics)
        self._next_prune = 0.0
        self.autoscaler = Autoscaler(self.cfg.vram_peak_interval_s, timedelta(seconds=self.cfg.histogram_half_life_s),
                                     self.cfg.recommendation_min_tflops, self.cfg.recommendation_min_vram_mib)
        self._load()

    # ---- start ----
    def _load(self, grace: bool = True) -> None:
        snap = self.store.load()
        now = self.clock()
        for p in snap.pools:
            self.index.set_policy(p.name, PoolPolicy(strategy=p.strategy, tflops_weight=p.tflops_weight,
                                                     vram_weight=p.vram_weight, tflops_oversell=p.tflops_oversell,
                                                     vram_oversell=p.vram_oversell))
        for name, pol in self.cfg.pools.items():    # the config file wins over what was stored
            self._put_pool(name, pol)
        # quotas live in the store too, so every replica (and a restart without the config file) enforces the
        # same ones; a quota in this scheduler's config file replaces the stored one of its namespace
        for q in snap.quotas:
            self.index.quotas[q.namespace] = Quota(q.tflops, q.vram_mib, q.allocations)
        for ns, quota in self.cfg.quotas.items():
            if self.index.quotas.get(ns) != quota:
                self.store.put_quota(QuotaRecord(ns, quota.tflops, quota.vram_mib, quota.allocations))
                self.index.quotas[ns] = quota
        for n in snap.nodes:
            self.nodes[n.worker_id] = n
            self.node_gpus[n.worker_id] = []
            if grace or n.worker_id not in self.last_seen:
                self.last_seen[n.worker_id] = now   # grace: a full node timeout to heartbeat again
        for g in snap.gpus:
            node = self.nodes.get(g.worker_id)
            if node is None:
                continue
            self.node_gpus[g.worker_id].append(g)
            self.index.upsert_gpu(Gpu(g.uuid, g.worker_id, node.pool, g.model, g.vendor, g.vram_mib, g.tflops,
                                      node.available))
        renewals = []
        for a in snap.allocations:
            if any(u not in self.index.rows for u in a.gpu_uuids):
                self.store.end_allocations([(a.id, LOST, "GPU no longer registered")])
                continue
            self.index.add_allocation(self._alloc_view(a))
            # grace: clients and workers get a full TTL after a restart to renew
            if grace and a.lease_expires_at < now + a.lease_ttl_s:
                a.lease_expires_at = now + a.lease_ttl_s
                renewals.append((a.id, a.lease_expires_at))
            self.allocs[a.id] = a
        self.store.renew_leases(renewals)
        # a Store engine without the workload keys (storage.py) keeps working; it just forgets workloads
        for w in (self.store.load_workloads() if hasattr(self.store, "load_workloads") else ()):
            try:
                self.autoscaler.restore(w.namespace, w.name, w.spec, w.status, w.checkpoint, w.updated_at)
            except (ValueError, KeyError, TypeError, WorkloadConfigError) as e:   # keep serving the rest
                logging.getLogger("tfscheduler").error("workload %s/%s not restored: %s", w.namespace, w.name, e)

    def resync(self) -> None:
        """Makes memory what the store holds, after another scheduler wrote to a shared store (etcd): the index is
        rebuilt from one consistent read. Unlike a start, no grace: leases keep their expiry, nodes their last
        heartbeat."""
        self.index = PlacementIndex()
        self.nodes, self.node_gpus, self.allocs = {}, {}, {}
        self._load(grace=False)
        self.last_seen = {w: t for w, t in self.last_seen.items() if w in self.nodes}
        self.alloc_usage = {a: u for a, u in self.alloc_usage.items() if a in self.allocs}
        self.unreachable = {w: why for w, why in self.unreachable.items() if w in self.nodes}
        for w in self.unreachable:              # the rebuilt index has them placeable again
            self.index.set_node_available(w, False)

    def _put_pool(self, name: str, pol: PoolPolicy) -> None:
        self.index.set_policy(name, pol)
        self.store.put_pool(PoolRecord(name, pol.strategy, pol.tflops_oversell, pol.vram_oversell,
                                       pol.tflops_weight, pol.vram_weight))

    @staticmethod
    def _alloc_view(a: AllocationRecord) -> Alloc:
        return Alloc(a.id, tuple(a.gpu_uuids), a.tflops, a.vram_mib, a.lim_tflops, a.lim_vram_mib, a.qos,
                     a.namespace)

    # ---- workers ----
    def _live_other_instance(self, worker_id: str, instance: str) -> str | None:
        """Why worker_id's registration belongs to another live worker instance than `instance` (one line), or
        None: the node is unknown, the same instance, or silent past node_timeout_s (then free to take over)."""
        node = self.nodes.get(worker_id)
        if node is None or node.instance == instance:
            return None
        silent = self.clock() - self.last_seen.get(worker_id, 0.0)
        if not node.available or silent > self.cfg.node_timeout_s:
            return None
        return (f"node {node.node_name!r} is registered by another live worker (admin "
                f"{node.admin or 'none'}, last heartbeat {max(silent, 0.0):.1f} s ago): start this worker with "
                f"another --node name (and a worker token for it), or stop the other one (its node is free "
                f"{self.cfg.node_timeout_s:g} s after its last heartbeat)")

    def register_worker(self, node_name: str, pool: str, gpus: list, unix_path: str = "", tcp: str = "",
                        admin: str = "", labels: dict | None = None, active_ids=(), instance: str = "") -> tuple:
        """-> (worker_id, accepted GpuRecords, [(allocation id, reason)] to close). A node name is an identity:
        NodeNameTaken while another instance of a worker heartbeats the node; the same instance (a restarted
        worker) registers again at once."""
        if not node_name:
            raise InvalidRequest("node_name is empty: a worker must register with a stable node name")
        validate.name("node_name", node_name, validate.NODE_MAX)
        validate.token_like("instance_id", instance)
        validate.name("pool", pool)
        if not gpus:
            raise InvalidRequest(f"worker {node_name!r} registered no GPUs: report at least one")
        validate.count("gpus", len(gpus), validate.GPUS_MAX)
        validate.count("active_allocation_ids", len(active_ids), validate.IDS_MAX)
        validate.unix_path(unix_path)
        validate.address("endpoints.tcp", tcp)
        validate.address("endpoints.admin", admin)
        validate.labels(dict(labels or {}))
        for g in gpus:
            validate.token_like("GPU uuid", g.uuid)
            validate.text("GPU model", g.model)
            validate.text("GPU vendor", g.vendor)
        worker_id = node_name
        taken = self._live_other_instance(worker_id, instance)
        if taken:
            raise NodeNameTaken(taken)
        pool = pool or "default"
        accepted = []
        seen = set()
        for g in gpus:
            if not g.uuid:
                raise InvalidRequest(f"GPU {g.index} of {node_name!r} has no uuid")
            if g.uuid in seen:
                raise InvalidRequest(f"GPU uuid {g.uuid} is listed twice by {node_name!r}")
            seen.add(g.uuid)
            row = self.index.rows.get(g.uuid)
            if row is not None and self.index.gpus[row].node != worker_id:
                raise InvalidRequest(f"GPU {g.uuid} is already registered by worker {self.index.gpus[row].node!r}")
            if g.vram_mib <= 0:
                raise InvalidRequest(f"GPU {g.uuid} reports vram_mib {g.vram_mib}: must be > 0")
            # config table > what the worker measured/reported > the known-model table
            tflops = match_override(g.model, self.cfg.models) or (g.tflops if g.tflops > 0 else lookup_tflops(g.model))
            if not tflops:
                raise InvalidRequest(f"GPU model {g.model!r} is unknown and no tflops was reported: report its FP16 "
                                     f"dense TFLOPS or add it to the scheduler config's [models] table")
            accepted.append(GpuRecord(g.uuid, worker_id, g.index, g.model, g.vendor or "nvidia", g.vram_mib,
                                      float(tflops)))
        if pool not in self.index.policies:
            self._put_pool(pool, self.cfg.pools.get(pool, self.cfg.default_policy))
        now = self.clock()
        node = NodeRecord(worker_id, node_name, pool, unix_path, tcp, admin, dict(labels or {}), True, now, instance)
        self.store.put_node(node, accepted)
        old = {g.uuid for g in self.node_gpus.get(worker_id, [])}
        self.nodes[worker_id] = node
        self.node_gpus[worker_id] = accepted
        for g in accepted:
            self.index.upsert_gpu(Gpu(g.uuid, worker_id, pool, g.model, g.vendor, g.vram_mib, g.tflops, True))
        for uuid in old - seen:
            self.index.remove_gpu(uuid)
        self.last_seen[worker_id] = now
        self.unreachable.pop(worker_id, None)   # it registered: alive (its GPUs above are placeable again)
        closes = self._renew_listed(worker_id, active_ids, now)
        return worker_id, accepted, closes

    def _renew_listed(self, worker_id: str, active_ids, now: float) -> list:
        """Renews the leases a worker lists; returns [(id, reason)] it must close (incl. pending)."""
        closes = self.pending.pop(worker_id, {})
        renewals = []
        for aid in active_ids:
            a = self.allocs.get(aid)
            if a is not None and a.worker_id == worker_id:
                a.lease_expires_at = now + a.lease_ttl_s
                renewals.append((aid, a.lease_expires_at))
            elif aid not in closes:
                gone = self._ended(aid)
                closes[aid] = gone.reason if gone else "unknown allocation"
        self.store.renew_leases(renewals)
        return list(closes.items())

    def heartbeat(self, worker_id: str, gpu_usage=(), active_ids=(), session_usage=(), instance: str = "") -> tuple:
        """gpu_usage: [(uuid, tflops_used, vram_used_mib, utilization)]; session_usage:
        [(allocation id, tflops_used, vram_used_mib)]. -> (closes [(id, reason)], reregister: bool).
        The heartbeat of another instance than the registered one never keeps the node alive: NodeNameTaken
        while the registered one heartbeats, else it is told to register again (and takes the node over)."""
        validate.count("active_allocation_ids", len(active_ids), validate.IDS_MAX)
        validate.count("sessions", len(session_usage), validate.IDS_MAX)
        node = self.nodes.get(worker_id)
        if node is None:
            return [], True
        if node.instance != instance:
            taken = self._live_other_instance(worker_id, instance)
            if taken:
                raise NodeNameTaken(taken)
            return [], True
        now = self.clock()
        self.last_seen[worker_id] = now
        if not node.available:
            self.store.set_node_available(worker_id, True)
            node.available = True
            self.index.set_node_available(worker_id, True)
        if self.unreachable.pop(worker_id, None) is not None:
            self.index.set_node_available(worker_id, True)    # it heartbeats: placeable again
        own = {g.uuid for g in self.node_gpus.get(worker_id, ())}
        for u in gpu_usage:               # a worker reports its own GPUs and sessions only
            if u[0] in own:
                self.usage[u[0]] = tuple(u[1:])
        per_alloc: dict[str, list] = {}
        for aid, t, v in session_usage:
            if aid in self.allocs and self.allocs[aid].worker_id == worker_id:
                acc = per_alloc.setdefault(aid, [0.0, 0])
                acc[0], acc[1] = acc[0] + t, acc[1] + v
        for aid, (t, v) in per_alloc.items():
            a = self.allocs[aid]
            n = len(a.gpu_uuids)
            self.alloc_usage[aid] = (t / n, v // n)
            if a.workload:                 # autoscaling input: per-GPU usage of each allocation
                self.autoscaler.observe(a.namespace, a.workload, aid, t / n, v / n, now)
        for aid in [aid for aid in self.alloc_usage if aid not in per_alloc]:
            a = self.allocs.get(aid)
            if a is None or a.worker_id == worker_id:   # no session on its worker any more: nothing in use
                self.alloc_usage.pop(aid, None)
        return self._renew_listed(worker_id, active_ids, now), False

    # ---- allocations ----
    def _end(self, ids, state: int, reason: str, persist: bool = True) -> list:
        closes, ended = [], []
        if persist:         # the store first: a failed write (etcd unreachable) leaves them active, to retry
            self.store.end_allocations([(aid, state, reason) for aid in ids if aid in self.allocs])
        for aid in ids:
            a = self.allocs.pop(aid, None)
            self.alloc_usage.pop(aid, None)
            if a is None:
                continue
            self.index.remove_allocation(aid)
            a.state, a.reason = state, reason
            self.ended[aid] = a
            self.ended_counts[STATE_NAMES[state]] = self.ended_counts.get(STATE_NAMES[state], 0) + 1
            ended.append((aid, state, reason))
            node = self.nodes.get(a.worker_id)
            self.pending.setdefault(a.worker_id, {})[aid] = reason
            closes.append(Close(a.worker_id, node.admin if node else "", aid, reason))
        while len(self.ended) > ENDED_KEPT:
            self.ended.popitem(last=False)
        return closes

    def token(self, a: AllocationRecord) -> str:
        return leases.sign(leases.LeaseClaims(
            allocation_id=a.id, worker_id=a.worker_id, gpu_uuid=a.gpu_uuids[0], vram_limit_mib=a.lim_vram_mib,
            tflops_limit=a.lim_tflops, qos=QOS_NAMES[a.qos], expires_at=a.lease_expires_at,
            gpu_uuids=tuple(a.gpu_uuids), vram_request_mib=a.vram_mib, tflops_request=a.tflops), leases.node_key(self.secret, a.worker_id))

    def allocate(self, tflops: float, vram_mib: int, lim_tflops: float = 0.0, lim_vram_mib: int = 0,
                 qos: int = MEDIUM, gpu_count: int = 1, pool: str = "", namespace: str = "", workload: str = "",
                 model: str = "", vendor: str = "", local_gpu: bool = False, client_node: str = "",
                 lease_ttl_s: float = 0.0, request_id: str = "") -> Granted:
        validate.name("pool", pool)
        validate.name("namespace", namespace)
        validate.text("workload", workload)
        validate.text("gpu_model", model)
        validate.text("vendor", vendor)
        validate.name("client_node", client_node, validate.NODE_MAX)
        if qos == 0:
            qos = MEDIUM
        if qos not in QOS_NAMES:
            raise InvalidRequest(f"qos {qos} unknown: use one of {', '.join(QOS_BY_NAME)}")
        if local_gpu and not client_node:
            raise InvalidRequest("local_gpu needs client_node (the node the client runs on)")
        wl = self.autoscaler.entries.get((namespace or "default", workload)) if workload else None
        if wl is not None and wl.effective and tflops <= 0 and vram_mib <= 0 and lim_tflops <= 0 \
                and lim_vram_mib <= 0:       # nothing asked: the workload's resources (cron rule, recommendation)
            eff = wl.effective
            tflops, vram_mib = eff.tflops or 0.0, eff.vram_mib or 0
            lim_tflops, lim_vram_mib = eff.lim_tflops or 0.0, eff.lim_vram_mib or 0
            if not pool and wl.cfg.pool:
                pool = wl.cfg.pool if wl.cfg.pool in self.index.policies else pool
        if tflops <= 0 and vram_mib <= 0 and (lim_tflops > 0 or lim_vram_mib > 0):
            tflops, vram_mib = lim_tflops, lim_vram_mib     # only limits given: requests = limits (as Kubernetes)
        ttl = lease_ttl_s or self.cfg.lease_ttl_s
        if not 0 < ttl <= self.cfg.max_lease_ttl_s:
            raise InvalidRequest(f"lease_ttl_s {lease_ttl_s} must be in (0, {self.cfg.max_lease_ttl_s:g}]")
        profile = None
        if tflops <= 0 and vram_mib <= 0 and lim_tflops <= 0 and lim_vram_mib <= 0:
            profile = self.cfg.profile_for(pool)          # nothing asked: the pool's default vGPU profile
            tflops, vram_mib = profile.tflops, profile.vram_mib
        req = Request(tflops, vram_mib, lim_tflops, lim_vram_mib, qos, gpu_count or 1, pool, model, vendor,
                      client_node if local_gpu else "", namespace or "default")
        fixed_id = ""
        if request_id:     # a retry (after a failover) of an Allocate that may have been committed: same answer
            validate.token_like("request_id", request_id)
            fixed_id = "alloc-" + hashlib.sha256(f"{req.namespace}\0{request_id}".encode()).hexdigest()[:16]
            if fixed_id in self.allocs:
                return Granted(self.allocs[fixed_id], self.token(self.allocs[fixed_id]), [])
            if self._ended(fixed_id) is not None:
                raise AllocationInactive(f"allocation {fixed_id} of request {request_id} has already ended")
        # other schedulers may write the same store (etcd, no elected leader): on a miss, re-read and place again
        shared = getattr(self.store, "shared", False) and getattr(self.store, "guard", None) is None
        first = req
        aid = fixed_id or "alloc-" + secrets.token_hex(8)
        for attempt in range(16):
            try:
                if profile is not None and not profile.vram_mib:
                    d, req = self.index.place_share(first, profile.vram_share)
                else:
                    d = self.index.place(req)
            except (NoCapacity, InvalidRequest):
                if not shared or attempt:
                    raise
                self.resync()          # capacity freed or nodes added by another scheduler are seen now
                continue
            now = self.clock()
            a = AllocationRecord(aid, d.pool, req.namespace, workload, d.node, d.gpus, req.tflops, req.vram_mib,
                                 req.lim_tflops, req.lim_vram_mib, qos, ACTIVE, "", now, ttl, now + ttl)
            reason = f"preempted by {aid} ({QOS_NAMES[qos]} QoS)"
            # write-through: the store first, so a failed write changes nothing in memory; on a shared store the
            # write compares the GPUs' revisions we placed on (StoreConflict: someone else charged them meanwhile)
            try:
                self.store.put_allocation(a, ended=tuple((v, PREEMPTED, reason) for v in d.preempt))
                break
            except StoreConflict:
                if attempt == 15:
                    raise
                self.resync()
                if aid in self.allocs:  # a try whose answer was lost (etcd changed leader) did commit: that one
                    return Granted(self.allocs[aid], self.token(self.allocs[aid]), [])
        closes = self._end(d.preempt, PREEMPTED, reason, persist=False)
        self.index.add_allocation(self._alloc_view(a))
        self.allocs[aid] = a
        return Granted(a, self.token(a), closes)

    def release(self, aid: str) -> tuple:
        """-> (released now?, closes)."""
        if aid in self.allocs:
            return True, self._end([aid], RELEASED, "released")
        if self._ended(aid) is not None:
            return False, []
        raise UnknownAllocation(f"allocation {aid!r} does not exist")

    def _ended(self, aid: str) -> AllocationRecord | None:
        a = self.ended.get(aid)
        if a is None and aid:
            a = self.store.get_ended(aid)     # ended before a restart, or beyond the in-memory history
        return a

    def get(self, aid: str) -> AllocationRecord:
        a = self.allocs.get(aid) or self._ended(aid)
        if a is None:
            raise UnknownAllocation(f"allocation {aid!r} does not exist")
        return a

    def _active(self, aid: str) -> AllocationRecord:
        a = self.allocs.get(aid)
        if a is None:
            gone = self.get(aid)
            raise AllocationInactive(f"allocation {aid} is {STATE_NAMES[gone.state]} ({gone.reason}): allocate again")
        return a

    def renew(self, aid: str, ttl_s: float = 0.0) -> AllocationRecord:
        a = self._active(aid)
        if ttl_s and not 0 < ttl_s <= self.cfg.max_lease_ttl_s:
            raise InvalidRequest(f"ttl_s {ttl_s} must be in (0, {self.cfg.max_lease_ttl_s:g}]")
        ttl = ttl_s or a.lease_ttl_s
        expires_at = self.clock() + ttl
        if ttl != a.lease_ttl_s:      # a new TTL is part of the record: a restart or a new leader keeps it
            self.store.put_allocation(replace(a, lease_ttl_s=ttl, lease_expires_at=expires_at))
        else:
            self.store.renew_leases([(aid, expires_at)])
        a.lease_ttl_s, a.lease_expires_at = ttl, expires_at   # the store first: a failed write changes nothing
        return a

    def set_limits(self, aid: str, lim_tflops: float = 0.0, lim_vram_mib: int = 0, tflops: float = 0.0,
                   vram_mib: int = 0) -> AllocationRecord:
        """Changes requests/limits (0 = unchanged) if the allocation's GPUs have room."""
        a = self._active(aid)
        t = tflops or a.tflops
        v = vram_mib or a.vram_mib
        lt = lim_tflops or max(a.lim_tflops, t)
        lv = lim_vram_mib or max(a.lim_vram_mib, v)
        self.index.resize(aid, t, v, lt, lv)
        new = replace(a, tflops=t, vram_mib=v, lim_tflops=lt, lim_vram_mib=lv)
        try:
            self.store.put_allocation(new)
        except Exception:
            self.index.resize(aid, a.tflops, a.vram_mib, a.lim_tflops, a.lim_vram_mib)
            raise
        self.allocs[aid] = new
        return new

    # ---- workloads (autoscaling) ----
    def apply_workload(self, namespace: str, doc) -> WorkloadEntry:
        """Creates or replaces a workload from its document (WorkloadConfigError -> InvalidRequest)."""
        validate.name("namespace", namespace)
        e = self.autoscaler.entries.get((namespace, doc.get("name"))) if isinstance(doc, dict) else None
        try:
            new = self.autoscaler.apply(namespace, doc, self.clock())
        except WorkloadConfigError as err:
            raise InvalidRequest(f"invalid workload document: {err}") from None
        try:
            if hasattr(self.store, "put_workload"):
                self.store.put_workload(self._workload_record(new))
        except Exception:
            if e is None:
                self.autoscaler.entries.pop(new.key, None)
            else:
                self.autoscaler.entries[e.key] = e
            raise
        self.autoscaler.evaluate(new, self.clock(), self.workload_allocs(new), self.pool_cap(new))
        return new

    def pool_cap(self, e: WorkloadEntry) -> Res | None:
        """The largest GPU of workload e's pool, the bound of its recommendations (None: no GPU yet)."""
        big = self.index.largest(e.cfg.pool)
        return Res(*big) if big else None

    @staticmethod
    def _workload_record(e: WorkloadEntry) -> WorkloadRecord:
        return WorkloadRecord(e.namespace, e.name, json.dumps(e.doc), json.dumps(e.status()),
                              json.dumps(e.checkpoint()), e.updated_at)

    def get_workload(self, namespace: str, name: str) -> WorkloadEntry:
        e = self.autoscaler.entries.get((namespace, name))
        if e is None:
            raise UnknownWorkload(f"workload {name!r} does not exist in namespace {namespace!r}: "
                                  f"create it with `tensorfusion workload apply -f FILE`")
        return e

    def workload_allocs(self, e: WorkloadEntry) -> list:
        return [a for a in self.allocs.values() if a.workload == e.name and a.namespace == e.namespace]

    def autoscale(self) -> list:
        """One pass of the workload loop: for every workload, estimates, recommendation and active cron rule;
        a workload that manages its allocations gets them resized to its effective resources when their GPUs
        have room (else the old values stay and a ResourcesApplied=False condition says why; the next pass
        retries). Persists statuses and checkpoints. -> [(new AllocationRecord, old AllocationRecord)] whose
        limits the worker must now be ordered to enforce."""
        now = self.clock()
        changes, cps = [], []
        for e in list(self.autoscaler.entries.values()):
            allocs = self.workload_allocs(e)
            eff = self.autoscaler.evaluate(e, now, allocs, self.pool_cap(e))
            if e.manages and allocs:
                refused = []
                for a in allocs:
                    t, v = eff.tflops or a.tflops, eff.vram_mib or a.vram_mib
                    lt, lv = eff.lim_tflops or max(a.lim_tflops, t), eff.lim_vram_mib or max(a.lim_vram_mib, v)
                    if (abs(t - a.tflops) < 1e-6 and v == a.vram_mib and abs(lt - a.lim_tflops) < 1e-6
                            and lv == a.lim_vram_mib):
                        continue
                    try:
                        changes.append((self.set_limits(a.id, lt, int(lv), t, int(v)), a))
                    except (NoCapacity, QuotaExceeded, InvalidRequest) as err:
                        refused.append(f"{a.id}: {err}")
                if refused:
                    e.set_condition(RESOURCES_APPLIED, False, "InsufficientCapacity",
                                    "kept the old resources, retrying next pass: " + "; ".join(refused), now)
                else:
                    e.set_condition(RESOURCES_APPLIED, True, "Applied",
                                    f"{len(allocs)} allocation(s) run with the workload's resources", now)
                e.applied_replicas = sum(1 for a in self.workload_allocs(e)
                                         if e.recommendation and _matches(a, e))
            cps.append((e.namespace, e.name, json.dumps(e.status()), json.dumps(e.checkpoint())))
        if hasattr(self.store, "put_workload_checkpoints"):
            self.store.put_workload_checkpoints(cps)
        return changes

    def autoscale_failed(self, new: AllocationRecord, old: AllocationRecord, why: str) -> None:
        """The worker did not apply a change autoscale() made: the old figures go back, the status says why."""
        try:
            self.set_limits(new.id, old.lim_tflops, old.lim_vram_mib, old.tflops, old.vram_mib)
        except TensorFusionError:     # ended meanwhile, or its old room taken: the next pass sorts it out
            pass
        e = self.autoscaler.entries.get((new.namespace, new.workload))
        if e is not None:
            e.set_condition(RESOURCES_APPLIED, False, "WorkerUnreachable",
                            f"{new.id}: {why}; kept the old resources, retrying next pass", self.clock())

    # ---- time ----
    def discount(self, seconds: float) -> None:
        """Time this scheduler did not run (its process stopped, its host suspended): it counts for no one, as a
        restart gives a fresh TTL and node timeout. Every lease and every node's silence is moved on by `seconds`,
        so that nothing is expired or declared lost for heartbeats and renewals it was not there to receive."""
        renewals = []
        for a in self.allocs.values():
            a.lease_expires_at += seconds
            renewals.append((a.id, a.lease_expires_at))
        self.store.renew_leases(renewals)
        for wid in self.last_seen:
            self.last_seen[wid] += seconds

    def tick(self) -> list:
        """Expires leases and marks silent nodes unavailable. -> Close orders."""
        now = self.clock()
        if now >= self._next_prune:                  # bound the stored history of ended allocations
            self._next_prune = now + 600.0
            self.store.prune_ended(ENDED_KEPT)
        closes = []
        expired = [a.id for a in self.allocs.values() if a.lease_expires_at <= now]
        if expired:
            closes += self._end(expired, EXPIRED, "lease expired")
        for wid, node in self.nodes.items():
            silent = now - self.last_seen.get(wid, now)
            if node.available and silent > self.cfg.node_timeout_s:
                # the store first (a failed write leaves the node to the next tick, nothing half done in memory)
                lost = [a.id for a in self.allocs.values() if a.worker_id == wid]
                closes += self._end(lost, LOST, f"worker {wid} missed heartbeats for {silent:.1f}s")
                self.store.set_node_available(wid, False)
                node.available = False
                self.index.set_node_available(wid, False)
                self.unreachable.pop(wid, None)
        return closes

    def mark_unreachable(self, worker_id: str, why: str) -> bool:
        """Takes worker_id out of placement until its next heartbeat or registration, because the scheduler's own
        probe of it failed (Kubernetes' unreachable:NoSchedule taint: tfscheduler/README.md, Node liveness). Its
        allocations stay: only node_timeout_s of silence ends them (LOST), as before. -> False when the node is
        unknown or already out of placement."""
        node = self.nodes.get(worker_id)
        if node is None or not node.available or worker_id in self.unreachable:
            return False
        self.unreachable[worker_id] = why
        self.index.set_node_available(worker_id, False)
        return True

    def placeable(self, worker_id: str) -> bool:
        """True when new allocations may go to worker_id: it heartbeats and no failed probe has marked it since."""
        node = self.nodes.get(worker_id)
        return node is not None and node.available and worker_id not in self.unreachable

    def endpoints(self, worker_id: str) -> NodeRecord | None:
        return self.nodes.get(worker_id)


def _matches(a: AllocationRecord, e: WorkloadEntry) -> bool:
    return matches(a, e.recommendation, e.cfg.auto_set_resources.target_resource)
