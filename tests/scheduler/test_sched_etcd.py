"""The scheduler on etcd (`--store etcd://...`): placement and restart against a real etcd, quotas, workloads and
their checkpoints kept there, writes refused with UNAVAILABLE while etcd is away and accepted again when it is back,
two schedulers allocating on one pool at once never over-commit a GPU (every commit compares the GPU ledger
revisions it placed on), a three-member etcd losing its raft leader, etcd over TLS with a user and password."""
import json
import threading
import time

import pytest

from tfclient.errors import NoCapacity, QuotaExceeded, StoreUnavailable, TensorFusionError
from tfclient.protos import load
from tfclient.scheduler_client import SchedulerClient
from tfscheduler.etcd_store import EtcdStore

from etcd_helpers import (EtcdCluster, etcd, kill9, make_certs, needs_etcd, needs_etcd_tools,  # noqa: F401 (fixture)
                          start_scheduler, wait_leading)
from sched_helpers import gpus

pb = load("scheduler_pb2")
pytestmark = needs_etcd


def charged(store_url_cluster) -> dict:
    """GPU uuid -> summed TFLOPS requests of the active allocations, read straight from etcd."""
    snap = EtcdStore(store_url_cluster.client()).load()
    out = {}
    for a in snap.allocations:
        for u in a.gpu_uuids:
            out[u] = out.get(u, 0.0) + a.tflops
    return out


def test_placement_and_state_survive_a_killed_scheduler_on_etcd(tmp_path, etcd):
    proc, addr = start_scheduler(tmp_path, etcd.url)
    try:
        with SchedulerClient(addr) as c:
            c.register_worker("node-a", "p", gpus("a", n=2, tflops=100), unix_path="/run/a.sock",
                              admin="127.0.0.1:1")
            kept = c.allocate(tflops=60, vram="1Gi", qos="high", workload="train")
            other = c.allocate(tflops=60, vram="1Gi")     # does not fit next to the first: the other GPU
            assert set(other.gpu_uuids) != set(kept.gpu_uuids)
            gone = c.allocate(tflops=10, vram="1Gi")
            c.release(gone.id)
    finally:
        kill9(proc)
    proc, addr = start_scheduler(tmp_path, etcd.url, name="s2")
    wait_leading(addr)          # the dead one's leader lease runs out first (--leader-ttl, 5 s)
    try:
        with SchedulerClient(addr) as c:
            got = c.get_allocation(kept.id)
            assert got.state == pb.ALLOCATION_ACTIVE and got.workload == "train" and got.qos == 3
            assert got.endpoints.unix_path == "/run/a.sock"
            assert c.get_allocation(gone.id).state == pb.ALLOCATION_RELEASED
            r = c.heartbeat("node-a", active_allocation_ids=[kept.id, other.id, gone.id])
            assert [(x.allocation_id, x.reason) for x in r.close_allocations] == [(gone.id, "released")]
            with pytest.raises(NoCapacity):              # 60 of 100 still charged on both GPUs
                c.allocate(tflops=50, vram="1Gi")
            c.allocate(tflops=40, vram="1Gi")
    finally:
        kill9(proc)
    assert sorted(charged(etcd).values()) == [60.0, 100.0]


def test_workloads_survive_a_killed_scheduler_on_etcd(tmp_path, etcd):
    """A workload applied through one scheduler is there for the next one (and for a new leader)."""
    doc = {"name": "train-a", "resources": {"requests": {"tflops": "10", "vram": "4Gi"}},
           "autoScalingConfig": {"autoSetResources": {"enable": True, "targetResource": "tflops"}}}
    proc, addr = start_scheduler(tmp_path, etcd.url)
    try:
        with SchedulerClient(addr) as c:
            c.apply_workload(doc)
            assert [w.name for w in c.list_workloads()] == ["train-a"]
    finally:
        kill9(proc)
    proc, addr = start_scheduler(tmp_path, etcd.url, name="s2")
    wait_leading(addr)
    try:
        with SchedulerClient(addr) as c:
            assert [w.name for w in c.list_workloads()] == ["train-a"]
            assert c.get_workload("train-a").name == "train-a"
    finally:
        kill9(proc)


def test_quotas_live_in_etcd_and_bind_a_scheduler_started_without_the_config(tmp_path, etcd):
    """A quota from one scheduler's config file is a key in etcd: a replica started without that file (a new
    leader, a restart) enforces it too."""
    cfg = tmp_path / "sched.toml"
    cfg.write_text('[quotas.team]\ntflops = 30\nvram = "4Gi"\n')
    proc, addr = start_scheduler(tmp_path, etcd.url, "--config", str(cfg))
    try:
        with SchedulerClient(addr) as c:
            c.register_worker("node-a", "p", gpus("a", tflops=100), admin="127.0.0.1:1")
            c.allocate(tflops=20, vram="1Gi", namespace="team")
    finally:
        kill9(proc)
    stored = json.loads(etcd.client().range(b"/tensorfusion/quotas/team").kvs[0].value)
    assert (stored["tflops"], stored["vram_mib"], stored["allocations"]) == (30.0, 4096, None)
    proc, addr = start_scheduler(tmp_path, etcd.url, name="s2")      # no --config
    wait_leading(addr)
    try:
        with SchedulerClient(addr) as c:
            with pytest.raises(QuotaExceeded, match="quota 30 TFLOPS: 20 in use"):
                c.allocate(tflops=20, vram="1Gi", namespace="team")
            c.allocate(tflops=10, vram="1Gi", namespace="team")
    finally:
        kill9(proc)


