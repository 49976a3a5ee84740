"""tfclient.attach: allocate/attach/release against a real scheduler, lease renewal from the thread."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tfclient.attach  # noqa: F401  (the module; tfclient.attach the attribute is the function)
from tfclient import native
from tfclient.errors import NoCapacity
from tfclient.protos import load
from tfclient.scheduler_client import SchedulerClient
from tfscheduler import lease

from sched_helpers import SECRET, gpus

tfattach = sys.modules["tfclient.attach"]


def listening(path):
    """A Unix socket listening at path, as a worker's data plane does (attach() checks that it opens)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen()
    return sock

pb = load("scheduler_pb2")


def test_attach_points_the_stub_at_the_worker_and_releases_on_exit(scheduler, tmp_path, monkeypatch):
    sock = tmp_path / "worker.sock"
    data_plane = listening(sock)                       # the worker's socket exists on this host -> unix transport
    for k in ("TF_WORKER", "TF_LEASE", "TF_ALLOCATION", "TF_SCHEDULER"):
        monkeypatch.delenv(k, raising=False)
    with SchedulerClient(scheduler.address) as c:
        c.register_worker("node-a", "p", gpus("a"), unix_path=str(sock), tcp="127.0.0.1:9")
        with tfattach.attach(tflops=5, vram="1Gi", qos="high", scheduler=scheduler.address, load=False) as held:
            assert os.environ["TF_WORKER"] == f"unix:{sock}"
            assert lease.verify(os.environ["TF_LEASE"], lease.node_key(SECRET, "node-a")).allocation_id == held.id
            assert c.get_allocation(held.id).state == pb.ALLOCATION_ACTIVE
            assert held.client_env("tcp")["TF_WORKER"] == "tcp:127.0.0.1:9"
        assert c.get_allocation(held.id).state == pb.ALLOCATION_RELEASED


def test_remote_worker_is_reached_over_tcp(scheduler):
    with SchedulerClient(scheduler.address) as c:
        c.register_worker("node-far", "p", gpus("far"), unix_path="/nonexistent/far.sock", tcp="10.1.2.3:7000")
    held = tfattach.allocate(tflops=1, vram=1, scheduler=scheduler.address, renew=False)
    try:
        assert held.client_env()["TF_WORKER"] == "tcp:10.1.2.3:7000"
    finally:
        tfattach.release(held)


def test_lease_is_kept_alive_by_the_renewal_thread(start_scheduler):
    s = start_scheduler(lease_ttl_s=1.0, tick_s=0.05)
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=10))
        held = tfattach.allocate(tflops=10, vram=1, scheduler=s.address)
        unrenewed = tfattach.allocate(tflops=0, vram=1, scheduler=s.address, renew=False)
        time.sleep(2.2)                            # 2.2 TTLs (renewed every TTL/3)
        assert c.get_allocation(held.id).state == pb.ALLOCATION_ACTIVE
        assert c.get_allocation(unrenewed.id).state == pb.ALLOCATION_EXPIRED
        with pytest.raises(NoCapacity):
            tfattach.allocate(tflops=1, vram=1, scheduler=s.address)
        held.release()
        assert c.get_allocation(held.id).state == pb.ALLOCATION_RELEASED
        unrenewed.release()                        # releasing an expired lease is harmless


def test_renewal_hands_fresh_tokens_to_whatever_connects_later(start_scheduler, tmp_path, monkeypatch):
    """Workers refuse expired tokens, so renewal must reach TF_LEASE (attach) and TF_LEASE_FILE (run)."""
    for k in ("TF_WORKER", "TF_LEASE", "TF_ALLOCATION", "TF_SCHEDULER"):
        monkeypatch.delenv(k, raising=False)
    s = start_scheduler(lease_ttl_s=1.0, tick_s=0.05)
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=10), unix_path=str(tmp_path / "w.sock"))
    data_plane = listening(tmp_path / "w.sock")
    held = tfattach.attach(tflops=1, vram=1, scheduler=s.address, load=False, transport="unix")
    path = tmp_path / "leases" / f"{held.id}.token"
    try:
        first = held.token
        held.keep_file(path)
        assert oct(path.stat().st_mode & 0o777) == "0o600" and path.read_text() == first
        time.sleep(1.5)                             # past the first token's expiry
        with pytest.raises(lease.LeaseExpired):
            lease.verify(first, lease.node_key(SECRET, "node-a"))
        assert lease.verify(os.environ["TF_LEASE"], lease.node_key(SECRET, "node-a")).allocation_id == held.id
        assert lease.verify(path.read_text(), lease.node_key(SECRET, "node-a")).allocation_id == held.id
    finally:
        held.release()
    assert not path.exists()


def test_attach_reports_a_worker_its_stub_lost(start_scheduler, tmp_path, monkeypatch):
    """The stub writes TF_WORKER_LOST_FILE when it loses its worker mid-session (stub_c/README.md, A lost worker);
    attach()'s renewal thread reports it: the scheduler probes the worker's admin API itself (here an address
    nothing listens on, as for a killed worker), and the node leaves placement. The file goes with the release."""
    for k in ("TF_WORKER", "TF_LEASE", "TF_ALLOCATION", "TF_SCHEDULER", "TF_WORKER_LOST_FILE"):
        monkeypatch.delenv(k, raising=False)
    s = start_scheduler(lease_ttl_s=1.0, tick_s=0.05)
    with SchedulerClient(s.address) as c:
        c.register_worker("node-a", "p", gpus("a", tflops=10), unix_path=str(tmp_path / "w.sock"),
                          admin="127.0.0.1:9")
        data_plane = listening(tmp_path / "w.sock")
        held = tfattach.attach(tflops=1, vram=1, scheduler=s.address, load=False, transport="unix")
        lost = Path(os.environ["TF_WORKER_LOST_FILE"])
        try:
            time.sleep(0.5)                         # a renewal with nothing lost: nothing reported
            assert [n.available for n in c.list_pool().nodes] == [True]
            lost.write_text("connection to the GPU worker lost (recv: Connection reset by peer)\n")
            deadline = time.time() + 10
            while c.list_pool().nodes[0].available and time.time() < deadline:
                time.sleep(0.1)
            assert not c.list_pool().nodes[0].available
        finally:
            held.release()
            data_plane.close()
    assert not lost.exists()


def test_attach_loads_the_stub_as_libcuda(scheduler, tmp_path):
    stub = native.stub_lib_dir() / "libcuda.so.1"
    if not stub.exists():
        pytest.skip("client stub not built (make native)")
    sock = tmp_path / "w.sock"
    data_plane = listening(sock)
    with SchedulerClient(scheduler.address) as c:
        c.register_worker("node-a", "p", gpus("a"), unix_path=str(sock))
    code = ("import ctypes\nfrom tfclient.attach import attach, release\n"
            f"l = attach(tflops=1, vram=1, scheduler='{scheduler.address}')\n"
            "maps = open('/proc/self/maps').read()\n"
            f"assert '{stub}' in maps, 'stub not mapped'\n"
            "ctypes.CDLL('libcuda.so.1')  # resolves to the already-loaded stub by SONAME\n"
            "release()\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(native.REPO_ROOT))
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr
