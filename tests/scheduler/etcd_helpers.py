"""Real etcd servers and scheduler processes for the etcd tests (imported by name: tests/ has no packages).

Each etcd listens on fresh loopback ports with its own temporary data dir, is killed (SIGKILL) at the end and its
data dir removed; nothing is mocked. Tests skip where no `etcd` binary is installed (scripts/setup.sh installs
etcd-server)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from tfclient import native
from tfscheduler.etcd_store import EtcdClient
from sched_helpers import SECRET

ETCD = shutil.which("etcd")
# CI (.ci/run sets CI=true) runs `make test`, whose setup installs etcd: there a missing etcd fails these tests
# instead of skipping them, so the scale-out tests can never silently stop running.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
needs_etcd = pytest.mark.skipif(ETCD is None and not IN_CI,
                                reason="etcd not installed (scripts/setup.sh installs etcd-server)")
needs_etcd_tools = pytest.mark.skipif((shutil.which("etcdctl") is None or shutil.which("openssl") is None)
                                      and not IN_CI, reason="needs etcdctl (etcd-client) and openssl")


def free_ports(n: int) -> list:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class EtcdCluster:
    """n etcd members on loopback (1 = a single node). .url = etcd://h:p,h:p,..."""

    def __init__(self, tmp_path, n: int = 1, tls: dict | None = None):
        assert ETCD, "no etcd binary on PATH: run scripts/setup.sh (installs etcd-server)"
        self.tmp, self.n, self.tls = tmp_path, n, tls    # tls: make_certs() -> client URLs are https
        ports = free_ports(2 * n)
        self.client_ports, self.peer_ports = ports[:n], ports[n:]
        self.names = [f"m{i}" for i in range(n)]
        self.procs = [None] * n
        self.cluster = ",".join(f"{nm}=http://127.0.0.1:{p}" for nm, p in zip(self.names, self.peer_ports))
        for i in range(n):
            self.start(i)
        self.wait_ready()

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def start(self, i: int) -> None:
        c, p = self.client_ports[i], self.peer_ports[i]
        log = open(self.tmp / f"etcd-{i}.log", "ab")
        scheme = "https" if self.tls else "http"
        tls = ["--cert-file", self.tls["server_cert"], "--key-file", self.tls["server_key"], "--client-cert-auth",
               "--trusted-ca-file", self.tls["ca"]] if self.tls else []
        self.procs[i] = subprocess.Popen(
            [ETCD, "--name", self.names[i], "--data-dir", str(self.tmp / f"etcd-{i}.data"),
             "--listen-client-urls", f"{scheme}://127.0.0.1:{c}", "--advertise-client-urls", f"{scheme}://127.0.0.1:{c}",
             *tls,
             "--listen-peer-urls", f"http://127.0.0.1:{p}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{p}",
             "--initial-cluster", self.cluster, "--initial-cluster-state", "new",
             "--initial-cluster-token", f"tf-{os.getpid()}-{self.client_ports[0]}", "--heartbeat-interval", "50",
             "--election-timeout", "500"], stdout=log, stderr=log)

    def kill(self, i: int) -> None:
        if self.procs[i] is not None and self.procs[i].poll() is None:
            self.procs[i].send_signal(signal.SIGKILL)
            self.procs[i].wait()
        self.procs[i] = None

    def raft_leader(self) -> int:
        """The index of the member raft elected leader (etcd's JSON gateway, /v3/maintenance/status)."""
        import json
        import urllib.request
        assert not self.tls, "raft_leader() reads the plaintext gateway"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:       # a member that knows no leader yet omits the field (0)
            for i, port in enumerate(self.client_ports):
                if self.procs[i] is None:
                    continue
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v3/maintenance/status", data=b"{}",
                                             method="POST")
                with urllib.request.urlopen(req, timeout=5) as r:
                    st = json.load(r)
                if st["header"]["member_id"] == st.get("leader"):
                    return i
            time.sleep(0.1)
        raise AssertionError("no etcd member leads")

    def wait_ready(self, timeout: float = 20.0) -> None:
        c = self.client(timeout_s=1.0)
        deadline = time.monotonic() + timeout
        while True:
            try:
                c.txn([], [])        # a write: needs a raft leader, not just a listening member
                c.close()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def client(self, **kw) -> EtcdClient:
        if self.tls:
            kw.update(cacert=self.tls["ca"], cert=self.tls["client_cert"], key=self.tls["client_key"])
        return EtcdClient([f"127.0.0.1:{p}" for p in self.client_ports], **kw)

    def etcdctl(self, *args) -> str:
        tls = ["--cacert", self.tls["ca"], "--cert", self.tls["client_cert"], "--key", self.tls["client_key"]] \
            if self.tls else []
        scheme = "https" if self.tls else "http"
        eps = ",".join(f"{scheme}://127.0.0.1:{p}" for p in self.client_ports)
        return subprocess.run(["etcdctl", "--endpoints", eps, *tls, *args], check=True, capture_output=True,
                              text=True, timeout=30).stdout

    def stop(self) -> None:
        """Kills every member and removes its data dir (~125 MB: etcd preallocates its WAL; kept, the etcd tests
        of one run left 2.6 GB, and pytest keeps three runs); the logs stay for a failed test's report."""
        for i in range(self.n):
            self.kill(i)
        for i in range(self.n):
            shutil.rmtree(self.tmp / f"etcd-{i}.data", ignore_errors=True)


