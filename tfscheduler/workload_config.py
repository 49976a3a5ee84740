"""Workload configuration (seed 004): the YAML/dict form users write, parsed and validated into plain dataclasses.
Every mistake raises WorkloadConfigError naming the field (the gRPC edge maps it to INVALID_ARGUMENT, the CLI prints
it as one line). Field names are the seed's, exactly:

    name: train-a            # workload name
    pool: default
    qos: medium              # low | medium | high | critical
    resources:
      requests: {tflops: "10", vram: 4Gi}
      limits:   {tflops: "20", vram: 8Gi}
    autoScalingConfig:
      autoSetResources:
        enable: true
        targetResource: all                # all | tflops | vram | "" (recommend only)
        targetTflopsPercentile: 0.9        # defaults: P90 / P50 / P95
        lowerBoundTflopsPercentile: 0.5
        upperBoundTflopsPercentile: 0.95
        targetVramPercentile: 0.9
        lowerBoundVramPercentile: 0.5
        upperBoundVramPercentile: 0.95
        requestMarginFraction: 0.15
        confidenceInterval: 24h
      autoSetReplicas: {}
      cronScalingRules:
        - {enable: true, name: test, start: "0 0 * * Thu", end: "59 23 * * Thu",
           desiredResources: {limits: {tflops: "99", vram: 10Gi}, requests: {tflops: "44", vram: 5Gi}}}

Quantities use tfclient.quantity's rules (TFLOPS FP16 dense; VRAM in MiB or with a unit).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from tfclient.errors import InvalidQuantity
from tfclient.quantity import parse_tflops, parse_vram_mib
from tfscheduler.cron_rules import CronRule, validate_cron
from tfscheduler.recommender import Percentiles

QOS_LEVELS = ("low", "medium", "high", "critical")
TARGET_RESOURCES = ("all", "tflops", "vram", "")
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class WorkloadConfigError(ValueError):
    """A workload configuration field is wrong; the message starts with the field's path."""


@dataclass(frozen=True)
class Resources:
    """requests and limits: TFLOPS (FP16 dense) and VRAM (MiB); None where not given."""
    request_tflops: float | None = None
    request_vram_mib: int | None = None
    limit_tflops: float | None = None
    limit_vram_mib: int | None = None


@dataclass(frozen=True)
class AutoSetResources:
    enable: bool = False
    target_resource: str = ""
    tflops: Percentiles = Percentiles()
    vram: Percentiles = Percentiles()


@dataclass(frozen=True)
class WorkloadConfig:
    name: str
    pool: str = "default"
    qos: str = "medium"
    resources: Resources = Resources()
    auto_set_resources: AutoSetResources = AutoSetResources()
    cron_rules: tuple[CronRule, ...] = field(default_factory=tuple)


def parse_duration(value, path: str) -> timedelta:
    """'24h', '90m', '1d12h', '3600s' -> timedelta (> 0)."""
    m = _DURATION_RE.match(str(value).strip()) if value not in (None, "") else None
    if not m or not any(m.groups()):
        raise WorkloadConfigError(f"{path}: {value!r} is not a duration (use e.g. 24h, 90m, 1d12h, 3600s)")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    td = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    if td <= timedelta(0):
        raise WorkloadConfigError(f"{path}: must be longer than 0")
    return td


