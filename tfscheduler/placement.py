"""Placement core: which GPU(s) a vGPU request goes to, and which lower-QoS allocations to preempt.

Pure: plain dataclasses in, a Decision out; no gRPC, no SQL, no clock. tfscheduler.state drives it
(and persists what it decides); tests drive it with synthetic pools.

Model
- Every GPU has a physical capacity (TFLOPS, MiB) and a limit capacity = physical x the pool's
  oversell ratio. An allocation charges its *requests* against physical capacity (guaranteed share)
  and its *limits* against limit capacity (burst ceiling), per GPU, on each of its gpu_count GPUs,
  all on one node.
- Filters: pool, model (case-insensitive substring), vendor, QoS levels the pool accepts, local node,
  node available, capacity, gpu_count GPUs on one node.
- Scores use the GPU load = weighted fraction of capacity already requested
  (w_tflops * tflops_requested / tflops_cap + w_vram * vram_requested / vram_cap, weights normalised):
    compact-first              highest-loaded GPU that fits (bin packing, keeps whole GPUs free)
    low-load-first             lowest-loaded GPU that fits (spreads, least interference)
    node-compact-gpu-low-load  the most-loaded node that fits, then its lowest-loaded GPU(s)
                               (default: frees whole nodes for scale-down, spreads inside a node)
  Ties go to the GPU registered first, so decisions are deterministic.
- Quotas cap the sum of requests (x gpu_count) per namespace; a quota miss never preempts.
- QoS preemption: if nothing fits and the request's QoS is above LOW, look for the cheapest set of
  strictly-lower-QoS allocations whose removal makes it fit. Cost, compared in order: the highest
  QoS preempted, how many allocations of that QoS, how many in all, the share of capacity freed.
  Never futile: a set is used only if the request fits once it is gone (checked on every GPU).

Speed: GPU state lives in numpy columns (the in-memory index), so a placement over 10,000 GPUs is a
handful of vector operations, not a Python loop. The preemption search (the rare path) evaluates at
most PREEMPT_CANDIDATES nodes, chosen by the lowest QoS level that would make them fit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from tfclient.errors import InvalidRequest, NoCapacity, QuotaExceeded, UnknownPool

LOW, MEDIUM, HIGH, CRITICAL = 1, 2, 3, 4
QOS_NAMES = {LOW: "low", MEDIUM: "medium", HIGH: "high", CRITICAL: "critical"}
QOS_BY_NAME = {v: k for k, v in QOS_NAMES.items()}
STRATEGIES = ("compact-first", "low-load-first", "node-compact-gpu-low-load")
DEFAULT_STRATEGY = "node-compact-gpu-low-load"
EPS = 1e-6                # tolerance on float TFLOPS sums
PREEMPT_CANDIDATES = 16   # nodes examined in detail when looking for a preemption


@dataclass
class Gpu:
    uuid: str
    node: str                 # worker id
    pool: str
    model: str
    vendor: str
    vram_mib: int
    tflops: float
    available: bool = True


@dataclass
class Alloc:
    """Placement's view of an allocation: what it charges, where, at which QoS (per GPU)."""
    id: str
    gpus: tuple
    tflops: float             # request
    vram_mib: int
    lim_tflops: float
    lim_vram_mib: int
    qos: int = MEDIUM
    namespace: str = "default"


@dataclass
class Request:
    tflops: float
    vram_mib: int
    lim_tflops: float = 0.0   # 0 = same as the request
    lim_vram_mib: int = 0
    qos: int = MEDIUM
    gpu_count: int = 1
    pool: str = ""            # "" = any pool
    model: str = ""           # case-insensitive substring, "" = any
    vendor: str = ""
    node: str = ""            # local-GPU: only this node
    namespace: str = "default"

    def __post_init__(self):
        if self.lim_tflops == 0:
            self.lim_tflops = self.tflops
        if self.lim_vram_mib == 0:
            self.lim_vram_mib = self.vram_mib


@dataclass
class PoolPolicy:
    strategy: str = DEFAULT_STRATEGY
    tflops_weight: float = 0.5
    vram_weight: float = 0.5
    tflops_oversell: float = 1.0   # limits may total capacity x this
    vram_oversell: float = 1.0
    qos: tuple = (LOW, MEDIUM, HIGH, CRITICAL)   # QoS levels the pool accepts (e.g. a pool kept for high/critical)


@dataclass
class Quota:
    tflops: float | None = None    # sum of requests x gpu_count; None = unlimited
    vram_mib: int | None = None
    allocations: int | None = None


