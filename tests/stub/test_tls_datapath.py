"""The TCP data plane over TLS, end to end: nvcc-built programs load the client stub (TF_WORKER=tls:...),
a real DataPlaneServer with a TLS listener spawns a real tf-executor per connection, which makes the
handshake (OpenSSL) and gets the client's lease token authorized by the server. Certificates come from
the openssl CLI (tests/tls_certs.py). A recording TCP relay between stub and worker shows what crosses
the network.
"""
from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from dp_helpers import InProcessDataPlane, run_via_stub, stub_dir, stub_env, wait_until
from tls_certs import issue, make_ca
from tfworker.dataplane import TlsFiles

import subprocess

TOKEN = "lease-token-7f3a9c1e5b2d8f4a6c0e"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    ca = make_ca(d, "ca")
    other = make_ca(d, "other")
    server = issue(d, ca, "worker")
    return {"ca": ca, "other": other, "server": server}


@pytest.fixture
def tls_dataplane(tmp_path, certs):
    dp = InProcessDataPlane(tmp_path, token=TOKEN, tls=TlsFiles(certs["server"].cert, certs["server"].key))
    yield dp
    dp.close()


def _tls_env(certs, **extra) -> dict:
    return {"TF_TLS_CA": certs["ca"].cert, **extra}


def _run(prog, worker, *args, certs=None, env_extra=None, lease=TOKEN, timeout=120):
    env = stub_env(worker, lease)
    for k in ("TF_TLS_CA", "TF_TLS_SERVER_NAME", "TF_TLS_CERT", "TF_TLS_KEY"):
        env.pop(k, None)
    if certs is not None:
        env["TF_TLS_CA"] = certs["ca"].cert
    env.update(env_extra or {})
    return subprocess.run([str(prog), *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)


class RecordingRelay:
    """A TCP relay on 127.0.0.1 that forwards one connection at a time to `target` and keeps every byte
    it forwards in each direction (what an observer on the network sees)."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.seen = bytearray()
        self._lock = threading.Lock()
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.create_connection(self.target)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                with self._lock:
                    self.seen += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self):
        self.lsock.close()


def _has_pattern(data: bytes) -> bool:
    """dp_driver's host buffer is (i * 7 + 3) & 0xff: does any 64-byte window of it appear in data?"""
    return any(bytes((i * 7 + 3) & 0xFF for i in range(k, k + 64)) in data for k in range(256))


def test_program_over_tls_gives_the_right_results(tls_dataplane, certs, cuda_program):
    prog = cuda_program("dp_runtime", cudart="static")
    r = _run(prog, tls_dataplane.tls, 100000, "kernel", certs=certs)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("dp_runtime ok 100000")
    big = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
    r = _run(big, tls_dataplane.tls, 20 << 20, certs=certs)       # frames bigger than one copy chunk
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("dp_driver ok 20971520")
    # the host name in the certificate works as well as its IP, and sessions end cleanly
    r = _run(big, f"tls:localhost:{tls_dataplane.server.tcp_port}", 4096, certs=certs)
    assert r.returncode == 0, r.stdout + r.stderr
    assert wait_until(lambda: len(tls_dataplane.ends) == 3 and tls_dataplane.sessions() == {})
    assert all(e.returncode == 0 for e in tls_dataplane.ends), tls_dataplane.ends


def test_relay_sees_neither_token_nor_data_over_tls_but_does_over_plain_tcp(tmp_path, certs, cuda_program):
    prog = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
    for mode in ("tls", "tcp"):
        tls = TlsFiles(certs["server"].cert, certs["server"].key) if mode == "tls" else None
        dp = InProcessDataPlane(tmp_path / mode, token=TOKEN, tls=tls) if (tmp_path / mode).mkdir() is None else None
        relay = RecordingRelay(dp.server.tcp_port)
        try:
            r = _run(prog, f"{mode}:127.0.0.1:{relay.port}", 1 << 20, certs=certs)
            assert r.returncode == 0, r.stdout + r.stderr
            assert wait_until(lambda: dp.sessions() == {})
            seen = bytes(relay.seen)
            assert len(seen) > 2 << 20     # the copies went both ways through the relay
            if mode == "tls":
                assert TOKEN.encode() not in seen and b"TFH1" not in seen
                assert not _has_pattern(seen)
            else:   # control: the same observer reads everything on plain TCP
                assert TOKEN.encode() in seen and _has_pattern(seen)
        finally:
            relay.close()
            dp.close()


def test_worker_certificate_from_another_ca_is_refused(tls_dataplane, certs, cuda_program):
    prog = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
    r = _run(prog, tls_dataplane.tls, 4096, env_extra={"TF_TLS_CA": certs["other"].cert})
    assert r.returncode == 1
    assert "FAIL init 800 CUDA_ERROR_NOT_PERMITTED" in r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("tf-stub:")]
    assert len(lines) == 1 and "not trusted" in lines[0], r.stderr
    # a name the certificate does not carry is refused the same way
    r = _run(prog, tls_dataplane.tls, 4096, certs=certs, env_extra={"TF_TLS_SERVER_NAME": "other.example"})
    assert "FAIL init 800 CUDA_ERROR_NOT_PERMITTED" in r.stdout and "not trusted" in r.stderr
    # no session was ever started
    assert tls_dataplane.ends == [] and tls_dataplane.sessions() == {}


