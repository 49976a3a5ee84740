"""Vertical autoscaling recommender (seed 004 "autoSetResources"): decaying histograms of a workload's TFLOPS and
VRAM usage, and the Kubernetes VPA estimator chain over them. Pure: numbers and datetimes in, numbers out; the
scheduler feeds it samples and stores its checkpoints.

Follows the Kubernetes VPA recommender (vertical-pod-autoscaler/pkg/recommender/util/histogram.go,
decaying_histogram.go, histogram_options.go and logic/estimator.go, logic/recommender.go):

- Buckets grow exponentially: bucket n >= 1 starts at ``first * (ratio**n - 1) / (ratio - 1)``; bucket 0 covers
  [0, first). A value falls in ``floor(log(value / first * (ratio - 1) + 1) / log(ratio))``, clamped to the last
  bucket. ``percentile(p)`` walks buckets from the smallest until the running weight reaches ``p * total`` and returns
  the *end* of that bucket (the start of the last bucket if it is the last one), 0.0 for an empty histogram.
- Decay: a sample taken at time t weighs ``weight * 2 ** ((t - reference) / half_life)``: it loses half its
  importance every ``half_life``. ``reference`` is a multiple of ``half_life`` and moves forward (rescaling every
  bucket by ``2 ** -k``) when the exponent would pass 100, as VPA does to avoid overflow.
- Estimates (VPA defaults, percentiles from the seed):
    target      = max(P_target  * (1 + margin), minimum)
    lowerBound  = max(P_lower   * (1 + margin) * (1 + 0.001 / confidence) ** -2, minimum)
    upperBound  = max(P_upper   * (1 + margin) * (1 + 1.0 / confidence) ** 1, minimum)
  with ``confidence = min(lifespan / confidenceInterval, samples / samples_per_interval)``: the history's length in
  confidence intervals (seed default 24h), capped by the number of samples, where ``samples_per_interval`` is one
  per minute over an interval (VPA: 1440 per day). Young history widens [lowerBound, upperBound]; with no history
  (confidence 0) the upper bound is infinite and the lower bound 0, so nothing is recommended yet.
- TFLOPS samples are the usage measured per sampling period, each weighing 1 (VPA's CPU); VRAM samples are the
  peak per aggregation window (VPA's memory peaks), also weighing 1.

Units: TFLOPS (FP16 dense, as everywhere in TensorFusion) and MiB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MAX_DECAY_EXPONENT = 100
"""VPA's maxDecayExponent: past 2**100 the reference time moves forward."""

CHECKPOINT_MAX_WEIGHT = 10000
"""VPA's MaxCheckpointWeight: the heaviest bucket of a checkpoint is stored as this integer."""


@dataclass(frozen=True)
class BucketScheme:
    """Exponential buckets: the first covers [0, first); each next one is ``ratio`` times wider; the last bucket
    starts at or above ``max_value`` and has no upper end. ``epsilon``: a bucket lighter than it counts as empty."""
    max_value: float
    first: float
    ratio: float = 1.05
    epsilon: float = 1e-4

    def __post_init__(self):
        if not (self.max_value > 0 and self.first > 0 and self.ratio > 1 and self.epsilon > 0):
            raise ValueError("bucket scheme needs max_value, first, epsilon > 0 and ratio > 1")

    @property
    def num_buckets(self) -> int:
        return int(math.ceil(math.log(self.max_value * (self.ratio - 1) / self.first + 1, self.ratio))) + 1

    def find(self, value: float) -> int:
        if value < self.first:
            return 0
        b = int(math.log(value * (self.ratio - 1) / self.first + 1, self.ratio))
        return min(b, self.num_buckets - 1)

    def start(self, bucket: int) -> float:
        if bucket == 0:
            return 0.0
        return self.first * (self.ratio ** bucket - 1) / (self.ratio - 1)


TFLOPS_BUCKETS = BucketScheme(max_value=10000.0, first=0.01)
"""TFLOPS: 0.01 TFLOPS resolution at the bottom (VPA's CPU scheme starts at 0.01 cores), up to 10 PFLOPS."""
VRAM_BUCKETS = BucketScheme(max_value=float(1 << 20), first=10.0)
"""VRAM in MiB: 10 MiB first bucket (VPA's memory scheme starts at 1e7 bytes), up to 1 TiB."""


