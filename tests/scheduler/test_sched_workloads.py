"""Workloads and autoscaling (seed 004) through the real scheduler's gRPC API: ApplyWorkload/GetWorkload/
ListWorkloads, usage streamed in worker heartbeats, the autoscale pass (run by hand here, with the scheduler's
clock injected) producing the seed's status, live limit changes ordered to the worker, cron rules applying and
reverting, and the history surviving a restart."""
import threading
from datetime import datetime, timezone

import pytest

from tfclient.errors import InvalidRequest, PermissionDenied, UnknownWorkload
from tfclient.scheduler_client import SchedulerClient
from tfscheduler import lease

from etcd_helpers import EtcdCluster, needs_etcd
from sched_helpers import SECRET, gpus

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc).timestamp()     # a Thursday, 08:00 UTC


class Clock:
    """The scheduler's injected clock (unix seconds), moved by the test."""

    def __init__(self, t=T0):
        self.t = t
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            return self.t

    def advance(self, s):
        with self.lock:
            self.t += s


@pytest.fixture
def clocked(start_scheduler):
    clock = Clock()
    # the loop is driven by hand (autoscale_interval_s=0); nodes and leases never time out on the fake clock
    s = start_scheduler(clock=clock, autoscale_interval_s=0, node_timeout_s=1e9, lease_ttl_s=1e4,
                        max_lease_ttl_s=1e5)
    s.clock = clock
    s.autoscale = lambda: s.run(s.handle.service.autoscale())
    return s


def workload(name="train", auto=None, cron=None, requests=None, limits=None):
    doc = {"name": name, "pool": "p",
           "resources": {"requests": requests or {"tflops": "2", "vram": "1Gi"},
                         "limits": limits or {"tflops": "4", "vram": "2Gi"}},
           "autoScalingConfig": {"autoSetResources": {"confidenceInterval": "1h", **(auto or {})}}}
    if cron:
        doc["autoScalingConfig"]["cronScalingRules"] = cron
    return doc


def stream_usage(s, c, alloc_ids, tflops, vram_mib, minutes=30, step_s=60):
    """The worker reports each allocation's usage once a minute for `minutes` of scheduler time."""
    for _ in range(minutes):
        s.clock.advance(step_s)
        c.heartbeat("node-a", active_allocation_ids=alloc_ids,
                    sessions=[dict(allocation_id=a, gpu_uuid="GPU-a-0", tflops_used=tflops, vram_used_mib=vram_mib)
                              for a in alloc_ids])


def condition(w, ctype="RecommendationProvided"):
    return next(c for c in w.status.conditions if c.type == ctype)


def test_usage_above_the_request_yields_a_scale_up_recommendation_and_condition(clocked, worker_admin):
    with SchedulerClient(clocked.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=100), admin=worker_admin.address)
        c.apply_workload(workload())                        # recommend only: enable false
        a = c.allocate(workload="train", pool="p")          # no resources: the workload's
        assert (a.requests.tflops, a.limits.tflops, a.requests.vram_mib, a.limits.vram_mib) == (2, 4, 1024, 2048)
        stream_usage(clocked, c, [a.id], tflops=8.0, vram_mib=900)
        clocked.autoscale()
        w = c.get_workload("train")
        cond = condition(w)
        assert (cond.status, cond.reason) == ("True", "OutOfEstimatedBound")
        assert cond.message.startswith("TFLOPS scaled up due to (2) below lower bound (")
        assert cond.last_transition_time == "2026-01-01T08:30:00Z"
        rec = w.status.recommendation
        assert 8.0 <= rec.requests.tflops <= 8.0 * 1.15 * 1.1      # P90 of ~8 TFLOPS plus the 15% margin
        assert rec.limits.tflops == pytest.approx(2 * rec.requests.tflops, abs=0.02)   # the 2:1 limit ratio
        assert w.status.tflops_estimate.lower_bound > 2
        # recommend only: the allocation keeps its resources and nothing was ordered
        assert c.get_allocation(a.id).limits.tflops == 4 and worker_admin.limits == []
        assert w.status.applied_recommended_replicas == 0 and list(w.allocation_ids) == [a.id]


