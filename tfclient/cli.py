"""The `tensorfusion` command: up, down, scheduler, worker, run, limits, status, top, demo, token, workload, certs.

Each subcommand is a small function over the library pieces (tfclient.embedded for the embedded default,
tfclient.scheduler_client for the control plane, tfworker.limits for local mode). Every failure ends with
ONE line on stderr ("tensorfusion CMD: what is wrong and what to do") and exit code 1, never a traceback
(TF_DEBUG=1 re-raises unexpected errors to show it); `run` otherwise exits with its command's exit code.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys

from tfclient import config, native

# Commands that only dial a scheduler: they take --tls-ca (exported as TF_TLS_CA for the process and what it runs)
# and keep gRPC's own log lines (a failed TLS handshake logs one) off stderr, where the one-line error goes.
CLIENT_COMMANDS = ("run", "limits", "status", "top", "token", "workload")


class CliError(Exception):
    """A mistake or failure to report as one line (exit code 1)."""


class _Parser(argparse.ArgumentParser):
    """argparse with usage mistakes as one line and exit code 1, like every other CLI failure."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # argparse reads a word that starts with '-' as an option unless it matches this pattern, which only
        # plain numbers do ('-5', not '-5Gi'): `run --vram -5Gi` failed with "expected one argument" while
        # `--vram=-5Gi` got the refusal. Any '-' followed by a digit is a value here (none of our options
        # looks like that), so both spellings reach the same check.
        self._negative_number_matcher = re.compile(r"^-\.?[0-9]")

    def error(self, message):
        self.exit(1, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _parser_of(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.command in CLIENT_COMMANDS:
        if getattr(args, "tls_ca", None):
            os.environ["TF_TLS_CA"] = args.tls_ca
        if "GRPC_VERBOSITY" not in os.environ and not os.environ.get("TF_DEBUG"):
            os.environ["GRPC_VERBOSITY"] = "NONE"
            _QUIETED.append("GRPC_VERBOSITY")
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except CliError as e:
        print(f"tensorfusion {args.command}: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # typed tfclient errors and anything unexpected: one clear line
        from tfclient import errors
        if isinstance(e, (errors.TensorFusionError, OSError, ValueError, RuntimeError)):
            print(f"tensorfusion {args.command}: {_one_line(e)}", file=sys.stderr)
            return 1
        if os.environ.get("TF_DEBUG"):
            raise
        print(f"tensorfusion {args.command}: internal error ({type(e).__name__}: {_one_line(e)}); "
              f"TF_DEBUG=1 shows the traceback", file=sys.stderr)
        return 1


def _parser_of(parser: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The parser of the (sub)command args were parsed for, so that a mistake points at its own --help."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, action.dest, None) in action.choices:
            return _parser_of(action.choices[getattr(args, action.dest)], args)
    return parser


NAMESPACE_HELP = "namespace (default: your token's; admin: default)"

_QUIETED: list = []     # environment variables main() set for itself only: not passed on to `run`'s command


TLS_CA_HELP = ("dial the scheduler over TLS, verifying it with this CA (default $TF_TLS_CA; a client certificate "
               "comes from $TF_TLS_CERT/$TF_TLS_KEY)")


def _client_args(p, default=None) -> None:
    """--scheduler and --tls-ca of a command that only dials a scheduler (limits, status, top, token,
    workload).
    token and workload take them before or after their action (`token create --role ... --scheduler H:P`): each
    action repeats them with default=argparse.SUPPRESS, so one not given there keeps the command's value."""
    p.add_argument("--scheduler", default=default, metavar="HOST:PORT[,HOST:PORT...]",
                   help="the scheduler, or every replica of it (default $TF_SCHEDULER, else the embedded default's)")
    p.add_argument("--tls-ca", metavar="FILE", default=default, help=TLS_CA_HELP)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tensorfusion", description="Fractional, remote vGPUs for CUDA programs.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    up = sub.add_parser("up", help="embedded default: scheduler + one worker on this host (foreground)")
    up.add_argument("--listen", default="127.0.0.1:0", help="scheduler address (default: a free loopback port)")
    up.add_argument("--backend", default="auto", choices=["auto", "nvidia", "emu"],
                    help="GPU backend for the worker (auto: NVIDIA GPUs if present, else the emulated device)")
    up.add_argument("--tcp", default=None, metavar="HOST:PORT", help="also serve the data plane on TCP")
    up.add_argument("--insecure", action="store_true",
                    help="allow --listen or --tcp on a non-loopback address without TLS (use `tensorfusion "
                         "scheduler` and `worker` with --tls-cert/--tls-key to serve other hosts)")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop the embedded default started in the background")
    down.set_defaults(func=cmd_down)

    sched = sub.add_parser("scheduler", help="run the scheduler service (foreground)")
    sched.add_argument("--listen", default="127.0.0.1:7070",
                       help="gRPC listen address (default 127.0.0.1:7070; 0.0.0.0:7070 to serve other hosts)")
    sched.add_argument("--db", default=None, help="SQLite state file (default $TF_HOME/scheduler.db)")
    sched.add_argument("--config", default=None, help="TOML file: pools (strategy, oversell), quotas, models, timings")
    sched.add_argument("--metrics-listen", default=None, metavar="HOST:PORT", help="serve Prometheus metrics here")
    sched.add_argument("--lease-ttl", type=float, default=None, help="lease TTL in seconds (default 30)")
    sched.add_argument("--heartbeat-interval", type=float, default=None, help="worker heartbeat period (default 5 s)")
    sched.add_argument("--node-timeout", type=float, default=None,
                       help="seconds without heartbeat before a node is unavailable (default 15)")
    from tfscheduler.store_args import add_store_args
    add_store_args(sched)
    from tfclient.tls import add_server_args
    add_server_args(sched)
    sched.set_defaults(func=cmd_scheduler)

    worker = sub.add_parser("worker", help="run the worker daemon on this GPU host (foreground)")
    worker.add_argument("--scheduler", default=None, metavar="HOST:PORT[,HOST:PORT...]",
                        help="the scheduler, or every replica of it (default $TF_SCHEDULER)")
    worker.add_argument("--backend", default="auto", choices=["auto", "nvidia", "emu"])
    worker.add_argument("--unix", default=None, help="data-plane Unix socket (default $TF_HOME/worker-<pid>.sock)")
    worker.add_argument("--tcp", default=None, metavar="HOST:PORT", help="data-plane TCP listen address")
    worker.add_argument("--advertise", default=None, help="host name clients use to reach the TCP data plane")
    worker.add_argument("--admin", default="127.0.0.1:0", help="worker admin gRPC listen address")
    worker.add_argument("--pool", default="default", help="GPU pool this node belongs to")
    worker.add_argument("--node", default=None, help="node name (default: host name)")
    worker.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    worker.add_argument("--token-file", default=None,
                        help="worker bearer token bound to this node (default $TF_WORKER_TOKEN, $TF_HOME/worker.token)")
    add_server_args(worker, worker=True)
    worker.set_defaults(func=cmd_worker)

    run = sub.add_parser("run", help="run a command on a vGPU: run [options] -- CMD ARGS...")
    run.add_argument("--scheduler", default=None, metavar="HOST:PORT[,HOST:PORT...]",
                     help="the scheduler, or every replica of it (default: $TF_SCHEDULER or embedded)")
    run.add_argument("--tflops", default=None,
                     help="TFLOPS request (FP16 dense, 0 to 1000000); with neither --tflops nor --vram the "
                          "pool's default profile (as configured: the whole VRAM of one GPU, no compute limit)")
    run.add_argument("--tflops-limit", default=None, help="TFLOPS limit (default: the request)")
    run.add_argument("--vram", default=None, help="VRAM request, e.g. 512Mi, 2Gi (plain number = MiB; up to 1024Ti)")
    run.add_argument("--vram-limit", default=None, help="VRAM limit (default: the request)")
    run.add_argument("--gpus", default=None, metavar="N",
                     help="GPUs of one worker, each with the requests and limits given (default 1); the command "
                          "sees them as devices 0..N-1")
    run.add_argument("--qos", default=None, choices=["low", "medium", "high", "critical"],
                     help="QoS level (default medium); higher may preempt lower")
    run.add_argument("--pool", default=None, help="GPU pool (default: default)")
    run.add_argument("--workload", default=None,
                     help="join workload NAME (created first with `tensorfusion workload apply -f FILE`; an "
                          "unknown NAME is refused); with no --tflops/--vram the workload's current resources")
    run.add_argument("--gpu-model", default=None, help="only GPUs of this model")
    run.add_argument("--transport", default=None, choices=["auto", "unix", "tcp"],
                     help="data plane to use (auto: Unix socket when the worker is on this host); tcp is TLS "
                          "when the worker requires it")
    run.add_argument("--local", action="store_true",
                     help="local vGPU: run on this host's GPU with the limiter preloaded (no scheduler)")
    run.add_argument("--tls-ca", metavar="FILE", default=None,
                     help=TLS_CA_HELP + "; `run` also verifies a TLS worker's data plane with it")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    run.set_defaults(func=cmd_run)

    lim = sub.add_parser("limits", help="change a running allocation's limits live: limits ALLOCATION "
                                        "[--tflops-limit X] [--vram-limit Y]")
    _client_args(lim)
    lim.add_argument("allocation", help="allocation id (`tensorfusion status` lists them; `run` gives its command "
                                        "$TF_ALLOCATION)")
    lim.add_argument("--tflops-limit", default=None, help="new TFLOPS limit per GPU (not below the request)")
    lim.add_argument("--vram-limit", default=None,
                     help="new VRAM limit per GPU, e.g. 512Mi, 2Gi (not below the request; lowered below what "
                          "the program holds, its next allocation fails with CUDA_ERROR_OUT_OF_MEMORY)")
    lim.set_defaults(func=cmd_limits)

    status = sub.add_parser("status", help="pool, nodes, GPUs and allocations")
    _client_args(status)
    status.add_argument("-o", "--output", default="table", choices=["table", "json"],
                        help="table (default) or json (the same, as one document)")
    status.set_defaults(func=cmd_status)

    top = sub.add_parser("top", help="live view of GPUs, allocations and workloads (Ctrl-C stops)")
    _client_args(top)
    top.add_argument("--once", action="store_true", help="print one frame and exit (also what a piped `top` does)")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between frames (default 1)")
    top.set_defaults(func=cmd_top)

    demo = sub.add_parser("demo", help="build and run the bundled sample CUDA programs through `run`")
    demo.set_defaults(func=cmd_demo)

    token = sub.add_parser("token", help="bearer tokens of the scheduler (admin): create, revoke, list")
    _client_args(token)
    tsub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = tsub.add_parser("create", help="print a new token (shown once)")
    create.add_argument("--role", required=True, choices=["tenant", "worker", "admin"])
    create.add_argument("--namespace", default="", help="tenant: the namespace it may use")
    create.add_argument("--node", default="", help="worker: the node name it may register as")
    create.add_argument("--description", default="")
    revoke = tsub.add_parser("revoke", help="revoke a token by id (`token list` shows ids)")
    revoke.add_argument("id")
    tlist = tsub.add_parser("list", help="active tokens (ids, roles, bindings)")
    for action in (create, revoke, tlist):
        _client_args(action, default=argparse.SUPPRESS)
    token.set_defaults(func=cmd_token)

    wl = sub.add_parser("workload", help="workloads and their autoscaling (seed 004): apply, get, list")
    _client_args(wl)
    wl.add_argument("--namespace", default="", help=NAMESPACE_HELP)
    wsub = wl.add_subparsers(dest="workload_command", metavar="ACTION", required=True)
    wapply = wsub.add_parser("apply", help="create or replace a workload from a YAML (or JSON) file")
    wapply.add_argument("-f", "--filename", required=True, help="the workload document ('-' = stdin)")
    wget = wsub.add_parser("get", help="a workload's spec and status (conditions, recommendation, cron rule)")
    wget.add_argument("name")
    wget.add_argument("-o", "--output", default="yaml", choices=["yaml", "json"])
    wlist = wsub.add_parser("list", help="workloads, their recommendation and active cron rule")
    wlist.add_argument("-o", "--output", default="table", choices=["table", "yaml", "json"],
                       help="table (default), or every workload as `get` shows it: yaml (a list) or json (an array)")
    for action in (wapply, wget, wlist):
        _client_args(action, default=argparse.SUPPRESS)
        action.add_argument("--namespace", default=argparse.SUPPRESS, help=NAMESPACE_HELP)
    wl.set_defaults(func=cmd_workload)

    certs = sub.add_parser("certs", help="a small CA and the TLS certificates of a pool's control plane")
    csub = certs.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    cinit = csub.add_parser("init", help="create the CA: DIR/ca.crt and DIR/ca.key (0600)")
    cinit.add_argument("--dir", required=True, help="folder for the CA (created 0700 if missing)")
    cinit.add_argument("--days", type=int, default=3650, help="validity in days (default 3650)")
    cissue = csub.add_parser("issue", help="a certificate signed by the CA: DIR/NAME.crt and DIR/NAME.key (0600)")
    cissue.add_argument("--dir", required=True, help="the CA's folder (from `certs init`)")
    cissue.add_argument("--name", required=True, help="file name and common name, e.g. scheduler, worker-gpu1")
    cissue.add_argument("--host", default="", metavar="HOST[,HOST...]",
                        help="DNS names and IP addresses clients dial this server at (server certificates)")
    cissue.add_argument("--client", action="store_true",
                        help="a client certificate (clientAuth only) for schedulers that require one")
    cissue.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    certs.set_defaults(func=cmd_certs)
    return p


def cmd_up(args) -> int:
    from tfclient import embedded
    return embedded.run_foreground(listen=args.listen, backend=args.backend, tcp=args.tcp, insecure=args.insecure)


def cmd_down(args) -> int:
    from tfclient import embedded
    if not embedded.stop_background():
        print("tensorfusion down: no embedded default is running")
    else:
        print("tensorfusion down: stopped")
    return 0


def cmd_scheduler(args) -> int:
    from tfclient import embedded
    timings = {k: v for k, v in (("lease_ttl_s", args.lease_ttl), ("heartbeat_interval_s", args.heartbeat_interval),
                                 ("node_timeout_s", args.node_timeout)) if v is not None}
    from tfscheduler.store_args import store_options
    from tfclient import tls
    server_tls = tls.ServerTLS.resolve(args.tls_cert, args.tls_key, args.tls_client_ca)
    tls.check_listen(args.listen, server_tls, args.insecure)
    worker_tls = tls.ClientTLS.resolve(ca=args.tls_ca) if (args.tls_ca or os.environ.get("TF_TLS_CA")) else None
    return embedded.run_scheduler_foreground(args.listen, args.db or str(config.home() / "scheduler.db"),
                                             config_path=args.config, metrics_listen=args.metrics_listen,
                                             store=store_options(args) or None, tls=server_tls,
                                             insecure=args.insecure, worker_tls=worker_tls, **timings)


def cmd_worker(args) -> int:
    from tfclient import embedded
    address = config.scheduler_address(args.scheduler)
    if not address:
        raise CliError("no scheduler: pass --scheduler HOST:PORT or set TF_SCHEDULER")
    return embedded.run_worker_foreground(args, address)


def command_of(args) -> list[str]:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise CliError("no command given: use `tensorfusion run [options] -- CMD ARGS...`")
    check_command(cmd[0])
    return cmd


def check_command(name: str) -> str:
    """The path `name` runs as, checked before any vGPU is allocated. CliError (one line) when it is
    missing, a directory or not executable."""
    if os.sep not in name:
        found = shutil.which(name)
        if found is None:
            raise CliError(f"command not found: {name} (not on PATH; give its path, e.g. ./{name})")
        return found
    if not os.path.exists(name):
        raise CliError(f"command not found: {name} (no such file)")
    if os.path.isdir(name):
        raise CliError(f"cannot run {name}: it is a directory, not a program")
    if not os.access(name, os.X_OK):
        raise CliError(f"cannot run {name}: not executable (chmod +x {name}, or run it through its interpreter)")
    return name


def _spawn(cmd: list[str], env: dict) -> int:
    """Runs cmd to its end -> its exit code (128+N when killed by signal N); OSError -> CliError. cmd ends when
    this process does, however it ends (tfclient/die_with_parent.py)."""
    from pathlib import Path
    starter = [sys.executable, "-I", "-S", str(Path(__file__).with_name("die_with_parent.py")), str(os.getpid())]
    try:
        proc = subprocess.run([*starter, *cmd], env=env)
    except FileNotFoundError:
        raise CliError(f"command not found: {cmd[0]}")
    except OSError as e:
        raise CliError(f"cannot run {cmd[0]}: {e.strerror or e}")
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode


def _positive(flag: str, parse, value, omitted: str = "for the pool's default"):
    """A quantity flag of `run` or `limits`, parsed; None when not given. 0 is refused: on the wire 0 means "not
    given", so `--vram 0` would get the pool's default profile (a whole GPU) and `--tflops-limit 0` no compute
    limit. A negative quantity gets the same line (the parser's range message would offer 0). omitted: what
    leaving the flag out gives, for that line."""
    if value is None:
        return None
    from tfclient.errors import InvalidQuantity
    unsigned = value.removeprefix("-")
    try:
        q = parse(unsigned)
    except InvalidQuantity:
        parse(value)            # raises, quoting what was written
        raise
    if unsigned != value or q == 0:
        raise CliError(f"{flag} {value}: must be above 0 (omit {flag} {omitted})")
    return q


def cmd_run(args) -> int:
    from tfclient import quantity
    cmd = command_of(args)
    vram_mib = _positive("--vram", quantity.parse_vram_mib, args.vram)
    vram_limit_mib = _positive("--vram-limit", quantity.parse_vram_mib, args.vram_limit) or vram_mib
    tflops = _positive("--tflops", quantity.parse_tflops, args.tflops)
    tflops_limit = _positive("--tflops-limit", quantity.parse_tflops, args.tflops_limit) or tflops
    gpu_count = gpu_count_of(args.gpus)
    if args.local:
        check_local_flags(args)
        return run_local(cmd, vram_limit_mib, tflops_limit)
    from tfclient import embedded
    address = config.scheduler_address(args.scheduler)
    if not address:
        if os.environ.get("TF_TLS_CA"):   # the embedded default serves plaintext on loopback: TLS to it fails
            raise CliError("--tls-ca/TF_TLS_CA is set but no scheduler is: pass the TLS scheduler's address "
                           "(--scheduler HOST:PORT or TF_SCHEDULER), or drop --tls-ca/TF_TLS_CA to use the "
                           "embedded default on this host")
        # the services keep gRPC's own log lines (in up.log): not the quieting this command set for itself
        address = embedded.start_background(env={k: v for k, v in os.environ.items() if k not in _QUIETED})
    from tfclient.attach import allocate
    lease = allocate(scheduler=address, tflops=tflops or 0.0, tflops_limit=tflops_limit or 0.0,
                     vram_mib=vram_mib or 0, vram_limit_mib=vram_limit_mib or 0, qos=args.qos or "medium",
                     pool=args.pool or "default", gpu_model=args.gpu_model, workload=args.workload or "",
                     gpu_count=gpu_count,
                     check_reach=True, transport=args.transport)
    # SIGTERM must not skip the release below (subprocess.run kills CMD when interrupted).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        env = {k: v for k, v in os.environ.items() if k not in _QUIETED}
        env.update(lease.client_env(transport=args.transport or "auto", tls_ca=args.tls_ca))
        env["TF_LEASE_FILE"] = lease.keep_file(config.home() / "leases" / f"{lease.id}.token")   # fresh after renewals
        # a worker lost mid-session is reported when the command ends (Lease.report_loss, in the release); an
        # allocation the scheduler ends under the command ends its stubs' waits (Lease.session_files)
        env.update(lease.session_files(config.home() / "leases"))
        env.update(lease.library_env(env))        # e.g. CUPY_COMPILE_WITH_PTX=1 on the emulated device
        env["LD_LIBRARY_PATH"] = f"{native.require(native.stub_lib_dir() / 'libcuda.so.1').parent}:" \
                                 f"{env.get('LD_LIBRARY_PATH', '')}".rstrip(":")
        return _spawn(cmd, env)
    finally:
        _release_after_run(lease)


def gpu_count_of(value: str | None) -> int:
    """`run --gpus N` -> N (1 when not given); CliError (one line) unless N is a whole number from 1 to the most
    GPUs a node may register (more never fit on one)."""
    from tfscheduler.validate import GPUS_MAX
    if value is None:
        return 1
    if not value.strip().isdigit() or not 1 <= int(value) <= GPUS_MAX:
        raise CliError(f"--gpus {value}: use a whole number of GPUs from 1 to {GPUS_MAX} (all on one worker)")
    return int(value)


# `run` flags that ask something of a scheduler or a worker: with --local (no scheduler, no worker) they would
# be silently ignored, so they are refused
SCHEDULER_ONLY_FLAGS = ("scheduler", "pool", "workload", "gpu_model", "gpus", "qos", "transport", "tls_ca")


def check_local_flags(args) -> None:
    """CliError (one line) when `run --local` is given a flag that only a scheduler or worker could act on."""
    given = [f"--{name.replace('_', '-')}" for name in SCHEDULER_ONLY_FLAGS if getattr(args, name) is not None]
    if given:
        raise CliError(f"{', '.join(given)}: no meaning with --local (the limiter alone on this host's GPU, no "
                       f"scheduler or worker): drop {'it' if len(given) == 1 else 'them'}, or drop --local")


def _release_after_run(lease) -> None:
    """Gives the vGPU back once CMD has ended. A scheduler that cannot be reached then (stopped, or failing over)
    does not change CMD's exit code: one warning line; the allocation ends by itself when its lease expires."""
    from tfclient.errors import SchedulerUnreachable
    try:
        lease.release()
    except SchedulerUnreachable as e:
        print(f"tensorfusion run: warning: vGPU {lease.id} not released ({_one_line(e)}); it ends by itself when "
              f"its lease expires", file=sys.stderr)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def run_local(cmd: list[str], vram_limit_mib: int | None, tflops_limit: float | None) -> int:
    """Local vGPU (seed: 本地vGPU): the limiter preloaded into CMD on this host, no scheduler involved."""
    from tfworker import gpus, limits
    gpu_list = gpus.nvidia_gpus()
    if gpu_list:
        device_tflops, lib_dir = gpu_list[0].tflops or _known_tflops(gpu_list[0].model), None
    else:
        print("tensorfusion run --local: no NVIDIA GPU here; using the emulated device", file=sys.stderr)
        device_tflops, lib_dir = _known_tflops(gpus.EMULATED_MODEL), str(native.emu_lib_dir())
    env = dict(os.environ)
    # one region for CMD and all its processes: they share the cap, as an allocation's processes do
    with limits.local_vgpu(vram_limit_bytes=(vram_limit_mib or 0) << 20, tflops_limit=tflops_limit or 0.0,
                           device_tflops=device_tflops) as vgpu_env:
        env.update(vgpu_env)
        if lib_dir:
            env["LD_LIBRARY_PATH"] = f"{lib_dir}:{env.get('LD_LIBRARY_PATH', '')}".rstrip(":")
            from tfclient import libenv
            env.update(libenv.library_env("emu", env))
        return _spawn(cmd, env)


def _known_tflops(model: str) -> float:
    from tfscheduler import models
    return (models.lookup_tflops(model) or 0.0)


def scheduler_of(args) -> str:
    """The scheduler address a client command (status, top, token, workload) dials; CliError when none is set.
    Unlike `run`, these start no embedded default."""
    address = config.scheduler_address(args.scheduler)
    if not address:
        raise CliError("no scheduler: start one with `tensorfusion up`, or pass --scheduler / set TF_SCHEDULER")
    return address


def cmd_limits(args) -> int:
    """New limits for a live allocation (SetAllocationLimits): stored by the scheduler and written by its worker
    into the running session's limiter region, so the program's next allocation or launch obeys them."""
    from tfclient import quantity
    from tfclient.scheduler_client import SchedulerClient
    keep = "to keep the current one"
    tflops_limit = _positive("--tflops-limit", quantity.parse_tflops, args.tflops_limit, keep)
    vram_limit_mib = _positive("--vram-limit", quantity.parse_vram_mib, args.vram_limit, keep)
    if tflops_limit is None and vram_limit_mib is None:
        raise CliError("nothing to change: give --tflops-limit and/or --vram-limit")
    address = scheduler_of(args)
    with SchedulerClient(address, token=config.client_token(prefer=("tenant", "admin"))) as client:
        a = client.set_limits(args.allocation, tflops=tflops_limit, vram=vram_limit_mib)
    print(f"allocation {a.id}: limits {a.limits.tflops:g} TFLOPS, {quantity.format_vram(a.limits.vram_mib)} per GPU "
          f"(requests {a.requests.tflops:g} TFLOPS, {quantity.format_vram(a.requests.vram_mib)})")
    return 0


def cmd_status(args) -> int:
    from tfclient.scheduler_client import SchedulerClient
    address = scheduler_of(args)
    with SchedulerClient(address, token=config.client_token(prefer=("admin", "tenant"))) as client:
        pool = client.list_pool(include_allocations=True)
    from tfclient import status_table
    if args.output == "json":
        import json
        print(json.dumps(status_table.document(pool), indent=2))
    else:
        print(status_table.render(pool))
    return 0


def cmd_top(args) -> int:
    from tfclient import top
    from tfclient.scheduler_client import SchedulerClient
    address = scheduler_of(args)
    if not args.interval > 0:
        raise CliError(f"--interval {args.interval:g}: use a number of seconds > 0")
    with SchedulerClient(address, token=config.client_token(prefer=("admin", "tenant"))) as client:
        return top.run(client, once=args.once, interval=args.interval)


def cmd_token(args) -> int:
    from tfclient.scheduler_client import SchedulerClient
    address = scheduler_of(args)
    with SchedulerClient(address, token=config.client_token(prefer=("admin",))) as client:
        if args.token_command == "create":
            created = client.create_token(args.role, args.namespace, args.node, args.description)
            print(created.token)
            print(f"token {created.info.id} ({args.role}) created; it is shown only once", file=sys.stderr)
        elif args.token_command == "revoke":
            print(f"token {args.id} {'revoked' if client.revoke_token(args.id) else 'was already revoked'}")
        else:
            for t in client.list_tokens():
                bound = f"namespace={t.namespace}" if t.namespace else f"node={t.node_name}" if t.node_name else ""
                print(f"{t.id}  {t.role:<6}  {bound}  {t.description}".rstrip())
    return 0


def _load_document(path: str) -> dict:
    """A workload document from a YAML/JSON file (JSON is YAML) -> dict; CliError (one line) if unreadable."""
    import yaml
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise CliError(f"{path} is not valid YAML{where}: {getattr(e, 'problem', None) or e}")
    if not isinstance(doc, dict):
        raise CliError(f"{path}: expected a workload document (a mapping with name, resources, autoScalingConfig)")
    return doc


def _res_dict(r) -> dict:
    """Resources as the seed writes them: tflops '13', vram 1Gi (whole GiB) or 1536Mi."""
    vram = f"{r.vram_mib // 1024}Gi" if r.vram_mib and r.vram_mib % 1024 == 0 else f"{r.vram_mib}Mi"
    return {"tflops": f"{r.tflops:g}", "vram": vram}


def workload_view(w) -> dict:
    """A Workload message as the seed's document: spec fields, then status with the seed's field names."""
    import json
    st = w.status
    status = {"conditions": [{"lastTransitionTime": c.last_transition_time, "message": c.message,
                              "reason": c.reason, "status": c.status, "type": c.type} for c in st.conditions]}
    if st.HasField("recommendation"):
        status["recommendation"] = {"limits": _res_dict(st.recommendation.limits),
                                    "requests": _res_dict(st.recommendation.requests)}
    status["appliedRecommendedReplicas"] = st.applied_recommended_replicas
    status["activeCronScalingRule"] = st.active_cron_scaling_rule or None
    if st.HasField("effective"):
        status["resources"] = {"limits": _res_dict(st.effective.limits), "requests": _res_dict(st.effective.requests)}
    status["allocations"] = list(w.allocation_ids)
    doc = json.loads(w.spec_json or "{}")
    return {**doc, "namespace": w.namespace, "status": status}


def _print_views(views, output: str) -> None:
    """A workload view (get) or a list of them (list -o) as JSON or YAML on stdout."""
    if output == "json":
        import json
        print(json.dumps(views, indent=2))
    else:
        import yaml
        print(yaml.safe_dump(views, sort_keys=False).rstrip())


def cmd_workload(args) -> int:
    from tfclient.scheduler_client import SchedulerClient
    address = scheduler_of(args)
    with SchedulerClient(address, token=config.client_token(prefer=("tenant", "admin"))) as client:
        if args.workload_command == "apply":
            w = client.apply_workload(_load_document(args.filename), namespace=args.namespace)
            print(f"workload {w.namespace}/{w.name} applied")
        elif args.workload_command == "get":
            _print_views(workload_view(client.get_workload(args.name, namespace=args.namespace)), args.output)
        elif args.output != "table":
            views = [workload_view(w) for w in client.list_workloads(namespace=args.namespace)]
            _print_views(views, args.output)
        else:
            rows = [("NAMESPACE", "NAME", "ALLOCATIONS", "RECOMMENDED (REQ/LIM)", "CRON RULE", "CONDITION")]
            for w in client.list_workloads(namespace=args.namespace):
                st = w.status
                rec = "-"
                if st.HasField("recommendation"):
                    r = st.recommendation
                    rec = (f"{r.requests.tflops:g}/{r.limits.tflops:g} TFLOPS "
                           f"{r.requests.vram_mib}/{r.limits.vram_mib} MiB")
                cond = next((f"{c.reason}: {c.message}" for c in st.conditions
                             if c.type == "RecommendationProvided"), "-")
                rows.append((w.namespace, w.name, str(len(w.allocation_ids)), rec,
                             st.active_cron_scaling_rule or "-", cond))
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
            for r in rows:
                print("  ".join(c.ljust(wd) for c, wd in zip(r, widths)) + "  " + r[-1])
    return 0


def cmd_certs(args) -> int:
    from tfclient import certs
    try:
        if args.certs_command == "init":
            crt, key = certs.init_ca(args.dir, days=args.days)
            print(f"CA written: {crt} (give it to every client and worker: --tls-ca / TF_TLS_CA) and {key} "
                  f"(0600; keep it off the servers)")
        else:
            crt, key = certs.issue(args.dir, args.name, certs.split_hosts(args.host), client=args.client,
                                   days=args.days)
            kind = "client" if args.client else "server"
            print(f"{kind} certificate written: {crt} and {key} (0600)")
    except certs.CertError as e:
        raise CliError(str(e)) from None
    return 0


def cmd_demo(args) -> int:
    from tfclient import demo
    return demo.run()


if __name__ == "__main__":
    sys.exit(main())
