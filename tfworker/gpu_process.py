"""Spawning the GPU worker process of one data-plane session (native tf-executor).

Called by tfworker.dataplane once a connection passed the handshake: the accepted socket is inherited
as a file descriptor (pass_fds) and the executor speaks the call protocol on it from then on, so no
Python sits on the hot path. The backend libcuda.so.1 is chosen here through LD_LIBRARY_PATH (the
emulator's folder, or nothing for the system's NVIDIA driver); extra LD_PRELOAD libraries (the limiter)
come from the session grant.
"""
from __future__ import annotations

import asyncio
import os

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


async def spawn_executor(fd: int, *, backend_lib_dir: str | None, env: dict[str, str] | None = None,
                         preload: list[str] | None = None) -> asyncio.subprocess.Process:
    """Starts tf-executor serving the connected socket `fd` (the caller closes its own copy after)."""
    exe = native.require(native.executor_bin())
    return await asyncio.create_subprocess_exec(
        str(exe), "--fd", str(fd), pass_fds=(fd,), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, env=executor_env(backend_lib_dir, env, preload),
        start_new_session=True)
