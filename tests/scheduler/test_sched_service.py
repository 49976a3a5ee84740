"""The scheduler over real gRPC on loopback with real SQLite: allocation, leases, QoS preemption,
heartbeats, errors. The test process plays the worker through the public API."""
import time

import grpc
import pytest

from tfclient.errors import (AllocationInactive, InvalidQuantity, InvalidRequest, NoCapacity, NodeNameTaken,
                             QuotaExceeded, SchedulerUnreachable, UnknownAllocation, UnknownPool, WorkerUnreachable)
from tfclient.protos import load
from tfclient.scheduler_client import SchedulerClient
from tfscheduler import lease

from sched_helpers import SECRET, gpus

pb = load("scheduler_pb2")
rpc = load("scheduler_pb2_grpc")


def test_allocate_returns_worker_endpoints_and_a_lease_the_worker_verifies(client):
    client.register_worker("node-a", "pool-1", gpus("a"), unix_path="/tmp/w.sock", tcp="10.0.0.1:7000",
                           admin="127.0.0.1:1")
    a = client.allocate(tflops=10, vram="2Gi", tflops_limit=20, vram_limit="4Gi", qos="high")
    assert a.endpoints.unix_path == "/tmp/w.sock" and a.endpoints.tcp == "10.0.0.1:7000"
    claims = lease.verify(a.lease_token, lease.node_key(SECRET, "node-a"))
    assert (claims.allocation_id, claims.worker_id, claims.gpu_uuid) == (a.id, "node-a", "GPU-a-0")
    assert (claims.vram_limit_mib, claims.tflops_limit, claims.qos) == (4096, 20.0, "high")
    with pytest.raises(lease.LeaseInvalid):
        lease.verify(a.lease_token, b"other-secret")
    with pytest.raises(lease.LeaseInvalid):     # per-node keys: not the scheduler's secret, not another node's key
        lease.verify(a.lease_token, SECRET)
    with pytest.raises(lease.LeaseInvalid):
        lease.verify(a.lease_token, lease.node_key(SECRET, "node-b"))
    got = client.get_allocation(a.id)
    assert got.state == pb.ALLOCATION_ACTIVE and got.requests.vram_mib == 2048 and got.pool == "pool-1"


def test_second_request_lands_on_the_worker_with_room(client):
    client.register_worker("node-a", "p", gpus("a", tflops=100))
    client.register_worker("node-b", "p", gpus("b", tflops=100))
    first = client.allocate(tflops=80, vram="1Gi")
    second = client.allocate(tflops=50, vram="1Gi")
    assert {first.worker_id, second.worker_id} == {"node-a", "node-b"}


def test_release_returns_capacity_and_is_idempotent(client):
    client.register_worker("node-a", "p", gpus("a", tflops=100))
    a = client.allocate(tflops=100, vram="1Gi")
    with pytest.raises(NoCapacity):
        client.allocate(tflops=1, vram=1)
    assert client.release(a.id) is True
    assert client.release(a.id) is False
    assert client.get_allocation(a.id).state == pb.ALLOCATION_RELEASED
    client.allocate(tflops=100, vram="1Gi")


