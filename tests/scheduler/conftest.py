"""Fixtures for scheduler tests: a real scheduler (grpc.aio on uvloop, real SQLite) in a background
thread, and a real WorkerAdmin gRPC server that records what the scheduler asks of "its" worker (the
test process plays the worker: it registers and heartbeats through the public API)."""
import asyncio
import threading
from concurrent import futures

import grpc
import pytest
import uvloop

from tfclient import config
from tfclient.protos import load
from tfclient.scheduler_client import SchedulerClient
from tfscheduler import auth, lease
from tfscheduler.server import serve

wpb = load("worker_pb2")
wrpc = load("worker_pb2_grpc")
from sched_helpers import SECRET


class SchedulerThread:
    def __init__(self, db: str, **overrides):
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.handle = self.run(serve("127.0.0.1:0", db, SECRET, **overrides))
        self.address = f"127.0.0.1:{self.handle.port}"
        self.state = self.handle.state
        self.tokens = self.handle.tokens

        async def admin_token():    # on the scheduler's loop, like every other write to its store
            auth.bootstrap_admin(self.tokens, config.home())     # $TF_HOME/admin.token: clients' default
        self.run(admin_token())
        self.admin_token = config.read_token("admin")

    def token(self, role, namespace="", node_name=""):
        """A new bearer token made on the scheduler's loop."""
        async def create():
            return self.tokens.create(role, namespace, node_name)[1]
        return self.run(create())

    def run(self, coro, timeout=20):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        if not self.loop.is_running():      # stopped already (a restart test stops it before teardown)
            return
        self.run(self.handle.stop(0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class RecordingWorkerAdmin(wrpc.WorkerAdminServicer):
    def __init__(self):
        self.closed = []          # (allocation_id, reason)
        self.limits = []          # (allocation_id, tflops, vram_mib, token)
        self.event = threading.Event()

    def CloseSession(self, request, context):
        # raises if forged; the tests register this admin endpoint as node-a's
        lease.verify_order(request.auth_token, "close", request.allocation_id, lease.node_key(SECRET, "node-a"))
        self.closed.append((request.allocation_id, request.reason))
        self.event.set()
        return wpb.CloseSessionResponse(closed=True)

    def SetSessionLimits(self, request, context):
        self.limits.append((request.allocation_id, request.limits.tflops, request.limits.vram_mib,
                            request.lease_token))
        return wpb.SetSessionLimitsResponse(applied=True)

    def GetUsage(self, request, context):
        return wpb.GetUsageResponse()

    def wait_closed(self, allocation_id, timeout=5.0):
        import time
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(a == allocation_id for a, _ in self.closed):
                return dict(self.closed)[allocation_id]
            self.event.wait(0.05)
            self.event.clear()
        raise AssertionError(f"worker never asked to close {allocation_id}: {self.closed}")


@pytest.fixture
def worker_admin():
    server = grpc.server(futures.ThreadPoolExecutor(4))
    admin = RecordingWorkerAdmin()
    wrpc.add_WorkerAdminServicer_to_server(admin, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    admin.address = f"127.0.0.1:{port}"
    yield admin
    server.stop(0)


@pytest.fixture(autouse=True)
def tf_home(tmp_path, monkeypatch):
    """Every test gets its own TF_HOME (token files) and no ambient TF_TOKEN."""
    monkeypatch.setenv("TF_HOME", str(tmp_path / "tfhome"))
    monkeypatch.delenv("TF_TOKEN", raising=False)
    monkeypatch.delenv("TF_SCHEDULER", raising=False)
    return tmp_path / "tfhome"


@pytest.fixture
def start_scheduler(tmp_path):
    started = []

    def start(db=None, **overrides):
        s = SchedulerThread(str(db or tmp_path / "scheduler.db"), **overrides)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def scheduler(start_scheduler):
    return start_scheduler()


@pytest.fixture
def client(scheduler):
    with SchedulerClient(scheduler.address) as c:
        yield c