def test_enabled_auto_set_resources_raises_the_limit_live_on_the_worker(clocked, worker_admin):
    with SchedulerClient(clocked.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=100), admin=worker_admin.address)
        c.apply_workload(workload(auto={"enable": True, "targetResource": "tflops"}))
        a = c.allocate(workload="train", pool="p")
        stream_usage(clocked, c, [a.id], tflops=8.0, vram_mib=900)
        clocked.autoscale()
        w = c.get_workload("train")
        rec = w.status.recommendation
        now = c.get_allocation(a.id)
        assert (now.requests.tflops, now.limits.tflops) == (rec.requests.tflops, rec.limits.tflops)
        assert (now.requests.vram_mib, now.limits.vram_mib) == (1024, 2048)     # target tflops: VRAM untouched
        aid, t, v, token = worker_admin.limits[-1]
        assert (aid, t, v) == (a.id, rec.limits.tflops, 2048)
        assert lease.verify(token, lease.node_key(SECRET, a.worker_id), now=clocked.clock()).tflops_limit == rec.limits.tflops
        assert w.status.applied_recommended_replicas == 1
        assert condition(w, "ResourcesApplied").status == "True"
        # a second pass changes nothing: no new order
        orders = len(worker_admin.limits)
        clocked.autoscale()
        assert len(worker_admin.limits) == orders


def test_recommendation_that_does_not_fit_keeps_the_old_limits_and_says_why(clocked, worker_admin):
    with SchedulerClient(clocked.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=10), admin=worker_admin.address)
        c.apply_workload(workload(auto={"enable": True, "targetResource": "all"}))
        c.allocate(tflops=5, vram=1, pool="p")                           # half the 10-TFLOPS GPU taken
        a = c.allocate(workload="train", pool="p")
        stream_usage(clocked, c, [a.id], tflops=9.0, vram_mib=900)      # recommended ~10: only 5 are free
        clocked.autoscale()
        w = c.get_workload("train")
        cond = condition(w, "ResourcesApplied")
        assert (cond.status, cond.reason) == ("False", "InsufficientCapacity")
        assert a.id in cond.message and "no room" in cond.message
        kept = c.get_allocation(a.id)
        assert (kept.requests.tflops, kept.limits.tflops) == (2, 4) and worker_admin.limits == []
        assert w.status.applied_recommended_replicas == 0


def test_a_recommendation_beyond_every_gpu_is_held_within_the_largest_and_the_workload_stays_placeable(
        clocked, worker_admin):
    """The README's example workload on the emulated device (0.01 TFLOPS): any usage is recommended at least the
    0.1-TFLOPS minimum, more than the device has. Held within the GPU, it is applied, and a new allocation of the
    workload is placed (it was refused: 'exceeds every GPU ... ask for less')."""
    with SchedulerClient(clocked.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=0.01, vram=16384), admin=worker_admin.address)
        c.apply_workload(workload(auto={"enable": True, "targetResource": "all"},
                                  requests={"tflops": "0.002", "vram": "1Gi"},
                                  limits={"tflops": "0.004", "vram": "2Gi"}))
        a = c.allocate(workload="train", pool="p")
        stream_usage(clocked, c, [a.id], tflops=0.004, vram_mib=900)
        clocked.autoscale()
        w = c.get_workload("train")
        rec = w.status.recommendation
        assert (rec.requests.tflops, rec.limits.tflops) == (0.01, 0.01)
        assert "held within the pool's largest GPU (0.01 TFLOPS, 16384 MiB)" in condition(w).message
        assert condition(w, "ResourcesApplied").status == "True"
        assert c.get_allocation(a.id).limits.tflops == 0.01
        c.release(a.id)
        b = c.allocate(workload="train", pool="p")
        assert (b.requests.tflops, b.limits.tflops) == (0.01, 0.01)