def _mapping(value, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WorkloadConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
    return value


def _known(d: dict, path: str, allowed: tuple[str, ...]) -> None:
    for k in d:
        if k not in allowed:
            raise WorkloadConfigError(f"{path}.{k}: unknown field (expected one of: {', '.join(allowed)})")


def _fraction(d: dict, key: str, default: float, path: str) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        raise WorkloadConfigError(f"{path}.{key}: {v!r} must be a number between 0 and 1")
    return float(v)


def _quantities(d, path: str) -> tuple[float | None, int | None]:
    d = _mapping(d, path)
    _known(d, path, ("tflops", "vram"))
    try:
        tflops = parse_tflops(d["tflops"]) if "tflops" in d else None
    except InvalidQuantity as e:
        raise WorkloadConfigError(f"{path}.tflops: {e}") from None
    try:
        vram = parse_vram_mib(d["vram"]) if "vram" in d else None
    except InvalidQuantity as e:
        raise WorkloadConfigError(f"{path}.vram: {e}") from None
    return tflops, vram


def _resources(d, path: str) -> Resources:
    d = _mapping(d, path)
    _known(d, path, ("requests", "limits"))
    rt, rv = _quantities(d.get("requests"), f"{path}.requests")
    lt, lv = _quantities(d.get("limits"), f"{path}.limits")
    if rt is not None and lt is not None and lt < rt:
        raise WorkloadConfigError(f"{path}.limits.tflops: {lt:g} is below requests.tflops {rt:g}")
    if rv is not None and lv is not None and lv < rv:
        raise WorkloadConfigError(f"{path}.limits.vram: {lv} MiB is below requests.vram {rv} MiB")
    return Resources(rt, rv, lt, lv)


def _auto_set(d, path: str) -> AutoSetResources:
    d = _mapping(d, path)
    _known(d, path, ("enable", "targetResource", "targetTflopsPercentile", "lowerBoundTflopsPercentile",
                     "upperBoundTflopsPercentile", "targetVramPercentile", "lowerBoundVramPercentile",
                     "upperBoundVramPercentile", "requestMarginFraction", "confidenceInterval"))
    enable = d.get("enable", False)
    if not isinstance(enable, bool):
        raise WorkloadConfigError(f"{path}.enable: {enable!r} must be true or false")
    target = d.get("targetResource", "") or ""
    if target not in TARGET_RESOURCES:
        raise WorkloadConfigError(f"{path}.targetResource: {target!r} must be all, tflops, vram or empty")
    margin = d.get("requestMarginFraction", 0.15)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin < 0:
        raise WorkloadConfigError(f"{path}.requestMarginFraction: {margin!r} must be a number >= 0")
    interval = parse_duration(d.get("confidenceInterval", "24h"), f"{path}.confidenceInterval")
    per = {}
    for res, name in (("tflops", "Tflops"), ("vram", "Vram")):
        t = _fraction(d, f"target{name}Percentile", 0.9, path)
        lo = _fraction(d, f"lowerBound{name}Percentile", 0.5, path)
        hi = _fraction(d, f"upperBound{name}Percentile", 0.95, path)
        if not lo <= t <= hi:
            raise WorkloadConfigError(f"{path}: lowerBound{name}Percentile {lo:g} <= target{name}Percentile {t:g} "
                                      f"<= upperBound{name}Percentile {hi:g} must hold")
        per[res] = Percentiles(target=t, lower=lo, upper=hi, margin=float(margin), confidence_interval=interval)
    return AutoSetResources(enable, target, per["tflops"], per["vram"])


def _cron_rules(rules, path: str) -> tuple[CronRule, ...]:
    if rules is None:
        return ()
    if not isinstance(rules, list):
        raise WorkloadConfigError(f"{path}: expected a list of rules")
    out, names = [], set()
    for i, r in enumerate(rules):
        p = f"{path}[{i}]"
        r = _mapping(r, p)
        _known(r, p, ("enable", "name", "start", "end", "desiredResources"))
        name = r.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise WorkloadConfigError(f"{p}.name: {name!r} must be a non-empty name, unique in the workload")
        names.add(name)
        enable = r.get("enable", False)
        if not isinstance(enable, bool):
            raise WorkloadConfigError(f"{p}.enable: {enable!r} must be true or false")
        for key in ("start", "end"):
            try:
                validate_cron(r.get(key), f"{p}.{key}")
            except ValueError as e:
                raise WorkloadConfigError(str(e)) from None
        res = _resources(r.get("desiredResources"), f"{p}.desiredResources")
        desired = {"requests": {"tflops": res.request_tflops, "vram_mib": res.request_vram_mib},
                   "limits": {"tflops": res.limit_tflops, "vram_mib": res.limit_vram_mib}}
        out.append(CronRule(name=name, start=r["start"], end=r["end"], enable=enable, desired=desired))
    return tuple(out)


def parse_workload(doc) -> WorkloadConfig:
    """A workload document (the YAML's top-level mapping) -> WorkloadConfig. Raises WorkloadConfigError."""
    d = _mapping(doc, "workload")
    _known(d, "workload", ("name", "pool", "qos", "resources", "autoScalingConfig"))
    name = d.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise WorkloadConfigError(f"name: {name!r} must be 1-63 lowercase letters, digits, '.', '_' or '-', "
                                  "starting and ending with a letter or digit")
    pool = d.get("pool", "default")
    if not isinstance(pool, str) or not NAME_RE.match(pool):
        raise WorkloadConfigError(f"pool: {pool!r} is not a valid pool name")
    qos = d.get("qos", "medium")
    if qos not in QOS_LEVELS:
        raise WorkloadConfigError(f"qos: {qos!r} must be one of {', '.join(QOS_LEVELS)}")
    asc = _mapping(d.get("autoScalingConfig"), "autoScalingConfig")
    _known(asc, "autoScalingConfig", ("autoSetResources", "autoSetReplicas", "cronScalingRules"))
    _mapping(asc.get("autoSetReplicas"), "autoScalingConfig.autoSetReplicas")
    return WorkloadConfig(
        name=name, pool=pool, qos=qos, resources=_resources(d.get("resources"), "resources"),
        auto_set_resources=_auto_set(asc.get("autoSetResources"), "autoScalingConfig.autoSetResources"),
        cron_rules=_cron_rules(asc.get("cronScalingRules"), "autoScalingConfig.cronScalingRules"))
