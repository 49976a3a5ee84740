"""The Store interface on its SQLite engine: what is written comes back after reopening."""
import pytest

from tfscheduler.state import ACTIVE, RELEASED, load_config
from tfscheduler.storage import AllocationRecord, GpuRecord, NodeRecord, PoolRecord, SqliteStore


def test_sqlite_store_round_trips_pools_nodes_gpus_and_active_allocations(tmp_path):
    db = str(tmp_path / "s.db")
    s = SqliteStore(db)
    s.put_pool(PoolRecord("p", "compact-first", 2.0, 1.5, 0.7, 0.3))
    s.put_node(NodeRecord("w1", "w1", "p", "/run/w1.sock", "10.0.0.1:7000", "10.0.0.1:7071", {"zone": "a"},
                          instance="3f" * 16), [GpuRecord("GPU-1", "w1", 0, "NVIDIA L4", "nvidia", 23034, 121.0)])
    a = AllocationRecord("a1", "p", "ns", "wl", "w1", ("GPU-1",), 10.0, 1024, 20.0, 2048, 3, ACTIVE, "", 1.0, 30.0, 31.0)
    b = AllocationRecord("a2", "p", "ns", "wl", "w1", ("GPU-1",), 1.0, 1, 1.0, 1, 1, ACTIVE, "", 2.0, 30.0, 32.0)
    s.put_allocation(a)
    s.put_allocation(b)
    s.end_allocations([("a2", RELEASED, "released")])
    s.renew_leases([("a1", 99.0)])
    s.set_node_available("w1", False)
    s.close()
    snap = SqliteStore(db).load()
    assert snap.pools == [PoolRecord("p", "compact-first", 2.0, 1.5, 0.7, 0.3)]
    assert snap.nodes[0].labels == {"zone": "a"} and snap.nodes[0].available is False
    assert snap.nodes[0].instance == "3f" * 16
    assert snap.gpus == [GpuRecord("GPU-1", "w1", 0, "NVIDIA L4", "nvidia", 23034, 121.0)]
    assert [x.id for x in snap.allocations] == ["a1"] and snap.allocations[0].lease_expires_at == 99.0
    assert SqliteStore(db).get_ended("a2").reason == "released"


def test_a_database_from_before_node_instances_opens_with_its_nodes(tmp_path):
    """A scheduler.db written before nodes had an instance id gets the column; its nodes load with none (the
    first worker to register the name again then holds it)."""
    import sqlite3
    db = str(tmp_path / "old.db")
    old = sqlite3.connect(db)
    old.execute("CREATE TABLE nodes (worker_id TEXT PRIMARY KEY, node_name TEXT, pool TEXT, unix_path TEXT, "
                "tcp TEXT, admin TEXT, labels TEXT, available INTEGER, registered_at REAL)")
    old.execute("INSERT INTO nodes VALUES ('w1', 'w1', 'p', '', '', '', '{}', 1, 5.0)")
    old.commit()
    old.close()
    s = SqliteStore(db)
    assert [(n.worker_id, n.instance) for n in s.load().nodes] == [("w1", "")]
    s.put_node(NodeRecord("w1", "w1", "p", instance="ab" * 16), [])
    assert SqliteStore(db).load().nodes[0].instance == "ab" * 16


def test_config_file_typos_are_named(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[pools.p]\nstrategy = 'compact-first'\noversell = 2\n")
    with pytest.raises(ValueError, match="unknown key.*oversell.*known"):
        load_config(str(cfg))
    cfg.write_text("lease_ttl_s = 5\n[pools.p]\nstrategy = 'compact-first'\ntflops_oversell = 2\n"
                   "[quotas.team]\nvram = '8Gi'\n[models]\n'NVIDIA A10G' = 70\n")
    c = load_config(str(cfg))
    assert (c.lease_ttl_s, c.pools["p"].tflops_oversell, c.quotas["team"].vram_mib, c.models["NVIDIA A10G"]) == \
        (5.0, 2.0, 8192, 70.0)


def test_the_example_config_loads():
    from pathlib import Path
    import tfscheduler
    c = load_config(str(Path(tfscheduler.__file__).parent / "scheduler.example.toml"))
    assert c.pools["premium"].qos == (3, 4) and c.pools["inference"].tflops_oversell == 2.0
    assert c.quotas["team-a"].vram_mib == 320 * 1024 and c.models["NVIDIA A10G"] == 70.0


def test_admin_order_tokens_bind_action_allocation_and_time():
    from tfscheduler import lease
    t = lease.sign_order("close", "alloc-1", b"s", now=1000.0)
    lease.verify_order(t, "close", "alloc-1", b"s", now=1010.0)
    for args, now in ((("close", "alloc-2", b"s"), 1010.0), (("close", "alloc-1", b"x"), 1010.0),
                      (("limits", "alloc-1", b"s"), 1010.0), (("close", "alloc-1", b"s"), 2000.0)):
        with pytest.raises(lease.LeaseInvalid):
            lease.verify_order(t, *args, now=now)