@dataclass
class Decision:
    node: str
    gpus: tuple
    preempt: tuple = ()            # allocation ids to close first
    pool: str = ""


@dataclass
class _Usage:
    tflops: float = 0.0
    vram_mib: int = 0
    allocations: int = 0


def validate(req: Request) -> None:
    """InvalidRequest for a request no pool could ever satisfy as written."""
    if req.gpu_count < 1:
        raise InvalidRequest(f"gpu_count {req.gpu_count} must be >= 1")
    for name, v in (("tflops request", req.tflops), ("vram request", req.vram_mib),
                    ("tflops limit", req.lim_tflops), ("vram limit", req.lim_vram_mib)):
        if not np.isfinite(v) or v < 0:
            raise InvalidRequest(f"{name} {v} must be >= 0")
    if req.tflops <= 0 and req.vram_mib <= 0:
        raise InvalidRequest("request neither TFLOPS nor VRAM: ask for at least one (e.g. tflops=1, vram='1Gi')")
    if req.lim_tflops + EPS < req.tflops:
        raise InvalidRequest(f"tflops limit {req.lim_tflops} is below the request {req.tflops}: raise the limit")
    if req.lim_vram_mib < req.vram_mib:
        raise InvalidRequest(f"vram limit {req.lim_vram_mib} MiB is below the request {req.vram_mib} MiB: raise the limit")
    if req.qos not in QOS_NAMES:
        raise InvalidRequest(f"qos {req.qos} unknown: use low, medium, high or critical")