def test_writes_refused_unavailable_while_etcd_is_down_then_recovered(tmp_path, etcd):
    proc, addr = start_scheduler(tmp_path, etcd.url)
    try:
        with SchedulerClient(addr, failover_s=0) as c:
            c.register_worker("node-a", "p", gpus("a", tflops=100), admin="127.0.0.1:1")
            a = c.allocate(tflops=10, vram="1Gi")
            etcd.kill(0)
            with pytest.raises(StoreUnavailable) as err:
                c.allocate(tflops=10, vram="1Gi")
            assert "etcd" in str(err.value)
            assert err.value.code.name == "UNAVAILABLE"
            etcd.start(0)                                 # same data dir: the same state comes back
            deadline = time.monotonic() + 20
            while True:
                try:
                    b = c.allocate(tflops=10, vram="1Gi")
                    break
                except StoreUnavailable:
                    assert time.monotonic() < deadline, "the scheduler did not recover after etcd came back"
                    time.sleep(0.2)
            assert c.get_allocation(a.id).state == pb.ALLOCATION_ACTIVE
            assert {x.id for x in c.list_pool(include_allocations=True).allocations} == {a.id, b.id}
    finally:
        kill9(proc)


def test_two_schedulers_allocating_on_one_pool_never_over_commit(tmp_path, etcd):
    a_proc, a_addr = start_scheduler(tmp_path, etcd.url, "--no-election", "--node-timeout", "600", name="a")
    b_proc, b_addr = start_scheduler(tmp_path, etcd.url, "--no-election", "--node-timeout", "600", name="b")
    try:
        with SchedulerClient(a_addr) as c:
            c.register_worker("node-a", "p", gpus("a", n=4, tflops=100), admin="127.0.0.1:1")
        got = {a_addr: [], b_addr: []}
        errors = []

        def loop(addr):
            with SchedulerClient(addr) as c:
                misses = 0
                while misses < 3:
                    try:
                        got[addr].append(c.allocate(tflops=10, vram="1Mi").id)
                        misses = 0
                    except NoCapacity:
                        misses += 1
                    except TensorFusionError as e:
                        errors.append(e)
                        return
        threads = [threading.Thread(target=loop, args=(x,)) for x in (a_addr, b_addr) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        assert got[a_addr] and got[b_addr], "both schedulers must have placed allocations"
        per_gpu = charged(etcd)
        assert all(v <= 100.0 for v in per_gpu.values()), per_gpu
        assert len(got[a_addr]) + len(got[b_addr]) == 40 and sum(per_gpu.values()) == 400.0
    finally:
        kill9(a_proc)
        kill9(b_proc)


def test_a_commit_on_a_gpu_changed_since_it_was_read_is_refused(etcd):
    from tfclient.errors import StoreConflict
    from tfscheduler.storage import AllocationRecord, GpuRecord, NodeRecord
    one, two = EtcdStore(etcd.client()), EtcdStore(etcd.client())
    one.put_node(NodeRecord("n", "n", "p"), [GpuRecord("GPU-0", "n", 0, "A100", "nvidia", 1024, 100.0)])
    one.load()
    two.load()                      # both read the GPU at the same revision

    def alloc(aid):
        return AllocationRecord(aid, "p", "default", "", "n", ("GPU-0",), 60.0, 1, 60.0, 1, 2, 1, "", 0.0, 30.0, 30.0)
    one.put_allocation(alloc("a1"))
    with pytest.raises(StoreConflict):
        two.put_allocation(alloc("a2"))          # placed on what it read: 60 TFLOPS it did not see
    assert [a.id for a in two.load().allocations] == ["a1"]
    two.put_allocation(alloc("a2"))              # after reading again the commit goes through
    with pytest.raises(StoreConflict):
        one.put_allocation(alloc("a3"))


def test_a_three_member_etcd_losing_one_member_changes_nothing(tmp_path):
    """The member killed is raft's leader and the first endpoint every scheduler talks to: the schedulers move to
    another member while raft elects a new leader, and users see nothing."""
    cluster = EtcdCluster(tmp_path, n=3)
    procs = []
    try:
        lead = cluster.raft_leader()
        ports = [cluster.client_ports[lead]] + [p for i, p in enumerate(cluster.client_ports) if i != lead]
        url = "etcd://" + ",".join(f"127.0.0.1:{p}" for p in ports)
        procs = [start_scheduler(tmp_path, url, name=f"r{i}") for i in range(2)]
        addrs = ",".join(a for _, a in procs)
        with SchedulerClient(addrs) as c:
            c.register_worker("node-a", "p", gpus("a", n=2, tflops=100), admin="127.0.0.1:1")
            before = [c.allocate(tflops=30, vram="1Gi").id for _ in range(3)]
            leader = c.address
            assert cluster.raft_leader() == lead
            cluster.kill(lead)
            after = [c.allocate(tflops=30, vram="1Gi").id for _ in range(3)]
            c.release(before[0])
            assert c.address == leader, "the scheduler leader changed"
            active = {a.id for a in c.list_pool(include_allocations=True).allocations}
            assert active == set(before[1:] + after)
            with pytest.raises(NoCapacity):
                c.allocate(tflops=50, vram="1Gi")       # 2 x 100 TFLOPS, 150 charged: no GPU has 50 left
    finally:
        for p, _ in procs:
            kill9(p)
        cluster.stop()


@needs_etcd_tools
def test_etcd_over_tls_with_a_user_and_password(tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    cluster = EtcdCluster(tmp_path, tls=make_certs(certs))
    proc = None
    try:
        cluster.etcdctl("user", "add", "root:s3cret")
        cluster.etcdctl("auth", "enable")
        tls = ["--etcd-cacert", cluster.tls["ca"], "--etcd-cert", cluster.tls["client_cert"], "--etcd-key",
               cluster.tls["client_key"], "--etcd-user", "root"]
        proc, addr = start_scheduler(tmp_path, cluster.url, *tls, env={"TF_ETCD_PASSWORD": "s3cret"})
        with SchedulerClient(addr) as c:
            c.register_worker("node-a", "p", gpus("a"), admin="127.0.0.1:1")
            a = c.allocate(tflops=10, vram="1Gi")
        kill9(proc)
        with pytest.raises(AssertionError, match="refused user .root.: etcdserver: authentication failed"):     # a wrong password: a clear refusal
            start_scheduler(tmp_path, cluster.url, *tls, name="bad", env={"TF_ETCD_PASSWORD": "wrong"})
        proc, addr = start_scheduler(tmp_path, cluster.url, *tls, name="again", env={"TF_ETCD_PASSWORD": "s3cret"})
        wait_leading(addr)
        with SchedulerClient(addr) as c:
            assert c.get_allocation(a.id).state == pb.ALLOCATION_ACTIVE
    finally:
        if proc is not None:
            kill9(proc)
        cluster.stop()


def test_workload_status_and_histogram_checkpoints_are_kept_in_etcd(etcd):
    """What the autoscaler writes every pass (status, VPA histogram checkpoint) is one key per workload under the
    prefix; a second store (another replica) reads it back; a checkpoint of a workload never applied is dropped."""
    from tfscheduler.storage import WorkloadRecord
    one, two = EtcdStore(etcd.client()), EtcdStore(etcd.client())
    one.put_workload(WorkloadRecord("team", "train-a", '{"name": "train-a"}', updated_at=1.0))
    checkpoint = json.dumps({"tflops": {"buckets": {"3": 1.5}, "total_weight": 1.5}, "samples": 7})
    one.put_workload_checkpoints([("team", "train-a", '{"conditions": []}', checkpoint),
                                  ("team", "never-applied", "{}", "{}")])
    assert [(w.namespace, w.name, w.status, w.checkpoint) for w in two.load_workloads()] == \
        [("team", "train-a", '{"conditions": []}', checkpoint)]
    assert etcd.client().range(b"/tensorfusion/workloads/team/train-a").kvs


def test_hundreds_of_allocations_survive_a_restart_and_end_together_when_their_node_is_lost(tmp_path, etcd):
    """More allocations than etcd takes operations in one transaction (128): a scheduler restarted on them (as a
    new leader would) renews every lease and serves; when their node falls silent they all end LOST."""
    from concurrent.futures import ThreadPoolExecutor
    proc, addr = start_scheduler(tmp_path, etcd.url, "--node-timeout", "600")
    try:
        with SchedulerClient(addr) as c:
            c.register_worker("node-a", "p", gpus("a", n=2, tflops=1000, vram=1 << 20), admin="127.0.0.1:1")

        def some(k):
            with SchedulerClient(addr) as c:
                return [c.allocate(tflops=1, vram="1Mi").id for _ in range(k)]
        with ThreadPoolExecutor(6) as pool:
            ids = [i for part in pool.map(some, [35] * 6) for i in part]
    finally:
        kill9(proc)
    assert len(set(ids)) == 210
    proc, addr = start_scheduler(tmp_path, etcd.url, "--node-timeout", "3", name="s2")
    try:
        wait_leading(addr)
        with SchedulerClient(addr) as c:
            assert {a.id for a in c.list_pool(include_allocations=True).allocations} == set(ids)
            deadline = time.monotonic() + 3 + 10.0           # the node's grace, then ticks
            while c.list_pool(include_allocations=True).allocations:
                assert time.monotonic() < deadline, "the silent node's allocations did not end"
                time.sleep(0.2)
            assert {c.get_allocation(i).state for i in ids[::20]} == {pb.ALLOCATION_LOST}
            assert [n.available for n in c.list_pool().nodes] == [False]
    finally:
        kill9(proc)
    assert charged(etcd) == {}
