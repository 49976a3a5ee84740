"""Getting a vGPU from Python: allocate() / release() a lease, and attach() which also points the CUDA
driver API of this process at the worker.

    import tfclient
    with tfclient.attach(tflops=10, vram="4Gi", qos="high"):
        import torch            # cudart dlopens libcuda.so.1 and finds the stub already loaded
        ...

attach() allocates from the scheduler, sets TF_WORKER (unix:<path> or tcp:<host:port>) and TF_LEASE for the
stub, and loads build/stub/libcuda.so.1 with RTLD_GLOBAL *before* torch/cupy load a libcuda of their own
(the stub's SONAME is libcuda.so.1, so their dlopen returns it). A daemon thread renews the lease every
third of its TTL; the worker's heartbeat renews it too once the session is connected. Used by user code
and by `tensorfusion run` (tfclient.cli), which passes the lease's client_env() to the child instead.
"""
from __future__ import annotations

import ctypes
import logging
import os
import socket
import sys
import threading
import warnings

from tfclient import native
from tfclient.errors import AllocationInactive, InvalidRequest, NotFound, SchedulerUnreachable, TensorFusionError
from tfclient.scheduler_client import SchedulerClient

log = logging.getLogger("tfclient")
_current: "Lease | None" = None
_stub_handle = None


class Lease:
    """An allocation held by this process: its worker endpoints and signed token, renewed in the
    background until release() (or the end of a with block)."""

    def __init__(self, client: SchedulerClient, allocation, renew: bool = True):
        self.client = client
        self.allocation = allocation
        self.id = allocation.id
        self.token = allocation.lease_token
        self.expires_at = allocation.lease_expires_at
        self.ended: str | None = None          # why the lease ended under us (preempted, expired, lost)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None
        self._released = False
        self.export_env = False                # attach(): keep os.environ["TF_LEASE"] current
        self.lease_file = None                 # keep_file(): a file holding the current token
        if renew:
            self._thread = threading.Thread(target=self._renew_loop, name=f"tf-lease-{self.id}", daemon=True)
            self._thread.start()

    @property
    def ttl(self) -> float:
        return max(self.expires_at - self.allocation.created_at, 0.3) if self.allocation.created_at else 30.0

    def worker_address(self, transport: str | None = None) -> str:
        """TF_WORKER value. transport "unix" / "tcp" / None (unix when the worker runs on this host)."""
        ep = self.allocation.endpoints
        if transport in (None, "", "auto"):
            # the socket file is visible only on the worker's host
            transport = "unix" if ep.unix_path and (os.path.exists(ep.unix_path) or not ep.tcp) else "tcp"
        if transport == "unix":
            if not ep.unix_path:
                raise InvalidRequest(f"worker {self.allocation.worker_id} has no Unix endpoint: use transport='tcp'")
            return f"unix:{ep.unix_path}"
        if transport != "tcp":
            raise InvalidRequest(f"transport {transport!r} unknown: use 'unix', 'tcp' or None (auto)")
        if not ep.tcp:
            raise InvalidRequest(f"worker {self.allocation.worker_id} has no TCP endpoint (only "
                                 f"{ep.unix_path or 'nothing'}): run on its host or start the worker with --tcp")
        return f"tcp:{ep.tcp}"

    def client_env(self, transport: str | None = None) -> dict:
        """Environment the stub reads: TF_WORKER, TF_LEASE (+ TF_ALLOCATION, TF_SCHEDULER for tools)."""
        return {"TF_WORKER": self.worker_address(transport), "TF_LEASE": self.token,
                "TF_ALLOCATION": self.id, "TF_SCHEDULER": self.client.address}

    def renew(self) -> None:
        """A fresh token: the worker refuses an expired one, so whatever connects later must present this."""
        lease = self.client.renew(self.id)
        with self._lock:
            self.token, self.expires_at = lease.lease_token, lease.expires_at
            if self.export_env:
                os.environ["TF_LEASE"] = self.token      # the stub reads it when this process connects
            if self.lease_file:
                self._write_file()

    def keep_file(self, path) -> str:
        """Keeps the current token in path (0600), rewritten at each renewal and removed at release, for
        processes that connect after the token they were started with expired (TF_LEASE_FILE)."""
        self.lease_file = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._write_file()
        return str(path)

    def _write_file(self) -> None:
        from tfclient.config import write_private
        write_private(self.lease_file, self.token)

    def _renew_loop(self) -> None:
        period = max(self.ttl / 3.0, 0.1)
        while not self._stop.wait(period):
            try:
                self.renew()
            except AllocationInactive as e:
                self.ended = str(e)
                log.warning("lease %s ended: %s", self.id, e)
                return
            except (SchedulerUnreachable, TensorFusionError) as e:   # try again next period
                log.info("renewing lease %s failed: %s", self.id, e)

    def release(self) -> None:
        """Gives the vGPU back (idempotent); the worker closes the session."""
        global _current
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(5)
        if self.lease_file:
            try:
                self.lease_file.unlink()
            except OSError:
                pass
        if not self._released:
            self._released = True
            try:
                self.client.release(self.id)
            except NotFound:
                pass
            finally:
                self.client.close()
        if _current is self:
            _current = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        a = self.allocation
        return (f"<Lease {self.id} on {a.worker_id} GPU {','.join(a.gpu_uuids)}: {a.requests.tflops:g}/"
                f"{a.limits.tflops:g} TFLOPS, {a.requests.vram_mib}/{a.limits.vram_mib} MiB>")


