"""Getting a vGPU from Python: allocate() / release() a lease, and attach() which also points the CUDA
driver API of this process at the worker.

    import tfclient
    with tfclient.attach(tflops=10, vram="4Gi", qos="high"):
        import torch            # cudart dlopens libcuda.so.1 and finds the stub already loaded
        ...

attach() allocates from the scheduler, sets TF_WORKER (unix:<path> or tcp:<host:port>) and TF_LEASE for the
stub, plus what GPU libraries need for the device (tfclient.libenv: CUPY_COMPILE_WITH_PTX=1 on the emulated
device), and loads build/stub/libcuda.so.1 with RTLD_GLOBAL *before* torch/cupy load a libcuda of their own
(the stub's SONAME is libcuda.so.1, so their dlopen returns it). A daemon thread renews the lease every
third of its TTL; the worker's heartbeat renews it too once the session is connected. Used by user code
and by `tensorfusion run` (tfclient.cli), which passes the lease's client_env() to the child instead.
Both first open the worker's data plane once: a worker that does not answer (killed, within its node timeout)
is reported to the scheduler, which probes it and stops placing on it, and the vGPU is allocated once more
elsewhere (_reachable_allocation; tfscheduler/README.md, Node liveness). During the session the stubs and the
lease tell each other when it is over (Lease.session_files): a worker a stub lost is reported, an allocation the
scheduler ended ends the stubs' waits (stub_c/README.md, A lost worker).

Release order: a library loaded into this process keeps calling the driver until the interpreter is gone
(CuPy unloads its modules and frees its memory pool in finalizers that run after atexit handlers), and a
stub cannot be unloaded. So while the stub holds an open session (tfStubSessionOpen), ending the lease (the
`with` block, release(), or interpreter exit) only marks it; at exit a detached helper
(tfclient.release_after) gives the vGPU back once the process has exited. A lease whose stub never
connected is released at once. release(now=True) releases at once regardless (later CUDA calls in this
process then fail with CUDA_ERROR_DEVICE_UNAVAILABLE).
"""
from __future__ import annotations

import atexit
import ctypes
import logging
import os
import socket
import subprocess
import sys
import threading
import warnings

