"""Workloads and their autoscaling (seed 004): per workload, the usage histories fed by worker heartbeats, the
VPA estimates and recommendation (tfscheduler.recommender), the active cron rule (tfscheduler.cron_rules), the
resources the workload's allocations should run with now, and the seed's status (conditions, recommendation,
appliedRecommendedReplicas, activeCronScalingRule).

Pure of gRPC and of the store: tfscheduler.state owns one Autoscaler, feeds it samples (heartbeat), asks it for
the effective resources (autoscale loop, Allocate with a workload name) and persists its JSON (records()).

Rules, in order, for what a workload's allocations run with (`effective`):
  1. an enabled cron rule whose window contains now: its desiredResources (fields it leaves out: rule 2/3);
  2. autoSetResources.enable and a targetResource (all|tflops|vram): the recommendation for those resources;
  3. the workload's own resources.
Allocations are only changed for a workload that manages them (autoSetResources enabled with a target, or any
cron rule): a recommend-only workload just reports.

Samples: TFLOPS = each heartbeat's per-GPU usage of each allocation (VPA's CPU samples); VRAM = the peak of each
allocation per `vram_peak_interval` (VPA's memory aggregation), added when the interval ends.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from tfscheduler import cron_rules
from tfscheduler.recommender import (MIN_TFLOPS, MIN_VRAM_MIB, TFLOPS_BUCKETS, VRAM_BUCKETS, DecayingHistogram,
                                     Estimate, UsageHistory, new_tflops_history, new_vram_history, recommend)
from tfscheduler.workload_config import WorkloadConfig, parse_workload

RECOMMENDATION_PROVIDED = "RecommendationProvided"
RESOURCES_APPLIED = "ResourcesApplied"


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def rfc3339(ts: float) -> str:
    return utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Res:
    """Per-GPU requests and limits; None = not set (left as the allocation has it)."""
    tflops: float | None = None
    vram_mib: int | None = None
    lim_tflops: float | None = None
    lim_vram_mib: int | None = None

    def as_dict(self) -> dict:
        return {"requests": {"tflops": self.tflops, "vram_mib": self.vram_mib},
                "limits": {"tflops": self.lim_tflops, "vram_mib": self.lim_vram_mib}}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Res | None":
        if not d:
            return None
        r, lim = d.get("requests") or {}, d.get("limits") or {}
        return cls(r.get("tflops"), r.get("vram_mib"), lim.get("tflops"), lim.get("vram_mib"))


def _own(cfg: WorkloadConfig) -> Res:
    """The workload's own resources; limits default to requests and requests to limits (as Allocate does)."""
    r = cfg.resources
    t = r.request_tflops if r.request_tflops is not None else r.limit_tflops
    v = r.request_vram_mib if r.request_vram_mib is not None else r.limit_vram_mib
    lt = r.limit_tflops if r.limit_tflops is not None else t
    lv = r.limit_vram_mib if r.limit_vram_mib is not None else v
    return Res(t, v, lt, lv)


def _pick(a, b):
    return a if a is not None else b


def _hist_cp(h: UsageHistory) -> dict:
    return {"hist": h.hist.checkpoint(), "samples": h.samples,
            "first": h.first_sample.isoformat() if h.first_sample else None,
            "last": h.last_sample.isoformat() if h.last_sample else None}


def _hist_restore(d: dict | None, scheme, half_life: timedelta) -> UsageHistory:
    if not d:
        return UsageHistory(DecayingHistogram(scheme, half_life))
    h = UsageHistory(DecayingHistogram.from_checkpoint(d.get("hist") or {}, scheme, half_life))
    h.samples = int(d.get("samples", 0))
    h.first_sample = datetime.fromisoformat(d["first"]) if d.get("first") else None
    h.last_sample = datetime.fromisoformat(d["last"]) if d.get("last") else None
    return h


@dataclass
class WorkloadEntry:
    namespace: str
    name: str
    doc: dict                                   # the document as applied
    cfg: WorkloadConfig
    updated_at: float = 0.0
    tflops: UsageHistory = field(default_factory=new_tflops_history)
    vram: UsageHistory = field(default_factory=new_vram_history)
    peaks: dict = field(default_factory=dict)   # allocation id -> [window index, peak MiB]
    recommendation: Res | None = None
    conditions: dict = field(default_factory=dict)   # type -> {type, status, reason, message, lastTransitionTime}
    active_rule: str = ""
    applied_replicas: int = 0
    est_tflops: Estimate | None = None
    est_vram: Estimate | None = None
    effective: Res | None = None

    @property
    def key(self) -> tuple:
        return self.namespace, self.name

    @property
    def manages(self) -> bool:
        """Whether the scheduler changes this workload's allocations (else it only recommends)."""
        a = self.cfg.auto_set_resources
        return (a.enable and bool(a.target_resource)) or bool(self.cfg.cron_rules)

    def set_condition(self, ctype: str, status: bool, reason: str, message: str, now: float) -> None:
        st = "True" if status else "False"
        old = self.conditions.get(ctype)
        since = old["lastTransitionTime"] if old and old["status"] == st else rfc3339(now)
        self.conditions[ctype] = {"type": ctype, "status": st, "reason": reason, "message": message,
                                  "lastTransitionTime": since}

    def status(self) -> dict:
        return {"conditions": list(self.conditions.values()),
                "recommendation": self.recommendation.as_dict() if self.recommendation else None,
                "appliedRecommendedReplicas": self.applied_replicas,
                "activeCronScalingRule": self.active_rule,
                "effective": self.effective.as_dict() if self.effective else None,
                "estimates": {k: (e.__dict__ if e else None) for k, e in (("tflops", self.est_tflops),
                                                                          ("vram", self.est_vram))}}

    def checkpoint(self) -> dict:
        return {"tflops": _hist_cp(self.tflops), "vram": _hist_cp(self.vram),
                "peaks": {k: list(v) for k, v in self.peaks.items()}}