def make_certs(d) -> dict:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (openssl)."""
    def run(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d, timeout=60)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=tf-test-ca")
    for name, cn in (("server", "127.0.0.1"), ("client", "tf-scheduler")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
            f"/CN={cn}")
        (d / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext")
    return {"ca": str(d / "ca.pem"), "server_cert": str(d / "server.pem"), "server_key": str(d / "server.key"),
            "client_cert": str(d / "client.pem"), "client_key": str(d / "client.key")}



@pytest.fixture
def etcd(tmp_path):
    cluster = EtcdCluster(tmp_path)
    yield cluster
    cluster.stop()


def start_scheduler(tmp_path, store_url: str, *extra, name: str = "s", env=None) -> tuple:
    """A `python -m tfscheduler --store ...` process. -> (Popen, address)."""
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    log = open(tmp_path / f"sched-{name}.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "tfscheduler", "--listen", "127.0.0.1:0", "--store", store_url,
                             "--secret-file", str(secret), "--log-level", "INFO", *extra],
                            stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(native.REPO_ROOT),
                            env=dict(os.environ, **(env or {})))
    line = proc.stdout.readline()
    assert line.startswith("tfscheduler listening on "), (line, (tmp_path / f"sched-{name}.log").read_text())
    return proc, line.split()[-1]


def kill9(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def wait_leading(addr: str, timeout: float = 20.0) -> float:
    """Waits until the replica at addr serves (it leads). -> seconds waited."""
    from tfclient.errors import NotLeader, StoreUnavailable
    from tfclient.scheduler_client import SchedulerClient
    t0 = time.monotonic()
    with SchedulerClient(addr, failover_s=0) as c:
        while True:
            try:
                c.list_pool()
                return time.monotonic() - t0
            except (NotLeader, StoreUnavailable):
                assert time.monotonic() - t0 < timeout, f"{addr} did not lead within {timeout} s"
                time.sleep(0.05)


def leader_of(addrs) -> str:
    """The address of the replica that leads (answers instead of refusing with NotLeader)."""
    from tfclient.errors import NotLeader
    from tfclient.scheduler_client import SchedulerClient
    for a in addrs:
        with SchedulerClient(a, failover_s=0) as c:
            try:
                c.list_pool()
                return a
            except NotLeader:
                pass
    raise AssertionError("no replica leads")