from tfclient import config, libenv, native
from tfclient.errors import (AllocationInactive, InvalidRequest, NotFound, SchedulerUnreachable, TensorFusionError,
                             WorkerUnreachable)
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
        self.lost_file = None                  # session_files(): where the stub says it lost the worker,
        self.ended_file = None                 # and where this lease says the scheduler ended the allocation
        self._loss_reported = False
        self._backend: str | None = None
        self.stub_bound = False                # attach() loaded the stub for this lease (release waits for exit)
        self.release_deferred = False          # release asked while the stub's session is open: done after exit
        if renew:
            self._thread = threading.Thread(target=self._renew_loop, name=f"tf-lease-{self.id}", daemon=True)
            self._thread.start()

    @property
    def ttl(self) -> float:
        return max(self.expires_at - self.allocation.created_at, 0.3) if self.allocation.created_at else 30.0

    def worker_address(self, transport: str | None = None) -> str:
        """TF_WORKER value. transport "unix" / "tcp" / None (unix when the worker runs on this host)."""
        return worker_address(self.allocation, transport)

    def client_env(self, transport: str | None = None, tls_ca: str | None = None) -> dict:
        """Environment the stub reads: TF_WORKER, TF_LEASE (+ TF_ALLOCATION, TF_SCHEDULER for tools), and
        TF_TLS_CA (absolute path of tls_ca, else $TF_TLS_CA) when the worker is reached over TLS."""
        worker = self.worker_address(transport)
        env = {"TF_WORKER": worker, "TF_LEASE": self.token, "TF_ALLOCATION": self.id,
               "TF_SCHEDULER": self.client.addresses}
        ca = tls_ca or os.environ.get("TF_TLS_CA")
        if worker.startswith("tls:") and ca:
            env["TF_TLS_CA"] = os.path.abspath(ca)
        return env

    def device_backend(self) -> str:
        """'emu' when the allocation's GPU is the emulated device, else 'nvidia' (one ListPool call, cached)."""
        if self._backend is None:
            uuid = self.allocation.gpu_uuids[0] if self.allocation.gpu_uuids else ""
            backend = "nvidia"
            for node in self.client.list_pool(self.allocation.pool).nodes:
                for g in node.gpus:
                    if g.info.uuid == uuid:
                        backend = libenv.backend_of(g.info.vendor, g.info.model)
            self._backend = backend
        return self._backend

    def library_env(self, environ=None) -> dict:
        """Variables GPU libraries need on this vGPU's device (tfclient.libenv), except those already in
        environ (default os.environ): {"CUPY_COMPILE_WITH_PTX": "1"} on the emulated device, else {}."""
        return libenv.library_env(self.device_backend(), os.environ if environ is None else environ)

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

    def session_files(self, folder) -> dict:
        """The two files through which the stubs of this lease's programs and this lease tell each other that the
        session is over (stub_c/README.md, A lost worker), in folder, removed at release: TF_WORKER_LOST_FILE, where
        a stub writes why it lost the worker or could not reach it (report_loss() reads it at each renewal and at
        release), and TF_ALLOCATION_ENDED_FILE, where the renewal that learns that the scheduler ended the
        allocation (the worker's node timed out, the lease expired, a preemption) writes why, so that a call
        waiting on a worker that cannot close the session itself (a frozen host) gives up. -> their environment."""
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.lost_file, self.ended_file = folder / f"{self.id}.lost", folder / f"{self.id}.ended"
        for path in (self.lost_file, self.ended_file):
            path.unlink(missing_ok=True)
        return {"TF_WORKER_LOST_FILE": str(self.lost_file), "TF_ALLOCATION_ENDED_FILE": str(self.ended_file)}

    def report_loss(self) -> str | None:
        """When a stub wrote the lost file: reports the worker unreachable, once (the scheduler probes the worker
        itself and takes the node out of placement only if the probe fails too: tfscheduler/README.md, Node
        liveness). -> the stub's line, or None when nothing was lost."""
        if self.lost_file is None or self._loss_reported:
            return None
        try:
            why = self.lost_file.read_text().strip()
        except OSError:
            return None
        if not why:
            return None
        self._loss_reported = True
        try:
            verdict = self.client.report_worker_unreachable(self.id, why)
        except TensorFusionError as e:         # the allocation ended already (node timeout, release): known
            log.info("reporting the loss of %s's worker failed: %s", self.id, e)
            return why
        if verdict.node_unavailable:
            log.warning("worker %s was lost (%s): it takes no new allocations (%s)", self.allocation.node_name,
                        why, verdict.reason)
        else:
            log.warning("the session on worker %s was lost (%s); the worker itself answers (%s)",
                        self.allocation.node_name, why, verdict.reason)
        return why

    def _renew_loop(self) -> None:
        period = max(self.ttl / 3.0, 0.1)
        while not self._stop.wait(period):
            self.report_loss()
            try:
                self.renew()
            except AllocationInactive as e:
                self.ended = str(e)
                log.warning("lease %s ended: %s", self.id, e)
                if self.ended_file:
                    try:
                        config.write_private(self.ended_file, self.ended)
                    except OSError as w:
                        log.warning("cannot tell the stub that lease %s ended (%s): %s", self.id, self.ended_file, w)
                return
            except (SchedulerUnreachable, TensorFusionError) as e:   # try again next period
                log.info("renewing lease %s failed: %s", self.id, e)

    def release(self, now: bool = False) -> None:
        """Gives the vGPU back (idempotent); the worker closes the session. For a lease attach() bound to
        the loaded stub whose session is open, the release happens after this process exits (see the
        module docstring) unless now=True."""
        global _current
        if self.stub_bound and not now and not self._released and stub_session_open():
            self.release_deferred = True       # renewal goes on (the worker's heartbeat renews it too)
            return
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(5)
        if not self._released:
            self.report_loss()            # before the release: a released allocation can no longer be reported
        for path in (self.lease_file, self.lost_file, self.ended_file):
            if path:
                try:
                    path.unlink()
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


def worker_address(allocation, transport: str | None = None) -> str:
    """TF_WORKER value for allocation's worker. transport "unix" / "tcp" / None (unix when the worker runs on this
    host)."""
    ep = allocation.endpoints
    if transport in (None, "", "auto"):
        # the socket file is visible only on the worker's host
        transport = "unix" if ep.unix_path and (os.path.exists(ep.unix_path) or not ep.tcp) else "tcp"
    if transport == "unix":
        if not ep.unix_path:
            raise InvalidRequest(f"worker {allocation.worker_id} has no Unix endpoint: use transport='tcp'")
        return f"unix:{ep.unix_path}"
    if transport != "tcp":
        raise InvalidRequest(f"transport {transport!r} unknown: use 'unix', 'tcp' or None (auto)")
    if not ep.tcp:
        raise InvalidRequest(f"worker {allocation.worker_id} has no TCP endpoint (only "
                             f"{ep.unix_path or 'nothing'}): run on its host or start the worker with --tcp")
    # a worker with a TLS listener registers "tls:host:port": the stub must speak TLS to it
    return ep.tcp if ep.tcp.startswith("tls:") else f"tcp:{ep.tcp}"


