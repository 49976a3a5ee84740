"""Scheduler replicas on one etcd: one leads (etcd lease), the others refuse with UNAVAILABLE naming it; clients and
workers given the whole list fail over by themselves. Killing the leader (kill -9) while clients allocate and
release in a loop: a follower leads within a bound, no allocation is lost or doubled, nodes are not declared lost,
and the clients see no error (retryable ones are retried inside the client)."""
import json
import threading
import time

from tfclient.errors import NotLeader
from tfclient.protos import load
from tfclient.scheduler_client import SchedulerClient

from etcd_helpers import etcd, kill9, leader_of, needs_etcd, start_scheduler, wait_leading  # noqa: F401 (fixture)
from sched_helpers import gpus

pb = load("scheduler_pb2")
pytestmark = needs_etcd
LEADER_TTL = 3
NODE_TIMEOUT = 4.0


def start_replicas(tmp_path, etcd, n=3):
    procs = {}
    for i in range(n):
        p, addr = start_scheduler(tmp_path, etcd.url, "--leader-ttl", str(LEADER_TTL), "--node-timeout",
                                  str(NODE_TIMEOUT), "--heartbeat-interval", "1", name=f"r{i}")
        procs[addr] = p
    return procs


def test_followers_refuse_with_unavailable_naming_the_leader(tmp_path, etcd):
    procs = start_replicas(tmp_path, etcd)
    try:
        addrs = list(procs)
        wait_leading(leader_of(addrs))
        leader = leader_of(addrs)
        for a in addrs:
            if a != leader:
                with SchedulerClient(a, failover_s=0) as c:
                    try:
                        c.list_pool()
                        raise AssertionError("a follower answered")
                    except NotLeader as e:
                        assert e.code.name == "UNAVAILABLE" and leader in str(e)
        with SchedulerClient(",".join(addrs)) as c:      # the list: the client finds the leader itself
            c.register_worker("node-a", "p", gpus("a"), admin="127.0.0.1:1")
            assert c.allocate(tflops=10, vram="1Gi").id
    finally:
        for p in procs.values():
            kill9(p)


