"""Data-plane server: accepts client stub connections, checks their lease, hands each to its own GPU
worker process (tf-executor) and supervises those processes.

Composed by tfworker.daemon (which supplies `authorize` and `on_end`), or run alone for tests and for
users without a scheduler:
    python -m tfworker.dataplane --unix PATH [--tcp HOST:PORT] [--backend emu|nvidia] [--token TOKEN]

Handshake (little endian), the contract with stub_c/transport.c:
    client: "TFH1" u32 version=1 u32 token_len u32 reserved + token bytes
    server: "TFR1" i32 status u32 msg_len u32 reserved + msg bytes   (status 0 = accepted, else a CUresult)
After status 0 the socket belongs to the session's executor, which speaks the call protocol from the
next byte on; this process closes its copy and never reads it again.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from tfworker import gpu_process

log = logging.getLogger("tfworker.dataplane")

HELLO = struct.Struct("<4sIII")
REPLY = struct.Struct("<4siII")
HELLO_MAGIC, REPLY_MAGIC, VERSION = b"TFH1", b"TFR1", 1
MAX_TOKEN = 4096
HELLO_TIMEOUT_S = 10.0
CUDA_ERROR_INVALID_VALUE = 1
CUDA_ERROR_NOT_PERMITTED = 800
CUDA_ERROR_UNKNOWN = 999


@dataclass
class SessionGrant:
    session_id: str
    env: dict[str, str] = field(default_factory=dict)
    preload: list[str] = field(default_factory=list)   # extra LD_PRELOAD libraries (the limiter)


@dataclass
class SessionEnd:
    session_id: str
    returncode: int | None
    reason: str


@dataclass
class SessionInfo:
    session_id: str
    pid: int
    started_at: float
    peer: str


@dataclass
class _Session:
    info: SessionInfo
    proc: asyncio.subprocess.Process
    close_reason: str | None = None
    task: asyncio.Task | None = None


class DataPlaneServer:
    def __init__(self, *, unix_path: str | None = None, tcp: tuple[str, int] | None = None,
                 backend_lib_dir: str | None,
                 authorize: Callable[[bytes], Awaitable[SessionGrant]],
                 on_end: Callable[[SessionEnd], Awaitable[None]] | None = None):
        if not unix_path and not tcp:
            raise ValueError("DataPlaneServer needs a unix path, a tcp address, or both")
        self.unix_path = unix_path
        self.tcp = tcp
        self.backend_lib_dir = str(backend_lib_dir) if backend_lib_dir else None
        self._authorize = authorize
        self._on_end = on_end
        self._listeners: list[socket.socket] = []
        self._accept_tasks: list[asyncio.Task] = []
        self._handshakes: set[asyncio.Task] = set()
        self._sessions: dict[str, _Session] = {}
        self._starting: set[str] = set()      # authorized, GPU worker process not started yet
        self._cancelled: set[str] = set()     # of those, closed meanwhile: killed as soon as they start
        self._tcp_port = 0
        self._stopping = False

    # ---- lifecycle ----

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.unix_path:
            if os.path.exists(self.unix_path):
                os.unlink(self.unix_path)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old_umask = os.umask(0o177)     # the socket is 0600 from its creation: this user's clients only
            try:
                s.bind(self.unix_path)
            finally:
                os.umask(old_umask)
            os.chmod(self.unix_path, 0o600)
            self._listeners.append(s)
        if self.tcp:
            host, port = self.tcp
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            self._tcp_port = s.getsockname()[1]
            self._listeners.append(s)
        for s in self._listeners:
            s.listen(128)
            s.setblocking(False)
            self._accept_tasks.append(loop.create_task(self._accept_loop(s)))

    async def stop(self) -> None:
        self._stopping = True
        for t in self._accept_tasks:
            t.cancel()
        for t in list(self._handshakes):
            t.cancel()
        await asyncio.gather(*self._accept_tasks, *self._handshakes, return_exceptions=True)
        for s in self._listeners:
            s.close()
        self._listeners.clear()
        if self.unix_path and os.path.exists(self.unix_path):
            os.unlink(self.unix_path)
        await asyncio.gather(*(self.close_session(sid, "data plane stopped") for sid in list(self._sessions)),
                             return_exceptions=True)

    @property
    def tcp_port(self) -> int:
        return self._tcp_port

    def sessions(self) -> dict[str, SessionInfo]:
        return {sid: s.info for sid, s in self._sessions.items()}

    async def close_session(self, session_id: str, reason: str) -> None:
        """Kills the session's GPU worker process (the driver frees its memory) and waits for it."""
        s = self._sessions.get(session_id)
        if s is None:
            if session_id in self._starting:   # a close order raced the spawn: the session must not run
                self._cancelled.add(session_id)
            return
        s.close_reason = reason
        try:
            s.proc.kill()
        except ProcessLookupError:
            pass
        if s.task is not None:
            await asyncio.shield(s.task)

    # ---- connections ----

    async def _accept_loop(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(lsock)
            except asyncio.CancelledError:
                raise
            except OSError as e:  # e.g. EMFILE: keep serving the others
                log.warning("accept failed: %s", e)
                await asyncio.sleep(0.1)
                continue
            peer = f"tcp:{addr[0]}:{addr[1]}" if conn.family in (socket.AF_INET, socket.AF_INET6) else _unix_peer(conn)
            t = loop.create_task(self._handshake(conn, peer))
            self._handshakes.add(t)
            t.add_done_callback(self._handshakes.discard)

    async def _recv_exact(self, conn: socket.socket, n: int) -> bytes:
        loop = asyncio.get_running_loop()
        buf = bytearray()
        while len(buf) < n:
            chunk = await loop.sock_recv(conn, n - len(buf))
            if not chunk:
                raise ConnectionError("client closed during the handshake")
            buf += chunk
        return bytes(buf)

    async def _reply(self, conn: socket.socket, status: int, msg: str) -> None:
        data = msg.encode("utf-8", "replace")[:MAX_TOKEN]
        await asyncio.get_running_loop().sock_sendall(conn, REPLY.pack(REPLY_MAGIC, status, len(data), 0) + data)

    async def _handshake(self, conn: socket.socket, peer: str) -> None:
        handed_over = False
        grant: SessionGrant | None = None   # set once authorized: the daemon holds state for it from then on
        try:
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # a client host that vanishes must not pin its GPU memory: its executor's read fails
                # after about a minute of silence
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
            try:
                magic, version, token_len, _ = HELLO.unpack(
                    await asyncio.wait_for(self._recv_exact(conn, HELLO.size), HELLO_TIMEOUT_S))
                if magic != HELLO_MAGIC or version != VERSION or token_len > MAX_TOKEN:
                    await self._reply(conn, CUDA_ERROR_INVALID_VALUE, "bad hello (not a TensorFusion stub?)")
                    return
                token = await asyncio.wait_for(self._recv_exact(conn, token_len), HELLO_TIMEOUT_S)
            except (ConnectionError, asyncio.TimeoutError, struct.error):
                return
            try:
                grant = await self._authorize(token)
            except PermissionError as e:
                await self._reply(conn, CUDA_ERROR_NOT_PERMITTED, str(e) or "lease rejected")
                return
            except Exception as e:  # the daemon's own failure: tell the client, keep serving
                log.exception("authorize failed")
                await self._reply(conn, CUDA_ERROR_UNKNOWN, f"worker error: {e}")
                return
            if self._stopping:
                await self._reply(conn, CUDA_ERROR_NOT_PERMITTED, "worker is stopping")
                return
            sid = grant.session_id
            self._starting.add(sid)
            try:
                await self._reply(conn, 0, "")
                conn.setblocking(True)
                try:
                    proc = await gpu_process.spawn_executor(conn.fileno(), backend_lib_dir=self.backend_lib_dir,
                                                            env=grant.env, preload=grant.preload)
                except Exception as e:
                    log.error("cannot start the GPU worker process for %s: %s", sid, e)
                    await self._end_unstarted(grant, f"spawn failed: {e}")
                    grant = None
                    return
                cancelled = sid in self._cancelled
            finally:
                self._starting.discard(sid)
                self._cancelled.discard(sid)
            handed_over = True
            conn.close()
            s = _Session(SessionInfo(sid, proc.pid, time.time(), peer), proc)
            self._sessions[sid] = s
            if cancelled:                     # a close order came while it was starting
                s.close_reason = "closed while starting"
                proc.kill()
            s.task = asyncio.get_running_loop().create_task(self._supervise(s))
        except asyncio.CancelledError:
            raise
        except OSError as e:
            log.info("handshake with %s failed: %s", peer, e)
        finally:
            if not handed_over:
                conn.close()
                if grant is not None:   # authorized, but the session never started (client gone, stopping)
                    await self._end_unstarted(grant, "session not started")

    async def _end_unstarted(self, grant: SessionGrant, reason: str) -> None:
        if self._on_end:
            try:
                await self._on_end(SessionEnd(grant.session_id, None, reason))
            except Exception:
                log.exception("on_end failed for %s", grant.session_id)

    async def _supervise(self, s: _Session) -> None:
        rc = await s.proc.wait()
        self._sessions.pop(s.info.session_id, None)
        if s.close_reason is not None:
            reason = s.close_reason
        elif rc == 0:
            reason = "client disconnected"
        elif rc < 0:
            reason = f"GPU worker process killed by signal {-rc}"
        else:
            reason = f"GPU worker process exited with status {rc}"
        if self._on_end:
            try:
                await self._on_end(SessionEnd(s.info.session_id, rc, reason))
            except Exception:
                log.exception("on_end failed for %s", s.info.session_id)


def _unix_peer(conn: socket.socket) -> str:
    """"unix:pid=N" from the kernel's credentials of the connecting process (SO_PEERCRED)."""
    try:
        pid, _uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
        return f"unix:pid={pid}"
    except OSError:
        return "unix"


# ---- standalone entry point ----

def _parse_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


async def _main(args) -> None:
    from tfclient import native
    counter = itertools.count(1)
    expected = (args.token or "").encode()

    async def authorize(token: bytes) -> SessionGrant:
        if expected and token != expected:
            raise PermissionError("bad token")
        return SessionGrant(session_id=f"s{next(counter)}")

    async def on_end(end: SessionEnd) -> None:
        print(f"session {end.session_id} ended: {end.reason}", file=sys.stderr, flush=True)

    lib_dir = str(native.require(native.emu_lib_dir() / "libcuda.so.1").parent) if args.backend == "emu" else None
    server = DataPlaneServer(unix_path=args.unix, tcp=_parse_hostport(args.tcp) if args.tcp else None,
                             backend_lib_dir=lib_dir, authorize=authorize, on_end=on_end)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready tcp_port={server.tcp_port}" if args.tcp else "ready", flush=True)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tfworker.dataplane", description=__doc__.splitlines()[0])
    ap.add_argument("--unix", help="Unix socket path to listen on")
    ap.add_argument("--tcp", help="HOST:PORT to listen on (port 0 = any)")
    ap.add_argument("--backend", choices=("emu", "nvidia"), default="emu")
    ap.add_argument("--token", default="", help="accept only this token (empty: accept all)")
    args = ap.parse_args(argv)
    if not args.unix and not args.tcp:
        ap.error("give --unix and/or --tcp")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
