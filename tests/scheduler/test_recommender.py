"""The autoscaling recommender (tfscheduler/recommender.py) against hand-computed cases: bucket boundaries,
percentiles, decay, checkpoints and the VPA estimator chain with its confidence multiplier."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from tfscheduler import recommender as r

T0 = datetime(2026, 11, 30, tzinfo=timezone.utc)
DAY = timedelta(hours=24)


def test_bucket_scheme_boundaries_follow_the_vpa_formula():
    s = r.BucketScheme(max_value=100.0, first=1.0, ratio=2.0)
    # starts: 0, 1, 3, 7, 15, 31, 63, 127 -> ceil(log2(100*1/1+1)) + 1 = 7 + 1 = 8 buckets
    assert s.num_buckets == 8
    assert [s.start(b) for b in range(8)] == [0, 1, 3, 7, 15, 31, 63, 127]
    assert [s.find(v) for v in (0, 0.99, 1, 2.99, 3, 126, 1e9)] == [0, 0, 1, 1, 2, 6, 7]
    with pytest.raises(ValueError):
        r.BucketScheme(max_value=1, first=1, ratio=1.0)


def test_percentile_returns_the_end_of_the_bucket_reaching_the_weight():
    h = r.DecayingHistogram(r.BucketScheme(max_value=100.0, first=1.0, ratio=2.0))
    assert h.percentile(0.9) == 0.0  # empty
    for v in (0.5, 2, 2, 5, 20):  # buckets 0, 1, 1, 2, 4 (all at T0: weight 1 each)
        h.add(v, T0)
    assert h.percentile(0.0) == 1.0     # first bucket [0,1) ends at 1
    assert h.percentile(0.2) == 1.0
    assert h.percentile(0.5) == 3.0     # 3 of 5 samples reach bucket 1 [1,3)
    assert h.percentile(0.8) == 7.0     # bucket 2 [3,7)
    assert h.percentile(0.95) == 31.0   # bucket 4 [15,31)
    assert h.percentile(1.0) == 31.0


def test_a_sample_loses_half_its_weight_every_half_life():
    h = r.DecayingHistogram(r.BucketScheme(max_value=100.0, first=1.0, ratio=2.0), half_life=DAY)
    h.add(0.5, T0)            # weight 1 at the reference
    h.add(20, T0 + 2 * DAY)   # weight 4: two half-lives later counts 2**2
    assert h.total == pytest.approx(5.0)
    assert h.percentile(0.5) == 31.0  # the newer sample dominates: 4/5 of the weight
    assert h.percentile(0.2) == 1.0


def test_reference_moves_forward_without_changing_percentiles():
    h = r.DecayingHistogram(r.BucketScheme(max_value=100.0, first=1.0, ratio=2.0), half_life=timedelta(hours=1))
    h.add(2, T0)
    h.add(20, T0 + timedelta(hours=150))  # past 2**100: the reference shifts, old weight scales by 2**-150
    assert h.reference > T0
    assert h.percentile(0.5) == 31.0
    assert not math.isinf(h.total)


def test_checkpoint_round_trip_keeps_percentiles():
    h = r.DecayingHistogram(r.VRAM_BUCKETS)
    for i, v in enumerate((100, 200, 200, 400, 1000)):
        h.add(v, T0 + timedelta(minutes=i))
    cp = h.checkpoint()
    assert max(cp["buckets"].values()) == r.CHECKPOINT_MAX_WEIGHT
    h2 = r.DecayingHistogram.from_checkpoint(cp, r.VRAM_BUCKETS, h.half_life)
    for p in (0.1, 0.5, 0.9, 0.95):
        assert h2.percentile(p) == h.percentile(p)
    with pytest.raises(ValueError, match="bucket"):
        r.DecayingHistogram.from_checkpoint({"total": 1, "buckets": {"100000": 5}}, r.VRAM_BUCKETS, DAY)
    with pytest.raises(ValueError, match="negative"):
        r.DecayingHistogram.from_checkpoint({"total": -1, "buckets": {}}, r.VRAM_BUCKETS, DAY)


def test_confidence_is_history_length_capped_by_sample_count():
    u = r.new_tflops_history()
    assert u.confidence(DAY) == 0.0
    # two days, one sample per minute -> min(2 days, 2881/1440)
    for m in range(0, 2 * 1440 + 1):
        u.add(1.0, T0 + timedelta(minutes=m))
    assert u.confidence(DAY) == pytest.approx(2.0)
    # the same span with only 10 samples: capped by the count, 10/1440
    v = r.new_tflops_history()
    for i in range(10):
        v.add(1.0, T0 + i * (2 * DAY / 9))
    assert v.confidence(DAY) == pytest.approx(10 / 1440)


def test_estimate_applies_margin_confidence_multiplier_and_minimum():
    u = r.new_tflops_history()
    for m in range(0, 1441):  # one day at one sample per minute: confidence min(1, 1441/1440) = 1
        u.add(10.0, T0 + timedelta(minutes=m))
    conf = u.confidence(DAY)
    assert conf == pytest.approx(1.0)
    b_end = r.TFLOPS_BUCKETS.start(r.TFLOPS_BUCKETS.find(10.0) + 1)  # every percentile is this bucket's end
    est = u.estimate(r.Percentiles(), r.MIN_TFLOPS)
    assert est.target == pytest.approx(b_end * 1.15)
    assert est.lower_bound == pytest.approx(b_end * 1.15 * (1 + 0.001 / conf) ** -2)
    assert est.upper_bound == pytest.approx(b_end * 1.15 * (1 + 1.0 / conf))
    # tiny usage is lifted to the minimum
    tiny = r.new_vram_history()
    tiny.add(1.0, T0)
    tiny.add(1.0, T0 + DAY)
    assert tiny.estimate(r.Percentiles(), r.MIN_VRAM_MIB).target == r.MIN_VRAM_MIB


def test_no_history_recommends_nothing():
    est = r.new_tflops_history().estimate(r.Percentiles(), r.MIN_TFLOPS)
    assert est.lower_bound == r.MIN_TFLOPS and math.isinf(est.upper_bound)
    assert r.recommend("TFLOPS", 5.0, est).reason is None


def test_recommendation_when_current_lies_outside_the_bounds():
    est = r.Estimate(target=13.0, lower_bound=10.0, upper_bound=20.0)
    up = r.recommend("TFLOPS", 2.0, est)
    assert up.value == 13.0 and up.reason == "TFLOPS scaled up due to (2) below lower bound (10)"
    down = r.recommend("TFLOPS", 40.0, est)
    assert down.value == 13.0 and "scaled down" in down.reason and "(20)" in down.reason
    inside = r.recommend("TFLOPS", 15.0, est)
    assert inside.value == 15.0 and inside.reason is None


def test_the_tflops_and_vram_schemes_are_vpas_with_units_of_their_own():
    """VPA's 5% bucket growth; the first bucket is 0.01 TFLOPS (VPA: 0.01 cores) and 10 MiB (VPA: 1e7 bytes)."""
    t, v = r.TFLOPS_BUCKETS, r.VRAM_BUCKETS
    assert (t.ratio, t.first, t.max_value) == (1.05, 0.01, 10000.0)
    assert (v.ratio, v.first, v.max_value) == (1.05, 10.0, float(1 << 20))
    assert t.start(1) == 0.01 and t.start(2) == pytest.approx(0.01 * (1.05 ** 2 - 1) / 0.05)      # 0.0205
    assert v.start(3) == pytest.approx(10 * (1.05 ** 3 - 1) / 0.05)                                # 31.525 MiB
    # ceil(log(10000 * 0.05 / 0.01 + 1) / log 1.05) + 1 buckets reach 10 PFLOPS
    assert t.num_buckets == math.ceil(math.log(10000 * 0.05 / 0.01 + 1) / math.log(1.05)) + 1
    assert t.start(t.num_buckets - 1) >= 10000.0 > t.start(t.num_buckets - 2)
    assert v.start(v.num_buckets - 1) >= float(1 << 20) > v.start(v.num_buckets - 2)


def test_confidence_multipliers_match_the_vpa_table():
    """recommender.go: 12h of history -> upper bound x3, 24h -> x2, 1 week -> x1.14; lower bound x(1 + 0.001/conf)^-2
    (24h: x0.998). Samples one a minute, so the sample count does not cap the confidence."""
    for hours, upper, lower in ((12, 3.0, (1 + 0.002) ** -2), (24, 2.0, (1 + 0.001) ** -2),
                                (168, 1 + 1 / 7, (1 + 0.001 / 7) ** -2)):
        u = r.new_tflops_history()
        for m in range(hours * 60 + 1):
            u.add(10.0, T0 + timedelta(minutes=m))
        assert u.confidence(DAY) == pytest.approx(hours / 24)
        est = u.estimate(r.Percentiles(), r.MIN_TFLOPS)
        base = u.hist.percentile(0.95) * 1.15               # one bucket: every percentile is its end
        assert est.upper_bound == pytest.approx(base * upper), hours
        assert est.lower_bound == pytest.approx(base * lower), hours
    assert round(1 + 1 / 7, 2) == 1.14
