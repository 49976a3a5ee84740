"""A worker daemon with a TLS-only TCP data plane (`tensorfusion worker --tcp ... --tls-cert --tls-key`),
with the scheduler (gRPC over TLS too), as separate processes on loopback: it registers a tls: endpoint,
`tensorfusion run --transport tcp --tls-ca` reaches it over TLS, and the lease's limits still hold in the GPU
worker process (the grant's environment reaches the limiter through the executor's control socket)."""
import subprocess

from cudabuild import build_cuda, build_example, parse_kv
from test_worker import CLI, running_cluster
from tfclient import native
from tfclient.scheduler_client import SchedulerClient
from tls_certs import issue, make_ca


def _pool(tmp_path):
    """A pool's CA and certificates, and the cluster arguments of a production-like setup: gRPC over TLS
    (tensorfusion certs is tlscp's; the openssl CLI is enough here) and the worker's TCP data plane TLS-only."""
    d = tmp_path / "certs"
    ca = make_ca(d)
    sched, worker = issue(d, ca, "sched"), issue(d, ca, "worker")
    return ca, dict(
        scheduler_args=["--tls-cert", sched.cert, "--tls-key", sched.key, "--tls-ca", ca.cert],
        worker_args=["--tcp", "127.0.0.1:0", "--tls-cert", worker.cert, "--tls-key", worker.key, "--tls-ca", ca.cert],
        extra_env={"TF_TLS_CA": ca.cert})


def test_run_over_tls_with_the_pools_ca(tmp_path):
    ca, cluster_args = _pool(tmp_path)
    with running_cluster(tmp_path, ["node-a"], **cluster_args) as (env, address):
        program = build_example("vector_add")
        r = subprocess.run([*CLI, "run", "--scheduler", address, "--transport", "tcp", "--tls-ca", ca.cert,
                            "--vram", "256Mi", "--tflops", "0.001", "--", str(program)],
                           env=env, capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "65536 elements correct" in r.stdout
        # a worker certificate that does not carry the name the stub checks is refused: never plaintext
        r = subprocess.run([*CLI, "run", "--scheduler", address, "--transport", "tcp", "--vram", "256Mi",
                            "--tflops", "0.001", "--", str(program)],
                           env=dict(env, TF_TLS_SERVER_NAME="other.example"), capture_output=True, text=True,
                           timeout=180)
        assert r.returncode != 0
        assert "tf-stub: TLS: the worker's certificate is not trusted for other.example" in r.stderr


def test_vram_cap_of_the_lease_holds_over_tls(tmp_path):
    from tfclient.tls import ClientTLS
    ca, cluster_args = _pool(tmp_path)
    with running_cluster(tmp_path, ["node-a"], **cluster_args) as (env, address):
        program = build_cuda("lim_vram")
        with SchedulerClient(address, tls=ClientTLS.resolve(ca=ca.cert)) as client:
            alloc = client.allocate(tflops=0.001, vram=256, vram_limit=320)
            assert alloc.endpoints.tcp.startswith("tls:127.0.0.1:")     # clients learn TLS is required
            client_env = dict(env, TF_WORKER=alloc.endpoints.tcp, TF_LEASE=alloc.lease_token,
                              TF_TLS_CA=ca.cert, LD_LIBRARY_PATH=str(native.stub_lib_dir()))
            r = subprocess.run([str(program), "64"], env=client_env, capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stdout + r.stderr
            kv = parse_kv(r.stdout)
            assert int(kv["info_total"]) == 320 << 20
            assert kv["filled"] == "5"
            assert kv["fill_error"] == "cudaErrorMemoryAllocation"
            client.release(alloc.id)


def test_worker_tls_flags_are_checked_in_one_line(tmp_path):
    import os
    env = dict(os.environ, TF_HOME=str(tmp_path), TF_WORKER_TOKEN="x")
    for args, want in ((["--tls-cert", str(tmp_path / "c.pem")], "needs both --tls-cert and --tls-key"),
                       (["--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(tmp_path / "no.key")],
                        "no.pem")):
        r = subprocess.run([*CLI, "worker", "--scheduler", "127.0.0.1:1", "--tcp", "127.0.0.1:0", *args], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stdout + r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and want in lines[0], r.stderr