def scale_up_next_to(s, c, worker_admin, occupier_limit):
    """A 100-TFLOPS GPU holding another allocation (10 TFLOPS requested, `occupier_limit` as limit) and the
    workload's (2/4), whose usage of 8 TFLOPS asks for ~9.2 requested / ~18.4 limit (its 2:1 ratio) after a pass.
    -> (client's workload allocation, the occupier)."""
    c.register_worker("node-a", "p", gpus("a", tflops=100), admin=worker_admin.address)
    c.apply_workload(workload(auto={"enable": True, "targetResource": "all"}))
    other = c.allocate(tflops=10, tflops_limit=occupier_limit, vram="1Gi", pool="p")
    a = c.allocate(workload="train", pool="p")
    stream_usage(s, c, [a.id, other.id], tflops=8.0, vram_mib=900)
    s.autoscale()
    return a, other


def test_limits_are_checked_against_oversold_capacity_and_a_refused_change_is_retried(clocked, worker_admin):
    with SchedulerClient(clocked.address) as c:
        a, other = scale_up_next_to(clocked, c, worker_admin, occupier_limit=85)
        w = c.get_workload("train")
        rec = w.status.recommendation
        # requests fit the physical 100 TFLOPS (10 + ~9.2), limits do not fit 100 x oversell 1.0 (85 + ~18.4)
        assert 10 + rec.requests.tflops <= 100 < 85 + rec.limits.tflops
        cond = condition(w, "ResourcesApplied")
        assert (cond.status, cond.reason) == ("False", "InsufficientCapacity") and "retrying" in cond.message
        kept = c.get_allocation(a.id)
        assert (kept.requests.tflops, kept.limits.tflops) == (2, 4) and worker_admin.limits == []
        # the room comes back: the next pass applies what was refused, live
        c.release(other.id)
        clocked.clock.advance(60)
        clocked.autoscale()
        w = c.get_workload("train")
        assert condition(w, "ResourcesApplied").status == "True"
        now = c.get_allocation(a.id)
        assert (now.requests.tflops, now.limits.tflops) == (w.status.recommendation.requests.tflops,
                                                            w.status.recommendation.limits.tflops)
        assert worker_admin.limits[-1][:2] == (a.id, now.limits.tflops)
        assert w.status.applied_recommended_replicas == 1


def test_limits_may_use_the_pools_oversold_capacity(start_scheduler, tmp_path, worker_admin):
    cfg = tmp_path / "sched.toml"
    cfg.write_text("[pools.p]\ntflops_oversell = 2.0\n")
    s = start_scheduler(clock=Clock(), config_path=str(cfg), autoscale_interval_s=0, node_timeout_s=1e9,
                        lease_ttl_s=1e4, max_lease_ttl_s=1e5)
    s.clock = s.handle.state.clock
    s.autoscale = lambda: s.run(s.handle.service.autoscale())
    with SchedulerClient(s.address) as c:
        a, _ = scale_up_next_to(s, c, worker_admin, occupier_limit=85)   # 85 + ~18.4 <= 100 x 2
        w = c.get_workload("train")
        assert condition(w, "ResourcesApplied").status == "True"
        assert c.get_allocation(a.id).limits.tflops == w.status.recommendation.limits.tflops > 4