def test_killing_the_leader_loses_and_doubles_nothing(tmp_path, etcd):
    procs = start_replicas(tmp_path, etcd)
    addrs = ",".join(procs)
    stop = threading.Event()
    errors, held, lock = [], {}, threading.Lock()   # held: allocation id -> client that holds it
    served_at = []                                  # monotonic time of every successful call
    try:
        wait_leading(leader_of(list(procs)))
        with SchedulerClient(addrs) as c:
            c.register_worker("node-a", "p", gpus("a", n=4, tflops=100), admin="127.0.0.1:1")

        def worker():                               # the test plays the worker daemon: heartbeats every second
            with SchedulerClient(addrs) as c:
                while not stop.is_set():
                    try:
                        r = c.heartbeat("node-a", active_allocation_ids=sorted(held))
                        assert not r.reregister
                    except Exception as e:
                        errors.append(("heartbeat", e))
                    stop.wait(1.0)

        def tenant(k):
            mine = []
            with SchedulerClient(addrs) as c:
                i = 0
                while not stop.is_set():
                    i += 1
                    try:
                        if len(mine) < 3:
                            a = c.allocate(tflops=5, vram="1Mi", workload=f"t{k}")
                            with lock:
                                assert a.id not in held, "the same allocation handed out twice"
                                held[a.id] = k
                            mine.append(a.id)
                        else:
                            aid = mine.pop(0)
                            c.release(aid)
                            with lock:
                                del held[aid]
                        served_at.append(time.monotonic())
                    except Exception as e:
                        errors.append((f"tenant{k}", e))
                        return
        threads = [threading.Thread(target=worker)] + [threading.Thread(target=tenant, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        leader = leader_of(list(procs))
        killed_at = time.monotonic()
        kill9(procs.pop(leader))
        time.sleep(2.0 * LEADER_TTL + 4.0)
        stop.set()
        for t in threads:
            t.join(60)
        assert not errors, errors
        after = [t for t in served_at if t > killed_at]
        assert after, "no call was served after the leader died"
        gap = after[0] - killed_at
        print(f"\nleader killed -> first call served by the new leader: {gap:.2f} s "
              f"(leader TTL {LEADER_TTL} s); {len(served_at)} calls in all")
        assert gap < LEADER_TTL + 3.0
        new = leader_of(list(procs))
        with SchedulerClient(new) as c:
            pool = c.list_pool(include_allocations=True)
            active = {a.id for a in pool.allocations}
            assert active == set(held), (active ^ set(held))        # nothing lost, nothing extra
            assert all(n.available for n in pool.nodes)             # the grace kept the node
            assert sum(g.allocated_requests.tflops for n in pool.nodes for g in n.gpus) == 5.0 * len(held)
    finally:
        stop.set()
        for p in procs.values():
            kill9(p)


def test_a_worker_daemon_given_every_replica_follows_the_new_leader(tmp_path, etcd):
    """`tensorfusion scheduler --store etcd://...` twice and a real `tensorfusion worker --scheduler a,b`: after a
    kill -9 of the leader the worker's heartbeats reach the new one, which keeps the node and its allocation."""
    import os
    import re
    import subprocess
    import sys
    cli = [sys.executable, "-m", "tfclient.cli"]
    env = dict(os.environ, TF_SECRET="test-secret", TF_EMU_VRAM_MIB="1024")
    env.pop("TF_TOKEN", None)
    procs, addrs = [], []

    def start(args, ready, extra_env=None):
        p = subprocess.Popen([*cli, *args], env=dict(env, **(extra_env or {})), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        procs.append(p)
        lines = []
        for line in p.stdout:
            lines.append(line)
            m = re.search(ready, line)
            if m:
                return p, m
        raise AssertionError("".join(lines))
    try:
        roles = []
        for i in range(2):
            p, m = start(["scheduler", "--listen", "127.0.0.1:0", "--store", etcd.url, "--leader-ttl", "2",
                          "--heartbeat-interval", "0.5", "--node-timeout", "2"],
                         r"listening on (\S+:\d+) .*, (leading|following \(leader: \S+\))$")
            addrs.append(m.group(1))
            roles.append(m.group(2))
        assert roles == ["leading", f"following (leader: {addrs[0]})"]      # what each replica prints
        both = ",".join(addrs)
        admin = (tmp_path / "tfhome" / "admin.token").read_text().strip()
        with SchedulerClient(both, token=admin) as c:
            wtoken = c.create_token("worker", node_name="node-a").token
        start(["worker", "--scheduler", both, "--backend", "emu", "--node", "node-a", "--unix",
               str(tmp_path / "a.sock")], r"registered with", {"TF_WORKER_TOKEN": wtoken})
        with SchedulerClient(both, token=admin) as c:
            a = c.allocate(vram="256Mi")
            leader = c.address
            kill9(procs[addrs.index(leader)])
            time.sleep(2 + 2 * 2.0 + 1)      # lease runs out, a new leader, then two node timeouts
            pool = c.list_pool(include_allocations=True)
            assert c.address != leader
            assert [n.available for n in pool.nodes] == [True]
            assert [x.id for x in pool.allocations] == [a.id]
            assert time.time() - pool.nodes[0].last_heartbeat < 2.0
        survivor = procs[addrs.index(c.address)]
        kill9(survivor)
        assert f"tensorfusion scheduler: leading as {c.address}\n" in survivor.stdout.read()   # the takeover is said
    finally:
        for p in procs:
            kill9(p)


def test_a_new_leader_gives_nodes_a_full_node_timeout_from_its_start(tmp_path, etcd):
    procs = start_replicas(tmp_path, etcd)
    try:
        wait_leading(leader_of(list(procs)))
        addrs = ",".join(procs)
        with SchedulerClient(addrs) as c:
            c.register_worker("node-a", "p", gpus("a"), admin="127.0.0.1:1")
            a = c.allocate(tflops=10, vram="1Gi")
            c.heartbeat("node-a")                        # then the node falls silent for good
            killed_at = time.monotonic()
            kill9(procs.pop(c.address))
            while True:                                  # whoever leads next
                try:
                    leader_of(list(procs))
                    break
                except AssertionError:
                    assert time.monotonic() - killed_at < LEADER_TTL + 3.0, "no new leader"
                    time.sleep(0.05)
            led_at = time.monotonic()
            assert led_at - killed_at < LEADER_TTL + 3.0
            time.sleep(max(0.0, killed_at + NODE_TIMEOUT + 1.0 - time.monotonic()))
            # past node_timeout since the last heartbeat, but not since the new leader started: still available
            if time.monotonic() < led_at + NODE_TIMEOUT - 0.5:
                assert [n.available for n in c.list_pool().nodes] == [True]
                assert c.get_allocation(a.id).state == pb.ALLOCATION_ACTIVE
            time.sleep(max(0.0, led_at + NODE_TIMEOUT + 2.0 - time.monotonic()))
            assert [n.available for n in c.list_pool().nodes] == [False]     # and then it is declared lost
            assert c.get_allocation(a.id).state == pb.ALLOCATION_LOST
    finally:
        for p in procs.values():
            kill9(p)


def wait_new_leader(procs, since: float) -> tuple:
    """Polls the replicas left until one leads. -> (its address, monotonic time it was first seen leading)."""
    while True:
        try:
            return leader_of(list(procs)), time.monotonic()
        except AssertionError:
            assert time.monotonic() - since < LEADER_TTL + 3.0, "no new leader"
            time.sleep(0.05)


def test_leases_keep_working_across_a_leader_change(tmp_path, etcd):
    """Lease expiries and TTLs are in etcd: a lease renewed with a new TTL keeps it under the next leader, a lease
    nobody renews expires under the next leader (and its worker is told to close it), renewals go on."""
    procs = start_replicas(tmp_path, etcd)
    try:
        wait_leading(leader_of(list(procs)))
        addrs = ",".join(procs)
        with SchedulerClient(addrs) as c:
            c.register_worker("node-a", "p", gpus("a"), admin="127.0.0.1:1")
            kept = c.allocate(tflops=10, vram="1Gi", lease_ttl=4)
            lapsed = c.allocate(tflops=10, vram="1Gi", lease_ttl=4)
            renewed = c.renew(kept.id, ttl=600)
            stored = etcd.client().range(f"/tensorfusion/leases/{kept.id}".encode()).kvs
            assert abs(json.loads(stored[0].value) - renewed.expires_at) < 1e-3, "the renewal is not in etcd"
            killed_at = time.monotonic()
            kill9(procs.pop(c.address))
            _, led_at = wait_new_leader(procs, killed_at)
            c.heartbeat("node-a")                   # the node stays; it lists no session, so renews nothing
            got = c.get_allocation(kept.id)
            assert got.state == pb.ALLOCATION_ACTIVE       # its lease never shortened (a new leader only extends)
            assert got.lease_expires_at >= renewed.expires_at - 1e-3
            deadline = time.monotonic() + 4 + 5.0   # the new leader's grace (one TTL) + ticks
            while c.get_allocation(lapsed.id).state == pb.ALLOCATION_ACTIVE:
                assert time.monotonic() < deadline, "an unrenewed lease did not expire under the new leader"
                c.heartbeat("node-a")
                time.sleep(0.2)
            assert c.get_allocation(lapsed.id).state == pb.ALLOCATION_EXPIRED
            r = c.heartbeat("node-a", active_allocation_ids=[lapsed.id])
            assert [(x.allocation_id, x.reason) for x in r.close_allocations] == [(lapsed.id, "lease expired")]
            again = c.renew(kept.id)                 # no TTL given: the 600 s set under the old leader
            assert again.expires_at > time.time() + 590
            assert c.get_allocation(kept.id).state == pb.ALLOCATION_ACTIVE
    finally:
        for p in procs.values():
            kill9(p)


def test_a_frozen_leader_is_replaced_and_writes_nothing_when_it_wakes(tmp_path, etcd):
    """SIGSTOP the leader (a stalled host): its lease runs out, a follower leads, clients whose calls time out on
    the frozen one move on by themselves; woken up (SIGCONT), the old leader finds the leader key changed and
    refuses instead of writing on a stale view."""
    import signal
    procs = start_replicas(tmp_path, etcd)
    frozen = None
    try:
        wait_leading(leader_of(list(procs)))
        old = leader_of(list(procs))
        addrs = [old] + [a for a in procs if a != old]      # the frozen one first: every call meets it
        with SchedulerClient(",".join(addrs), timeout=1.0) as c:
            c.register_worker("node-a", "p", gpus("a", tflops=100), admin="127.0.0.1:1")
            first = c.allocate(tflops=60, vram="1Gi")
            frozen = procs[old]
            frozen.send_signal(signal.SIGSTOP)
            second = c.allocate(tflops=40, vram="1Gi")        # times out on the frozen leader, then the new one
            assert c.address != old
            frozen.send_signal(signal.SIGCONT)
            frozen = None
            time.sleep(LEADER_TTL / 3 + 1.0)                  # its next renewal finds the lease gone
            with SchedulerClient(old, failover_s=0) as stale:
                try:
                    stale.allocate(tflops=40, vram="1Gi")
                    raise AssertionError("a deposed leader placed an allocation")
                except NotLeader as e:
                    assert c.address in str(e)
            pool = c.list_pool(include_allocations=True)
            assert {a.id for a in pool.allocations} == {first.id, second.id}
            assert sum(g.allocated_requests.tflops for n in pool.nodes for g in n.gpus) == 100.0
    finally:
        if frozen is not None:
            frozen.send_signal(signal.SIGCONT)
        for p in procs.values():
            kill9(p)


def test_a_follower_sends_the_client_straight_to_the_leader_it_names(tmp_path, etcd):
    """The client takes the leader's address from a follower's refusal when it is in its list: here the replica
    listed between them never answers, and a failover budget shorter than one call timeout is spent only if the
    client tried it."""
    import socket
    procs = start_replicas(tmp_path, etcd, n=2)
    hung = socket.socket()              # accepts TCP connections and never speaks: a frozen replica
    try:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        wait_leading(leader_of(list(procs)))
        leader = leader_of(list(procs))
        follower = next(a for a in procs if a != leader)
        silent = f"127.0.0.1:{hung.getsockname()[1]}"
        with SchedulerClient(",".join((follower, silent, leader)), timeout=2.0, failover_s=1.0) as c:
            c.register_worker("node-a", "p", gpus("a"), admin="127.0.0.1:1")
            assert c.address == leader
    finally:
        hung.close()
        for p in procs.values():
            kill9(p)


def test_tensorfusion_run_with_every_replica_in_tf_scheduler_survives_a_leader_kill(tmp_path, etcd):
    """The README's deployment on loopback: three `tensorfusion scheduler` replicas on etcd, one `tensorfusion
    worker --scheduler a,b,c`, a real CUDA program through `tensorfusion run` with TF_SCHEDULER=a,b,c; kill -9 the
    leader, and the same command works again (the client finds the new leader by itself)."""
    import os
    import subprocess
    import sys
    from cudabuild import build_example
    from test_worker import start
    cli = [sys.executable, "-m", "tfclient.cli"]
    env = dict(os.environ, TF_SECRET="test-secret", TF_EMU_VRAM_MIB="1024")
    for k in ("TF_TOKEN", "TF_SCHEDULER", "TF_WORKER_TOKEN"):
        env.pop(k, None)
    program = build_example("vector_add")
    procs, addrs = [], []
    try:
        for _ in range(3):
            p, m = start(["scheduler", "--listen", "127.0.0.1:0", "--store", etcd.url, "--leader-ttl",
                          str(LEADER_TTL)], env, r"listening on (\S+:\d+)")
            procs.append(p)
            addrs.append(m.group(1))
        every = ",".join(addrs)
        admin = dict(env, TF_SCHEDULER=every, TF_TOKEN=(tmp_path / "tfhome" / "admin.token").read_text().strip())

        def tf(*args, e):
            return subprocess.run([*cli, *args], env=e, capture_output=True, text=True, timeout=120)
        wtoken = tf("token", "create", "--role", "worker", "--node", "gpu1", e=admin).stdout.strip()
        ttoken = tf("token", "create", "--role", "tenant", "--namespace", "team", e=admin).stdout.strip()
        w, _ = start(["worker", "--scheduler", every, "--backend", "emu", "--node", "gpu1", "--unix",
                      str(tmp_path / "w.sock")], dict(env, TF_WORKER_TOKEN=wtoken), r"registered with")
        procs.append(w)
        tenant = dict(env, TF_SCHEDULER=every, TF_TOKEN=ttoken)
        r = tf("run", "--vram", "256Mi", "--", str(program), e=tenant)
        assert r.returncode == 0 and "65536 elements correct" in r.stdout, r.stdout + r.stderr
        leader = leader_of(addrs)
        kill9(procs[addrs.index(leader)])
        r = tf("run", "--vram", "256Mi", "--", str(program), e=tenant)
        assert r.returncode == 0 and "65536 elements correct" in r.stdout, r.stdout + r.stderr
        assert leader_of([a for a in addrs if a != leader])
    finally:
        for p in procs:
            kill9(p)
