"""Data-plane server: accepts client stub connections, checks their lease, hands each to its own GPU
worker process (tf-executor) and supervises those processes (reaps them, and kills one stopped by a signal for
STOPPED_LIMIT_S, whose client would otherwise wait forever: stub_c/README.md, A lost worker).

Composed by tfworker.daemon (which supplies `authorize` and `on_end`), or run alone for tests and for
users without a scheduler:
    python -m tfworker.dataplane --unix PATH [--tcp HOST:PORT] [--backend emu|nvidia] [--token TOKEN]
                                 [--tls-cert PEM --tls-key PEM [--tls-ca PEM]]

Handshake (little endian), the contract with stub_c/transport.c:
    client: "TFH1" u32 version=1 u32 token_len u32 reserved + token bytes
    server: "TFR1" i32 status u32 msg_len u32 reserved + msg bytes   (status 0 = accepted, else a CUresult)
After status 0 the socket belongs to the session's executor, which speaks the call protocol from the
next byte on; this process closes its copy and never reads it again.

TLS (a DataPlaneServer given `tls`: its TCP listener is TLS-only, Unix sockets stay plain): a TLS session
cannot move between processes without kernel TLS (not available everywhere), so the executor is spawned
at accept, before any byte is read, with the daemon-wide environment; it makes the handshake, reads the
same hello inside TLS and sends the token here over a control socket (tfworker/executor/tls_start.c):
    executor: "TFA1" u32 token_len + token
    daemon:   "TFG1" i32 status u32 msg_len u32 env_len u32 preload_len + msg + env ("K=V\0"...) + preload
The executor applies the grant's environment before it loads the backend and answers the client's hello
itself. An unauthenticated connection costs one process without a backend, for at most
TLS_START_TIMEOUT_S, and at most MAX_PREAUTH of them exist at once (more are closed at accept).
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
AUTH_REQ = struct.Struct("<4sI")
GRANT = struct.Struct("<4siIII")
AUTH_MAGIC, GRANT_MAGIC = b"TFA1", b"TFG1"
TLS_START_TIMEOUT_S = 12.0   # spawn + handshake + hello, until the token is here (the executor waits 10 s per step)
# A GPU worker process stopped by a signal (SIGSTOP: state T) this long is killed, so that its client's pending
# call ends with CUDA_ERROR_DEVICE_UNAVAILABLE instead of waiting forever and the vGPU's memory is freed. State T
# comes only from a stop signal, never from load (a process starved on a machine at load 20 is R or S), and the
# executor has no terminal whose job control could stop it; a debugger's stop (t) is left alone. 10 s lets a
# deliberate stop-and-continue pass (an operator's look, a snapshot).
STOPPED_LIMIT_S = 10.0
STOPPED_CHECK_S = 1.0
MAX_PREAUTH = 32             # TLS executors not yet authorized, at once
CUDA_ERROR_INVALID_VALUE = 1
CUDA_ERROR_NOT_PERMITTED = 800
CUDA_ERROR_UNKNOWN = 999


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a TLS data-plane listener: the worker's certificate chain and key; `ca`, when set,
    verifies the client certificates clients present (clients without one are authenticated by their
    lease token alone)."""
    cert: str
    key: str
    ca: str | None = None

    def check(self) -> None:
        """Raises ValueError (one line) when a file cannot be read."""
        for what, path in (("--tls-cert", self.cert), ("--tls-key", self.key), ("--tls-ca", self.ca)):
            if path is not None and not os.access(path, os.R_OK):
                raise ValueError(f"{what} {path}: not a readable file")


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
                 on_end: Callable[[SessionEnd], Awaitable[None]] | None = None,
                 tls: TlsFiles | None = None,
                 spawn_env: Callable[[], tuple[dict[str, str], list[str]]] | None = None):
        """tls: the TCP listener speaks TLS only. spawn_env: the daemon-wide (env, preload) a TLS executor
        starts with, before its client is known (the limiter preloaded when grants may carry limits)."""
        if not unix_path and not tcp:
            raise ValueError("DataPlaneServer needs a unix path, a tcp address, or both")
        if tls is not None:
            if not tcp:
                raise ValueError("TLS is for the TCP listener: give a tcp address")
            tls.check()
        self.tls = tls
        self._spawn_env = spawn_env
        self._preauth: set[gpu_process.ExecutorProcess] = set()
        self.max_preauth = MAX_PREAUTH
        self._npreauth = 0        # TLS connections accepted and not yet authorized (counted at accept)
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
        for p in list(self._preauth):
            try:
                p.kill()
            except ProcessLookupError:
                pass
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
            is_tcp = conn.family in (socket.AF_INET, socket.AF_INET6)
            peer = f"tcp:{addr[0]}:{addr[1]}" if is_tcp else _unix_peer(conn)
            if is_tcp and self.tls is not None:
                if self._npreauth >= self.max_preauth:   # bound what unauthenticated peers can cost
                    log.warning("%d TLS connections not yet authorized: closing %s at once", self._npreauth, peer)
                    conn.close()
                    continue
                self._npreauth += 1
                t = loop.create_task(self._tls_session(conn, peer))
            else:
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

    @staticmethod
    def _tcp_options(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # a client host that vanishes must not pin its GPU memory: its executor's read fails
        # after about a minute of silence
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)

    async def _reply(self, conn: socket.socket, status: int, msg: str) -> None:
        data = msg.encode("utf-8", "replace")[:MAX_TOKEN]
        await asyncio.get_running_loop().sock_sendall(conn, REPLY.pack(REPLY_MAGIC, status, len(data), 0) + data)

    async def _handshake(self, conn: socket.socket, peer: str) -> None:
        handed_over = False
        grant: SessionGrant | None = None   # set once authorized: the daemon holds state for it from then on
        try:
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                self._tcp_options(conn)
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

    async def _tls_session(self, conn: socket.socket, peer: str) -> None:
        """A TLS-listener connection: its executor starts now and does the handshake; we authorize the
        token it forwards and answer the grant (or the refusal, which it relays to the client)."""
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        proc = None
        counted = True
        try:
            try:
                self._tcp_options(conn)
                conn.setblocking(True)
                env, preload = self._spawn_env() if self._spawn_env else ({}, [])
                proc = await gpu_process.spawn_tls_executor(
                    conn.fileno(), theirs.fileno(), backend_lib_dir=self.backend_lib_dir, cert=self.tls.cert,
                    key=self.tls.key, ca=self.tls.ca, env=env, preload=preload)
            except Exception as e:
                log.error("cannot start the GPU worker process for %s: %s", peer, e)
                return
            finally:
                conn.close()
                theirs.close()
            self._preauth.add(proc)
            ours.setblocking(False)
            try:
                magic, n = AUTH_REQ.unpack(await asyncio.wait_for(self._recv_exact(ours, AUTH_REQ.size),
                                                                  TLS_START_TIMEOUT_S))
                if magic != AUTH_MAGIC or n > MAX_TOKEN:
                    raise ConnectionError("bad authorization request")
                token = await asyncio.wait_for(self._recv_exact(ours, n), TLS_START_TIMEOUT_S)
            except (ConnectionError, asyncio.TimeoutError, struct.error):
                return          # no handshake, a bad hello or a silent client: the executor is ended below
            try:
                grant = await self._authorize(token)
            except PermissionError as e:
                await self._refuse(ours, proc, CUDA_ERROR_NOT_PERMITTED, str(e) or "lease rejected")
                return
            except Exception as e:
                log.exception("authorize failed")
                await self._refuse(ours, proc, CUDA_ERROR_UNKNOWN, f"worker error: {e}")
                return
            # from here the daemon holds state for the session: _supervise ends it however it goes
            self._preauth.discard(proc)
            self._npreauth -= 1
            counted = False
            s = _Session(SessionInfo(grant.session_id, proc.pid, time.time(), peer), proc)
            self._sessions[grant.session_id] = s
            s.task = loop.create_task(self._supervise(s))
            if self._stopping:
                s.close_reason = "worker is stopping"
                proc.kill()
                proc = None
                return
            try:
                await self._grant(ours, 0, "", grant.env, grant.preload)
            except (OSError, asyncio.TimeoutError):
                proc.kill()      # the executor is gone or stuck: the session ends through _supervise
            proc = None          # handed over
        except asyncio.CancelledError:
            raise
        finally:
            ours.close()
            if counted:
                self._npreauth -= 1
            if proc is not None:     # never authorized: no session, nothing but the process to end
                try:
                    await _end_process(proc)
                finally:
                    self._preauth.discard(proc)

    async def _refuse(self, sock: socket.socket, proc, status: int, msg: str) -> None:
        """Tells the executor to refuse its client and gives it the time to say so."""
        try:
            await self._grant(sock, status, msg)
            await asyncio.wait_for(proc.wait(), TLS_START_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError):
            pass

    async def _grant(self, sock: socket.socket, status: int, msg: str, env: dict[str, str] | None = None,
                     preload: list[str] | None = None) -> None:
        m = msg.encode("utf-8", "replace")[:MAX_TOKEN]
        e = b"".join(f"{k}={v}".encode() + b"\0" for k, v in (env or {}).items())
        p = ":".join(str(x) for x in (preload or [])).encode()
        await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(
            sock, GRANT.pack(GRANT_MAGIC, status, len(m), len(e), len(p)) + m + e + p), TLS_START_TIMEOUT_S)

    async def _end_unstarted(self, grant: SessionGrant, reason: str) -> None:
        if self._on_end:
            try:
                await self._on_end(SessionEnd(grant.session_id, None, reason))
            except Exception:
                log.exception("on_end failed for %s", grant.session_id)

    @staticmethod
    async def _wait_unless_stopped(s: _Session) -> int:
        """s's GPU worker process's exit status; it is killed once it has been stopped (state T) for
        STOPPED_LIMIT_S (s.close_reason says so)."""
        exited = asyncio.ensure_future(s.proc.wait())
        stopped_since = None
        while not exited.done():
            await asyncio.wait({exited}, timeout=STOPPED_CHECK_S)
            if exited.done():
                break
            if gpu_process.process_state(s.proc.pid) != "T":
                stopped_since = None
                continue
            now = time.monotonic()
            stopped_since = stopped_since or now
            if now - stopped_since >= STOPPED_LIMIT_S and s.close_reason is None:
                s.close_reason = f"GPU worker process stopped (SIGSTOP) for {STOPPED_LIMIT_S:g} s: killed"
                log.warning("session %s: %s", s.info.session_id, s.close_reason)
                try:
                    s.proc.kill()
                except ProcessLookupError:
                    pass
        return exited.result()

    async def _supervise(self, s: _Session) -> None:
        rc = await self._wait_unless_stopped(s)
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