@dataclass
class DecayingHistogram:
    """A histogram whose samples lose half their weight every ``half_life`` (VPA's decayingHistogram)."""
    scheme: BucketScheme
    half_life: timedelta = timedelta(hours=24)
    reference: datetime | None = None
    weights: dict[int, float] = field(default_factory=dict)
    total: float = 0.0

    def _decay_factor(self, t: datetime) -> float:
        if self.reference is None:
            self.reference = _round_to(t, self.half_life)
        if t > self.reference + self.half_life * MAX_DECAY_EXPONENT:
            self._shift_reference(t)
        return 2.0 ** ((t - self.reference) / self.half_life)

    def _shift_reference(self, new_ref: datetime) -> None:
        new_ref = _round_to(new_ref, self.half_life)
        exponent = math.floor((self.reference - new_ref) / self.half_life + 0.5)
        factor = math.ldexp(1.0, exponent)
        self.weights = {b: w * factor for b, w in self.weights.items() if w * factor >= self.scheme.epsilon}
        self.total *= factor
        self.reference = new_ref

    def add(self, value: float, t: datetime, weight: float = 1.0) -> None:
        """Adds a sample of ``value`` (TFLOPS or MiB) observed at ``t``. Raises ValueError on a negative weight."""
        if weight < 0:
            raise ValueError("sample weight must be non-negative")
        w = weight * self._decay_factor(t)
        b = self.scheme.find(value)
        self.weights[b] = self.weights.get(b, 0.0) + w
        self.total += w

    def is_empty(self) -> bool:
        return not any(w >= self.scheme.epsilon for w in self.weights.values())

    def percentile(self, p: float) -> float:
        """The end of the bucket where the cumulative weight reaches ``p * total`` (0 <= p <= 1); 0.0 if empty."""
        live = sorted(b for b, w in self.weights.items() if w >= self.scheme.epsilon)
        if not live:
            return 0.0
        threshold = p * self.total
        partial = 0.0
        bucket = live[0]
        for bucket in range(live[0], live[-1]):
            partial += self.weights.get(bucket, 0.0)
            if partial >= threshold:
                break
        else:
            bucket = live[-1]
        if bucket < self.scheme.num_buckets - 1:
            return self.scheme.start(bucket + 1)
        return self.scheme.start(bucket)

    def checkpoint(self) -> dict:
        """VPA-style checkpoint: integer bucket weights scaled so the heaviest is CHECKPOINT_MAX_WEIGHT."""
        heaviest = max(self.weights.values(), default=0.0)
        ratio = CHECKPOINT_MAX_WEIGHT / heaviest if heaviest > 0 else 0.0
        buckets = {str(b): int(math.floor(w * ratio + 0.5)) for b, w in self.weights.items()}
        return {"reference": self.reference.isoformat() if self.reference else None, "total": self.total,
                "buckets": {b: w for b, w in buckets.items() if w > 0}}

    @classmethod
    def from_checkpoint(cls, data: dict, scheme: BucketScheme, half_life: timedelta) -> "DecayingHistogram":
        """Inverse of checkpoint(). Raises ValueError on a negative total or an out-of-range bucket."""
        h = cls(scheme, half_life)
        total = float(data.get("total", 0.0))
        if total < 0:
            raise ValueError(f"checkpoint has a negative total weight {total}")
        buckets = {int(b): int(w) for b, w in (data.get("buckets") or {}).items()}
        for b in buckets:
            if not 0 <= b < scheme.num_buckets:
                raise ValueError(f"checkpoint bucket {b} outside 0..{scheme.num_buckets - 1}")
        s = sum(buckets.values())
        if data.get("reference"):
            h.reference = datetime.fromisoformat(data["reference"])
        if s:
            h.weights = {b: w * total / s for b, w in buckets.items()}
            h.total = total
        return h


