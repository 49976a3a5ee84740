"""tfscheduler.autoscaler with plain numbers and an explicit clock: VRAM samples are per-allocation peaks per
aggregation window, the recommendation keeps the workload's limit/request ratio, effective resources follow the
seed's precedence (cron rule > targeted recommendation > own resources), and the checkpoint round-trips."""
import json
from datetime import datetime, timezone

from tfscheduler.autoscaler import Autoscaler

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc).timestamp()     # Thursday 08:00 UTC


def doc(**auto):
    return {"name": "w", "resources": {"requests": {"tflops": "2", "vram": "1Gi"},
                                       "limits": {"tflops": "6", "vram": "2Gi"}},
            "autoScalingConfig": {"autoSetResources": {"confidenceInterval": "1h", **auto}}}


def test_vram_samples_are_the_peak_of_each_allocation_per_window():
    a = Autoscaler(vram_peak_interval_s=60)
    e = a.apply("ns", doc(), T0)
    for i, mib in enumerate((100, 700, 300)):          # one window: only the 700 MiB peak counts
        a.observe("ns", "w", "alloc-1", 1.0, mib, T0 + i * 10)
    assert e.vram.samples == 0 and e.tflops.samples == 3
    a.observe("ns", "w", "alloc-1", 1.0, 50, T0 + 61)  # next window: the first one's peak goes in
    assert e.vram.samples == 1
    assert 700 <= e.vram.hist.percentile(0.5) <= 760           # the end of the bucket holding 700 MiB
    a.evaluate(e, T0 + 200, ())                        # the loop closes finished windows too
    assert e.vram.samples == 2
    a.observe("ns", "other", "alloc-2", 1.0, 1, T0)    # not an applied workload: ignored
    assert ("ns", "other") not in a.entries


def test_recommendation_keeps_the_limit_ratio_and_is_applied_only_to_targeted_resources():
    a = Autoscaler(vram_peak_interval_s=60)
    e = a.apply("ns", doc(enable=True, targetResource="tflops"), T0)
    for i in range(30):
        a.observe("ns", "w", "alloc-1", 8.0, 100, T0 + 60 * i)
    eff = a.evaluate(e, T0 + 1800, ())
    r = e.recommendation
    assert r.tflops > 8 and abs(r.lim_tflops - 3 * r.tflops) < 0.05      # 6/2 = 3x
    assert e.conditions["RecommendationProvided"]["message"].startswith("TFLOPS scaled up due to (2) below")
    assert (eff.tflops, eff.lim_tflops) == (r.tflops, r.lim_tflops)
    assert (eff.vram_mib, eff.lim_vram_mib) == (1024, 2048)            # VRAM not targeted: own resources
    since = e.conditions["RecommendationProvided"]["lastTransitionTime"]
    a.evaluate(e, T0 + 1900, ())                                        # within bounds now: unchanged
    assert e.conditions["RecommendationProvided"]["lastTransitionTime"] == since


def test_a_recommendation_is_held_within_the_largest_gpu_of_the_pool():
    """A workload using its whole GPU is recommended more than the GPU has (usage x 1.15 margin, or the 0.1 TFLOPS
    minimum on a small device): held within the largest GPU, so its allocations stay placeable."""
    from tfscheduler.autoscaler import Res
    a = Autoscaler(vram_peak_interval_s=60)
    e = a.apply("ns", doc(enable=True, targetResource="all"), T0)
    for i in range(30):
        a.observe("ns", "w", "alloc-1", 10.0, 900, T0 + 60 * i)       # the whole 10-TFLOPS GPU, 900 MiB
    cap = Res(10.0, 1024, 20.0, 2048)                                   # limits: the pool's 2x oversell
    eff = a.evaluate(e, T0 + 1800, (), cap)
    r = e.recommendation
    assert (r.tflops, r.lim_tflops) == (10.0, 20.0)     # 10 x 1.15 = 11.5 and 3x that for the limit, held
    assert r.vram_mib <= 1024 and r.lim_vram_mib <= 2048
    assert "held within the pool's largest GPU (10 TFLOPS, 1024 MiB)" in \
        e.conditions["RecommendationProvided"]["message"]
    assert (eff.tflops, eff.lim_tflops) == (10.0, 20.0)
    uncapped = Autoscaler(vram_peak_interval_s=60)
    u = uncapped.apply("ns", doc(enable=True, targetResource="all"), T0)
    for i in range(30):
        uncapped.observe("ns", "w", "alloc-1", 10.0, 900, T0 + 60 * i)
    uncapped.evaluate(u, T0 + 1800, ())
    assert u.recommendation.tflops > 11                 # what it would have been
    assert uncapped.evaluate(u, T0 + 1900, (), cap).tflops == 10.0     # one made before is held from then on


