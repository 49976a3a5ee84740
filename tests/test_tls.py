"""TLS on the control plane, with real processes on loopback: `tensorfusion certs` makes a CA and certificates;
a scheduler that requires client certificates (mTLS) and a worker serving its admin API over TLS run a real nvcc
program through `tensorfusion run`; plaintext clients, a plaintext server, an unknown CA, a wrong host name and a
missing client certificate each end in one clear line; plaintext beyond loopback is refused without --insecure."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cudabuild import build_example
from test_worker import start

CLI = [sys.executable, "-m", "tfclient.cli"]


def tf(*args, env, timeout=120):
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def one_line_error(r) -> str:
    """stderr of a failed CLI command, checked to be one line without a traceback."""
    assert r.returncode == 1, (r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def base_env(home: Path) -> dict:
    env = dict(os.environ, TF_HOME=str(home), TF_SECRET="tls-test-secret", TF_EMU_VRAM_MIB="1024")
    for k in ("TF_TOKEN", "TF_SCHEDULER", "TF_TLS_CA", "TF_TLS_CERT", "TF_TLS_KEY", "TF_WORKER_TOKEN"):
        env.pop(k, None)
    return env


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and its certificates, made with the CLI: scheduler and worker (server, 127.0.0.1), a tenant client
    certificate; plus a second, unrelated CA with a client certificate of its own."""
    d = tmp_path_factory.mktemp("pki")
    env = base_env(tmp_path_factory.mktemp("home"))
    for args in (["init", "--dir", str(d / "ca")],
                 ["issue", "--dir", str(d / "ca"), "--name", "scheduler", "--host", "127.0.0.1"],
                 ["issue", "--dir", str(d / "ca"), "--name", "worker", "--host", "127.0.0.1,localhost"],
                 ["issue", "--dir", str(d / "ca"), "--name", "tenant", "--client"],
                 ["init", "--dir", str(d / "other")],
                 ["issue", "--dir", str(d / "other"), "--name", "stranger", "--client"]):
        r = tf("certs", *args, env=env)
        assert r.returncode == 0, r.stderr
    return d


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(2)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture(scope="module")
def tls_cluster(pki, tmp_path_factory):
    """A scheduler serving TLS and requiring client certificates, dialing workers' admin API over TLS; one worker
    (emulated GPU) serving its admin API over TLS and presenting its certificate to the scheduler.
    Yields (env of a tenant client with CA, client certificate and token (+ ADMIN_TOKEN), scheduler address)."""
    home = tmp_path_factory.mktemp("tlshome")
    env = base_env(home)
    ca = pki / "ca"
    procs = []
    try:
        sched, m = start(["scheduler", "--listen", "127.0.0.1:0", "--db", str(home / "s.db"),
                          "--heartbeat-interval", "0.5", "--tls-cert", str(ca / "scheduler.crt"),
                          "--tls-key", str(ca / "scheduler.key"), "--tls-client-ca", str(ca / "ca.crt"),
                          "--tls-ca", str(ca / "ca.crt")], env, r"listening on (\S+:\d+) \((.*)\)")
        procs.append(sched)
        address = m.group(1)
        assert m.group(2) == "TLS, client certificates required"
        admin = dict(env, TF_TOKEN=(home / "admin.token").read_text().strip(), TF_TLS_CA=str(ca / "ca.crt"),
                     TF_TLS_CERT=str(ca / "tenant.crt"), TF_TLS_KEY=str(ca / "tenant.key"))
        r = tf("token", "--scheduler", address, "create", "--role", "worker", "--node", "tls-node", env=admin)
        assert r.returncode == 0, r.stderr
        worker_env = dict(env, TF_WORKER_TOKEN=r.stdout.strip())
        w, _ = start(["worker", "--scheduler", address, "--backend", "emu", "--node", "tls-node",
                      "--unix", str(home / "w.sock"), "--admin", "127.0.0.1:0",
                      "--tls-cert", str(ca / "worker.crt"), "--tls-key", str(ca / "worker.key"),
                      "--tls-ca", str(ca / "ca.crt")], worker_env, r"registered with")
        procs.append(w)
        r = tf("token", "--scheduler", address, "create", "--role", "tenant", "--namespace", "team", env=admin)
        assert r.returncode == 0, r.stderr
        yield dict(admin, TF_TOKEN=r.stdout.strip(), TF_SCHEDULER=address, ADMIN_TOKEN=admin["TF_TOKEN"]), address
    finally:
        stop(procs)