def test_bad_input_is_rejected_with_a_status_that_says_what_to_change(client, scheduler):
    client.register_worker("node-a", "p", gpus("a", tflops=100, vram=10240))
    with pytest.raises(InvalidQuantity, match="unknown unit"):
        client.allocate(tflops=1, vram="2Gx")
    with pytest.raises(UnknownPool, match="pool 'nope' does not exist"):
        client.allocate(tflops=1, vram=1, pool="nope")
    with pytest.raises(InvalidRequest, match="exceeds every GPU"):
        client.allocate(tflops=1, vram="100Gi")
    with pytest.raises(InvalidRequest, match="below the request"):
        client.allocate(tflops=10, vram=1, tflops_limit=5)
    with pytest.raises(UnknownAllocation):
        client.renew("alloc-missing")
    with pytest.raises(InvalidRequest, match="unknown and no tflops"):
        client.register_worker("node-x", "p", [dict(index=0, uuid="GPU-x", model="Mystery 9000", vram_mib=1)])
    # raw gRPC codes, for non-Python callers
    stub = rpc.SchedulerStub(grpc.insecure_channel(scheduler.address))
    md = (("authorization", f"Bearer {scheduler.admin_token}"),)
    with pytest.raises(grpc.RpcError) as e:
        stub.Allocate(pb.AllocateRequest(pool="nope", requests={"tflops": 1, "vram_mib": 1}), metadata=md)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        stub.Allocate(pb.AllocateRequest(requests={"tflops": 1e6, "vram_mib": 1}), metadata=md)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    client.allocate(tflops=100, vram=1)
    with pytest.raises(grpc.RpcError) as e:
        stub.Allocate(pb.AllocateRequest(requests={"tflops": 1, "vram_mib": 1}), metadata=md)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "ask for less" in e.value.details()


def test_unreachable_scheduler_is_a_typed_error():
    with SchedulerClient("127.0.0.1:1", timeout=2) as c:
        with pytest.raises(SchedulerUnreachable):
            c.list_pool()


def test_known_model_tflops_filled_in_at_registration(client):
    r = client.register_worker("node-h", "p", [dict(index=0, uuid="GPU-h", model="NVIDIA H100 80GB HBM3",
                                                    vram_mib=81559)])
    assert r.gpus[0].tflops == pytest.approx(989.4)
    r = client.register_worker("node-e", "p", [dict(index=0, uuid="GPU-e", model="TensorFusion Emulated GPU (CPU)",
                                                    vendor="emulated", vram_mib=4096)])
    assert r.gpus[0].tflops == pytest.approx(0.01)


def test_higher_qos_preempts_lower_and_the_worker_is_told(client, worker_admin):
    client.register_worker("node-a", "p", gpus("a", tflops=100), admin=worker_admin.address)
    low = client.allocate(tflops=60, vram="1Gi", qos="low")
    medium = client.allocate(tflops=40, vram="1Gi", qos="medium")
    crit = client.allocate(tflops=50, vram="1Gi", qos="critical")
    assert list(crit.preempted) == [low.id]               # one LOW is cheaper than the MEDIUM
    assert worker_admin.wait_closed(low.id).startswith("preempted")
    hb = client.heartbeat("node-a", active_allocation_ids=[low.id, medium.id, crit.id])
    assert [c.allocation_id for c in hb.close_allocations] == [low.id]
    assert client.get_allocation(low.id).state == pb.ALLOCATION_PREEMPTED
    with pytest.raises(AllocationInactive, match="preempted"):
        client.renew(low.id)
    # no futile preemption: freeing the lone MEDIUM (40) cannot make room for 60
    with pytest.raises(NoCapacity):
        client.allocate(tflops=60, vram="1Gi", qos="critical")
    assert client.get_allocation(medium.id).state == pb.ALLOCATION_ACTIVE


def test_oversold_pool_and_quota_from_config(start_scheduler, tmp_path):
    cfg = tmp_path / "sched.toml"
    cfg.write_text('[pools.burst]\ntflops_oversell = 2.0\nvram_oversell = 1.5\n'
                   '[quotas.team]\ntflops = 30\nvram = "1Gi"\n')
    s = start_scheduler(config_path=str(cfg))
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "burst", gpus("a", tflops=100, vram=1000))
        c.allocate(tflops=50, vram=100, tflops_limit=100, vram_limit=750)
        c.allocate(tflops=50, vram=100, tflops_limit=100, vram_limit=750)   # limits 200/1500 = oversold capacity
        with pytest.raises(NoCapacity):
            c.allocate(tflops=0.1, vram=1)
        c.register_worker("node-b", "burst", gpus("b", tflops=100, vram=4096))
        c.allocate(tflops=20, vram=100, namespace="team")
        with pytest.raises(QuotaExceeded, match="team"):
            c.allocate(tflops=20, vram=100, namespace="team")
        pool = c.list_pool("burst", include_allocations=True)
        assert pool.pools[0].tflops_oversell_ratio == 2.0 and len(pool.allocations) == 3


