"""Spawning the GPU worker process of one data-plane session (native tf-executor).

Called by tfworker.dataplane once a connection passed the handshake: the accepted socket is inherited
as a file descriptor (pass_fds, every other descriptor closed) and the executor speaks the call protocol on it from then on, so no
Python sits on the hot path. On a TLS listener the executor is spawned at accept instead, with the raw
socket and a control socket (spawn_tls_executor): it makes the TLS handshake itself and asks the daemon
to authorize the client's token (tfworker/executor/tls_start.c). The backend libcuda.so.1 is chosen here through LD_LIBRARY_PATH (the
emulator's folder, or nothing for the system's NVIDIA driver); extra LD_PRELOAD libraries (the limiter)
come from the session grant.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

from tfclient import native


def executor_env(backend_lib_dir: str | None, env: dict[str, str] | None = None,
                 preload: list[str] | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a GPU worker process: backend first on the loader path, never the client stub."""
    out = dict(os.environ if base is None else base)
    stub_dir = str(native.stub_lib_dir())
    # the stub must never become the executor's backend (it would connect to itself)
    paths = [p for p in out.get("LD_LIBRARY_PATH", "").split(":") if p and os.path.realpath(p) != os.path.realpath(stub_dir)]
    host_memory = False
    if backend_lib_dir:
        paths.insert(0, str(backend_lib_dir))
        if os.path.realpath(backend_lib_dir) == os.path.realpath(native.emu_lib_dir()):
            # the emulator's device pointers are host addresses of the executor: copies skip staging
            out["TF_EXECUTOR_HOST_DEVICE_MEMORY"] = "1"
            host_memory = True
    if paths:
        out["LD_LIBRARY_PATH"] = ":".join(paths)
    else:
        out.pop("LD_LIBRARY_PATH", None)
    out.pop("LD_PRELOAD", None)
    for k in ("TF_WORKER", "TF_LEASE"):
        out.pop(k, None)
    if not host_memory:
        out.pop("TF_EXECUTOR_HOST_DEVICE_MEMORY", None)  # only ever true of the emulator
    out.update(env or {})
    if preload:
        out["LD_PRELOAD"] = ":".join(str(p) for p in preload)
    return out


class ExecutorProcess:
    """A running tf-executor: `pid`, `kill()`, and `await wait()` -> its exit status (negative: killed by
    that signal, as asyncio reports it). Started with the standard library's fork/exec, which closes every
    descriptor but the session's socket in the child (libuv's spawn, under uvloop, leaves the daemon's
    other inheritable descriptors open in it), and watched through a pidfd on the event loop."""

    def __init__(self, popen: subprocess.Popen):
        self._popen = popen
        self.pid = popen.pid
        self.returncode: int | None = None
        self._loop = asyncio.get_running_loop()
        self._exited = self._loop.create_future()
        self._pidfd = os.pidfd_open(popen.pid)
        self._loop.add_reader(self._pidfd, self._reap)

    def _reap(self) -> None:
        rc = self._popen.poll()          # waitpid(WNOHANG) of this child only
        if rc is None:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        self.returncode = rc
        if not self._exited.done():
            self._exited.set_result(rc)

    def kill(self) -> None:
        """SIGKILL through the pidfd (never another process that reused the pid); raises
        ProcessLookupError once it has exited, as asyncio's Process.kill does."""
        if self._pidfd < 0:
            raise ProcessLookupError(self.pid)
        signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


def _start_executor(extra_args: list[str], pass_fds: tuple[int, ...], backend_lib_dir: str | None,
                    env: dict[str, str] | None, preload: list[str] | None) -> ExecutorProcess:
    """tf-executor with `extra_args`, inheriting `pass_fds`, in a session of its own; OSError if it cannot be
    started."""
    exe = native.require(native.executor_bin())
    popen = subprocess.Popen([str(exe), *extra_args], pass_fds=pass_fds, close_fds=True, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, env=executor_env(backend_lib_dir, env, preload),
                             start_new_session=True)
    try:
        return ExecutorProcess(popen)
    except BaseException:
        popen.kill()
        popen.wait()
        raise


async def spawn_executor(fd: int, *, backend_lib_dir: str | None, env: dict[str, str] | None = None,
                         preload: list[str] | None = None) -> ExecutorProcess:
    """Starts tf-executor serving the connected socket `fd` (the caller closes its own copy after).
    OSError if it cannot be started."""
    return _start_executor(["--fd", str(fd)], (fd,), backend_lib_dir, env, preload)


async def spawn_tls_executor(fd: int, control_fd: int, *, backend_lib_dir: str | None, cert: str, key: str,
                       ca: str | None = None, env: dict[str, str] | None = None,
                       preload: list[str] | None = None) -> ExecutorProcess:
    """Starts tf-executor on a raw TLS-listener socket `fd` before any handshake, with the control socket
    `control_fd` to the daemon and the daemon-wide `env`/`preload` (the session's own environment comes
    later, in the grant). The caller closes its copies of both descriptors after. OSError if it cannot be
    started."""
    args = ["--fd", str(fd), "--control", str(control_fd), "--tls-cert", cert, "--tls-key", key]
    if ca:
        args += ["--tls-ca", ca]
    return _start_executor(args, (fd, control_fd), backend_lib_dir, env, preload)


TAG_VAR = "TF_WORKER_TAG"   # set in every executor's environment: which worker daemon (limits.worker_tag) owns it


def executors_of(tag: str) -> list[int]:
    """Pids of live tf-executor processes started by worker `tag` (in this life or a previous one),
    found by the TF_WORKER_TAG in their environment (readable for this user's processes only)."""
    want = f"{TAG_VAR}={tag}".encode()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/comm", "rb") as f:
                if f.read().strip() != b"tf-executor":
                    continue
            with open(f"/proc/{d}/environ", "rb") as f:
                if want not in f.read().split(b"\0"):
                    continue
        except OSError:
            continue
        if process_state(int(d)) not in (None, "Z"):
            out.append(int(d))
    return out


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of pid (/proc/PID/stat: R running, S sleeping, D in I/O, T stopped by a
    signal, t stopped by a debugger, Z exited, ...), None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def reap_executors(tag: str, timeout_s: float = 5.0) -> list[int]:
    """Kills every executor of worker `tag` (a previous life's) and waits until they are gone, so their
    device memory is free before this life serves anyone. Returns their pids."""
    pids = executors_of(tag)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(p in pids for p in executors_of(tag)):
        time.sleep(0.02)
    return pids
