"""Running the services from the CLI: the embedded default (`up`: scheduler + one worker in one process on
this host), a background `up` started by `run`, and the foreground `scheduler` / `worker` commands.

Everything runs on uvloop. SIGINT/SIGTERM stop the services cleanly: the worker closes every session (its
GPU worker processes exit, freeing their memory), then the scheduler stops, then the state file goes.
"""
import asyncio
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time

import uvloop

from tfclient import config


def _run(coro) -> int:
    return uvloop.run(coro)


async def _wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _embedded(listen: str, backend_name: str, tcp: str | None, insecure: bool = False) -> int:
    from tfscheduler.server import serve
    from tfworker import gpus
    from tfworker.daemon import WorkerDaemon

    home = config.home()
    secret = config.secret()
    from tfscheduler import auth
    from tfworker.daemon import configure_logging
    configure_logging()
    backend = gpus.choose_backend(backend_name)
    tcp_address = _host_port(tcp) if tcp else None
    # metrics on loopback only, whatever --listen says: `curl` them here, or point a local Prometheus at them
    scheduler = await serve(listen, str(home / "scheduler.db"), secret, insecure=insecure,
                            metrics_listen="127.0.0.1:0")
    node = socket.gethostname()
    # zero-config: admin/worker/tenant tokens of this scheduler, kept in $TF_HOME (0600)
    paths = auth.provision(scheduler.tokens, home, node_name=node)
    address = f"127.0.0.1:{scheduler.port}" if listen.startswith(("127.", "localhost", "0.0.0.0")) \
        else f"{listen.rsplit(':', 1)[0]}:{scheduler.port}"
    socket_path = str(home / f"worker-{os.getpid()}.sock")
    daemon = WorkerDaemon(scheduler=address, backend=backend, unix_path=socket_path,
                          tcp=tcp_address, node=node, metrics_port="127.0.0.1:0",
                          token=paths[auth.WORKER].read_text().strip())
    try:
        await daemon.start()
        info = config.Embedded(scheduler=address, pid=os.getpid(), worker_socket=socket_path,
                               scheduler_metrics=f"http://127.0.0.1:{scheduler.metrics_port}/metrics",
                               worker_metrics=f"http://127.0.0.1:{daemon.metrics_bound}/metrics")
        config.write_embedded(info)
        gpu_names = ", ".join(g.model for g in backend.gpus)
        tcp_note = f" and tcp {daemon.tcp[0]}:{daemon.dataplane.tcp_port}" if tcp else ""
        # commands with this TF_HOME find it through embedded.json; others take --scheduler / TF_SCHEDULER
        print(f"tensorfusion up: scheduler {address} (TF_HOME {home})", flush=True)
        print(f"tensorfusion up: worker {socket_path}{tcp_note}, backend {backend.kind} ({gpu_names})", flush=True)
        print(f"tensorfusion up: metrics {info.scheduler_metrics} (scheduler), {info.worker_metrics} (worker)",
              flush=True)
        print("tensorfusion up: ready (Ctrl-C stops; `tensorfusion down` from another shell)", flush=True)
        await _wait_for_stop_signal()
        print("tensorfusion up: stopping", flush=True)
    finally:
        config.embedded_file().unlink(missing_ok=True)
        await daemon.stop()
        await scheduler.stop()
        _remove_run_files(home)
    return 0


