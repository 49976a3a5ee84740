"""The remote data path end to end: nvcc-built programs load the client stub as libcuda.so.1, talk to a
real data-plane server, which hands each connection to its own tf-executor process running the
emulated device. Nothing is mocked.
"""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from dp_helpers import InProcessDataPlane, run_via_stub, stub_dir, stub_env, wait_until

PTX = ["-gencode", "arch=compute_80,code=compute_80"]


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_driver_api_program_copies_through_unix_socket(dataplane, cuda_program):
    prog = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
    r = run_via_stub(prog, dataplane.unix, 3 << 20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("dp_driver ok 3145728 TensorFusion Emulated GPU")


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_cudart_program_with_kernel_runs_remotely(dataplane, cuda_program, cudart):
    prog = cuda_program("dp_runtime", cudart=cudart)
    r = run_via_stub(prog, dataplane.unix, 4096, "kernel")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("dp_runtime ok 4096")


def test_tcp_transport_gives_the_same_results(dataplane, cuda_program):
    prog = cuda_program("dp_runtime", cudart="static")
    r = run_via_stub(prog, dataplane.tcp, 100000, "kernel")
    assert r.returncode == 0, r.stdout + r.stderr
    # large copies cross the chunk size of one frame
    big = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
    r = run_via_stub(big, dataplane.tcp, 20 << 20)
    assert r.returncode == 0, r.stdout + r.stderr


def test_bad_token_is_rejected_with_not_permitted(dataplane, tmp_path, cuda_program):
    dp = InProcessDataPlane(tmp_path, token="right-token", tcp=False)
    try:
        prog = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
        r = run_via_stub(prog, dp.unix, lease="wrong-token")
        assert r.returncode == 1
        assert "FAIL init 800 CUDA_ERROR_NOT_PERMITTED" in r.stdout
        assert "tf-stub:" in r.stderr and "lease token rejected by test worker" in r.stderr
        assert r.stderr.count("lease token rejected") == 1
        ok = run_via_stub(prog, dp.unix, lease="right-token")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert wait_until(lambda: dp.sessions() == {})
    finally:
        dp.close()


def test_no_worker_configured_means_no_device(cuda_program):
    prog = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
    env = stub_env("")
    r = subprocess.run([str(prog)], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "FAIL init 100" in r.stdout
    assert "tf-stub: TF_WORKER is not set" in r.stderr


def test_bogus_handles_and_pointers_return_errors(dataplane, cuda_program):
    prog = cuda_program("dp_bogus", flags=("-L", str(stub_dir()), "-lcuda"))
    r = run_via_stub(prog, dataplane.unix)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dp_bogus ok" in r.stdout


def test_two_clients_are_isolated_when_one_faults(dataplane, cuda_program):
    fault = cuda_program("dp_fault", cudart="static")
    good = cuda_program("dp_runtime", cudart="static")
    env_f = stub_env(dataplane.unix)
    pf = subprocess.Popen([str(fault)], env=env_f, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pg = subprocess.Popen([str(good), "50000", "kernel"], env=stub_env(dataplane.unix), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    out_f, err_f = pf.communicate(timeout=120)
    out_g, err_g = pg.communicate(timeout=120)
    assert pg.returncode == 0, out_g + err_g
    assert "fault seen: an illegal memory access" in out_f, out_f + err_f
    assert "sticky: an illegal memory access" in out_f, out_f + err_f
    assert wait_until(lambda: len(dataplane.ends) == 2 and dataplane.sessions() == {})


def test_killed_client_ends_its_session_and_frees_its_process(dataplane, cuda_program):
    prog = cuda_program("dp_hold", flags=("-L", str(stub_dir()), "-lcuda"))
    p = subprocess.Popen([str(prog), "64"], env=stub_env(dataplane.unix), stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("holding 64 MiB")
        sessions = dataplane.sessions()
        assert len(sessions) == 1
        info = next(iter(sessions.values()))
        assert info.peer == f"unix:pid={p.pid}" and not _pid_gone(info.pid)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        assert wait_until(lambda: dataplane.sessions() == {})
        assert wait_until(lambda: _pid_gone(info.pid))
        assert wait_until(lambda: dataplane.ends and dataplane.ends[-1].reason == "client disconnected")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_close_session_kills_the_worker_process_and_client_sees_unavailable(dataplane, cuda_program):
    prog = cuda_program("dp_hold", flags=("-L", str(stub_dir()), "-lcuda"))
    p = subprocess.Popen([str(prog), "8", "wait"], env=stub_env(dataplane.unix), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("holding 8 MiB")
        (sid, info), = dataplane.sessions().items()
        dataplane.call(dataplane.server.close_session(sid, "lease expired"))
        assert _pid_gone(info.pid) or wait_until(lambda: _pid_gone(info.pid))
        assert wait_until(lambda: dataplane.ends and dataplane.ends[-1].reason == "lease expired")
        out, err = p.communicate("go\n", timeout=30)
        assert "after close: CUDA_ERROR_DEVICE_UNAVAILABLE" in out, out + err
        assert "tf-stub: connection to the GPU worker lost" in err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_standalone_entry_point_serves_unix_and_tcp(standalone_dataplane, cuda_program):
    unix, tcp = standalone_dataplane(token="tok")
    prog = cuda_program("dp_runtime", cudart="shared")
    for worker in (unix, tcp):
        r = run_via_stub(prog, worker, 1000, "kernel", lease="tok")
        assert r.returncode == 0, r.stdout + r.stderr
    bad = run_via_stub(prog, unix, 10, lease="nope")
    assert bad.returncode == 1 and "tf-stub: worker refused the session (800): bad token" in bad.stderr


def test_the_lease_file_wins_over_the_environment_token(standalone_dataplane, cuda_program, tmp_path):
    """`tensorfusion run` keeps the renewed token in TF_LEASE_FILE: a program started after its TF_LEASE expired
    presents the file's token; a named file that cannot be read refuses the session instead of falling back."""
    unix, _ = standalone_dataplane(token="fresh")
    prog = cuda_program("dp_runtime", cudart="shared")
    lease = tmp_path / "lease.token"
    lease.write_text("fresh\n")
    env = stub_env(unix, lease="stale")
    r = subprocess.run([str(prog), "1000", "kernel"], env=dict(env, TF_LEASE_FILE=str(lease)), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(prog), "10"], env=dict(env, TF_LEASE_FILE=str(tmp_path / "gone")), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1 and f"TF_LEASE_FILE {tmp_path / 'gone'}: No such file" in r.stderr, r.stderr


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_threads_with_their_own_streams_share_one_connection(dataplane, cuda_program, cudart):
    r = run_via_stub(cuda_program("dp_threads", cudart=cudart), dataplane.unix, 6, 20000, 8)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dp_threads ok 6" in r.stdout


def test_pitched_2d_copies_and_memsets(dataplane, cuda_program):
    prog = cuda_program("dp_2d", cudart="static")
    for w, h in ((1000, 300), (5000, 3000)):  # the second crosses the copy chunk size
        r = run_via_stub(prog, dataplane.unix, w, h)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.startswith(f"dp_2d ok {w} {h}")


def test_big_copies_same_result_through_shared_memory_and_socket(dataplane, cuda_program):
    prog = cuda_program("dp_driver", flags=("-L", str(stub_dir()), "-lcuda"))
    for shm in ("1", "0"):  # the memfd window, then the socket (streamed into device memory)
        env = stub_env(dataplane.unix)
        env["TF_SHM"] = shm
        r = subprocess.run([str(prog), str((20 << 20) + 12345)], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.startswith("dp_driver ok 20983865")


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_stub_works_when_preloaded(dataplane, cuda_program, cudart):
    env = stub_env(dataplane.unix)
    env["LD_LIBRARY_PATH"] = env["LD_LIBRARY_PATH"].replace(str(stub_dir()), "").strip(":")
    env["LD_PRELOAD"] = str(stub_dir() / "libcuda.so.1")
    r = subprocess.run([str(cuda_program("dp_runtime", cudart=cudart)), "1000", "kernel"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("dp_runtime ok 1000 TensorFusion Emulated GPU")


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_many_queued_launches_all_arrive_in_order(dataplane, cuda_program, transport):
    r = run_via_stub(cuda_program("dp_launches"), getattr(dataplane, transport), 30000)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dp_launches ok 30000" in r.stdout


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_device_reset_gives_a_working_fresh_context(dataplane, cuda_program, cudart):
    r = run_via_stub(cuda_program("dp_runtime", cudart=cudart), dataplane.unix, 1000, "kernel", "reset")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("dp_runtime ok 1000")


def test_per_thread_default_stream_programs(dataplane, cuda_program):
    """Built with --default-stream per-thread, cudart asks for the _ptsz/_ptds entry points."""
    flags = ("--default-stream", "per-thread")
    r = run_via_stub(cuda_program("dp_runtime", flags=flags), dataplane.unix, 5000, "kernel")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_via_stub(cuda_program("dp_threads", flags=flags), dataplane.unix, 4, 5000, 4)
    assert r.returncode == 0, r.stdout + r.stderr