class PlacementIndex:
    """The pool as numpy columns (one row per GPU) plus the allocations charged on them."""

    def __init__(self):
        self._n = 0                       # rows in use (rows of removed GPUs are reused)
        self._cap = 0
        self.rows: dict[str, int] = {}    # gpu uuid -> row
        self.gpus: dict[int, Gpu] = {}    # row -> Gpu
        self._free_rows: list[int] = []
        self._retired: set[int] = set()  # rows of GPUs gone from their worker but still charged
        self.policies: dict[str, PoolPolicy] = {}
        self.quotas: dict[str, Quota] = {}
        self.allocs: dict[str, Alloc] = {}
        self.on_gpu: dict[int, set] = {}  # row -> allocation ids
        self.ns_usage: dict[str, _Usage] = {}
        self._pool_ids: dict[str, int] = {}
        self._node_ids: dict[str, int] = {}
        self._node_names: list[str] = []
        # per node (by node id): capacity and requests summed over its live GPUs
        self.n_cap_t = np.zeros(16)
        self.n_cap_v = np.zeros(16)
        self.n_req_t = np.zeros(16)
        self.n_req_v = np.zeros(16)
        self._models: dict[str, int] = {}
        self._vendors: dict[str, int] = {}
        self._grow(64)

    # ---- columns ----
    def _grow(self, cap: int) -> None:
        def g(arr, dtype, shape=()):
            new = np.zeros((cap, *shape), dtype=dtype)
            if arr is not None:
                new[:len(arr)] = arr
            return new
        old = self._cap > 0
        self.cap_t = g(self.cap_t if old else None, np.float64)
        self.cap_v = g(self.cap_v if old else None, np.float64)
        self.lcap_t = g(self.lcap_t if old else None, np.float64)
        self.lcap_v = g(self.lcap_v if old else None, np.float64)
        self.req_t = g(self.req_t if old else None, np.float64)
        self.req_v = g(self.req_v if old else None, np.float64)
        self.lim_t = g(self.lim_t if old else None, np.float64)
        self.lim_v = g(self.lim_v if old else None, np.float64)
        # per QoS (index 1..4): requests, limits and count of allocations charged on the row
        self.q_req_t = g(self.q_req_t if old else None, np.float64, (5,))
        self.q_req_v = g(self.q_req_v if old else None, np.float64, (5,))
        self.q_lim_t = g(self.q_lim_t if old else None, np.float64, (5,))
        self.q_lim_v = g(self.q_lim_v if old else None, np.float64, (5,))
        self.q_cnt = g(self.q_cnt if old else None, np.int32, (5,))
        # requested fraction of capacity per row (kept current by _charge/upsert: the load score is two gathers)
        self.frac_t = g(self.frac_t if old else None, np.float64)
        self.frac_v = g(self.frac_v if old else None, np.float64)
        self.live = g(self.live if old else None, bool)
        self.avail = g(self.avail if old else None, bool)
        self.pool_id = g(self.pool_id if old else None, np.int32)
        self.node_id = g(self.node_id if old else None, np.int32)
        self.model_id = g(self.model_id if old else None, np.int32)
        self.vendor_id = g(self.vendor_id if old else None, np.int32)
        self._cap = cap

    @staticmethod
    def _intern(table: dict, key: str) -> int:
        if key not in table:
            table[key] = len(table)
        return table[key]

    def _node(self, name: str) -> int:
        if name not in self._node_ids:
            self._node_ids[name] = len(self._node_names)
            self._node_names.append(name)
            if len(self._node_names) > len(self.n_cap_t):
                m = 2 * len(self.n_cap_t)
                for attr in ("n_cap_t", "n_cap_v", "n_req_t", "n_req_v"):
                    arr = np.zeros(m)
                    arr[:len(getattr(self, attr))] = getattr(self, attr)
                    setattr(self, attr, arr)
        return self._node_ids[name]

    def _frac(self, r: int) -> None:
        self.frac_t[r] = self.req_t[r] / self.cap_t[r] if self.cap_t[r] > 0 else 1.0
        self.frac_v[r] = self.req_v[r] / self.cap_v[r] if self.cap_v[r] > 0 else 1.0

    def _node_sums(self, r: int, sign: int) -> None:
        nid = self.node_id[r]
        self.n_cap_t[nid] += sign * self.cap_t[r]
        self.n_cap_v[nid] += sign * self.cap_v[r]
        self.n_req_t[nid] += sign * self.req_t[r]
        self.n_req_v[nid] += sign * self.req_v[r]

    # ---- pool shape ----
    def set_policy(self, pool: str, policy: PoolPolicy) -> None:
        if policy.strategy not in STRATEGIES:
            raise InvalidRequest(f"strategy {policy.strategy!r} unknown: use one of {', '.join(STRATEGIES)}")
        self.policies[pool] = policy
        pid = self._intern(self._pool_ids, pool)
        rows = np.nonzero(self.live[:self._n] & (self.pool_id[:self._n] == pid))[0]
        self.lcap_t[rows] = self.cap_t[rows] * policy.tflops_oversell
        self.lcap_v[rows] = self.cap_v[rows] * policy.vram_oversell

    def policy(self, pool: str) -> PoolPolicy:
        if pool not in self.policies:
            self.set_policy(pool, PoolPolicy())
        return self.policies[pool]

    def upsert_gpu(self, gpu: Gpu) -> None:
        """Adds a GPU or updates its capacity/availability; charges on it are kept."""
        pol = self.policy(gpu.pool)
        row = self.rows.get(gpu.uuid)
        if row is None:
            if self._free_rows:
                row = self._free_rows.pop()
                for col in (self.req_t, self.req_v, self.lim_t, self.lim_v, self.q_req_t, self.q_req_v,
                            self.q_lim_t, self.q_lim_v, self.q_cnt):
                    col[row] = 0       # no float residue from the previous tenant of the row
            else:
                if self._n == self._cap:
                    self._grow(self._cap * 2)
                row = self._n
                self._n += 1
            self.rows[gpu.uuid] = row
            self.on_gpu[row] = set()
        else:
            self._node_sums(row, -1)
            self._retired.discard(row)
        self.gpus[row] = gpu
        self.cap_t[row], self.cap_v[row] = gpu.tflops, gpu.vram_mib
        self.lcap_t[row], self.lcap_v[row] = gpu.tflops * pol.tflops_oversell, gpu.vram_mib * pol.vram_oversell
        self.live[row], self.avail[row] = True, gpu.available
        self.pool_id[row] = self._intern(self._pool_ids, gpu.pool)
        self.node_id[row] = self._node(gpu.node)
        self.model_id[row] = self._intern(self._models, gpu.model.lower())
        self.vendor_id[row] = self._intern(self._vendors, gpu.vendor.lower())
        self._node_sums(row, +1)
        self._frac(row)

    def remove_gpu(self, uuid: str) -> None:
        """Forgets a GPU that has no allocations (else it is only marked unavailable)."""
        row = self.rows.get(uuid)
        if row is None:
            return
        if self.on_gpu[row]:
            self.avail[row] = False
            self.gpus[row].available = False
            self._retired.add(row)
            return
        self._node_sums(row, -1)
        del self.rows[uuid], self.gpus[row], self.on_gpu[row]
        self.live[row] = self.avail[row] = False
        self._free_rows.append(row)

    def set_node_available(self, node: str, available: bool) -> None:
        nid = self._node_ids.get(node)
        if nid is None:
            return
        rows = [r for r in np.nonzero(self.live[:self._n] & (self.node_id[:self._n] == nid))[0].tolist()
                if r not in self._retired]
        self.avail[rows] = available
        for r in rows:
            self.gpus[r].available = available

    # ---- charges ----
    def _charge(self, a: Alloc, sign: int) -> None:
        for uuid in a.gpus:
            r = self.rows[uuid]
            self.req_t[r] += sign * a.tflops
            self.req_v[r] += sign * a.vram_mib
            self.lim_t[r] += sign * a.lim_tflops
            self.lim_v[r] += sign * a.lim_vram_mib
            self.q_req_t[r, a.qos] += sign * a.tflops
            self.q_req_v[r, a.qos] += sign * a.vram_mib
            self.q_lim_t[r, a.qos] += sign * a.lim_tflops
            self.q_lim_v[r, a.qos] += sign * a.lim_vram_mib
            self.q_cnt[r, a.qos] += sign
            self._frac(r)
            nid = self.node_id[r]
            self.n_req_t[nid] += sign * a.tflops
            self.n_req_v[nid] += sign * a.vram_mib
            (self.on_gpu[r].add if sign > 0 else self.on_gpu[r].discard)(a.id)
        u = self.ns_usage.setdefault(a.namespace, _Usage())
        n = len(a.gpus)
        u.tflops += sign * a.tflops * n
        u.vram_mib += sign * a.vram_mib * n
        u.allocations += sign

    def add_allocation(self, a: Alloc) -> None:
        """Charges an allocation (placed by place(), or reloaded after a restart)."""
        if a.id in self.allocs:
            raise ValueError(f"allocation {a.id} already charged")
        missing = [u for u in a.gpus if u not in self.rows]
        if missing:
            raise KeyError(f"allocation {a.id} is on unknown GPU(s) {missing}")
        self.allocs[a.id] = a
        self._charge(a, +1)

    def remove_allocation(self, alloc_id: str) -> Alloc | None:
        a = self.allocs.pop(alloc_id, None)
        if a is not None:
            self._charge(a, -1)
        return a

    def resize(self, alloc_id: str, tflops: float, vram_mib: int, lim_tflops: float, lim_vram_mib: int) -> Alloc:
        """Changes an allocation's requests/limits in place if its GPUs have room (NoCapacity if not)."""
        a = self.allocs[alloc_id]
        new = Alloc(a.id, a.gpus, tflops, vram_mib, lim_tflops, lim_vram_mib, a.qos, a.namespace)
        validate(Request(tflops, vram_mib, lim_tflops, lim_vram_mib, a.qos, len(a.gpus)))
        self._charge(a, -1)
        rows = [self.rows[u] for u in a.gpus]
        short = [self.gpus[r].uuid for r in rows
                 if self.req_t[r] + tflops > self.cap_t[r] + EPS or self.req_v[r] + vram_mib > self.cap_v[r]
                 or self.lim_t[r] + lim_tflops > self.lcap_t[r] + EPS or self.lim_v[r] + lim_vram_mib > self.lcap_v[r]]
        quota = self.quotas.get(a.namespace)
        if not short and quota is not None:
            try:
                self._check_quota(Request(tflops, vram_mib, lim_tflops, lim_vram_mib, a.qos, len(a.gpus),
                                          namespace=a.namespace))
            except QuotaExceeded:
                self._charge(a, +1)
                raise
        if short:
            self._charge(a, +1)
            raise NoCapacity(f"GPU(s) {', '.join(short)} of allocation {alloc_id} have no room for "
                             f"requests {tflops:g} TFLOPS/{vram_mib} MiB, limits {lim_tflops:g} TFLOPS/"
                             f"{lim_vram_mib} MiB: ask for less or allocate again elsewhere")
        self.allocs[alloc_id] = new
        self._charge(new, +1)
        return new

    # ---- placement ----
    def _static_mask(self, req: Request) -> np.ndarray:
        n = self._n
        mask = self.live[:n].copy()
        if req.pool:
            if req.pool not in self._pool_ids:
                if not self._pool_ids:
                    raise UnknownPool(f"pool {req.pool!r} does not exist: no worker has registered with this "
                                      f"scheduler yet (start one: `tensorfusion worker --scheduler HOST:PORT`)")
                raise UnknownPool(f"pool {req.pool!r} does not exist (pools: {', '.join(sorted(self._pool_ids))})")
            mask &= self.pool_id[:n] == self._pool_ids[req.pool]
            pol = self.policy(req.pool)
            if req.qos not in pol.qos:
                raise InvalidRequest(f"pool {req.pool!r} accepts QoS {', '.join(QOS_NAMES[q] for q in pol.qos)}, "
                                     f"not {QOS_NAMES[req.qos]}: change the QoS or the pool")
        else:
            closed = [self._pool_ids[p] for p, pol in self.policies.items() if req.qos not in pol.qos]
            if closed:
                mask &= ~np.isin(self.pool_id[:n], closed)
        if req.model:
            sub = req.model.lower()
            ids = [i for m, i in self._models.items() if sub in m]
            mask &= np.isin(self.model_id[:n], ids)
        if req.vendor:
            ids = [i for v, i in self._vendors.items() if v == req.vendor.lower()]
            mask &= np.isin(self.vendor_id[:n], ids)
        if req.node:
            mask &= self.node_id[:n] == self._node_ids.get(req.node, -1)
        return mask

    def _impossible(self, req: Request, mask: np.ndarray) -> None:
        """InvalidRequest if no registered GPU (busy or not) could ever hold the request."""
        what = " ".join(x for x in (f"pool {req.pool!r}" if req.pool else "", f"model ~{req.model!r}" if req.model else "",
                                    f"vendor {req.vendor!r}" if req.vendor else "",
                                    f"node {req.node!r}" if req.node else "") if x) or "the pool"
        if not mask.any():
            raise InvalidRequest(f"no GPU in {what} matches (registered models: "
                                 f"{', '.join(sorted(self._models)) or 'none'}): relax the filters")
        n = self._n
        big = mask & (self.cap_t[:n] + EPS >= req.tflops) & (self.cap_v[:n] >= req.vram_mib) \
            & (self.lcap_t[:n] + EPS >= req.lim_tflops) & (self.lcap_v[:n] >= req.lim_vram_mib)
        if not big.any():
            rows = np.nonzero(mask)[0]
            mt, mv = self.cap_t[rows].max(), int(self.cap_v[rows].max())
            lt, lv = self.lcap_t[rows].max(), int(self.lcap_v[rows].max())     # above mt/mv when oversold
            raise InvalidRequest(f"request {req.tflops:g} TFLOPS / {req.vram_mib} MiB (limits {req.lim_tflops:g} / "
                                 f"{req.lim_vram_mib} MiB) exceeds every GPU in {what} (largest: {mt:g} TFLOPS, "
                                 f"{mv} MiB; limits up to {lt:g} TFLOPS, {lv} MiB): lower the request or limit "
                                 f"that does not fit")
        if req.gpu_count > 1:
            per_node = np.bincount(self.node_id[:n][big], minlength=len(self._node_names))
            if per_node.max() < req.gpu_count:
                raise InvalidRequest(f"gpu_count {req.gpu_count} exceeds the GPUs any node in {what} has "
                                     f"(most: {int(per_node.max())}): a vGPU's GPUs must share one node")

    def _check_quota(self, req: Request) -> None:
        q = self.quotas.get(req.namespace)
        if q is None:
            return
        u = self.ns_usage.get(req.namespace, _Usage())
        n = req.gpu_count
        if q.tflops is not None and u.tflops + req.tflops * n > q.tflops + EPS:
            raise QuotaExceeded(f"namespace {req.namespace!r} quota {q.tflops:g} TFLOPS: {u.tflops:g} in use, "
                                f"{req.tflops * n:g} asked; release allocations or raise the quota")
        if q.vram_mib is not None and u.vram_mib + req.vram_mib * n > q.vram_mib:
            raise QuotaExceeded(f"namespace {req.namespace!r} quota {q.vram_mib} MiB VRAM: {u.vram_mib} in use, "
                                f"{req.vram_mib * n} asked; release allocations or raise the quota")
        if q.allocations is not None and u.allocations + 1 > q.allocations:
            raise QuotaExceeded(f"namespace {req.namespace!r} quota {q.allocations} allocations reached")

    def _load(self, rows: np.ndarray, pol: PoolPolicy) -> np.ndarray:
        wt, wv = pol.tflops_weight, pol.vram_weight
        s = (wt + wv) or 1.0
        return self.frac_t[rows] * (wt / s) + self.frac_v[rows] * (wv / s)

    def _policy_for(self, req: Request, rows: np.ndarray) -> PoolPolicy:
        if req.pool:
            return self.policy(req.pool)
        # Any pool: the policy of the first candidate's pool (pools rarely differ in strategy).
        pool = self.gpus[int(rows[0])].pool
        return self.policy(pool)

    def _choose(self, req: Request, rows: np.ndarray) -> Decision | None:
        """Best node/GPUs among rows that fit (numpy row indices)."""
        if len(rows) == 0:
            return None
        pol = self._policy_for(req, rows)
        nodes = self.node_id[rows]
        k = req.gpu_count
        if k == 1 and pol.strategy != "node-compact-gpu-low-load":
            load = self._load(rows, pol)
            i = int(np.argmax(load) if pol.strategy == "compact-first" else np.argmin(load))
            return Decision(self._node_names[nodes[i]], (self.gpus[int(rows[i])].uuid,),
                            pool=self.gpus[int(rows[i])].pool)
        if k > 1:
            counts = np.bincount(nodes, minlength=len(self._node_names))
            ok = counts[nodes] >= k
            rows, nodes = rows[ok], nodes[ok]
            if len(rows) == 0:
                return None
        # pick the node first (its load is over all its GPUs), then its GPUs: only those get scored
        nl = self._node_load(pol, nodes)
        best = nl.max() if pol.strategy != "low-load-first" else nl.min()
        sel = np.abs(nl - best) <= 1e-12
        node = nodes[sel].min()          # lowest node id among the best, so all k GPUs share one node
        r = rows[nodes == node]
        ld = self._load(r, pol)
        order = np.argsort(-ld if pol.strategy == "compact-first" else ld, kind="stable")[:k]
        chosen = tuple(self.gpus[int(x)].uuid for x in r[order])
        return Decision(self._node_names[node], chosen, pool=self.gpus[int(r[order[0]])].pool)

    def _node_load(self, pol: PoolPolicy, nodes: np.ndarray) -> np.ndarray:
        """Requested share of each given node, over all its live GPUs (not only those that fit)."""
        wt, wv = pol.tflops_weight, pol.vram_weight
        s = (wt + wv) or 1.0
        m = len(self._node_names)          # computed over all nodes (few), then gathered
        ct, cv = self.n_cap_t[:m], self.n_cap_v[:m]
        with np.errstate(divide="ignore", invalid="ignore"):
            lt = np.where(ct > 0, self.n_req_t[:m] / ct, 1.0)
            lv = np.where(cv > 0, self.n_req_v[:m] / cv, 1.0)
        return ((wt / s) * lt + (wv / s) * lv)[nodes]

    def place(self, req: Request, rows: np.ndarray | None = None) -> Decision:
        """Where req goes (and what to preempt first). Raises InvalidRequest / UnknownPool /
        QuotaExceeded / NoCapacity with a message saying what to change. Does not charge.
        rows: optional bool mask over GPU rows to choose from (place_share uses it)."""
        validate(req)
        mask = self._static_mask(req)
        if rows is not None:
            mask &= rows
        self._impossible(req, mask)
        self._check_quota(req)
        n = self._n
        mask &= self.avail[:n]
        fit = mask & (self.req_t[:n] + req.tflops <= self.cap_t[:n] + EPS) \
            & (self.req_v[:n] + req.vram_mib <= self.cap_v[:n]) \
            & (self.lim_t[:n] + req.lim_tflops <= self.lcap_t[:n] + EPS) \
            & (self.lim_v[:n] + req.lim_vram_mib <= self.lcap_v[:n])
        d = self._choose(req, np.nonzero(fit)[0])
        if d is not None:
            return d
        if req.qos > LOW:
            d = self._preempt(req, mask, fit)
            if d is not None:
                return d
        if not mask.any():
            raise NoCapacity("every matching GPU is on an unavailable node (no heartbeat): retry when workers are back")
        raise NoCapacity(f"no GPU has {req.tflops:g} TFLOPS / {req.vram_mib} MiB free (limits {req.lim_tflops:g} / "
                         f"{req.lim_vram_mib} MiB) right now"
                         + (" and no lower-QoS allocations would make room" if req.qos > LOW else "")
                         + ": ask for less, wait for releases, or use a higher QoS")

    def place_share(self, req: Request, share: float) -> tuple[Decision, Request]:
        """Places a request for `share` (0 < share <= 1) of one GPU's VRAM (the default profile's "100%"):
        the VRAM asked of each GPU is ceil(share x its VRAM), so GPUs of each VRAM size are tried in turn,
        smallest first (keeps big GPUs for big requests). -> (decision, the request with VRAM filled in).
        Raises what place() raises; NoCapacity names the share when no size has room."""
        if not 0 < share <= 1:
            raise InvalidRequest(f"VRAM share {share:g} must be in (0, 1]")
        n = self._n
        mask = self._static_mask(replace(req, vram_mib=1))
        caps = sorted({int(c) for c in self.cap_v[:n][mask]})
        if not caps:
            self._impossible(replace(req, vram_mib=1), mask)      # raises: nothing matches
        busy = None
        for cap in caps:
            vram = max(1, math.ceil(share * cap - 1e-9))
            sized = replace(req, vram_mib=vram, lim_vram_mib=max(req.lim_vram_mib, vram))
            try:
                return self.place(sized, rows=self.cap_v[:n] == cap), sized
            except NoCapacity as e:
                busy = e
        if not (mask & self.avail[:n]).any():
            raise busy                                  # every matching GPU's node is down: that message says so
        raise NoCapacity(f"no GPU has {share:.0%} of its VRAM free right now (the pool's default profile, given when "
                         f"no TFLOPS or VRAM is asked for)"
                         + (" and no lower-QoS allocations would make room" if req.qos > LOW else "")
                         + ": ask for a share of a GPU (e.g. `tensorfusion run --vram 1Gi`, attach(vram=\"1Gi\")), "
                           "wait for releases, or use a higher QoS")

    # ---- preemption ----
    def _row_fits_without(self, r: int, gone: set, req: Request) -> bool:
        t, v, lt, lvv = self.req_t[r], self.req_v[r], self.lim_t[r], self.lim_v[r]
        for aid in self.on_gpu[r] & gone:
            a = self.allocs[aid]
            t, v, lt, lvv = t - a.tflops, v - a.vram_mib, lt - a.lim_tflops, lvv - a.lim_vram_mib
        return (t + req.tflops <= self.cap_t[r] + EPS and v + req.vram_mib <= self.cap_v[r]
                and lt + req.lim_tflops <= self.lcap_t[r] + EPS and lvv + req.lim_vram_mib <= self.lcap_v[r])

    def _victims_on(self, r: int, level: int, req: Request, already: set) -> set | None:
        """Smallest irredundant set of allocations with QoS <= level on row r (beyond `already`)
        whose removal makes req fit there; None if even all of them are not enough."""
        if self._row_fits_without(r, already, req):
            return set()
        cands = [self.allocs[a] for a in self.on_gpu[r] - already if self.allocs[a].qos <= level]
        ct, cv = max(self.cap_t[r], EPS), max(self.cap_v[r], 1.0)
        # lowest QoS first, then the biggest (fewest victims)
        cands.sort(key=lambda a: (a.qos, -(a.tflops / ct + a.vram_mib / cv), a.id))
        chosen: list[Alloc] = []
        gone = set(already)
        for a in cands:
            chosen.append(a)
            gone.add(a.id)
            if self._row_fits_without(r, gone, req):
                break
        else:
            return None
        # prune: drop any victim the request does not need (highest QoS, smallest first)
        for a in sorted(chosen, key=lambda a: (-a.qos, a.tflops / ct + a.vram_mib / cv)):
            if self._row_fits_without(r, gone - {a.id}, req):
                gone.discard(a.id)
        return gone - already

    def _cost(self, victims: set) -> tuple:
        if not victims:
            return (0, 0, 0, 0.0)
        vs = [self.allocs[a] for a in victims]
        top = max(a.qos for a in vs)
        share = sum((a.tflops / max(self.cap_t[self.rows[a.gpus[0]]], EPS)
                     + a.vram_mib / max(self.cap_v[self.rows[a.gpus[0]]], 1.0)) * len(a.gpus) for a in vs)
        return (top, sum(a.qos == top for a in vs), len(vs), share)

    def _preempt(self, req: Request, mask: np.ndarray, fit: np.ndarray) -> Decision | None:
        if not mask.any():
            return None
        # Per row: the lowest QoS level whose removal (all allocations of QoS <= level) makes req fit
        # (0 = fits already, req.qos = never), and how many allocations sit at or below that level.
        n = self._n
        over_t = self.req_t[:n] + req.tflops - self.cap_t[:n] - EPS      # > 0: short of room
        over_v = self.req_v[:n] + req.vram_mib - self.cap_v[:n]
        over_lt = self.lim_t[:n] + req.lim_tflops - self.lcap_t[:n] - EPS
        over_lv = self.lim_v[:n] + req.lim_vram_mib - self.lcap_v[:n]
        level = np.full(n, req.qos, dtype=np.int32)
        level[fit] = 0
        count = np.zeros(n, dtype=np.int32)
        below = np.zeros(n, dtype=np.int32)
        for lvl in range(1, req.qos):
            over_t -= self.q_req_t[:n, lvl]
            over_v -= self.q_req_v[:n, lvl]
            over_lt -= self.q_lim_t[:n, lvl]
            over_lv -= self.q_lim_v[:n, lvl]
            below += self.q_cnt[:n, lvl]
            now = (level == req.qos) & (over_t <= 0) & (over_v <= 0) & (over_lt <= 0) & (over_lv <= 0)
            level[now] = lvl
            count[now] = below[now]
        rows = np.nonzero(mask & (level < req.qos))[0]
        if len(rows) == 0:
            return None
        level, count = level[rows], count[rows]
        k = req.gpu_count
        if k == 1 and len(rows) > PREEMPT_CANDIDATES:
            # keep the rows with the lowest level, then the fewest allocations at or below it
            keep = np.lexsort((count, level))[:PREEMPT_CANDIDATES]
            rows, level, count = rows[keep], level[keep], count[keep]
        nodes = self.node_id[rows]
        # a node's level: the k-th smallest row level on it; examine the cheapest nodes
        node_levels: dict[int, list] = {}
        for r, lvl, c, nd in zip(rows.tolist(), level.tolist(), count.tolist(), nodes.tolist()):
            node_levels.setdefault(nd, []).append((lvl, c, r))
        ranked = []
        for nd, lst in node_levels.items():
            if len(lst) < k:
                continue
            lst.sort()
            ranked.append((max(x[0] for x in lst[:k]), sum(x[1] for x in lst[:k]), nd, lst))
        ranked.sort()
        best = None
        for top_level, _, nd, lst in ranked[:PREEMPT_CANDIDATES]:
            if best is not None and top_level > best[0][0]:
                break                      # ranked by level: every later node needs a higher-QoS victim
            victims: set = set()
            chosen = []
            # pick k rows greedily, cheapest first, reusing victims already chosen
            options = []
            for lvl, _, r in lst:
                v = self._victims_on(r, max(lvl, 1), req, victims) if lvl > 0 else set()
                if v is not None:
                    options.append((self._cost(v), r, v))
            options.sort(key=lambda o: (o[0], o[1]))
            for _, r, v in options[:k]:
                chosen.append(r)
                victims |= v
            if len(chosen) < k:
                continue
            # never futile: every chosen GPU must fit once all victims are gone
            if not all(self._row_fits_without(r, victims, req) for r in chosen):
                continue
            cost = self._cost(victims)
            if best is None or cost < best[0]:
                best = (cost, nd, tuple(chosen), victims)
        if best is None:
            return None
        _, nd, chosen, victims = best
        return Decision(self._node_names[nd], tuple(self.gpus[r].uuid for r in chosen),
                        preempt=tuple(sorted(victims)), pool=self.gpus[chosen[0]].pool)

    # ---- views ----
    def largest(self, pool: str) -> tuple | None:
        """The biggest per-GPU figures among the pool's live GPUs, each on its own: (TFLOPS, VRAM MiB, limit
        TFLOPS, limit VRAM MiB; limits with the pool's oversell). None when the pool has no GPU."""
        pid, n = self._pool_ids.get(pool), self._n
        if pid is None:
            return None
        rows = np.nonzero(self.live[:n] & (self.pool_id[:n] == pid))[0]
        if not len(rows):
            return None
        return (float(self.cap_t[rows].max()), int(self.cap_v[rows].max()), float(self.lcap_t[rows].max()),
                int(self.lcap_v[rows].max()))

    def gpu_charges(self, uuid: str) -> dict:
        r = self.rows[uuid]
        return {"req_tflops": float(self.req_t[r]), "req_vram_mib": int(round(self.req_v[r])),
                "lim_tflops": float(self.lim_t[r]), "lim_vram_mib": int(round(self.lim_v[r])),
                "lcap_tflops": float(self.lcap_t[r]), "lcap_vram_mib": int(round(self.lcap_v[r])),
                "allocations": len(self.on_gpu[r])}
