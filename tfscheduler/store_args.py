"""The scheduler's state-store options (--store etcd://..., TLS, user, election), shared by `python -m tfscheduler`
and `tensorfusion scheduler` (tfclient.cli); kept free of heavy imports so the CLI starts fast."""
import os


def add_store_args(p) -> None:
    """--store etcd://... and its options (shared with `tensorfusion scheduler`)."""
    p.add_argument("--store", metavar="etcd://HOST:PORT[,HOST:PORT...]",
                   help="keep the state in etcd v3 instead of SQLite; replicas elect a leader through it")
    p.add_argument("--etcd-cacert", help="CA bundle to verify etcd's TLS certificate (turns TLS on)")
    p.add_argument("--etcd-cert", help="client certificate for etcd (TLS client auth)")
    p.add_argument("--etcd-key", help="client key for --etcd-cert")
    p.add_argument("--etcd-user", help="etcd user (password from $TF_ETCD_PASSWORD or --etcd-password-file)")
    p.add_argument("--etcd-password-file", help="file holding the etcd user's password")
    p.add_argument("--etcd-prefix", default="/tensorfusion/", help="key prefix of this scheduler's state in etcd")
    p.add_argument("--advertise", help="host:port clients reach this replica at (named by followers; default: "
                                       "the listen address)")
    p.add_argument("--leader-ttl", type=int, default=5, help="seconds a dead leader keeps the lead (etcd lease)")
    p.add_argument("--no-election", action="store_true",
                   help="with etcd: write without electing a leader (several writers; for tests, not production)")


def store_options(args) -> dict:
    """serve() keyword arguments from add_store_args' options (empty for SQLite)."""
    if not args.store:
        return {}
    password = os.environ.get("TF_ETCD_PASSWORD")
    if args.etcd_password_file:
        with open(args.etcd_password_file) as f:
            password = f.read().strip()
    etcd = {k: v for k, v in (("cacert", args.etcd_cacert), ("cert", args.etcd_cert), ("key", args.etcd_key),
                              ("user", args.etcd_user), ("password", password)) if v}
    return dict(store=args.store, etcd=etcd, elect=not args.no_election, advertise=args.advertise,
                leader_ttl_s=args.leader_ttl, etcd_prefix=args.etcd_prefix)