def _round_to(t: datetime, step: timedelta) -> datetime:
    """``t`` rounded to a multiple of ``step`` since the epoch (Go's time.Round)."""
    epoch = datetime(1970, 1, 1, tzinfo=t.tzinfo)
    n = math.floor((t - epoch) / step + 0.5)
    return epoch + step * n


@dataclass(frozen=True)
class Percentiles:
    """The seed's autoSetResources percentiles and margin, with its defaults (P90 / P50 / P95, margin 0.15,
    confidence interval 24h)."""
    target: float = 0.9
    lower: float = 0.5
    upper: float = 0.95
    margin: float = 0.15
    confidence_interval: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class Estimate:
    """target / lowerBound / upperBound of one resource (TFLOPS or MiB)."""
    target: float
    lower_bound: float
    upper_bound: float


MIN_TFLOPS = 0.1
"""The smallest recommendation (VPA's podMinCPUMillicores plays this role): 0.1 TFLOPS."""
MIN_VRAM_MIB = 64.0
"""The smallest VRAM recommendation (VPA's podMinMemoryMb plays this role): 64 MiB."""
SAMPLES_PER_MINUTE = 1.0
"""VPA's confidence counts one sample per minute as full density."""


@dataclass
class UsageHistory:
    """One resource's history for one workload: the histogram plus what the confidence needs."""
    hist: DecayingHistogram
    first_sample: datetime | None = None
    last_sample: datetime | None = None
    samples: int = 0

    def add(self, value: float, t: datetime) -> None:
        self.hist.add(value, t)
        self.first_sample = t if self.first_sample is None else min(self.first_sample, t)
        self.last_sample = t if self.last_sample is None else max(self.last_sample, t)
        self.samples += 1

    def confidence(self, interval: timedelta) -> float:
        """min(lifespan / interval, samples / samples-per-interval) — VPA's getConfidence with its day replaced by
        the seed's confidenceInterval."""
        if self.first_sample is None:
            return 0.0
        lifespan = (self.last_sample - self.first_sample) / interval
        per_interval = SAMPLES_PER_MINUTE * interval.total_seconds() / 60.0
        return min(lifespan, self.samples / per_interval)

    def estimate(self, pct: Percentiles, minimum: float) -> Estimate:
        """The VPA chain: percentile -> margin -> confidence multiplier -> minimum."""
        conf = self.confidence(pct.confidence_interval)
        m = 1.0 + pct.margin
        target = self.hist.percentile(pct.target) * m
        lower = self.hist.percentile(pct.lower) * m
        upper = self.hist.percentile(pct.upper) * m
        if conf > 0:
            lower *= (1.0 + 0.001 / conf) ** -2
            upper *= (1.0 + 1.0 / conf) ** 1
        else:
            lower, upper = 0.0, math.inf
        return Estimate(max(target, minimum), max(lower, minimum), max(upper, minimum))


def new_tflops_history(half_life: timedelta = timedelta(hours=24)) -> UsageHistory:
    return UsageHistory(DecayingHistogram(TFLOPS_BUCKETS, half_life))


def new_vram_history(half_life: timedelta = timedelta(hours=24)) -> UsageHistory:
    return UsageHistory(DecayingHistogram(VRAM_BUCKETS, half_life))


@dataclass(frozen=True)
class Recommendation:
    """What to set, and why: ``value`` is the estimate's target, ``reason`` a sentence in the seed's style
    ("TFLOPS scaled up due to (1) below lower bound (2)"), ``None`` when current lies inside the bounds."""
    value: float
    reason: str | None


def recommend(name: str, current: float, est: Estimate, fmt=lambda v: f"{v:g}") -> Recommendation:
    """A recommendation when ``current`` lies outside [lowerBound, upperBound] (seed 004): scale to the target."""
    if current < est.lower_bound:
        return Recommendation(est.target, f"{name} scaled up due to ({fmt(current)}) below lower bound "
                                          f"({fmt(est.lower_bound)})")
    if current > est.upper_bound:
        return Recommendation(est.target, f"{name} scaled down due to ({fmt(current)}) above upper bound "
                                          f"({fmt(est.upper_bound)})")
    return Recommendation(current, None)