CONNECT_CHECK_S = 3.0     # a TCP data plane that neither accepts nor refuses within this is unreachable


def data_plane_error(address: str) -> str | None:
    """None when a connection to the data plane at address (a TF_WORKER value) opens, else what failed. The
    connection is closed at once, before any hello: the worker drops it without a word (a TLS listener starts and
    ends one GPU worker process for it)."""
    kind, _, target = address.partition(":")
    try:
        if kind == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(CONNECT_CHECK_S)
                s.connect(target)
        else:
            host, _, port = target.rpartition(":")
            socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_CHECK_S).close()
    except OSError as e:
        return f"connect {address}: {e.strerror or e}"
    return None


def _reachable_allocation(client: SchedulerClient, allocate_once, transport: str | None):
    """allocate_once()'s allocation when its worker's data plane opens. When it does not (a worker killed within
    the node timeout still gets allocations), the scheduler is told: it probes that worker itself and, if the
    probe fails too, takes the node out of placement; then one more allocation goes elsewhere. An allocation
    whose worker cannot be reached is released. WorkerUnreachable when the scheduler still reaches the worker
    (the network between this host and it is at fault) or the second worker cannot be reached either."""
    a = allocate_once()
    why = _checked(client, a, transport)
    if why is None:
        return a
    verdict = _report(client, a, why)
    if not verdict.node_unavailable:
        raise WorkerUnreachable(f"worker {a.node_name} cannot be reached from this host ({why}) but the scheduler "
                                f"reaches it: check the network between them (or the transport: --transport)")
    log.warning("worker %s is down (%s): allocating elsewhere", a.node_name, verdict.reason)
    b = allocate_once()
    why_b = _checked(client, b, transport)
    if why_b is None:
        return b
    _report(client, b, why_b)
    raise WorkerUnreachable(f"worker {a.node_name} is down ({why}) and worker {b.node_name}, placed instead, cannot "
                            f"be reached either ({why_b}): check the network from this host to the workers")


def _checked(client: SchedulerClient, a, transport: str | None) -> str | None:
    """data_plane_error for a's worker; a is released when its address cannot even be formed (InvalidRequest)."""
    try:
        return data_plane_error(worker_address(a, transport))
    except BaseException:
        _release_quietly(client, a.id)
        raise


def _report(client: SchedulerClient, a, why: str):
    """Reports a's worker unreachable, then releases a. -> the scheduler's verdict."""
    try:
        return client.report_worker_unreachable(a.id, why)
    finally:
        _release_quietly(client, a.id)


def _release_quietly(client: SchedulerClient, allocation_id: str) -> None:
    try:
        client.release(allocation_id)
    except TensorFusionError as e:       # it ends by itself when its lease expires
        log.info("releasing %s failed: %s", allocation_id, e)


def allocate(tflops=0.0, vram=0, *, tflops_limit=None, vram_limit=None, qos="medium", pool="", namespace="",
             workload="", gpu_count=1, model="", vendor="", local_gpu=False, lease_ttl=0.0, scheduler=None,
             renew=True, vram_mib=None, vram_limit_mib=None, gpu_model=None, client_node=None,
             timeout=5.0, token=None, tls=None, check_reach: bool = False, transport: str | None = None) -> Lease:
    """Allocates a vGPU and returns its Lease (renewed in the background unless renew=False).
    vram/vram_limit: MiB or a size ("4Gi"); tflops: FP16 TFLOPS (number or "500m"); limits default to requests.
    gpu_count: GPUs of one worker, each with these requests and limits.
    scheduler: "host:port" (default: --scheduler/TF_SCHEDULER/the embedded one); token: bearer token (default
    TF_TOKEN, then $TF_HOME/tenant.token); tls: tfclient.tls.ClientTLS (default TF_TLS_CA/TF_TLS_CERT/TF_TLS_KEY;
    none = plaintext); workload: the autoscaled workload (`tensorfusion workload apply`) this allocation joins,
    UnknownWorkload if it does not exist (without it, the allocation is labelled with the program's name).
    check_reach: the lease is for this host (attach(), `tensorfusion run`): the worker's data plane by transport
    (as in Lease.worker_address) must open from here; a worker that does not answer is reported and avoided
    once (_reachable_allocation).
    Raises tfclient.errors.* (TlsHandshakeFailed when TLS is misconfigured, WorkerUnreachable)."""
    if vram_mib is not None:
        vram = vram_mib
    if vram_limit_mib is not None:
        vram_limit = vram_limit_mib
    client = SchedulerClient(scheduler, timeout=timeout, token=token, tls=tls)
    try:
        if workload:        # joining an autoscaled workload: it must exist (a typo must not go unnoticed)
            client.get_workload(workload, namespace=namespace)
        def allocate_once():
            return client.allocate(
                tflops, vram, tflops_limit=tflops_limit, vram_limit=vram_limit, qos=qos, pool=pool,
                namespace=namespace, workload=workload or os.path.basename(sys.argv[0] or "python"),
                gpu_count=gpu_count, model=gpu_model or model, vendor=vendor, local_gpu=local_gpu,
                client_node=client_node or (socket.gethostname() if local_gpu else ""), lease_ttl=lease_ttl)
        a = _reachable_allocation(client, allocate_once, transport) if check_reach else allocate_once()
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