def allocate(tflops=0.0, vram=0, *, tflops_limit=None, vram_limit=None, qos="medium", pool="", namespace="",
             workload="", gpu_count=1, model="", vendor="", local_gpu=False, lease_ttl=0.0, scheduler=None,
             renew=True, vram_mib=None, vram_limit_mib=None, gpu_model=None, client_node=None,
             timeout=5.0, token=None) -> Lease:
    """Allocates a vGPU and returns its Lease (renewed in the background unless renew=False).
    vram/vram_limit: MiB or a size ("4Gi"); tflops: FP16 TFLOPS (number or "500m"); limits default to requests.
    scheduler: "host:port" (default: --scheduler/TF_SCHEDULER/the embedded one); token: bearer token (default
    TF_TOKEN, then $TF_HOME/tenant.token). Raises tfclient.errors.*."""
    if vram_mib is not None:
        vram = vram_mib
    if vram_limit_mib is not None:
        vram_limit = vram_limit_mib
    client = SchedulerClient(scheduler, timeout=timeout, token=token)
    try:
        a = client.allocate(tflops, vram, tflops_limit=tflops_limit, vram_limit=vram_limit, qos=qos, pool=pool,
                            namespace=namespace, workload=workload or os.path.basename(sys.argv[0] or "python"),
                            gpu_count=gpu_count, model=gpu_model or model, vendor=vendor, local_gpu=local_gpu,
                            client_node=client_node or (socket.gethostname() if local_gpu else ""),
                            lease_ttl=lease_ttl)
    except BaseException:
        client.close()
        raise
    return Lease(client, a, renew=renew)


def load_stub() -> ctypes.CDLL:
    """Loads the client stub libcuda.so.1 into this process (RTLD_GLOBAL), once."""
    global _stub_handle
    if _stub_handle is None:
        for mod in ("torch", "cupy", "cuda", "jax", "tensorflow"):
            if mod in sys.modules:
                warnings.warn(f"{mod} was imported before tfclient.attach(): if it already loaded the real "
                              f"libcuda.so.1 the vGPU is not used; attach first, then import {mod}", stacklevel=3)
        path = native.require(native.stub_lib_dir() / "libcuda.so.1")
        _stub_handle = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    return _stub_handle


def attach(tflops=0.0, vram=0, qos="medium", *, transport: str | None = None, load: bool = True, **kw) -> Lease:
    """allocate() + TF_WORKER/TF_LEASE in os.environ + the stub loaded. Usable as a context manager
    (releases on exit). kw: see allocate()."""
    global _current
    lease = allocate(tflops, vram, qos=qos, **kw)
    try:
        os.environ.update(lease.client_env(transport))
        lease.export_env = True
        if load:
            load_stub()
    except BaseException:
        lease.release()
        raise
    _current = lease
    return lease


def release(lease: Lease | None = None) -> None:
    """Releases lease, or the one attach() made last."""
    target = lease or _current
    if target is not None:
        target.release()
