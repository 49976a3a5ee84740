"""`python -m tfscheduler --listen HOST:PORT --db PATH --secret-file F [--config F.toml] [--tls-cert F --tls-key F
[--tls-client-ca F]] [--insecure]`

Prints "tfscheduler listening on HOST:PORT" on stdout once serving (port 0 picks a free port), runs
until SIGINT/SIGTERM. The secret file holds the HMAC key shared with the workers (lease tokens).
"""
import argparse
import asyncio
import logging
import os
import signal
import sys

import uvloop

from tfscheduler.server import serve
from tfclient import tls
from tfscheduler.store_args import add_store_args, store_options


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m tfscheduler", description="TensorFusion scheduler")
    p.add_argument("--listen", default="127.0.0.1:7070", help="host:port to serve gRPC on (port 0 = any)")
    p.add_argument("--db", help="SQLite state file (created if missing); the default store")
    add_store_args(p)
    tls.add_server_args(p)
    p.add_argument("--secret-file", required=True, help="file with the lease-signing secret shared with workers")
    p.add_argument("--config", help="TOML config (pools, quotas, models, timeouts)")
    p.add_argument("--lease-ttl", type=float, dest="lease_ttl_s", help="default lease TTL in seconds")
    p.add_argument("--node-timeout", type=float, dest="node_timeout_s",
                   help="seconds without heartbeat before a node is unavailable")
    p.add_argument("--heartbeat-interval", type=float, dest="heartbeat_interval_s")
    p.add_argument("--tick", type=float, dest="tick_s", help="seconds between expiry checks")
    p.add_argument("--metrics-listen", metavar="HOST:PORT", help="serve Prometheus metrics here")
    p.add_argument("--admin-token-file", default=None,
                   help="where the first admin token is written when none exists (default $TF_HOME/admin.token)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    if not args.db and not args.store:
        p.error("pass --db FILE (SQLite) or --store etcd://HOST:PORT")
    return args


async def main(args) -> None:
    with open(args.secret_file, "rb") as f:
        secret = f.read().strip()
    overrides = {k: getattr(args, k) for k in ("lease_ttl_s", "node_timeout_s", "heartbeat_interval_s", "tick_s")}
    worker_tls = tls.ClientTLS.resolve(ca=args.tls_ca) if (args.tls_ca or os.environ.get("TF_TLS_CA")) else None
    server = await serve(args.listen, args.db or "", secret, config_path=args.config,
                         metrics_listen=args.metrics_listen, **store_options(args), **overrides,
                         tls=tls.ServerTLS.resolve(args.tls_cert, args.tls_key, args.tls_client_ca),
                         insecure=args.insecure, worker_tls=worker_tls)
    await server.settled()
    from pathlib import Path
    from tfclient import config
    from tfscheduler import auth
    target = Path(args.admin_token_file) if args.admin_token_file else config.token_file(auth.ADMIN)
    if server.leading and not server.tokens.active(auth.ADMIN):
        _, text = server.tokens.create(auth.ADMIN, description="first admin (bootstrap)")
        config.write_private(target, text + "\n")
        print(f"tfscheduler: first admin token written to {target} (0600)", file=sys.stderr, flush=True)
    print(f"tfscheduler listening on {server.address}", flush=True)
    if server.metrics_port:
        print(f"tfscheduler metrics on {args.metrics_listen.rsplit(':', 1)[0]}:{server.metrics_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        uvloop.run(main(args))
    except (PermissionError, ConnectionError, ValueError) as e:   # etcd refused us, unreachable, bad --store
        print(f"tfscheduler: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