def stub_session_open() -> bool:
    """True while the stub loaded in this process holds an open session with its GPU worker."""
    if _stub_handle is None:
        return False
    try:
        return bool(_stub_handle.tfStubSessionOpen())
    except AttributeError:                 # a stub built before tfStubSessionOpen: assume CUDA is in use
        return True


def attach(tflops=0.0, vram=0, qos="medium", *, transport: str | None = None, load: bool = True,
           tls_ca: str | None = None, **kw) -> Lease:
    """allocate() + TF_WORKER/TF_LEASE and the device's library settings (Lease.library_env) in os.environ
    + the stub loaded. With neither tflops nor vram the pool's default profile applies (scheduler config;
    default: the whole VRAM of one GPU, no compute limit). Usable as a context manager. The vGPU is given
    back at the end of the with block / release(), or at interpreter exit, and, once the stub has
    connected, only after the process has exited (module docstring). tls_ca: PEM CA file that verifies a
    worker whose TCP data plane is TLS (default $TF_TLS_CA, else the system's CAs). kw: see allocate(). Raises
    tfclient.errors.* (InvalidQuantity, NoCapacity, SchedulerUnreachable, ...)."""
    global _current
    lease = allocate(tflops, vram, qos=qos, check_reach=True, transport=transport, **kw)
    try:
        os.environ.update(lease.client_env(transport, tls_ca=tls_ca))
        os.environ.update(lease.session_files(config.home() / "leases"))
        lease.export_env = True
        os.environ.update(lease.library_env(os.environ))
        if load:
            load_stub()
            lease.stub_bound = True
    except BaseException:
        lease.release(now=True)
        raise
    _current = lease
    _release_at_exit(lease)
    return lease


_exit_leases: list = []
_exit_pid: int | None = None


def _release_at_exit(lease: Lease) -> None:
    """Registers lease for _at_exit (the handler once per process, at the first attach(): atexit runs
    handlers last-registered-first, so it runs after those of libraries imported after attach)."""
    global _exit_pid
    if _exit_pid != os.getpid():
        _exit_pid = os.getpid()
        _exit_leases.clear()
        atexit.register(_at_exit)
    _exit_leases.append(lease)


def _at_exit() -> None:
    if os.getpid() != _exit_pid:           # a forked child that exits normally: not its vGPU
        return
    for lease in _exit_leases:
        if lease._released:
            continue
        if lease.stub_bound and stub_session_open():
            _hand_over_release(lease)
        else:
            try:
                lease.release(now=True)
            except TensorFusionError as e:
                log.warning("releasing %s at exit failed: %s (its lease expires by itself)", lease.id, e)


def _hand_over_release(lease: Lease) -> None:
    """Starts `python -m tfclient.release_after PID SCHEDULER ID` detached; it releases once we are gone."""
    lease._stop.set()
    lease._released = True
    try:
        logf = open(config.home() / "release_after.log", "ab")
    except OSError:
        logf = subprocess.DEVNULL
    try:
        subprocess.Popen([sys.executable, "-m", "tfclient.release_after", str(os.getpid()), lease.client.addresses,
                          lease.id], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                         start_new_session=True, close_fds=True, env=_helper_env())
    except OSError as e:
        log.warning("cannot start the release helper for %s: %s (its lease expires by itself)", lease.id, e)
    finally:
        if logf is not subprocess.DEVNULL:
            logf.close()


def _helper_env() -> dict:
    """The helper is plain Python: no stub, no preload (it must not open a session of its own)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "TF_WORKER", "TF_LEASE")}
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
    return env


def release(lease: Lease | None = None) -> None:
    """Releases lease, or the one attach() made last."""
    target = lease or _current
    if target is not None:
        target.release()