def test_wrong_lease_over_tls_is_refused_with_the_workers_reason(tls_dataplane, certs, cuda_program):
    prog = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
    r = _run(prog, tls_dataplane.tls, 4096, certs=certs, lease="stolen")
    assert "FAIL init 800 CUDA_ERROR_NOT_PERMITTED" in r.stdout
    assert "lease token rejected by test worker" in r.stderr


def test_plaintext_client_against_the_tls_listener_is_refused_quickly(tls_dataplane, cuda_program):
    prog = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
    t0 = time.monotonic()
    r = _run(prog, tls_dataplane.tcp, 4096)
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert "FAIL init 800 CUDA_ERROR_NOT_PERMITTED" in r.stdout
    assert "requires TLS" in r.stderr
    assert took < 5, took      # refused at the first bytes, not after a handshake timeout
    assert tls_dataplane.sessions() == {}


def test_silent_connections_beyond_the_preauth_cap_are_closed_at_accept(tmp_path, certs, cuda_program):
    dp = InProcessDataPlane(tmp_path, token=TOKEN, tls=TlsFiles(certs["server"].cert, certs["server"].key),
                            max_preauth=2)
    silent = []
    try:
        for _ in range(2):      # connect and say nothing: each holds one pre-auth executor
            silent.append(socket.create_connection(("127.0.0.1", dp.server.tcp_port)))
        time.sleep(0.5)
        extra = socket.create_connection(("127.0.0.1", dp.server.tcp_port))
        extra.settimeout(5)
        assert extra.recv(1) == b""         # closed at once
        extra.close()
        prog = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
        r = _run(prog, dp.tls, 4096, certs=certs)
        assert "FAIL init" in r.stdout           # no room while the silent ones hold the slots
        for s in silent:
            s.close()
        time.sleep(1.0)
        r = _run(prog, dp.tls, 4096, certs=certs)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        for s in silent:
            s.close()
        dp.close()


def test_grant_with_limits_but_no_limiter_in_the_process_is_refused(tmp_path, certs, cuda_program):
    """Fail closed: a grant that needs the limiter, in an executor started without it, runs nothing."""
    from tfworker.dataplane import SessionGrant

    async def authorize(token: bytes) -> SessionGrant:
        return SessionGrant(session_id="limited", env={"TF_LIMITER_SHM": "/tf-nonexistent"},
                            preload=[str(tmp_path / "libtf_limiter.so")])

    dp = InProcessDataPlane(tmp_path, tls=TlsFiles(certs["server"].cert, certs["server"].key), authorize=authorize)
    try:
        prog = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
        r = _run(prog, dp.tls, 4096, certs=certs)
        assert r.returncode == 1
        assert "FAIL init 999" in r.stdout
        assert "the limiter is not loaded in the GPU worker process" in r.stderr
        assert wait_until(lambda: [e.session_id for e in dp.ends] == ["limited"] and dp.sessions() == {})
        assert dp.ends[0].returncode != 0
    finally:
        dp.close()


def test_unix_socket_of_a_tls_worker_stays_plain(tls_dataplane, cuda_program):
    prog = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
    r = _run(prog, tls_dataplane.unix, 3 << 20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("dp_driver ok 3145728")


def test_graphs_with_host_nodes_over_tls(tls_dataplane, certs, cuda_program, tmp_path):
    """Graph host nodes call back into the client on the session's connection from a driver thread of the
    executor (exec_graph.c): over TLS too."""
    import numpy as np
    from cudabuild import parse_kv
    from graphs_expect import LAUNCHES, N, check_graphs_remote
    x = np.random.default_rng(11).standard_normal(N, dtype=np.float32)
    x.tofile(tmp_path / "in")
    r = _run(cuda_program("graphs_remote", cudart="shared"), tls_dataplane.tls, N, LAUNCHES, tmp_path / "in",
             tmp_path / "out", certs=certs, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    check_graphs_remote(parse_kv(r.stdout), tmp_path / "out", x)
