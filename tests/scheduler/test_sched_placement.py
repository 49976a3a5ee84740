"""Placement core on synthetic pools: strategies, filters, oversubscription, quotas, QoS preemption."""
import pytest

from tfclient.errors import InvalidRequest, NoCapacity, QuotaExceeded, UnknownPool
from tfscheduler.placement import (CRITICAL, HIGH, LOW, MEDIUM, Alloc, Gpu, PlacementIndex, PoolPolicy, Quota,
                                   Request)


def pool(nodes=2, gpus=2, tflops=100.0, vram=1000, strategy="node-compact-gpu-low-load", model="A100",
         pool_name="p", oversell=1.0):
    idx = PlacementIndex()
    idx.set_policy(pool_name, PoolPolicy(strategy=strategy, tflops_oversell=oversell, vram_oversell=oversell))
    for n in range(nodes):
        for g in range(gpus):
            idx.upsert_gpu(Gpu(f"n{n}-g{g}", f"n{n}", pool_name, model, "nvidia", vram, tflops))
    return idx


_seq = iter(range(10 ** 9))


def take(idx, req):
    d = idx.place(req)
    for v in d.preempt:
        idx.remove_allocation(v)
    aid = f"a{next(_seq)}"
    idx.add_allocation(Alloc(aid, d.gpus, req.tflops, req.vram_mib, req.lim_tflops, req.lim_vram_mib, req.qos,
                             req.namespace))
    return aid, d


def test_compact_first_packs_one_gpu_before_the_next():
    idx = pool(strategy="compact-first")
    _, d1 = take(idx, Request(10, 100))
    _, d2 = take(idx, Request(10, 100))
    assert d1.gpus == d2.gpus


def test_low_load_first_spreads_over_gpus():
    idx = pool(strategy="low-load-first")
    seen = {take(idx, Request(10, 100))[1].gpus[0] for _ in range(4)}
    assert len(seen) == 4


def test_node_compact_gpu_low_load_fills_one_node_spreading_its_gpus():
    idx = pool(strategy="node-compact-gpu-low-load")
    d = [take(idx, Request(10, 100))[1] for _ in range(3)]
    assert {x.node for x in d[1:]} == {d[0].node}          # second and third stay on the loaded node
    assert d[0].gpus != d[1].gpus                           # ...on its emptier GPU


def test_vram_and_tflops_weights_change_what_load_means():
    idx = PlacementIndex()
    idx.set_policy("p", PoolPolicy(strategy="low-load-first", tflops_weight=1.0, vram_weight=0.0))
    for g in ("a", "b"):
        idx.upsert_gpu(Gpu(g, "n", "p", "L4", "nvidia", 1000, 100))
    idx.add_allocation(Alloc("x", ("a",), 1, 900, 1, 900))    # a: VRAM-heavy
    idx.add_allocation(Alloc("y", ("b",), 50, 10, 50, 10))    # b: compute-heavy
    assert idx.place(Request(1, 10)).gpus == ("a",)           # by TFLOPS, a is the low-load GPU
    idx.set_policy("p", PoolPolicy(strategy="low-load-first", tflops_weight=0.0, vram_weight=1.0))
    assert idx.place(Request(1, 10)).gpus == ("b",)


def test_requests_never_exceed_physical_capacity():
    idx = pool(nodes=1, gpus=1)
    for _ in range(4):
        take(idx, Request(25, 100))
    with pytest.raises(NoCapacity):
        idx.place(Request(1, 1))


def test_limits_are_charged_against_oversold_capacity():
    idx = pool(nodes=1, gpus=1, oversell=2.0)   # limits may total 200 TFLOPS / 2000 MiB
    take(idx, Request(10, 100, lim_tflops=100, lim_vram_mib=1000))
    take(idx, Request(10, 100, lim_tflops=100, lim_vram_mib=1000))
    with pytest.raises(NoCapacity):
        idx.place(Request(10, 100, lim_tflops=20, lim_vram_mib=100))
    no_oversell = pool(nodes=1, gpus=1, oversell=1.0)
    take(no_oversell, Request(10, 100, lim_tflops=100, lim_vram_mib=1000))
    with pytest.raises(NoCapacity):
        no_oversell.place(Request(10, 100, lim_tflops=20, lim_vram_mib=100))


def test_a_pool_asked_of_a_scheduler_no_worker_has_joined_says_to_start_a_worker():
    with pytest.raises(UnknownPool, match=r"pool 'default' does not exist: no worker has registered with this "
                                          r"scheduler yet \(start one: `tensorfusion worker --scheduler"):
        PlacementIndex().place(Request(1, 1, pool="default"))