@pytest.fixture(scope="module")
def plain_scheduler(tmp_path_factory):
    home = tmp_path_factory.mktemp("plainhome")
    env = base_env(home)
    sched, m = start(["scheduler", "--listen", "127.0.0.1:0", "--db", str(home / "s.db")], env,
                     r"listening on (\S+:\d+)")
    try:
        yield dict(env, TF_TOKEN=(home / "admin.token").read_text().strip()), m.group(1)
    finally:
        stop([sched])


def test_certs_init_and_issue_make_a_ca_and_certificates_it_signed(pki):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID
    ca = pki / "ca"
    assert stat.S_IMODE((ca / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((ca / "worker.key").stat().st_mode) == 0o600
    ca_cert = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    worker = x509.load_pem_x509_certificate((ca / "worker.crt").read_bytes())
    worker.verify_directly_issued_by(ca_cert)
    san = worker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    tenant = x509.load_pem_x509_certificate((ca / "tenant.crt").read_bytes())
    assert list(tenant.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_certs_mistakes_are_one_line_and_overwrite_nothing(pki, tmp_path):
    env = base_env(tmp_path / "home")
    before = (pki / "ca" / "worker.crt").read_bytes()
    err = one_line_error(tf("certs", "issue", "--dir", str(pki / "ca"), "--name", "worker", "--host", "h", env=env))
    assert "exists already" in err
    assert (pki / "ca" / "worker.crt").read_bytes() == before
    assert "--host" in one_line_error(tf("certs", "issue", "--dir", str(pki / "ca"), "--name", "x", env=env))
    err = one_line_error(tf("certs", "issue", "--dir", str(tmp_path / "none"), "--name", "x", "--host", "h",
                            env=env))
    assert "certs init" in err
    err = one_line_error(tf("certs", "init", "--dir", str(pki / "ca"), env=env))
    assert "exists already" in err and "pick another --dir" in err       # init has no --name to pick
    (tmp_path / "file").write_text("")
    err = one_line_error(tf("certs", "init", "--dir", str(tmp_path / "file" / "ca"), env=env))
    assert err.startswith("tensorfusion certs: cannot create --dir") and "Errno" not in err, err


def test_scheduler_listen_mistakes_are_one_line(tmp_path):
    """An address that is not HOST:PORT, and a port already taken, each end the scheduler with one line that
    names the address (gRPC alone says 'Failed to bind ... set GRPC_VERBOSITY=debug')."""
    import socket
    env = base_env(tmp_path / "home")
    r = tf("scheduler", "--listen", "nonsense", env=env)
    assert one_line_error(r) == "tensorfusion scheduler: cannot serve the scheduler API on 'nonsense': use " \
                                "HOST:PORT (a port from 0 to 65535), e.g. 127.0.0.1:7070"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        r = tf("scheduler", "--listen", address, env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1] == f"tensorfusion scheduler: cannot serve the scheduler API on {address}: " \
                                        f"the port is in use (another scheduler?) or the host is not an address " \
                                        f"of this machine", r.stderr


def test_run_of_a_cuda_program_through_a_tls_scheduler_and_worker(tls_cluster):
    env, address = tls_cluster
    program = build_example("vector_add")
    r = tf("run", "--vram", "256Mi", "--", str(program), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "65536 elements correct" in r.stdout
    # the CA given as --tls-ca instead of TF_TLS_CA; the first of two replicas down: failover, still over TLS
    env2 = dict(env)
    ca = env2.pop("TF_TLS_CA")
    r = tf("status", "--scheduler", f"127.0.0.1:9,{address}", "--tls-ca", ca, env=env2)
    assert r.returncode == 0, r.stderr
    assert "TensorFusion Emulated GPU" in r.stdout


def test_scheduler_orders_the_worker_over_tls(tls_cluster):
    """Limits set through the scheduler reach the worker's admin API over TLS (a failure would be an error)."""
    env, address = tls_cluster
    from tfclient import tls
    from tfclient.scheduler_client import SchedulerClient
    client_tls = tls.ClientTLS(env["TF_TLS_CA"], env["TF_TLS_CERT"], env["TF_TLS_KEY"])
    with SchedulerClient(address, token=env["ADMIN_TOKEN"], tls=client_tls) as client:
        alloc = client.allocate(vram="128Mi")
        try:
            changed = client.set_limits(alloc.id, vram="192Mi")
            assert changed.limits.vram_mib == 192
        finally:
            assert client.release(alloc.id)


def test_plaintext_client_is_refused_by_a_tls_scheduler(tls_cluster):
    env, address = tls_cluster
    plain = {k: v for k, v in env.items() if not k.startswith("TF_TLS_")}
    err = one_line_error(tf("status", env=plain, timeout=60))
    assert address in err and "TLS" in err and "--tls-ca" in err


def test_client_without_its_certificate_is_refused_by_an_mtls_scheduler(tls_cluster):
    env, address = tls_cluster
    no_cert = {k: v for k, v in env.items() if k not in ("TF_TLS_CERT", "TF_TLS_KEY")}
    err = one_line_error(tf("status", env=no_cert, timeout=60))
    assert "client certificate" in err and "TF_TLS_CERT" in err


def test_client_certificate_of_another_ca_is_refused(tls_cluster, pki):
    env, address = tls_cluster
    other = pki / "other"
    err = one_line_error(tf("status", env=dict(env, TF_TLS_CERT=str(other / "stranger.crt"),
                                               TF_TLS_KEY=str(other / "stranger.key")), timeout=60))
    assert "may not accept our client certificate" in err and "stranger.crt" in err


def test_unknown_ca_is_refused(tls_cluster, pki):
    env, address = tls_cluster
    err = one_line_error(tf("status", env=dict(env, TF_TLS_CA=str(pki / "other" / "ca.crt")), timeout=60))
    assert "unknown CA" in err and str(pki / "other" / "ca.crt") in err


def test_wrong_host_name_is_refused(tls_cluster):
    env, address = tls_cluster
    port = address.rsplit(":", 1)[1]
    # the scheduler's certificate names 127.0.0.1 only
    err = one_line_error(tf("status", env=dict(env, TF_SCHEDULER=f"localhost:{port}"), timeout=60))
    assert "does not name the host" in err and "--host" in err


def test_tls_client_against_a_plaintext_scheduler_is_one_line(plain_scheduler, pki):
    env, address = plain_scheduler
    err = one_line_error(tf("status", "--scheduler", address, "--tls-ca", str(pki / "ca" / "ca.crt"), env=env,
                            timeout=60))
    assert "does not speak TLS" in err


def test_plaintext_beyond_loopback_is_refused_without_insecure(tmp_path, pki):
    env = base_env(tmp_path)
    err = one_line_error(tf("scheduler", "--listen", "0.0.0.0:0", "--db", str(tmp_path / "s.db"), env=env))
    assert "without TLS" in err and "--tls-cert" in err and "--insecure" in err
    assert not (tmp_path / "s.db").exists()           # refused before any state was opened
    err = one_line_error(tf("up", "--listen", "0.0.0.0:0", "--backend", "emu", env=env))
    assert "--insecure" in err
    err = one_line_error(tf("worker", "--scheduler", "127.0.0.1:9", "--backend", "emu", "--admin", "0.0.0.0:0",
                            env=dict(env, TF_WORKER_TOKEN="tf1.x"), timeout=60))
    assert "worker admin" in err and "--insecure" in err
    # the TCP data plane carries lease tokens and the program's data: the same rule (it used to serve in clear)
    err = one_line_error(tf("worker", "--scheduler", "127.0.0.1:9", "--backend", "emu", "--tcp", "0.0.0.0:0",
                            env=dict(env, TF_WORKER_TOKEN="tf1.x"), timeout=60))
    assert err.startswith("tensorfusion worker: refusing to serve the worker data plane API on 0.0.0.0:0 without "
                          "TLS: pass --tls-cert FILE --tls-key FILE") and "--insecure" in err, err
    err = one_line_error(tf("up", "--tcp", "0.0.0.0:0", "--backend", "emu", env=env))
    assert err.startswith("tensorfusion up: refusing to serve the embedded worker's data plane API on 0.0.0.0:0 "
                          "without TLS") and "--insecure" in err, err
    assert not (tmp_path / "embedded.json").exists() and not list(tmp_path.glob("worker-*.sock"))
    # TLS on a wildcard address is fine; so is plaintext with --insecure (an explicit choice)
    for extra in (["--tls-cert", str(pki / "ca" / "scheduler.crt"), "--tls-key", str(pki / "ca" / "scheduler.key")],
                  ["--insecure"]):
        proc, m = start(["scheduler", "--listen", "0.0.0.0:0", "--db", str(tmp_path / f"s{len(extra)}.db"),
                         *extra], env, r"listening on (\S+:\d+) \((.*)\)")
        stop([proc])
        assert m.group(2) == ("plaintext" if extra == ["--insecure"] else "TLS")


def test_half_a_key_pair_or_a_mismatched_one_is_one_line(tmp_path, pki):
    env = base_env(tmp_path)
    err = one_line_error(tf("scheduler", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "s.db"),
                            "--tls-cert", str(pki / "ca" / "scheduler.crt"), env=env))
    assert "--tls-key" in err
    err = one_line_error(tf("scheduler", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "s.db"),
                            "--tls-cert", str(pki / "ca" / "scheduler.key"), "--tls-key",
                            str(pki / "ca" / "scheduler.key"), env=env))
    assert "not a PEM certificate" in err
    err = one_line_error(tf("scheduler", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "s.db"),
                            "--tls-cert", str(pki / "ca" / "scheduler.crt"), "--tls-key",
                            str(pki / "ca" / "worker.key"), env=env))
    assert "is not the private key of" in err
    assert not (tmp_path / "s.db").exists()


def test_worker_dialing_a_tls_scheduler_in_plaintext_stops_with_one_line(tls_cluster, tmp_path):
    env, address = tls_cluster
    worker_env = {k: v for k, v in base_env(tmp_path).items()}
    worker_env["TF_WORKER_TOKEN"] = "tf1.unused.token"      # refused in the handshake, before any token check
    r = tf("worker", "--scheduler", address, "--backend", "emu", "--node", "plain-node", "--unix",
           str(tmp_path / "w.sock"), env=worker_env, timeout=90)
    err = one_line_error(r)
    assert "cannot register" in err and "TLS" in err


@pytest.mark.timeout(90)
def test_tls_failure_on_every_replica_is_raised_not_retried_until_failover_ends(tls_cluster, pki):
    """A certificate problem is a setting to fix: once every replica failed the handshake the client says so,
    instead of cycling through the replicas for failover_s (600 s here, far past this test's timeout)."""
    env, address = tls_cluster
    from tfclient import errors, tls
    from tfclient.scheduler_client import SchedulerClient
    port = address.rsplit(":", 1)[1]
    wrong = tls.ClientTLS(str(pki / "other" / "ca.crt"), env["TF_TLS_CERT"], env["TF_TLS_KEY"])
    with SchedulerClient(f"127.0.0.1:{port},localhost:{port}", token=env["TF_TOKEN"], tls=wrong,
                         failover_s=600) as client:
        with pytest.raises(errors.TlsHandshakeFailed, match="TLS: "):
            client.list_pool()