class Autoscaler:
    """vram_peak_interval_s: VRAM samples are each allocation's peak over this long; half_life: a usage sample
    loses half its weight in the histograms every half_life (VPA: 24h); min_tflops / min_vram_mib: the smallest
    recommendation (VPA's --pod-recommendation-min-cpu-millicores / -min-memory-mb). Raises ValueError on a
    value <= 0."""

    def __init__(self, vram_peak_interval_s: float = 300.0, half_life: timedelta = timedelta(hours=24),
                 min_tflops: float = MIN_TFLOPS, min_vram_mib: float = MIN_VRAM_MIB):
        if not (vram_peak_interval_s > 0 and half_life > timedelta(0) and min_tflops > 0 and min_vram_mib > 0):
            raise ValueError("autoscaler: vram_peak_interval_s, half_life, min_tflops and min_vram_mib must be > 0")
        self.peak_s = float(vram_peak_interval_s)
        self.half_life = half_life
        self.min_tflops, self.min_vram_mib = float(min_tflops), float(min_vram_mib)
        self.entries: dict[tuple, WorkloadEntry] = {}

    def _new_entry(self, namespace: str, doc: dict, cfg: WorkloadConfig, updated_at: float) -> WorkloadEntry:
        return WorkloadEntry(namespace, cfg.name, doc, cfg, updated_at,
                             tflops=new_tflops_history(self.half_life), vram=new_vram_history(self.half_life))

    # ---- documents ----
    def apply(self, namespace: str, doc: dict, now: float) -> WorkloadEntry:
        """Parses (WorkloadConfigError naming the field) and stores the document; history and status are kept
        when the workload exists already."""
        cfg = parse_workload(doc)
        old = self.entries.get((namespace, cfg.name))
        e = self._new_entry(namespace, doc, cfg, now)
        if old is not None:
            e.tflops, e.vram, e.peaks = old.tflops, old.vram, old.peaks
            e.recommendation, e.conditions, e.active_rule = old.recommendation, old.conditions, old.active_rule
        self.entries[e.key] = e
        self.evaluate(e, now, ())
        return e

    def restore(self, namespace: str, name: str, spec: str, status: str, checkpoint: str, updated_at: float):
        doc = json.loads(spec)
        e = self._new_entry(namespace, doc, parse_workload(doc), updated_at)
        st, cp = json.loads(status or "{}"), json.loads(checkpoint or "{}")
        e.recommendation = Res.from_dict(st.get("recommendation"))
        e.conditions = {c["type"]: c for c in st.get("conditions") or []}
        e.active_rule = st.get("activeCronScalingRule") or ""
        e.applied_replicas = int(st.get("appliedRecommendedReplicas") or 0)
        e.effective = Res.from_dict(st.get("effective"))
        e.tflops = _hist_restore(cp.get("tflops"), TFLOPS_BUCKETS, self.half_life)
        e.vram = _hist_restore(cp.get("vram"), VRAM_BUCKETS, self.half_life)
        e.peaks = {k: list(v) for k, v in (cp.get("peaks") or {}).items()}
        self.entries[e.key] = e
        return e

    # ---- samples ----
    def observe(self, namespace: str, workload: str, alloc_id: str, tflops_used: float, vram_used_mib: float,
                now: float) -> None:
        e = self.entries.get((namespace, workload))
        if e is None:
            return
        t = utc(now)
        e.tflops.add(max(0.0, float(tflops_used)), t)
        w = int(now // self.peak_s)
        p = e.peaks.get(alloc_id)
        if p is not None and p[0] != w:
            self._flush(e, alloc_id)
            p = None
        if p is None:
            e.peaks[alloc_id] = [w, float(vram_used_mib)]
        else:
            p[1] = max(p[1], float(vram_used_mib))

    def _flush(self, e: WorkloadEntry, alloc_id: str) -> None:
        w, peak = e.peaks.pop(alloc_id)
        e.vram.add(peak, utc(w * self.peak_s))

    def _flush_ended(self, e: WorkloadEntry, now: float) -> None:
        w = int(now // self.peak_s)
        for aid in [aid for aid, p in e.peaks.items() if p[0] < w]:
            self._flush(e, aid)

    # ---- the loop ----
    def evaluate(self, e: WorkloadEntry, now: float, allocs, cap: Res | None = None) -> Res:
        """Estimates, recommendation, active cron rule and the effective resources at `now`; updates the
        status (applied replicas from `allocs`, the workload's active AllocationRecords). -> effective.
        cap: the largest GPU of the workload's pool; a new recommendation is held within it (as VPA holds its
        recommendations within maxAllowed): beyond every GPU, it would make the workload unschedulable."""
        self._flush_ended(e, now)
        cfg, own = e.cfg, _own(e.cfg)
        auto = cfg.auto_set_resources
        e.est_tflops = e.tflops.estimate(auto.tflops, self.min_tflops)
        e.est_vram = e.vram.estimate(auto.vram, self.min_vram_mib)
        rec = e.recommendation or Res()
        cur_t = _pick(rec.tflops, own.tflops) or 0.0
        cur_v = _pick(rec.vram_mib, own.vram_mib) or 0
        rt = recommend("TFLOPS", cur_t, e.est_tflops) if e.tflops.samples else None
        rv = recommend("VRAM", cur_v, e.est_vram, fmt=lambda v: f"{v:.0f}Mi") if e.vram.samples else None
        reasons = [r.reason for r in (rt, rv) if r is not None and r.reason]
        if reasons:
            new_t = math.ceil(rt.value * 100) / 100 if rt and rt.reason else cur_t
            new_v = int(math.ceil(rv.value)) if rv and rv.reason else int(cur_v)
            # limits keep the workload's limit/request ratio (as VPA scales limits with requests)
            lt = new_t * (own.lim_tflops / own.tflops) if own.tflops and own.lim_tflops else new_t
            lv = int(math.ceil(new_v * (own.lim_vram_mib / own.vram_mib))) if own.vram_mib and own.lim_vram_mib \
                else new_v
            e.recommendation = Res(new_t, new_v, round(lt, 2), lv)
            if cap is not None and held_within(e.recommendation, cap) != e.recommendation:
                reasons.append(f"held within the pool's largest GPU ({cap.tflops:g} TFLOPS, {cap.vram_mib} MiB)")
            e.set_condition(RECOMMENDATION_PROVIDED, True, "OutOfEstimatedBound", "; ".join(reasons), now)
        elif RECOMMENDATION_PROVIDED not in e.conditions:
            if not e.tflops.samples and not e.vram.samples:
                e.set_condition(RECOMMENDATION_PROVIDED, False, "NoUsageHistory",
                                "no usage sample yet: run allocations with this workload name", now)
            else:
                e.set_condition(RECOMMENDATION_PROVIDED, False, "WithinEstimatedBound",
                                "current resources lie within the estimated bounds", now)
        if e.recommendation and cap is not None:     # a new one, or one made before the pool's GPUs changed
            e.recommendation = held_within(e.recommendation, cap)
        rule = cron_rules.active_rule(list(cfg.cron_rules), utc(now))
        e.active_rule = rule.name if rule else ""
        eff = own
        target = auto.target_resource if auto.enable else ""
        if e.recommendation and target:
            r = e.recommendation
            if target in ("all", "tflops"):
                eff = Res(r.tflops, eff.vram_mib, r.lim_tflops, eff.lim_vram_mib)
            if target in ("all", "vram"):
                eff = Res(eff.tflops, r.vram_mib, eff.lim_tflops, r.lim_vram_mib)
        if rule is not None and rule.desired:
            d = rule.desired
            eff = Res(_pick(d["requests"]["tflops"], eff.tflops), _pick(d["requests"]["vram_mib"], eff.vram_mib),
                      _pick(d["limits"]["tflops"], eff.lim_tflops), _pick(d["limits"]["vram_mib"], eff.lim_vram_mib))
        e.effective = eff
        e.applied_replicas = sum(1 for a in allocs if e.recommendation and matches(a, e.recommendation, target))
        return eff


def held_within(r: Res, cap: Res) -> Res:
    """Recommendation r with each figure no larger than cap's (the largest GPU of the pool); unset ones stay unset."""
    def held(v, c):
        return v if v is None else min(v, c)
    return Res(held(r.tflops, cap.tflops), held(r.vram_mib, cap.vram_mib), held(r.lim_tflops, cap.lim_tflops),
               held(r.lim_vram_mib, cap.lim_vram_mib))


def matches(a, r: Res, target: str = "all") -> bool:
    """Whether allocation record `a` runs with `r` (for the target resources; unset fields match anything)."""
    checks = []
    if target in ("all", "tflops"):
        checks += [(a.tflops, r.tflops), (a.lim_tflops, r.lim_tflops)]
    if target in ("all", "vram"):
        checks += [(a.vram_mib, r.vram_mib), (a.lim_vram_mib, r.lim_vram_mib)]
    return bool(checks) and all(want is None or abs(have - want) < 1e-6 for have, want in checks)