def test_filters_pool_model_vendor_and_local_node():
    idx = pool(nodes=1, gpus=1, model="NVIDIA A100-SXM4-80GB", pool_name="a")
    idx.set_policy("b", PoolPolicy())
    idx.upsert_gpu(Gpu("h", "hnode", "b", "NVIDIA H100 80GB HBM3", "nvidia", 1000, 100))
    assert idx.place(Request(1, 1, model="h100")).gpus == ("h",)
    assert idx.place(Request(1, 1, pool="a")).gpus == ("n0-g0",)
    assert idx.place(Request(1, 1, node="hnode")).gpus == ("h",)
    with pytest.raises(UnknownPool, match="pool 'zzz' does not exist"):
        idx.place(Request(1, 1, pool="zzz"))
    with pytest.raises(InvalidRequest, match="relax the filters"):
        idx.place(Request(1, 1, vendor="amd"))


def test_impossible_requests_are_invalid_not_busy():
    idx = pool(nodes=2, gpus=2)
    with pytest.raises(InvalidRequest, match="exceeds every GPU") as e:
        idx.place(Request(500, 10))
    # the largest GPU and what to lower (the request or its limit: nothing else makes it fit one GPU)
    assert "(largest: 100 TFLOPS, " in str(e.value) and str(e.value).endswith("lower the request or limit that does not fit")
    with pytest.raises(InvalidRequest, match="gpu_count 3"):
        idx.place(Request(1, 10, gpu_count=3))
    with pytest.raises(InvalidRequest, match="below the request"):
        idx.place(Request(10, 10, lim_tflops=5))
    with pytest.raises(InvalidRequest, match="neither"):
        idx.place(Request(0, 0))


def test_multi_gpu_allocation_lands_on_one_node():
    idx = pool(nodes=2, gpus=2)
    take(idx, Request(90, 10))                    # one GPU of some node is nearly full
    aid, d = take(idx, Request(50, 10, gpu_count=2))
    assert len(set(d.gpus)) == 2 and all(g.startswith(d.node) for g in d.gpus)


def test_unavailable_node_is_skipped():
    idx = pool(nodes=2, gpus=1)
    idx.set_node_available("n0", False)
    assert idx.place(Request(1, 1)).node == "n1"
    idx.set_node_available("n1", False)
    with pytest.raises(NoCapacity, match="unavailable"):
        idx.place(Request(1, 1))


def test_quota_per_namespace():
    idx = pool()
    idx.quotas["team"] = Quota(tflops=30)
    take(idx, Request(20, 10, namespace="team"))
    with pytest.raises(QuotaExceeded, match="team"):
        idx.place(Request(20, 10, namespace="team"))
    take(idx, Request(20, 10, namespace="other"))


def test_higher_qos_preempts_the_cheapest_lower_qos_set():
    idx = pool(nodes=1, gpus=2, strategy="compact-first")
    low_small, _ = take(idx, Request(30, 10, qos=LOW))     # compact: all on the first GPU
    med, d = take(idx, Request(70, 10, qos=MEDIUM))
    gpu0 = d.gpus[0]
    other, _ = take(idx, Request(100, 10, qos=HIGH))       # fills the second GPU (HIGH: not preemptable by HIGH)
    d = idx.place(Request(30, 10, qos=HIGH))
    assert d.preempt == (low_small,) and d.gpus == (gpu0,)  # one LOW beats any MEDIUM
    d = idx.place(Request(100, 10, qos=CRITICAL))
    # the GPU holding LOW+MEDIUM needs both gone; the other needs its one HIGH gone: MEDIUM is cheaper
    assert set(d.preempt) == {low_small, med}


def test_no_futile_preemption():
    idx = pool(nodes=1, gpus=1)
    take(idx, Request(50, 10, qos=LOW))
    take(idx, Request(50, 10, qos=HIGH))
    with pytest.raises(NoCapacity, match="no lower-QoS"):
        idx.place(Request(60, 10, qos=HIGH))               # removing the LOW frees 50 < 60: preempt nothing
    with pytest.raises(NoCapacity):
        idx.place(Request(10, 10, qos=LOW))                # LOW never preempts
    assert len(idx.allocs) == 2


def test_same_qos_is_never_preempted():
    idx = pool(nodes=1, gpus=1)
    take(idx, Request(100, 10, qos=MEDIUM))
    with pytest.raises(NoCapacity):
        idx.place(Request(10, 10, qos=MEDIUM))


