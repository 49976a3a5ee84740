"""Identity on the control plane, as an attacker on loopback sees it: no token, a forged or revoked one, a
tenant reaching into another namespace, a worker speaking for another node. Each is refused with the status
code that says what is wrong (UNAUTHENTICATED: who are you; PERMISSION_DENIED: not yours)."""
import sqlite3

import grpc
import pytest

from tfclient.errors import PermissionDenied, Unauthenticated, WorkerUnreachable
from tfclient.protos import load
from tfclient.scheduler_client import SchedulerClient

from sched_helpers import gpus

pb = load("scheduler_pb2")
rpc = load("scheduler_pb2_grpc")


def raw(address):
    return rpc.SchedulerStub(grpc.insecure_channel(address))


def code_of(call, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        call(*args, timeout=5, **kw)
    return e.value.code(), e.value.details()


@pytest.fixture
def two_tenants(scheduler, client):
    """node-a registered; tenants of namespaces "team-a" and "team-b"; team-a holds one allocation."""
    client.register_worker("node-a", "p", gpus("a", tflops=100), unix_path="/tmp/a.sock", admin="127.0.0.1:1")
    a = SchedulerClient(scheduler.address, token=scheduler.token("tenant", namespace="team-a"))
    b = SchedulerClient(scheduler.address, token=scheduler.token("tenant", namespace="team-b"))
    victim = a.allocate(tflops=10, vram="1Gi")
    yield a, b, victim
    a.close()
    b.close()


def test_a_call_without_a_token_is_unauthenticated_and_says_what_to_send(scheduler):
    stub = raw(scheduler.address)
    code, details = code_of(stub.ListPool, pb.ListPoolRequest(include_allocations=True))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer" in details
    for md in ((("authorization", "Bearer tf1.0123456789abcdef.not-the-secret"),),
               (("authorization", "Basic dXNlcjpwYXNz"),),
               (("authorization", "Bearer " + scheduler.admin_token + "x"),)):
        code, _ = code_of(stub.ListPool, pb.ListPoolRequest(), metadata=md)
        assert code == grpc.StatusCode.UNAUTHENTICATED


def test_a_tenant_cannot_renew_someone_elses_allocation_to_steal_its_lease(two_tenants):
    a, b, victim = two_tenants
    with pytest.raises(PermissionDenied, match="belongs to namespace 'team-a'"):
        b.renew(victim.id)
    assert a.renew(victim.id).lease_token          # the owner still can


def test_a_tenant_cannot_release_someone_elses_allocation(two_tenants, client):
    a, b, victim = two_tenants
    with pytest.raises(PermissionDenied):
        b.release(victim.id)
    with pytest.raises(PermissionDenied):
        b.get_allocation(victim.id)
    assert client.get_allocation(victim.id).state == pb.ALLOCATION_ACTIVE
    assert a.release(victim.id) is True


def test_a_tenant_lists_only_its_own_namespace(two_tenants, client):
    a, b, victim = two_tenants
    assert [x.id for x in a.list_pool(include_allocations=True).allocations] == [victim.id]
    seen = b.list_pool(include_allocations=True)
    assert list(seen.allocations) == []
    assert all(not n.endpoints.admin for n in seen.nodes)        # a node's admin port is not for tenants
    with pytest.raises(PermissionDenied, match="only an admin lists other namespaces"):
        b.list_pool(include_allocations=True, namespace="team-a")
    with pytest.raises(PermissionDenied, match="not 'team-a'"):
        b.allocate(tflops=1, vram=1, namespace="team-a")
    assert b.allocate(tflops=1, vram=1).namespace == "team-b"    # empty namespace = its own
    assert {x.namespace for x in client.list_pool(include_allocations=True).allocations} == {"team-a", "team-b"}


def test_a_tenant_cannot_register_a_rogue_worker_or_manage_tokens(two_tenants):
    a, b, victim = two_tenants
    with pytest.raises(PermissionDenied, match="not allowed to a tenant token"):
        b.register_worker("evil", "p", gpus("evil"), unix_path="/tmp/evil.sock")
    with pytest.raises(PermissionDenied):
        b.heartbeat("node-a")
    with pytest.raises(PermissionDenied):
        b.create_token("admin")
    with pytest.raises(PermissionDenied, match="belongs to namespace 'team-a'"):
        b.set_limits(victim.id, vram="2Gi")
    with pytest.raises(WorkerUnreachable):     # its own: allowed, and ordered to node-a (no admin API listens)
        a.set_limits(victim.id, vram="2Gi")


def test_a_worker_registers_and_reports_only_as_its_own_node(scheduler, client):
    node_a = SchedulerClient(scheduler.address, token=scheduler.token("worker", node_name="node-a"))
    assert node_a.register_worker("node-a", "p", gpus("a"), unix_path="/tmp/a.sock").worker_id == "node-a"
    client.register_worker("node-b", "p", gpus("b"), unix_path="/tmp/b.sock")
    with pytest.raises(PermissionDenied, match="bound to node 'node-a', not 'node-b'"):
        node_a.register_worker("node-b", "p", gpus("b"), unix_path="/tmp/attacker.sock")
    with pytest.raises(PermissionDenied, match="bound to node 'node-a'"):
        node_a.heartbeat("node-b")
    with pytest.raises(PermissionDenied, match="not allowed to a worker token"):
        node_a.allocate(tflops=1, vram=1)
    assert {n.node_name: n.endpoints.unix_path for n in client.list_pool().nodes}["node-b"] == "/tmp/b.sock"
    node_a.close()


def test_a_worker_cannot_report_usage_for_another_nodes_gpus_or_sessions(scheduler, client):
    node_a = SchedulerClient(scheduler.address, token=scheduler.token("worker", node_name="node-a"))
    node_a.register_worker("node-a", "p", gpus("a"))
    client.register_worker("node-b", "p", gpus("b", model="NVIDIA H100 80GB HBM3"))
    on_b = client.allocate(tflops=1, vram=1, model="H100")
    assert on_b.node_name == "node-b"
    node_a.heartbeat("node-a", gpus=[dict(uuid="GPU-b-0", vram_used_mib=9999), dict(uuid="GPU-a-0", vram_used_mib=7)],
                     active_allocation_ids=[on_b.id],
                     sessions=[dict(allocation_id=on_b.id, gpu_uuid="GPU-b-0", vram_used_mib=9999)])
    used = {g.info.uuid: g.usage.vram_used_mib for n in client.list_pool().nodes for g in n.gpus}
    assert used == {"GPU-a-0": 7, "GPU-b-0": 0}
    assert client.get_allocation(on_b.id).used.vram_mib == 0
    node_a.close()


def test_a_flood_of_unauthenticated_registrations_leaves_no_node(scheduler, client):
    stub = raw(scheduler.address)
    for i in range(500):
        with pytest.raises(grpc.RpcError) as e:
            stub.RegisterWorker(pb.RegisterWorkerRequest(node_name=f"fake-{i}", gpus=[dict(uuid=f"G-{i}", vram_mib=1,
                                                                                           tflops=1)]), timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert list(client.list_pool().nodes) == []


def test_tokens_are_created_revoked_and_stored_only_as_hashes(scheduler, client, tmp_path):
    created = client.create_token("tenant", namespace="team-c", description="ci")
    assert created.token.startswith("tf1.") and created.info.namespace == "team-c"
    c = SchedulerClient(scheduler.address, token=created.token)
    c.list_pool()
    assert client.revoke_token(created.info.id) is True
    assert client.revoke_token(created.info.id) is False
    with pytest.raises(Unauthenticated, match=f"^the tenant token {created.info.id} of namespace 'team-c' was revoked "
                                               f"at .* UTC: ask an admin for a new one"):
        c.list_pool()
    assert created.info.id not in {t.id for t in client.list_tokens()}
    with pytest.raises(Exception, match="needs a namespace"):
        client.create_token("tenant")
    with pytest.raises(Exception, match="needs the node name"):
        client.create_token("worker")
    with pytest.raises(Exception, match=r"^admin tokens have no namespace \(only tenant tokens are bound to one\)$"):
        client.create_token("admin", namespace="team-c")
    with pytest.raises(Exception, match=r"^tenant tokens have no node \(only worker tokens are bound to one\)$"):
        client.create_token("tenant", namespace="team-c", node_name="node-a")
    db = sqlite3.connect(str(tmp_path / "scheduler.db"))
    dump = "\n".join(db.iterdump())
    assert created.token not in dump and scheduler.admin_token not in dump
    assert created.token.split(".")[2] not in dump
    c.close()


def test_a_schedulers_first_admin_token_says_what_it_is_in_token_list(tmp_path):
    """`tensorfusion scheduler`'s first admin token is listed as that, not as the embedded default's."""
    from tfscheduler import auth
    from tfscheduler.storage import SqliteStore
    registry = auth.TokenRegistry(SqliteStore(str(tmp_path / "s.db")))
    assert auth.bootstrap_admin(registry, tmp_path) == tmp_path / "admin.token"
    [rec] = registry.active(auth.ADMIN)
    assert rec.description == "first admin token of this scheduler"
    assert auth.bootstrap_admin(registry, tmp_path) is None       # an admin exists: nothing more is created