def test_cron_rule_applies_its_resources_in_its_window_and_reverts_after_end(clocked, worker_admin):
    rule = {"enable": True, "name": "morning", "start": "0 9 * * *", "end": "0 10 * * *",
            "desiredResources": {"requests": {"tflops": "6", "vram": "3Gi"}, "limits": {"tflops": "9", "vram": "4Gi"}}}
    with SchedulerClient(clocked.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=100), admin=worker_admin.address)
        c.apply_workload(workload(cron=[rule]))
        a = c.allocate(workload="train", pool="p")
        clocked.autoscale()                                     # 08:00: before the window
        assert c.get_workload("train").status.active_cron_scaling_rule == ""
        assert c.get_allocation(a.id).limits.tflops == 4
        clocked.clock.advance(3600 + 60)                        # 09:01: inside
        clocked.autoscale()
        w = c.get_workload("train")
        assert w.status.active_cron_scaling_rule == "morning"
        inside = c.get_allocation(a.id)
        assert (inside.requests.tflops, inside.limits.tflops, inside.requests.vram_mib, inside.limits.vram_mib) == \
            (6, 9, 3072, 4096)
        assert worker_admin.limits[-1][:3] == (a.id, 9, 4096)
        clocked.clock.advance(3600)                             # 10:01: after end, the workload's own resources
        clocked.autoscale()
        assert c.get_workload("train").status.active_cron_scaling_rule == ""
        after = c.get_allocation(a.id)
        assert (after.requests.tflops, after.limits.tflops, after.requests.vram_mib, after.limits.vram_mib) == \
            (2, 4, 1024, 2048)
        assert worker_admin.limits[-1][:3] == (a.id, 4, 2048)


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("etcd", marks=needs_etcd)])
def test_usage_history_and_recommendation_survive_a_scheduler_restart(engine, start_scheduler, tmp_path,
                                                                      worker_admin, request):
    """The VPA histogram checkpoints are in the state store, SQLite or etcd, as VPA keeps its checkpoints."""
    clock = Clock()
    db = tmp_path / "wl.db"
    opts = dict(clock=clock, autoscale_interval_s=0, node_timeout_s=1e9, lease_ttl_s=1e4, max_lease_ttl_s=1e5)
    if engine == "etcd":
        cluster = EtcdCluster(tmp_path)
        request.addfinalizer(cluster.stop)
        opts.update(store=cluster.url, etcd={}, elect=False)
    s = start_scheduler(db, **opts)
    s.clock = clock
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=100), admin=worker_admin.address)
        c.apply_workload(workload())
        a = c.allocate(workload="train", pool="p")
        stream_usage(s, c, [a.id], tflops=8.0, vram_mib=900)
        s.run(s.handle.service.autoscale())                    # the pass checkpoints the histories
        before = c.get_workload("train")
    hist = s.state.autoscaler.entries[("default", "train")].tflops
    samples, p90 = hist.samples, hist.hist.percentile(0.9)
    s.stop()
    s2 = start_scheduler(db, **opts)
    with SchedulerClient(s2.address) as c:
        after = c.get_workload("train")
        assert after.status.recommendation == before.status.recommendation
        assert [tuple(str(x) for x in (k.type, k.status, k.message)) for k in after.status.conditions] == \
            [tuple(str(x) for x in (k.type, k.status, k.message)) for k in before.status.conditions]
    assert type(s2.state.store).__name__ == ("EtcdStore" if engine == "etcd" else "SqliteStore")
    restored = s2.state.autoscaler.entries[("default", "train")].tflops
    assert restored.samples == samples == 30
    assert restored.hist.percentile(0.9) == pytest.approx(p90)


def test_bad_workload_document_is_invalid_argument_naming_the_field(client):
    with pytest.raises(InvalidRequest, match=r"autoScalingConfig.autoSetResources.targetResource: 'gpu'"):
        client.apply_workload(workload(auto={"targetResource": "gpu"}))
    with pytest.raises(InvalidRequest, match=r"resources.requests.vram"):
        client.apply_workload(workload(requests={"vram": "lots"}))
    with pytest.raises(UnknownWorkload, match="'nope' does not exist"):
        client.get_workload("nope")