def test_preemption_prunes_victims_it_does_not_need():
    idx = pool(nodes=1, gpus=1)
    ids = [take(idx, Request(25, 10, qos=LOW))[0] for _ in range(4)]
    d = idx.place(Request(40, 10, qos=HIGH))
    assert len(d.preempt) == 2 and set(d.preempt) <= set(ids)


def test_resize_checks_room_on_its_gpus():
    idx = pool(nodes=1, gpus=1)
    aid, _ = take(idx, Request(40, 100))
    take(idx, Request(40, 100))
    idx.resize(aid, 60, 100, 60, 100)
    with pytest.raises(NoCapacity):
        idx.resize(aid, 70, 100, 70, 100)
    assert idx.allocs[aid].tflops == 60


def test_release_returns_capacity():
    idx = pool(nodes=1, gpus=1)
    aid, _ = take(idx, Request(100, 1000))
    idx.remove_allocation(aid)
    assert idx.gpu_charges("n0-g0")["req_tflops"] == pytest.approx(0)
    take(idx, Request(100, 1000))


def test_random_churn_keeps_the_index_consistent_and_never_overcommits():
    import random
    import numpy as np
    rng = random.Random(7)
    idx = pool(nodes=4, gpus=4, oversell=1.5)
    live = []
    for step in range(600):
        if live and rng.random() < 0.4:
            idx.remove_allocation(live.pop(rng.randrange(len(live))))
            continue
        t, v = rng.choice([5, 10, 25, 40]), rng.choice([50, 100, 300])
        req = Request(t, v, lim_tflops=t * rng.choice([1, 2]), lim_vram_mib=v, qos=rng.randint(1, 4),
                      gpu_count=rng.choice([1, 1, 1, 2]))
        try:
            d = idx.place(req)
        except NoCapacity:
            continue
        for victim in d.preempt:
            assert idx.allocs[victim].qos < req.qos
            idx.remove_allocation(victim)
            live.remove(victim)
        aid = f"r{step}"
        idx.add_allocation(Alloc(aid, d.gpus, req.tflops, req.vram_mib, req.lim_tflops, req.lim_vram_mib, req.qos))
        live.append(aid)
        n = idx._n
        assert (idx.req_t[:n] <= idx.cap_t[:n] + 1e-6).all() and (idx.req_v[:n] <= idx.cap_v[:n]).all()
        assert (idx.lim_t[:n] <= idx.lcap_t[:n] + 1e-6).all() and (idx.lim_v[:n] <= idx.lcap_v[:n]).all()
    # incremental columns equal a recount from the allocations
    for uuid, r in idx.rows.items():
        mine = [idx.allocs[a] for a in idx.on_gpu[r]]
        assert idx.req_t[r] == pytest.approx(sum(a.tflops for a in mine))
        assert idx.frac_v[r] == pytest.approx(sum(a.vram_mib for a in mine) / idx.cap_v[r])
    for node, nid in idx._node_ids.items():
        rows = [r for r in idx.rows.values() if idx.node_id[r] == nid]
        assert idx.n_req_t[nid] == pytest.approx(float(np.sum(idx.req_t[rows])))


def test_pool_reserved_for_high_qos_is_skipped_by_lower_qos():
    idx = pool(nodes=1, gpus=1, pool_name="general")
    idx.set_policy("premium", PoolPolicy(qos=(HIGH, CRITICAL)))
    idx.upsert_gpu(Gpu("prem", "pnode", "premium", "H100", "nvidia", 1000, 100))
    take(idx, Request(100, 10, qos=MEDIUM))                    # fills "general"
    with pytest.raises(NoCapacity):
        idx.place(Request(10, 10, qos=MEDIUM))                 # premium is not for MEDIUM
    assert idx.place(Request(10, 10, qos=HIGH)).gpus == ("prem",)
    with pytest.raises(InvalidRequest, match="accepts QoS high, critical"):
        idx.place(Request(10, 10, qos=LOW, pool="premium"))


def test_gpu_gone_from_its_worker_stays_unplaceable_when_the_node_comes_back():
    idx = pool(nodes=1, gpus=2, strategy="compact-first")
    aid, d = take(idx, Request(10, 10))
    gone = d.gpus[0]
    idx.remove_gpu(gone)                       # still charged: kept, unavailable
    idx.set_node_available("n0", False)
    idx.set_node_available("n0", True)
    for _ in range(3):
        assert take(idx, Request(10, 10))[1].gpus[0] != gone
    idx.remove_allocation(aid)
    idx.upsert_gpu(Gpu(gone, "n0", "p", "A100", "nvidia", 1000, 100.0))   # reported again: placeable
    assert idx.place(Request(90, 10)).gpus == (gone,)
