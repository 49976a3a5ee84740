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
    backend = gpus.choose_backend(backend_name)
    scheduler = await serve(listen, str(home / "scheduler.db"), secret, insecure=insecure)
    node = socket.gethostname()
    # zero-config: admin/worker/tenant tokens of this scheduler, kept in $TF_HOME (0600)
    paths = auth.provision(scheduler.tokens, home, node_name=node)
    address = f"127.0.0.1:{scheduler.port}" if listen.startswith(("127.", "localhost", "0.0.0.0")) \
        else f"{listen.rsplit(':', 1)[0]}:{scheduler.port}"
    socket_path = str(home / f"worker-{os.getpid()}.sock")
    daemon = WorkerDaemon(scheduler=address, backend=backend, unix_path=socket_path,
                          tcp=_host_port(tcp) if tcp else None, node=node,
                          token=paths[auth.WORKER].read_text().strip())
    try:
        await daemon.start()
        config.write_embedded(config.Embedded(scheduler=address, pid=os.getpid(), worker_socket=socket_path))
        gpu_names = ", ".join(g.model for g in backend.gpus)
        tcp_note = f" and tcp {daemon.tcp[0]}:{daemon.dataplane.tcp_port}" if tcp else ""
        print(f"tensorfusion up: scheduler {address}, worker {socket_path}{tcp_note}, backend {backend.kind} "
              f"({gpu_names})", flush=True)
        print("tensorfusion up: ready (Ctrl-C stops)", flush=True)
        await _wait_for_stop_signal()
        print("tensorfusion up: stopping", flush=True)
    finally:
        config.embedded_file().unlink(missing_ok=True)
        await daemon.stop()
        await scheduler.stop()
    return 0


def _lock(name: str, blocking: bool):
    """An exclusive flock on $TF_HOME/<name> (0600), held while the returned file stays open (and released by
    the kernel when this process dies, so a crash never leaves a stale lock). None if not blocking and held."""
    fd = os.open(config.home() / name, os.O_RDWR | os.O_CREAT, 0o600)
    f = os.fdopen(fd, "r+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        f.close()
        return None
    return f


def run_foreground(listen: str, backend: str, tcp: str | None, insecure: bool = False) -> int:
    from tfclient import tls
    # zero-config stays on loopback; serving other hosts in clear is a choice made with --insecure
    tls.check_listen(listen, None, insecure, what="embedded scheduler",
                     fix="run `tensorfusion scheduler --tls-cert FILE --tls-key FILE` to serve other hosts")
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
        held.close()


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
                return running.scheduler
            if proc.poll() is not None:
                raise RuntimeError(f"the embedded default exited with {proc.returncode}; see {log_path}")
            time.sleep(0.1)
        proc.terminate()
        raise RuntimeError(f"the embedded default did not start within {timeout_s:.0f} s; see {log_path}")


def stop_background(timeout_s: float = 30.0) -> bool:
    running = config.read_embedded()
    if not running:
        return False
    os.kill(running.pid, signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(running.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.kill(running.pid, signal.SIGKILL)
    return True


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
    from tfworker.daemon import WorkerDaemon
    backend = gpus.choose_backend(args.backend, args.node)
    socket_path = args.unix or str(config.home() / f"worker-{os.getpid()}.sock")
    token = config.worker_token(getattr(args, "token_file", None))
    if not token:
        raise RuntimeError("no worker token: an admin creates one with `tensorfusion token create --role worker "
                           "--node NODE`; pass it with --token-file FILE or TF_WORKER_TOKEN")
    from tfclient import tls
    admin_tls = tls.ServerTLS.resolve(args.tls_cert, args.tls_key)
    tls.check_listen(args.admin, admin_tls, args.insecure, what="worker admin")
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
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bad address {text!r}: expected HOST:PORT")
    return host or "0.0.0.0", int(port)