def _lock(name: str, blocking: bool):
    """An exclusive flock on $TF_HOME/<name> (0600), held while the returned file stays open (and released by
    the kernel when this process dies, so a crash never leaves a stale lock). None if not blocking and held.
    The holder may unlink the file before closing it (`down` leaves no lock files behind): a waiter that then
    gets the lock of the unlinked file sees that the name now points elsewhere (or nowhere) and tries again."""
    path = config.home() / name
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        f = os.fdopen(fd, "r+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            f.close()
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return f
        f.close()


def _unlock_and_remove(f, name: str) -> None:
    """Removes $TF_HOME/<name> while its lock is held, then releases it (see _lock)."""
    try:
        (config.home() / name).unlink(missing_ok=True)
    finally:
        f.close()


def _remove_run_files(home) -> None:
    """What a stopped embedded default leaves that only a running one needs: the lease files folder of `run`
    (each run removes its own file; the folder goes once empty)."""
    try:
        (home / "leases").rmdir()
    except OSError:          # absent, or a run of another scheduler still holds a lease file in it
        pass


def run_foreground(listen: str, backend: str, tcp: str | None, insecure: bool = False) -> int:
    from tfclient import tls
    # zero-config stays on loopback; serving other hosts in clear is a choice made with --insecure
    tls.check_listen(listen, None, insecure, what="embedded scheduler",
                     fix="run `tensorfusion scheduler --tls-cert FILE --tls-key FILE` to serve other hosts")
    if tcp:         # the data plane carries lease tokens and the program's data
        tls.check_listen(tcp, None, insecure, what="embedded worker's data plane",
                         fix="run `tensorfusion worker --tls-cert FILE --tls-key FILE --tcp HOST:PORT` to serve "
                             "other hosts")
    # One embedded default per TF_HOME: the running one holds up.lock for its whole life.
    held = _lock("up.lock", blocking=False)
    if held is None:
        running = config.read_embedded()
        where = f" (pid {running.pid}, scheduler {running.scheduler})" if running else ""
        raise RuntimeError(f"an embedded default is already running{where}; stop it with `tensorfusion down`")
    try:
        running = config.read_embedded()
        if running:
            raise RuntimeError(f"an embedded default is already running (pid {running.pid}, scheduler "
                               f"{running.scheduler}); stop it with `tensorfusion down`")
        return _run(_embedded(listen, backend, tcp, insecure))
    finally:
        _unlock_and_remove(held, "up.lock")


def start_background(timeout_s: float = 60.0, env: dict | None = None) -> str:
    """Starts `tensorfusion up` detached (log in $TF_HOME/up.log) and returns its scheduler address. Commands
    started at the same moment queue on start.lock: the first starts it, the others find it running.
    env: its environment (default os.environ)."""
    with _lock("start.lock", blocking=True):
        running = config.read_embedded()
        if running:
            return running.scheduler
        log_path = config.home() / "up.log"
        print(f"tensorfusion: no scheduler configured; starting the embedded default in the background "
              f"(log: {log_path}, stop with `tensorfusion down`)", file=sys.stderr)
        with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "tfclient.cli", "up"], stdout=log, env=env,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            running = config.read_embedded()
            if running:
                print(f"tensorfusion: embedded default up: scheduler {running.scheduler}, metrics "
                      f"{running.scheduler_metrics} and {running.worker_metrics}", file=sys.stderr)
                return running.scheduler
            if proc.poll() is not None:
                raise RuntimeError(f"the embedded default exited with {proc.returncode}: "
                                   f"{_last_line(log_path) or 'no output'} (log: {log_path})")
            time.sleep(0.1)
        proc.terminate()
        raise RuntimeError(f"the embedded default did not start within {timeout_s:.0f} s; see {log_path}")


def _last_line(path) -> str:
    """The last non-empty line of a log file (why a background service ended), "" if none."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def stop_background(timeout_s: float = 30.0) -> bool:
    """Stops the running embedded default (SIGINT, SIGKILL after timeout_s) and removes the run files it owns
    (start.lock, and what a killed one could not remove itself: up.lock, its worker-*.lock, embedded.json, the
    empty leases folder). -> whether one was running."""
    with _lock("start.lock", blocking=True) as starting:     # no `run` starts a new one meanwhile
        running = config.read_embedded()
        if running:
            os.kill(running.pid, signal.SIGINT)
            deadline = time.monotonic() + timeout_s
            while _alive(running.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(running.pid):
                os.kill(running.pid, signal.SIGKILL)
                deadline = time.monotonic() + 5.0
                while _alive(running.pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
        home = config.home()
        held = _lock("up.lock", blocking=False)       # free now, unless an `up` runs in the foreground
        if held is not None:
            config.embedded_file().unlink(missing_ok=True)
            from tfworker import limits
            limits.remove_stale_identities(str(home))
            _remove_dead_sockets(home)
            _remove_run_files(home)
            _unlock_and_remove(held, "up.lock")
        _unlock_and_remove(starting, "start.lock")
    return running is not None


def _remove_dead_sockets(home) -> None:
    """Data-plane sockets (worker-<pid>.sock) of worker processes that are gone (a killed `up` leaves its own)."""
    import re
    for path in home.glob("worker-*.sock"):
        m = re.fullmatch(r"worker-(\d+)\.sock", path.name)
        if m and not _alive(int(m.group(1))):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether pid runs (a zombie, exited but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def _print_election_changes() -> None:
    """A replica says on stdout when it starts or stops leading (tfscheduler.election's log lines), so that an
    operator sees a failover in each replica's output."""
    import logging
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("tensorfusion scheduler: %(message)s"))
    log = logging.getLogger("tfscheduler.election")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