def test_set_limits_is_forwarded_to_the_worker_with_a_fresh_token(client, worker_admin):
    client.register_worker("node-a", "p", gpus("a", tflops=100), admin=worker_admin.address)
    a = client.allocate(tflops=10, vram="1Gi")
    b = client.set_limits(a.id, tflops=30, vram="2Gi")
    assert (b.limits.tflops, b.limits.vram_mib) == (30, 2048)
    aid, t, v, token = worker_admin.limits[-1]
    assert (aid, t, v) == (a.id, 30, 2048)
    assert lease.verify(token, lease.node_key(SECRET, a.worker_id)).tflops_limit == 30
    with pytest.raises(NoCapacity):
        client.set_limits(a.id, tflops_request=200, tflops=200)


def test_lease_expires_unless_renewed_by_client_or_heartbeat(start_scheduler, worker_admin):
    s = start_scheduler(lease_ttl_s=1.0, tick_s=0.05, node_timeout_s=30)
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "p", gpus("a"), admin=worker_admin.address)
        idle = c.allocate(tflops=1, vram=1)
        by_client = c.allocate(tflops=1, vram=1)
        by_worker = c.allocate(tflops=1, vram=1)
        for _ in range(11):                                  # ~2.2 s: two TTLs, renewed every 0.2 s
            time.sleep(0.2)
            c.renew(by_client.id)
            c.heartbeat("node-a", active_allocation_ids=[by_worker.id])
        assert c.get_allocation(idle.id).state == pb.ALLOCATION_EXPIRED
        assert worker_admin.wait_closed(idle.id) == "lease expired"
        assert c.get_allocation(by_client.id).state == pb.ALLOCATION_ACTIVE
        assert c.get_allocation(by_worker.id).state == pb.ALLOCATION_ACTIVE
        with pytest.raises(AllocationInactive, match="expired"):
            c.renew(idle.id)


class JumpingClock:
    """Real time plus a jump the test adds: what the scheduler sees after its process was stopped a while."""

    def __init__(self):
        self.jumped = 0.0

    def __call__(self):
        return time.time() + self.jumped


def test_time_the_scheduler_was_stopped_expires_no_lease_and_loses_no_node(start_scheduler, worker_admin):
    """A scheduler stopped for longer than a TTL (SIGSTOP, a suspended VM) received no renewal or heartbeat
    meanwhile: at its first tick that time counts for no one (seen: a program running fine through `run` was
    killed, 'lease expired', the moment a scheduler stopped for 75 s was continued). Leases and node timeouts
    still run out while it ticks."""
    clock = JumpingClock()
    s = start_scheduler(clock=clock, lease_ttl_s=2.0, tick_s=0.05, node_timeout_s=3.0, heartbeat_interval_s=1.0)
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "p", gpus("a"), admin=worker_admin.address)
        a = c.allocate(tflops=1, vram=1)
        time.sleep(0.3)
        clock.jumped += 60.0                                 # stopped for a minute: 30 TTLs, 20 node timeouts
        time.sleep(0.5)                                      # ~10 ticks
        assert c.get_allocation(a.id).state == pb.ALLOCATION_ACTIVE
        assert c.list_pool().nodes[0].available and worker_admin.closed == []
        deadline = time.time() + 10                          # running again: no renewal, no heartbeat
        while c.get_allocation(a.id).state == pb.ALLOCATION_ACTIVE and time.time() < deadline:
            time.sleep(0.1)
        assert c.get_allocation(a.id).state == pb.ALLOCATION_EXPIRED


