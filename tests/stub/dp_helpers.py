"""Helpers for the remote data path tests (tests/stub): environment that loads the client stub, running
a program through it, an in-process DataPlaneServer whose sessions() tests can inspect, and an IPC program
run with its child in a session of another allocation (or the same one).
"""
from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

from tfclient import native
from tfworker.daemon import ipc_scope_dir
from tfworker.dataplane import DataPlaneServer, SessionEnd, SessionGrant, TlsFiles


def stub_dir() -> Path:
    return native.stub_lib_dir()


def stub_env(worker: str, lease: str = "", base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    env["LD_LIBRARY_PATH"] = f"{native.stub_lib_dir()}:{env.get('LD_LIBRARY_PATH', '')}".rstrip(":")
    env["TF_WORKER"] = worker
    env["TF_LEASE"] = lease
    return env


def run_via_stub(binary: Path, worker: str, *args: str, lease: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *map(str, args)], env=stub_env(worker, lease), capture_output=True,
                          text=True, timeout=timeout)


def wait_until(cond, timeout: float = 20.0, step: float = 0.05) -> bool:
    """Polls cond() every `step` seconds until it is true or `timeout` passed; its last answer."""
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


class InProcessDataPlane:
    """DataPlaneServer on a background event loop; accepts token `token` (empty = any)."""

    def __init__(self, tmp_path: Path, token: str = "", tcp: bool = True,
                 backend_lib_dir: str | None = None, authorize=None, tls: TlsFiles | None = None,
                 max_preauth: int | None = None):
        self.unix_path = str(tmp_path / "dp.sock")
        self.token = token.encode()
        self.ends: list[SessionEnd] = []
        self._count = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        lib_dir = backend_lib_dir if backend_lib_dir is not None else str(native.require(native.emu_lib_dir() / "libcuda.so.1").parent)
        self.server = DataPlaneServer(unix_path=self.unix_path, tcp=("127.0.0.1", 0) if tcp else None,
                                      backend_lib_dir=lib_dir or None, authorize=authorize or self._authorize,
                                      on_end=self._on_end, tls=tls)
        if max_preauth is not None:
            self.server.max_preauth = max_preauth
        self.call(self.server.start())

    async def _authorize(self, token: bytes) -> SessionGrant:
        if self.token and token != self.token:
            raise PermissionError("lease token rejected by test worker")
        self._count += 1
        return SessionGrant(session_id=f"t{self._count}")

    async def _on_end(self, end: SessionEnd) -> None:
        self.ends.append(end)

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def sessions(self):
        async def get():
            return self.server.sessions()
        return self.call(get())

    @property
    def unix(self) -> str:
        return f"unix:{self.unix_path}"

    @property
    def tcp(self) -> str:
        return f"tcp:127.0.0.1:{self.server.tcp_port}"

    @property
    def tls(self) -> str:
        return f"tls:127.0.0.1:{self.server.tcp_port}"

    def close(self) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


def run_ipc_child_in_allocation(tmp_path: Path, binary: Path, child_lease: str) -> subprocess.CompletedProcess:
    """Runs an IPC test program (tests/cuda/tf_test_child.h) through the stub as a session of allocation
    "alloc-1" whose child is a session of child_lease ("alloc-1": the same allocation), on a worker that names each session's allocation in
    TF_IPC_SCOPE as the worker daemon does (the lease token is the allocation here). Checks that it exited
    0 and that the exporting executor marked its handles in alloc-1's scope folder, then removes that folder
    (the daemon does with the allocation's last session). The allocation names carry a per-run suffix: the
    scope folder is global (/dev/shm), and concurrent runs of this test must not share or remove each other's."""
    sessions = itertools.count()
    run = uuid.uuid4().hex[:12]
    parent, child_lease = f"alloc-1-{run}", f"{child_lease}-{run}"

    async def authorize(token: bytes) -> SessionGrant:
        lease = token.decode()
        return SessionGrant(session_id=f"s-{lease}-{next(sessions)}", env={"TF_IPC_SCOPE": lease})
    dp = InProcessDataPlane(tmp_path, authorize=authorize)
    try:
        env = stub_env(dp.unix, lease=parent)
        env["TF_TEST_CHILD_LEASE"] = child_lease
        r = subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=120)
    finally:
        dp.close()
    assert r.returncode == 0, r.stdout + r.stderr
    marks = Path(ipc_scope_dir(parent))
    assert marks.is_dir() and any(marks.iterdir()), "no handle marked in the exporting allocation's scope"
    shutil.rmtree(marks)
    return r