async def _scheduler(listen: str, db_path: str, config_path: str | None, metrics_listen: str | None,
                     timings: dict, store: dict | None = None, tls=None, insecure: bool = False,
                     worker_tls=None) -> int:
    from tfscheduler import auth
    from tfscheduler.server import serve
    if store and store.get("elect", True):
        _print_election_changes()
    server = await serve(listen, db_path, config.secret(), config_path=config_path, metrics_listen=metrics_listen,
                         tls=tls, insecure=insecure, worker_tls=worker_tls, **(store or {}), **timings)
    await server.settled()
    role = ""
    if store:
        db_path = store["store"]
        if server.election is not None:
            role = ", leading" if server.leading else f", following (leader: {server.election.leader})"
    created = auth.bootstrap_admin(server.tokens, config.home()) if server.leading else None
    if created:
        print(f"tensorfusion scheduler: first admin token written to {created} (0600); create tenant and worker "
              f"tokens with `tensorfusion token create`", flush=True)
    mode = "plaintext" if tls is None else "TLS" + (", client certificates required" if tls.client_ca else "")
    print(f"tensorfusion scheduler: listening on {listen.rsplit(':', 1)[0]}:{server.port} ({mode}), state {db_path}"
          f"{role}", flush=True)
    try:
        await _wait_for_stop_signal()
    finally:
        await server.stop()
    return 0


def run_scheduler_foreground(listen: str, db_path: str, config_path: str | None = None,
                             metrics_listen: str | None = None, store: dict | None = None, tls=None,
                             insecure: bool = False, worker_tls=None, **timings) -> int:
    """timings: lease_ttl_s / heartbeat_interval_s / node_timeout_s overriding the config file; store: serve()'s
    etcd options (tfscheduler.__main__.store_options); tls / insecure / worker_tls: as serve()'s."""
    return _run(_scheduler(listen, db_path, config_path, metrics_listen, timings, store, tls, insecure, worker_tls))


async def _worker(args, scheduler: str) -> int:
    from tfworker import gpus
    from tfworker.daemon import WorkerDaemon, configure_logging
    from tfclient import tls
    configure_logging()
    if args.metrics_port is not None and not tls.valid_port(str(args.metrics_port)):
        raise ValueError(f"--metrics-port {args.metrics_port}: use a port from 0 to 65535")
    backend = gpus.choose_backend(args.backend, args.node)
    socket_path = args.unix or str(config.home() / f"worker-{os.getpid()}.sock")
    token = config.worker_token(getattr(args, "token_file", None))
    if not token:
        raise RuntimeError("no worker token: an admin creates one with `tensorfusion token create --role worker "
                           "--node NODE`; pass it with --token-file FILE or TF_WORKER_TOKEN")
    admin_tls = tls.ServerTLS.resolve(args.tls_cert, args.tls_key)
    tls.check_listen(args.admin, admin_tls, args.insecure, what="worker admin")
    if args.tcp:    # the data plane carries lease tokens and the program's data: TLS with --tls-cert
        tls.check_listen(args.tcp, admin_tls, args.insecure, what="worker data plane")
    # the same certificate serves the TCP data plane, TLS-only then; client certificates that stubs present
    # there must chain to --tls-ca (the pool's CA)
    from tfworker.dataplane import TlsFiles
    dataplane_tls = TlsFiles(os.path.abspath(admin_tls.cert), os.path.abspath(admin_tls.key),
                             os.path.abspath(args.tls_ca) if args.tls_ca else None) if admin_tls else None
    daemon = WorkerDaemon(scheduler=scheduler, backend=backend, unix_path=socket_path,
                          tcp=_host_port(args.tcp) if args.tcp else None, advertise=args.advertise,
                          admin_listen=args.admin, pool=args.pool, node=args.node, metrics_port=args.metrics_port,
                          token=token, admin_tls=admin_tls, scheduler_tls=worker_scheduler_tls(args),
                          tls=dataplane_tls)
    try:
        await daemon.start()
    except BaseException:
        await daemon.stop()       # registration refused: stop the servers already started, then report one line
        raise
    print(f"tensorfusion worker: registered with {scheduler} as {daemon.worker_id}, backend {backend.kind}",
          flush=True)
    try:
        await _wait_for_stop_signal()
    finally:
        await daemon.stop()
    return 0


def worker_scheduler_tls(args):
    """How a worker dials the scheduler: TLS when a CA is given (--tls-ca, else TF_TLS_CA), presenting TF_TLS_CERT/
    TF_TLS_KEY, else its own --tls-cert/--tls-key (issued with clientAuth by `certs issue`) as client certificate;
    plaintext without a CA."""
    from tfclient import tls
    ca = args.tls_ca or os.environ.get("TF_TLS_CA")
    if not ca:
        return None
    if os.environ.get("TF_TLS_CERT") or os.environ.get("TF_TLS_KEY"):
        return tls.ClientTLS.resolve(ca=ca)
    return tls.ClientTLS.resolve(ca=ca, cert=args.tls_cert, key=args.tls_key)


def run_worker_foreground(args, scheduler: str) -> int:
    return _run(_worker(args, scheduler))


def _host_port(text: str) -> tuple[str, int]:
    from tfclient import tls
    host, sep, port = text.rpartition(":")
    if not sep or not tls.valid_port(port):
        raise ValueError(f"bad address {text!r}: expected HOST:PORT (a port from 0 to 65535)")
    return host or "0.0.0.0", int(port)