def test_node_without_heartbeats_becomes_unavailable_and_its_allocations_lost(start_scheduler):
    s = start_scheduler(lease_ttl_s=60, tick_s=0.05, node_timeout_s=1.0)
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "p", gpus("a"))
        a = c.allocate(tflops=1, vram=1)
        deadline = time.time() + 5
        while c.get_allocation(a.id).state == pb.ALLOCATION_ACTIVE and time.time() < deadline:
            time.sleep(0.05)
        got = c.get_allocation(a.id)
        assert got.state == pb.ALLOCATION_LOST and "missed heartbeats" in got.reason
        assert not c.list_pool().nodes[0].available
        with pytest.raises(NoCapacity, match="unavailable"):
            c.allocate(tflops=1, vram=1)
        with pytest.raises(NoCapacity, match="^every matching GPU is on an unavailable node"):
            c.allocate()                # the default profile: the same reason, not 'ask for a share'
        hb = c.heartbeat("node-a", active_allocation_ids=[a.id])   # back: told to close the lost session
        assert [x.allocation_id for x in hb.close_allocations] == [a.id]
        assert c.list_pool().nodes[0].available
        c.allocate(tflops=1, vram=1)


def test_unknown_worker_heartbeat_is_asked_to_register(client):
    assert client.heartbeat("ghost").reregister


def test_heartbeat_usage_shows_in_pool_and_allocation(client):
    client.register_worker("node-a", "p", gpus("a", tflops=100))
    a = client.allocate(tflops=10, vram="2Gi")
    client.heartbeat("node-a", gpus=[dict(uuid="GPU-a-0", tflops_used=4.5, vram_used_mib=700, utilization=0.3)],
                     active_allocation_ids=[a.id],
                     sessions=[dict(allocation_id=a.id, gpu_uuid="GPU-a-0", tflops_used=4.5, vram_used_mib=700)])
    got = client.get_allocation(a.id)
    assert (got.used.tflops, got.used.vram_mib) == (4.5, 700)
    g = client.list_pool("p").nodes[0].gpus[0]
    assert (g.usage.vram_used_mib, g.usage.utilization) == (700, pytest.approx(0.3))
    assert (g.allocated_requests.tflops, g.allocated_requests.vram_mib, g.allocation_count) == (10, 2048, 1)
    pool = client.list_pool("p").pools[0]
    assert (pool.capacity.tflops, pool.allocated.vram_mib) == (100, 2048)


def test_limit_change_the_worker_cannot_apply_is_rolled_back(client):
    client.register_worker("node-a", "p", gpus("a"), admin="127.0.0.1:1")     # nothing listens there
    a = client.allocate(tflops=10, vram="1Gi")
    with pytest.raises(WorkerUnreachable, match="limits unchanged"):
        client.set_limits(a.id, tflops=40)
    assert client.get_allocation(a.id).limits.tflops == 10


def test_multi_gpu_allocation_shares_one_worker_and_its_lease_names_every_gpu(client):
    client.register_worker("node-a", "p", gpus("a", n=1))
    client.register_worker("node-b", "p", gpus("b", n=4))
    a = client.allocate(tflops=50, vram="1Gi", gpu_count=3)
    assert a.worker_id == "node-b" and len(set(a.gpu_uuids)) == 3
    claims = lease.verify(a.lease_token, lease.node_key(SECRET, "node-b"))
    assert list(claims.gpu_uuids) == list(a.gpu_uuids) and claims.gpu_uuid == a.gpu_uuids[0]
    with pytest.raises(InvalidRequest, match="one node"):
        client.allocate(tflops=1, vram=1, gpu_count=5)


def test_reregistering_without_a_busy_gpu_keeps_its_allocation_but_stops_placing_there(client):
    client.register_worker("node-a", "p", gpus("a", n=2, tflops=100))
    a = client.allocate(tflops=60, vram=1, model="A100")
    busy = a.gpu_uuids[0]
    remaining = [g for g in gpus("a", n=2, tflops=100) if g["uuid"] != busy]
    client.register_worker("node-a", "p", remaining, active_allocation_ids=[a.id])
    assert client.get_allocation(a.id).state == pb.ALLOCATION_ACTIVE
    client.heartbeat("node-a", active_allocation_ids=[a.id])     # a heartbeat does not revive the gone GPU
    for _ in range(2):
        assert client.allocate(tflops=30, vram=1).gpu_uuids[0] != busy