def test_tenants_see_their_own_namespace_and_admins_all(scheduler):
    team_a = scheduler.token("tenant", namespace="team-a")
    team_b = scheduler.token("tenant", namespace="team-b")
    with SchedulerClient(scheduler.address, token=team_a) as a, SchedulerClient(scheduler.address, token=team_b) as b:
        w = a.apply_workload(workload("shared-name"))
        assert w.namespace == "team-a"
        b.apply_workload(workload("shared-name"))
        assert [x.namespace for x in a.list_workloads()] == ["team-a"]
        with pytest.raises(PermissionDenied, match="team-a"):
            b.get_workload("shared-name", namespace="team-a")
        with pytest.raises(PermissionDenied):
            b.apply_workload(workload("x"), namespace="team-a")
    with SchedulerClient(scheduler.address) as admin:       # $TF_HOME/admin.token
        assert sorted(x.namespace for x in admin.list_workloads()) == ["team-a", "team-b"]
        assert [x.name for x in admin.list_workloads(namespace="team-b")] == ["shared-name"]


def test_prometheus_gauges_show_each_workloads_recommendation(start_scheduler, worker_admin):
    import urllib.request
    clock = Clock()
    s = start_scheduler(clock=clock, autoscale_interval_s=0, node_timeout_s=1e9, lease_ttl_s=1e4,
                        max_lease_ttl_s=1e5, metrics_listen="127.0.0.1:0")
    s.clock = clock
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=100), admin=worker_admin.address)
        c.apply_workload(workload())
        a = c.allocate(workload="train", pool="p")
        stream_usage(s, c, [a.id], tflops=8.0, vram_mib=900)
        s.run(s.handle.service.autoscale())
        rec = c.get_workload("train").status.recommendation
    text = urllib.request.urlopen(f"http://127.0.0.1:{s.handle.metrics_port}/metrics", timeout=10).read().decode()
    want = ('tensorfusion_scheduler_workload_recommendation{kind="requests",namespace="default",resource="tflops",'
            f'workload="train"}} {rec.requests.tflops}')
    assert want in text, text
    assert 'tensorfusion_scheduler_workload_estimate{bound="lower",namespace="default",resource="tflops"' in text
    assert ('tensorfusion_scheduler_workload_applied_recommended_replicas{namespace="default",workload="train"} 0.0'
            in text)


def test_a_worker_that_does_not_answer_keeps_the_old_limits_and_the_status_says_so(clocked):
    with SchedulerClient(clocked.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=100), admin="127.0.0.1:1")     # nothing listens
        c.apply_workload(workload(auto={"enable": True, "targetResource": "tflops"}))
        a = c.allocate(workload="train", pool="p")
        stream_usage(clocked, c, [a.id], tflops=8.0, vram_mib=900)
        clocked.autoscale()
        cond = condition(c.get_workload("train"), "ResourcesApplied")
        assert (cond.status, cond.reason) == ("False", "WorkerUnreachable")
        assert a.id in cond.message and "did not apply the new limits" in cond.message
        kept = c.get_allocation(a.id)
        assert (kept.requests.tflops, kept.limits.tflops) == (2, 4)


def test_per_workload_series_are_bounded(start_scheduler, monkeypatch):
    """Label cardinality: beyond WORKLOAD_SERIES_MAX workloads, no more per-workload series, only a count."""
    import urllib.request
    from tfscheduler import metrics
    monkeypatch.setattr(metrics, "WORKLOAD_SERIES_MAX", 2)
    s = start_scheduler(metrics_listen="127.0.0.1:0")
    with SchedulerClient(s.address) as c:
        for name in ("w1", "w2", "w3"):
            c.apply_workload(workload(name))
    text = urllib.request.urlopen(f"http://127.0.0.1:{s.handle.metrics_port}/metrics", timeout=10).read().decode()
    replicas = [line for line in text.splitlines()
                if line.startswith("tensorfusion_scheduler_workload_applied_recommended_replicas{")]
    assert [r.split('workload="')[1].split('"')[0] for r in replicas] == ["w1", "w2"], text
    assert 'tensorfusion_scheduler_workloads{exported="true"} 2.0' in text
    assert 'tensorfusion_scheduler_workloads{exported="false"} 1.0' in text