async def _end_process(proc: gpu_process.ExecutorProcess, grace_s: float = 0.5) -> None:
    """Waits briefly for an executor that is ending by itself (it may still be telling a refused client
    why), then kills it; returns once it is reaped."""
    waiting = asyncio.ensure_future(proc.wait())
    done, _ = await asyncio.wait({waiting}, timeout=grace_s)
    if not done:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    await waiting


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
    tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_ca) if args.tls_cert else None
    server = DataPlaneServer(unix_path=args.unix, tcp=_parse_hostport(args.tcp) if args.tcp else None,
                             backend_lib_dir=lib_dir, authorize=authorize, on_end=on_end, tls=tls)
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
    ap.add_argument("--tls-cert", help="PEM certificate chain: the TCP listener speaks TLS only")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    ap.add_argument("--tls-ca", help="PEM CA that client certificates (when presented) must chain to")
    args = ap.parse_args(argv)
    if not args.unix and not args.tcp:
        ap.error("give --unix and/or --tcp")
    if bool(args.tls_cert) != bool(args.tls_key) or (args.tls_ca and not args.tls_cert):
        ap.error("--tls-cert and --tls-key go together (--tls-ca needs them)")
    if args.tls_cert and not args.tcp:
        ap.error("--tls-cert is for the TCP listener: give --tcp")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