def test_limits_alone_become_the_requests(client):
    client.register_worker("node-a", "p", gpus("a"))
    a = client.allocate(tflops_limit=8, vram_limit="1Gi")
    assert (a.requests.tflops, a.requests.vram_mib, a.limits.tflops) == (8, 1024, 8)
    with pytest.raises(NoCapacity, match="default profile") as refused:   # nothing asked: the whole GPU's VRAM
        client.allocate()
    message = str(refused.value)
    assert "--vram 1Gi" in message              # says how to ask for a share instead
    assert message.count("right now") == 1      # one sentence, not the inner refusal repeated


def test_prometheus_metrics_show_pool_allocations_and_endings(start_scheduler):
    import urllib.request
    s = start_scheduler(metrics_listen="127.0.0.1:0")
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=100, vram=10240))
        low = c.allocate(tflops=60, vram="1Gi", qos="low")
        c.allocate(tflops=80, vram="2Gi", qos="critical")          # preempts low
        c.allocate(tflops=10, vram="1Gi", qos="low")
    text = urllib.request.urlopen(f"http://127.0.0.1:{s.handle.metrics_port}/metrics", timeout=10).read().decode()
    assert 'tensorfusion_scheduler_capacity_tflops{pool="p"} 100.0' in text
    assert 'tensorfusion_scheduler_requested_tflops{pool="p"} 90.0' in text
    assert 'tensorfusion_scheduler_requested_vram_mib{pool="p"} 3072.0' in text
    assert 'tensorfusion_scheduler_available_tflops{pool="p"} 10.0' in text
    assert 'tensorfusion_scheduler_available_vram_mib{pool="p"} 7168.0' in text
    assert 'tensorfusion_scheduler_allocations{pool="p",qos="critical"} 1.0' in text
    assert 'tensorfusion_scheduler_allocations_ended_total{state="preempted"} 1.0' in text
    assert 'tensorfusion_scheduler_nodes{available="true",pool="p"} 1.0' in text
    assert "tensorfusion_scheduler_allocate_seconds_count 3.0" in text
    assert low.id


def test_request_without_resources_gets_the_default_profile_whole_gpu_vram(client):
    client.register_worker("node-a", "p", gpus("a", n=2, tflops=100, vram=10240))
    a = client.allocate()                                   # `tensorfusion run -- CMD`: no flags
    assert (a.requests.vram_mib, a.limits.vram_mib) == (10240, 10240)
    assert (a.requests.tflops, a.limits.tflops) == (0.0, 0.0)      # no compute reservation, no compute limit
    b = client.allocate()
    assert b.gpu_uuids != a.gpu_uuids                        # the second default vGPU takes the other GPU
    with pytest.raises(NoCapacity, match="100% of its VRAM"):
        client.allocate()
    client.allocate(tflops=1)                                # an explicit request still fits beside them


def test_default_profile_from_config_per_pool(start_scheduler, tmp_path):
    cfg = tmp_path / "sched.toml"
    cfg.write_text('[default_profile]\ntflops = 5\nvram = "50%"\n[profiles.small]\nvram = "1Gi"\n')
    s = start_scheduler(config_path=str(cfg))
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "big", gpus("a", tflops=100, vram=8192))
        c.register_worker("node-b", "small", gpus("b", tflops=100, vram=8192))
        a = c.allocate(pool="big")
        assert (a.requests.tflops, a.requests.vram_mib) == (5.0, 4096)
        a = c.allocate(pool="small")
        assert (a.requests.tflops, a.requests.vram_mib) == (0.0, 1024)


@pytest.mark.parametrize("text,message", [('vram = "150%"', "percentage"), ('vram = 0', "size > 0"),
                                          ('gpus = 1', "unknown key"), ('tflops = "-1"', "out of range")])