def test_cron_desired_resources_win_inside_the_window_only():
    a = Autoscaler()
    d = doc(enable=True, targetResource="all")
    d["autoScalingConfig"]["cronScalingRules"] = [
        {"enable": True, "name": "nine", "start": "0 9 * * *", "end": "0 10 * * *",
         "desiredResources": {"limits": {"tflops": "9"}}}]
    e = a.apply("ns", d, T0)
    assert a.evaluate(e, T0, ()).lim_tflops == 6 and e.active_rule == ""
    inside = a.evaluate(e, T0 + 3600 + 30, ())
    assert (inside.tflops, inside.lim_tflops, e.active_rule) == (2, 9, "nine")   # fields it leaves out: own
    assert a.evaluate(e, T0 + 2 * 3600 + 30, ()).lim_tflops == 6 and e.active_rule == ""


def test_checkpoint_and_status_round_trip():
    a = Autoscaler(vram_peak_interval_s=60)
    e = a.apply("ns", doc(), T0)
    for i in range(20):
        a.observe("ns", "w", "alloc-1", 5.0, 400, T0 + 60 * i)
    a.evaluate(e, T0 + 1300, ())
    b = Autoscaler(vram_peak_interval_s=60)
    r = b.restore("ns", "w", json.dumps(e.doc), json.dumps(e.status()), json.dumps(e.checkpoint()), e.updated_at)
    assert (r.tflops.samples, r.vram.samples) == (e.tflops.samples, e.vram.samples)
    assert r.recommendation == e.recommendation and r.conditions == e.conditions
    assert b.evaluate(r, T0 + 1300, ()) == a.evaluate(e, T0 + 1300, ())


def test_half_life_and_minimum_resources_are_configurable():
    """A sample loses half its weight every half_life: with a 1-hour half-life, one sample of 20 TFLOPS taken two
    hours after three of 1 TFLOPS weighs 4 against their 3, so the median is its bucket; with the default 24 hours
    the three old ones still outweigh it. The minimum lifts a small recommendation (VPA's minimum resources)."""
    from datetime import timedelta
    import pytest

    def median(half_life):
        a = Autoscaler(half_life=half_life)
        e = a.apply("ns", doc(), T0)
        for t, v in ((T0, 1.0), (T0 + 1, 1.0), (T0 + 2, 1.0), (T0 + 7200, 20.0)):
            a.observe("ns", "w", "alloc-1", v, 100, t)
        assert e.tflops.hist.half_life == half_life
        return e.tflops.hist.percentile(0.5)

    assert 20 <= median(timedelta(hours=1)) <= 21.1       # the end of the bucket holding 20
    assert 1 <= median(timedelta(hours=24)) <= 1.06        # the end of the bucket holding 1

    def target(**minimums):
        a = Autoscaler(**minimums)
        e = a.apply("ns", doc(), T0)
        for i in range(10):
            a.observe("ns", "w", "alloc-1", 0.001, 1, T0 + 60 * i)
        a.evaluate(e, T0 + 700, ())
        return e.est_tflops.target, e.est_vram

    # 0.001 TFLOPS lies in the first bucket [0, 0.01): its end x 1.15 = 0.0115, lifted to the minimum
    assert target()[0] == 0.1
    t, vram = target(min_tflops=0.5, min_vram_mib=256)
    assert t == 0.5 and vram.target == 256
    with pytest.raises(ValueError, match="must be > 0"):
        Autoscaler(half_life=timedelta(0))


def test_scheduler_config_sets_half_life_and_minimums(tmp_path):
    import pytest
    from tfscheduler.state import load_config
    cfg = tmp_path / "s.toml"
    cfg.write_text("histogram_half_life_s = 3600\nrecommendation_min_tflops = 0.001\nrecommendation_min_vram = '1Mi'\n")
    c = load_config(str(cfg))
    assert (c.histogram_half_life_s, c.recommendation_min_tflops, c.recommendation_min_vram_mib) == (3600, 0.001, 1)
    d = load_config(None)
    assert (d.histogram_half_life_s, d.recommendation_min_tflops, d.recommendation_min_vram_mib) == (86400, 0.1, 64)
    for text, key in (("histogram_half_life_s = 0", "histogram_half_life_s"),
                      ("recommendation_min_vram = '4Qi'", "recommendation_min_vram"),
                      ("recommendation_min_tflops = -1", "recommendation_min_tflops")):
        cfg.write_text(text + "\n")
        with pytest.raises(ValueError, match=key):
            load_config(str(cfg))


def test_enable_false_or_an_empty_target_only_recommends():
    """Seed 004: 若enable不为true,或者targetResource为空,则只推荐资源值 — the recommendation is reported, the
    effective resources stay the workload's own."""
    for auto in ({"enable": False, "targetResource": "all"}, {"enable": True, "targetResource": ""}, {}):
        a = Autoscaler(vram_peak_interval_s=60)
        e = a.apply("ns", doc(**auto), T0)
        for i in range(30):
            a.observe("ns", "w", "alloc-1", 8.0, 100, T0 + 60 * i)
        eff = a.evaluate(e, T0 + 1800, ())
        assert e.recommendation is not None and e.recommendation.tflops > 8, auto
        assert e.conditions["RecommendationProvided"]["reason"] == "OutOfEstimatedBound"
        assert (eff.tflops, eff.lim_tflops, eff.vram_mib, eff.lim_vram_mib) == (2, 6, 1024, 2048), auto
        assert not e.manages, auto