def test_bad_default_profile_in_config_is_a_clear_error(tmp_path, text, message):
    from tfscheduler.state import load_config
    cfg = tmp_path / "sched.toml"
    cfg.write_text(f"[default_profile]\n{text}\n")
    with pytest.raises(ValueError, match=message):
        load_config(str(cfg))


def test_a_reported_worker_whose_probe_fails_takes_no_new_allocations_until_it_heartbeats(client, worker_admin):
    client.register_worker("node-dead", "p", gpus("d", tflops=100), admin="127.0.0.1:1")   # nothing listens
    client.register_worker("node-live", "p", gpus("l", tflops=100), admin=worker_admin.address)
    by_node = {a.node_name: a for a in (client.allocate(tflops=60, vram=1), client.allocate(tflops=60, vram=1))}
    on_dead, on_live = by_node["node-dead"], by_node["node-live"]
    # a client that cannot reach a live worker is not believed: the scheduler's own probe answers
    verdict = client.report_worker_unreachable(on_live.id, "connect unix:/x: Connection refused")
    assert not verdict.node_unavailable and "reaches worker node-live" in verdict.reason
    verdict = client.report_worker_unreachable(on_dead.id, "connect unix:/y: Connection refused")
    assert verdict.node_unavailable and "127.0.0.1:1" in verdict.reason
    available = lambda: {n.node_name: n.available for n in client.list_pool().nodes}
    assert available() == {"node-dead": False, "node-live": True}
    again = client.report_worker_unreachable(on_dead.id, "connect unix:/y: Connection refused")
    assert again.node_unavailable and again.reason == verdict.reason     # known: not probed again
    client.release(on_live.id)
    assert client.allocate(tflops=30, vram=1).node_name == "node-live"      # not on the unreachable one
    assert client.get_allocation(on_dead.id).state == pb.ALLOCATION_ACTIVE   # ended only by the node timeout
    client.heartbeat("node-dead", active_allocation_ids=[on_dead.id])        # it was alive after all
    assert available() == {"node-dead": True, "node-live": True}
    assert client.allocate(tflops=30, vram=1).node_name == "node-dead"


def test_a_node_name_belongs_to_its_live_worker_instance(start_scheduler):
    """A node name is an identity: while its worker instance heartbeats, another instance can neither register
    the name (ALREADY_EXISTS, one line naming the node and what to change) nor keep the node alive with its
    heartbeats; the same instance registers again at once (a restart). Once the holder is silent past the node
    timeout, the other instance is told to register and takes the node; the old one is then the outsider."""
    s = start_scheduler(node_timeout_s=0.6, tick_s=0.1)
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "p", gpus("a"), admin="10.0.0.1:7072", instance_id="host-1")
        c.register_worker("node-a", "p", gpus("a"), admin="10.0.0.1:7072", instance_id="host-1")
        with pytest.raises(NodeNameTaken, match=r"^node 'node-a' is registered by another live worker \(admin "
                                                r"10\.0\.0\.1:7072, last heartbeat \d+\.\d s ago\): start this "
                                                r"worker with another --node name"):
            c.register_worker("node-a", "p", gpus("a"), admin="10.0.0.2:7072", instance_id="host-2")
        with pytest.raises(NodeNameTaken):
            c.heartbeat("node-a", instance_id="host-2")
        assert not c.heartbeat("node-a", instance_id="host-1").reregister
        time.sleep(1.0)                           # host-1 falls silent past the node timeout
        assert c.heartbeat("node-a", instance_id="host-2").reregister
        c.register_worker("node-a", "p", gpus("a"), admin="10.0.0.2:7072", instance_id="host-2")
        with pytest.raises(NodeNameTaken):
            c.heartbeat("node-a", instance_id="host-1")
        [node] = c.list_pool().nodes
        assert node.available and node.endpoints.admin == "10.0.0.2:7072"
