"""The `tensorfusion` CLI end to end: `up` in the background, `status`, `run` of real nvcc programs through the
stub to the embedded worker, clear errors for every mistake, and a shutdown that leaves no process behind."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cudabuild import build_example

CLI = [sys.executable, "-m", "tfclient.cli"]
EXAMPLE_WORKLOAD = Path(__file__).resolve().parent.parent / "examples" / "workload.yaml"


def tf(*args, env, timeout=120, check=False):
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture
def tf_env(tmp_path):
    env = dict(os.environ)
    env["TF_HOME"] = str(tmp_path / "tfhome")
    env.pop("TF_SCHEDULER", None)
    return env


def session_members(sid: int) -> list[int]:
    """Pids of live processes in session sid (the `up` process and everything it started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def up_args():
    return []


@pytest.fixture
def embedded_up(tf_env, up_args):
    """`tensorfusion up` in the background (own session); yields (env, process); stops it with Ctrl-C."""
    # its output (and its GPU worker processes') goes to a file: an unread pipe fills up and blocks them
    log_path = Path(tf_env["TF_HOME"]).parent / "up-test.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*CLI, "up", "--backend", "emu", *up_args], env=tf_env, start_new_session=True,
                                stdout=log, stderr=subprocess.STDOUT)
    state = Path(tf_env["TF_HOME"]) / "embedded.json"
    deadline = time.time() + 60
    while not state.exists():
        if proc.poll() is not None or time.time() > deadline:
            out = log_path.read_text(errors="replace")
            proc.kill()
            pytest.fail(f"`tensorfusion up` did not come up: {out}")
        time.sleep(0.1)
    yield tf_env, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_help_for_every_command(tf_env):
    for cmd in ([], ["up"], ["down"], ["scheduler"], ["worker"], ["run"], ["status"], ["demo"], ["token"],
                ["token", "create"], ["workload"], ["workload", "apply"], ["workload", "get"], ["top"], ["certs"],
                ["certs", "init"], ["certs", "issue"]):
        r = tf(*cmd, "--help", env=tf_env)
        assert r.returncode == 0, r.stderr
        assert "usage: tensorfusion" in r.stdout


def test_run_whose_embedded_default_cannot_start_says_why_in_one_line(tf_env):
    r = tf("run", "--", "true", env=dict(tf_env, TF_EMU_ENGINE="fast"))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    starting, line = r.stderr.strip().splitlines()          # the notice that it starts one, then why it failed
    assert starting.startswith("tensorfusion: no scheduler configured; starting the embedded default"), starting
    assert line.startswith("tensorfusion run: the embedded default exited with 1: tensorfusion up: the emulated "
                           "device does not start: tf-emu: TF_EMU_ENGINE=fast is not accepted"), line
    assert line.endswith(f"(log: {tf_env['TF_HOME']}/up.log)"), line


def test_run_without_a_command_says_how(tf_env):
    r = tf("run", "--vram", "1Gi", env=tf_env)
    assert r.returncode == 1
    assert "no command given" in r.stderr


def test_an_unknown_flag_points_at_its_own_commands_help(tf_env):
    for args, prog in ((["--bogus"], "tensorfusion"), (["status", "--bogus"], "tensorfusion status"),
                       (["token", "list", "--bogus"], "tensorfusion token list"),
                       (["workload", "--bogus", "list"], "tensorfusion workload list"),
                       (["run", "--bogus", "--", "true"], "tensorfusion run")):
        r = tf(*args, env=tf_env)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.strip() == f"{prog}: unrecognized arguments: --bogus (see `{prog} --help`)", r.stderr



    r = tf("run", "--vram", "2Zi", "--", "true", env=tf_env)
    assert r.returncode == 1
    assert "2Zi" in r.stderr and "unit" in r.stderr.lower()
    assert "Traceback" not in r.stderr


def test_unreachable_scheduler_is_a_clear_error(tf_env):
    tf_env["TF_SCHEDULER"] = "127.0.0.1:9"  # discard port: nothing listens there
    r = tf("status", env=tf_env, timeout=60)
    assert r.returncode == 1
    assert "unreachable" in r.stderr.lower() and "127.0.0.1:9" in r.stderr
    assert "Traceback" not in r.stderr


def test_token_and_workload_take_their_scheduler_flags_after_the_action_too(tf_env, tmp_path):
    """`token create --role ... --scheduler H:P`, as one writes it, dials H:P (it was "unrecognized arguments");
    before the action they work as before, and a flag given after the action wins."""
    for args in (["token", "create", "--role", "admin", "--scheduler", "127.0.0.1:9"],
                 ["token", "--scheduler", "127.0.0.1:9", "list"],
                 ["token", "--scheduler", "127.0.0.1:8", "revoke", "abc", "--scheduler", "127.0.0.1:9"],
                 ["workload", "list", "--namespace", "team-a", "--scheduler", "127.0.0.1:9"],
                 ["workload", "get", "w", "-o", "json", "--scheduler", "127.0.0.1:9"],
                 ["workload", "apply", "--scheduler", "127.0.0.1:9", "-f", str(EXAMPLE_WORKLOAD)]):
        r = tf(*args, env=tf_env, timeout=60)
        unreachable = f"tensorfusion {args[0]}: scheduler 127.0.0.1:9 unreachable"
        assert r.returncode == 1 and r.stderr.startswith(unreachable), (args, r.stderr)
    r = tf("token", "list", "--scheduler", "127.0.0.1:9", "--tls-ca", str(tmp_path / "missing.crt"), env=tf_env)
    assert r.returncode == 1 and "missing.crt: cannot read it" in r.stderr, r.stderr


@pytest.mark.parametrize("args, says", [
    (["scheduler", "--listen", "127.0.0.1:99999"],
     "tensorfusion scheduler: cannot serve the scheduler API on '127.0.0.1:99999': use HOST:PORT (a port from 0 to "
     "65535)"),
    (["scheduler", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:70000"],
     "tensorfusion scheduler: cannot serve the metrics API on '127.0.0.1:70000': use HOST:PORT"),
    (["scheduler", "--listen", "127.0.0.1:0", "--lease-ttl", "-5"],
     "tensorfusion scheduler: --lease-ttl -5: use a number of seconds > 0"),
    (["scheduler", "--listen", "127.0.0.1:0", "--heartbeat-interval", "0"],
     "tensorfusion scheduler: --heartbeat-interval 0: use a number of seconds > 0"),
    (["scheduler", "--listen", "127.0.0.1:0", "--node-timeout", "nan"],
     "tensorfusion scheduler: --node-timeout nan: use a number of seconds > 0"),
    (["up", "--backend", "emu", "--tcp", "127.0.0.1:99999"],
     "tensorfusion up: cannot serve the embedded worker's data plane API on '127.0.0.1:99999': use HOST:PORT (a port "
     "from 0 to 65535)"),
    (["worker", "--scheduler", "127.0.0.1:9", "--backend", "emu", "--metrics-port", "99999"],
     "tensorfusion worker: --metrics-port 99999: use a port from 0 to 65535"),
])
def test_server_flags_out_of_range_stop_at_start_with_one_line(tf_env, args, says):
    """They used to start: --listen 127.0.0.1:99999 served on port 34463 (gRPC's 99999 mod 65536), --lease-ttl -5
    and --heartbeat-interval 0 served; --tcp, --metrics-listen and --metrics-port out of range were an internal
    error with a traceback, after the servers had started."""
    r = tf(*args, env=tf_env, timeout=30)
    assert r.returncode == 1 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stdout + r.stderr
    assert r.stderr.startswith(says), r.stderr


@pytest.mark.parametrize("command", [["status"], ["top", "--once"], ["token", "list"], ["workload", "list"]])
def test_a_client_command_without_a_scheduler_says_how_to_get_one(tf_env, command):
    r = tf(*command, env=tf_env, timeout=60)        # a fresh TF_HOME: no embedded default, no TF_SCHEDULER
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == (f"tensorfusion {command[0]}: no scheduler: start one with `tensorfusion up`, or pass "
                        f"--scheduler / set TF_SCHEDULER\n")


def test_up_status_run_and_clean_shutdown(embedded_up):
    env, up = embedded_up
    status = tf("status", env=env, check=True)
    assert "TensorFusion Emulated GPU" in status.stdout
    assert status.stdout.count("node") >= 1

    program = build_example("vector_add")
    r = tf("run", "--tflops", "0.001", "--vram", "256Mi", "--", str(program), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "65536 elements correct" in r.stdout

    # No capacity: more VRAM than the emulated device has.
    r = tf("run", "--vram", "1000Gi", "--", str(program), env=env)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "1024000 MiB" in r.stderr and "exceeds" in r.stderr
    # what `run` can change: the request and its limit (it has no GPU-count flag)
    assert "lower the request or limit that does not fit" in r.stderr and "GPUs" not in r.stderr, r.stderr

    # The allocation of the finished run was released.
    status = tf("status", env=env, check=True)
    assert "no allocations" in status.stdout.lower()

    # `up` says where its scheduler and its metrics are
    log = (Path(env["TF_HOME"]).parent / "up-test.log").read_text()
    address = json.loads((Path(env["TF_HOME"]) / "embedded.json").read_text())["scheduler"]
    assert f"tensorfusion up: scheduler {address} (TF_HOME {env['TF_HOME']})" in log, log
    assert "tensorfusion up: metrics http://127.0.0.1:" in log, log

    up.send_signal(signal.SIGINT)
    assert up.wait(timeout=30) == 0
    time.sleep(0.5)
    assert session_members(up.pid) == [], "processes left behind after `up` stopped"
    # what only a running `up` needs is gone; its state (secret, tokens, scheduler.db) stays
    assert state_files(env["TF_HOME"]) == KEPT, os.listdir(env["TF_HOME"])


# an embedded default's state: what it keeps across its lives (the worker's instance id: the same worker, which
# re-registers its node at once)
KEPT = sorted(["admin.token", "scheduler.db", "secret", "tenant.token", "worker.token", "worker-TAG.instance"])


def state_files(home, ignore=()) -> list[str]:
    """The names in home (the worker's tag shown as TAG), sorted, without those in ignore."""
    return sorted(re.sub(r"^worker-[0-9a-f]{12}\.instance$", "worker-TAG.instance", n) for n in os.listdir(home)
                  if n not in ignore)


def test_down_after_a_killed_up_removes_what_it_left(embedded_up):
    env, up = embedded_up
    os.killpg(up.pid, signal.SIGKILL)          # no chance to clean up: locks, socket, embedded.json stay
    up.wait(timeout=30)
    assert {"up.lock", "embedded.json"} <= set(os.listdir(env["TF_HOME"]))
    r = tf("down", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "tensorfusion down: no embedded default is running", r.stdout
    # SQLite's write-ahead log of the killed scheduler stays (it holds committed state; the next start folds it in)
    assert state_files(env["TF_HOME"], ignore={"scheduler.db-wal", "scheduler.db-shm"}) == KEPT, \
        os.listdir(env["TF_HOME"])


def test_demo_runs_every_sample_through_a_vgpu_and_cleans_up(tf_env):
    r = tf("demo", env=tf_env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "vector_add: 65536 elements correct" in r.stdout
    assert "matmul: 128x128 correct" in r.stdout
    assert "TensorFusion Emulated GPU (CPU)" in r.stdout       # device_query and the status table
    assert "3/3 samples ran correctly" in r.stdout
    assert not (Path(tf_env["TF_HOME"]) / "embedded.json").exists()   # the background default was stopped


def test_run_passes_the_exit_code_through_and_releases_the_vgpu(embedded_up):
    env, _ = embedded_up
    r = tf("run", "--vram", "128Mi", "--", "sh", "-c", 'test -n "$TF_LEASE" && exit 3', env=env)
    assert r.returncode == 3, r.stderr
    r = tf("run", "--vram", "128Mi", "--", "/nonexistent/program", env=env)
    assert r.returncode == 1 and "command not found" in r.stderr
    status = tf("status", env=env, check=True)
    assert "no allocations" in status.stdout.lower()


def test_run_keeps_its_commands_exit_code_when_the_scheduler_is_gone_at_release(embedded_up):
    """The scheduler stops while the command runs (here the command stops it): the command's work is done, so
    `run` exits with the command's code and says in one warning line that the vGPU is left to its lease."""
    env, proc = embedded_up
    r = tf("run", "--vram", "256Mi", "--", "sh", "-c", f"{sys.executable} -m tfclient.cli down; exit 3", env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "tensorfusion down: stopped" in r.stdout
    warning = [line for line in r.stderr.splitlines() if line.startswith("tensorfusion run:")]
    assert len(warning) == 1 and "Traceback" not in r.stderr, r.stderr
    assert warning[0].startswith("tensorfusion run: warning: vGPU alloc-") and \
        warning[0].endswith("it ends by itself when its lease expires"), warning[0]
    assert proc.wait(timeout=30) == 0


def test_terminated_run_still_releases_its_vgpu(embedded_up):
    env, _ = embedded_up
    proc = subprocess.Popen([*CLI, "run", "--vram", "128Mi", "--", "sleep", "30"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while "1 allocation(s)" not in tf("status", env=env, check=True).stdout:
        assert time.time() < deadline and proc.poll() is None, "the run never got its allocation"
        time.sleep(0.2)
    proc.terminate()
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert "no allocations" in tf("status", env=env, check=True).stdout.lower()


def test_run_local_caps_vram_with_the_limiter_alone(tf_env):
    """Local vGPU mode: no scheduler, no worker; the limiter is preloaded into the program on this host
    (here over the emulated device, since this host has no GPU)."""
    program = build_example("device_query")
    r = tf("run", "--local", "--vram", "300Mi", "--tflops", "0.005", "--", str(program), env=tf_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "300 MiB total, 300 MiB free" in r.stdout
    assert not (Path(tf_env["TF_HOME"]) / "embedded.json").exists()   # nothing was started


def test_run_local_refuses_flags_only_a_scheduler_could_act_on(tf_env):
    """--pool, --qos, --workload... mean nothing without a scheduler: one line naming them, not a silent run."""
    r = tf("run", "--local", "--vram", "64Mi", "--pool", "gpu-a", "--qos", "high", "--", "true", env=tf_env)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("tensorfusion run: --pool, --qos: no meaning with --local") and \
        r.stderr.count("\n") == 1, r.stderr
    r = tf("run", "--local", "--transport", "tcp", "--", "true", env=tf_env)
    assert r.returncode == 1 and "--transport: no meaning with --local" in r.stderr and "drop it," in r.stderr
    assert not (Path(tf_env["TF_HOME"]) / "embedded.json").exists()   # nothing was started


@pytest.mark.parametrize("up_args", [["--tcp", "127.0.0.1:0"]])
def test_run_over_tcp_transport(embedded_up):
    env, _ = embedded_up
    program = build_example("vector_add")
    r = tf("run", "--transport", "tcp", "--tflops", "0.001", "--vram", "256Mi", "--", "sh", "-c",
           f'echo "worker=$TF_WORKER"; exec {program}', env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "worker=tcp:127.0.0.1:" in r.stdout
    assert "65536 elements correct" in r.stdout


def ups_of(home: str) -> list[int]:
    """Pids of `tensorfusion up` processes serving this TF_HOME."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"tfclient.cli" in cmd and b"up" in cmd and f"TF_HOME={home}".encode() in environ:
            pids.append(int(entry.name))
    return pids


def test_embedded_default_keeps_its_files_private_and_its_tokens_work(embedded_up):
    env, _ = embedded_up
    home = Path(env["TF_HOME"])
    mode = lambda p: oct(p.stat().st_mode & 0o777)
    assert mode(home) == "0o700"
    for name in ("secret", "scheduler.db", "admin.token", "tenant.token", "worker.token", "embedded.json"):
        assert mode(home / name) == "0o600", name
    [sock] = home.glob("worker-*.sock")
    assert mode(sock) == "0o600"
    # an admin (the owner of the embedded default) hands out a tenant token; the tenant cannot do admin things
    r = tf("token", "create", "--role", "tenant", "--namespace", "team-x", env=env)
    assert r.returncode == 0 and r.stdout.startswith("tf1."), r.stderr
    tenant = dict(env, TF_TOKEN=r.stdout.strip())
    r = tf("token", "list", env=tenant)
    assert r.returncode == 1 and "not allowed to a tenant token" in r.stderr and "Traceback" not in r.stderr
    r = tf("run", "--vram", "128Mi", "--", "sh", "-c", 'test -n "$TF_LEASE_FILE" && test -s "$TF_LEASE_FILE"',
           env=tenant)
    assert r.returncode == 0, r.stderr
    r = tf("status", env=dict(env, TF_TOKEN="tf1.0000000000000000.forged"))
    assert r.returncode == 1 and "unknown or malformed" in r.stderr


def test_two_runs_started_at_once_share_one_embedded_default(tf_env):
    home = Path(tf_env["TF_HOME"])
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    runs = [subprocess.Popen([*CLI, "run", "--vram", "64Mi", "--", "true"], env=tf_env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        errs = []
        for p in runs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            errs.append(err)
        assert len(ups_of(str(home))) == 1, "more than one embedded default for one TF_HOME"
        assert oct(home.stat().st_mode & 0o777) == "0o700"
        # the run that started it says where the scheduler and the metrics are
        address = json.loads((home / "embedded.json").read_text())["scheduler"]
        assert any(f"embedded default up: scheduler {address}, metrics http://" in e for e in errs), errs
    finally:
        down = tf("down", env=tf_env)
    assert down.stdout.strip() == "tensorfusion down: stopped", down.stdout + down.stderr
    assert ups_of(str(home)) == [], "an embedded default stayed behind"
    # `down` leaves no lock, lease or socket file behind: only the state and the log of `up`
    assert state_files(home) == sorted(KEPT + ["up.log"]), os.listdir(home)
    assert tf("down", env=tf_env).stdout.strip() == "tensorfusion down: no embedded default is running"


def test_run_local_processes_of_one_command_share_the_vram_cap(tf_env, tmp_path):
    """`run --local --vram 256Mi -- sh -c 'hold & hold & hold & hold'`: 80 MiB each, three fit, the fourth
    is refused - the cap is the command's, not each process's - and no region is left behind."""
    from cudabuild import build_cuda
    from tfclient import native
    hold = build_cuda("dp_hold", flags=("-L", str(native.emu_lib_dir()), "-lcuda"))
    out = tmp_path / "holds.out"
    script = (f"for i in 1 2 3 4; do {hold} 80 >> {out} & done; "
              f"for t in $(seq 600); do [ $(wc -l < {out}) -ge 4 ] && break; sleep 0.1; done; "
              f"for p in $(jobs -p); do kill $p 2>/dev/null; done; wait; cat {out}")
    before = {n for n in os.listdir("/dev/shm") if n.startswith("tf-local-")}
    r = tf("run", "--local", "--vram", "256Mi", "--", "bash", "-c", script, env=tf_env)
    lines = sorted(line for line in r.stdout.splitlines() if line.strip())
    assert lines == ["FAIL setup CUDA_ERROR_OUT_OF_MEMORY"] + ["holding 80 MiB"] * 3, r.stdout + r.stderr
    assert {n for n in os.listdir("/dev/shm") if n.startswith("tf-local-")} <= before


def one_line_error(r) -> str:
    """The failure a user sees: exit code 1 and exactly one line on stderr, no traceback."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_run_without_resource_flags_gets_the_pools_default_profile(embedded_up):
    """First-time use: `tensorfusion run -- ./app` asks for nothing and gets the default vGPU profile (the
    whole VRAM of one GPU, no compute limit), then runs the program on it."""
    env, _ = embedded_up
    program = build_example("vector_add")
    r = tf("run", "--", str(program), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "65536 elements correct" in r.stdout
    r = tf("run", "--", sys.executable, "-m", "tfclient.cli", "status", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("alloc-"))
    assert row.split()[3:5] == ["0/0", "16384/16384"], row     # tflops req/lim, vram req/lim (emulator: 16 GiB)
    assert "no allocations" in tf("status", env=env, check=True).stdout.lower()


def test_a_command_that_cannot_run_is_one_line_before_any_vgpu_is_allocated(tf_env, tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")                # not executable
    for cmd, says in (([str(tmp_path)], "is a directory"), ([str(script)], "not executable"),
                      (["/nonexistent/app"], "command not found"), (["no-such-program-tf"], "not on PATH")):
        line = one_line_error(tf("run", "--", *cmd, env=tf_env))
        assert says in line and cmd[0] in line, line
    assert not (Path(tf_env["TF_HOME"]) / "embedded.json").exists()    # nothing was started or allocated


def test_run_with_a_tls_ca_but_no_scheduler_says_which_to_give_before_starting_anything(tf_env, tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("not read: refused before\n")
    for flags, env in ((["--tls-ca", str(ca)], tf_env), ([], dict(tf_env, TF_TLS_CA=str(ca)))):
        line = one_line_error(tf("run", *flags, "--", "true", env=env))
        assert line.startswith("tensorfusion run: --tls-ca/TF_TLS_CA is set but no scheduler is: pass the TLS "
                               "scheduler's address (--scheduler HOST:PORT or TF_SCHEDULER)"), line
    assert not (Path(tf_env["TF_HOME"]) / "embedded.json").exists()    # no embedded default was started


@pytest.mark.parametrize("flags,says", [
    (["--vram", "1e99"], "VRAM '1e99' is out of range: allowed 0 to 1024Ti"),
    (["--tflops", "1e12"], "TFLOPS '1e12' is out of range: allowed 0 to 1000000"),
    # a negative quantity: the same line whether the value follows the flag or is joined to it by '=' (argparse
    # reads a word starting with '-' as an option unless it looks like a number)
    (["--vram", "-5Gi"], "--vram -5Gi: must be above 0 (omit --vram for the pool's default)"),
    (["--vram=-5Gi"], "--vram -5Gi: must be above 0 (omit --vram for the pool's default)"),
    (["--vram-limit", "-1.5Gi"], "--vram-limit -1.5Gi: must be above 0"),
    # Kubernetes quantities: case-sensitive suffixes, nothing else
    (["--vram", "2Gb"], "VRAM '2Gb' has unknown unit 'Gb' (suffixes are case-sensitive): use a Kubernetes quantity: "
                        "MiB as a plain number (1024), or bytes with a case-sensitive suffix, Ki Mi Gi Ti (1024^n: "
                        "512Mi, 2Gi) or k M G T (1000^n: 2G)"),
    (["--vram-limit", "2gi"], "VRAM '2gi' has unknown unit 'gi' (suffixes are case-sensitive)"),
    (["--vram", "512m"], "VRAM '512m': m is milli, a thousandth of a byte, not a size"),
    (["--tflops", "500G"], "TFLOPS '500G' is out of range: allowed 0 to 1000000 (FP16 TFLOPS), e.g. 10, 2.5, 500m"),
    (["--tflops", "-5"], "--tflops -5: must be above 0"),
    (["--tflops-limit", "-500m"], "--tflops-limit -500m: must be above 0"),
    (["--tflops-limit=-.5"], "--tflops-limit -.5: must be above 0"),
    (["--vram", "-2x"], "VRAM '-2x' has unknown unit 'x'"),
    (["--tflops", "fast"], "TFLOPS 'fast' is not a number"),
    (["--qos", "urgent"], "invalid choice: 'urgent'"),
    (["--gpus", "-1"], "--gpus -1: use a whole number of GPUs from 1 to 256 (all on one worker)"),
    (["--gpus", "1.5"], "--gpus 1.5: use a whole number of GPUs from 1 to 256"),
    (["--gpus", "999"], "--gpus 999: use a whole number of GPUs from 1 to 256"),
    # 0 is "not given" on the wire: the pool's default (a whole GPU) or no compute limit, so it is refused
    (["--vram", "0"], "--vram 0: must be above 0 (omit --vram for the pool's default)"),
    (["--vram-limit", "0Gi"], "--vram-limit 0Gi: must be above 0"),
    (["--tflops", "0"], "--tflops 0: must be above 0"),
    (["--tflops-limit", "0m"], "--tflops-limit 0m: must be above 0"),
])
def test_bad_numbers_and_flags_are_one_line_saying_what_is_allowed(tf_env, flags, says):
    line = one_line_error(tf("run", *flags, "--", "true", env=tf_env))
    assert says in line, line


# the shipped example (README): sized for the emulated device, its cron rule active on Thursdays (UTC)
WORKLOAD_YAML = EXAMPLE_WORKLOAD.read_text()


def test_workload_apply_get_list_and_run_with_the_workloads_resources(embedded_up, tmp_path):
    import json
    env, _ = embedded_up
    doc = tmp_path / "workload.yaml"
    doc.write_text(WORKLOAD_YAML)
    r = tf("workload", "apply", "-f", str(doc), env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "workload default/train-a applied"

    view = json.loads(tf("workload", "get", "train-a", "-o", "json", env=env, check=True).stdout)
    assert view["name"] == "train-a" and view["autoScalingConfig"]["autoSetResources"]["targetResource"] == "all"
    cond = view["status"]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("RecommendationProvided", "False", "NoUsageHistory")
    thursday = time.gmtime().tm_wday == 3
    assert view["status"]["activeCronScalingRule"] == ("test" if thursday else None)
    want = ("0.003/0.006", "5120/10240") if thursday else ("0.002/0.004", "1024/2048")
    got = tf("workload", "get", "train-a", env=env, check=True).stdout                   # yaml, the seed's fields
    assert "appliedRecommendedReplicas: 0" in got
    assert view["status"]["resources"]["limits"] == ({"tflops": "0.006", "vram": "10Gi"} if thursday
                                                     else {"tflops": "0.004", "vram": "2Gi"}), view["status"]

    listed = tf("workload", "list", env=env, check=True).stdout.splitlines()
    assert listed[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert listed[1].split()[:3] == ["default", "train-a", "0"]

    # an allocation named after the workload, asking for nothing, runs with the workload's resources
    r = tf("run", "--workload", "train-a", "--", sys.executable, "-m", "tfclient.cli", "status", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("alloc-"))
    assert tuple(row.split()[3:5]) == want, row

    # `top --once`: one frame of pools, GPUs, sessions (with usage bars) and the workload with its condition,
    # 100 columns wide at most
    r = tf("run", "--workload", "train-a", "--", sys.executable, "-m", "tfclient.cli", "top", "--once", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for title in ("Pools", "GPUs", "Sessions", "Workloads"):
        assert f"\n{title}" in "\n" + out, out
    assert "TensorFusion" in out and "░" in out, out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 100, out
    wl_row = next(line for line in out.splitlines() if "train-a" in line and "NoUsageHistory" in line)
    assert "default/train-a" in wl_row, out
    session = next(line for line in out.splitlines() if line.strip().startswith("alloc-"))
    assert "train-a" in session and ("/10Gi" if thursday else "/2Gi") in session, session   # vram used/limit

    # `list -o json|yaml`: every workload as `get` shows it
    views = json.loads(tf("workload", "list", "-o", "json", env=env, check=True).stdout)
    assert [v["name"] for v in views] == ["train-a"] and "conditions" in views[0]["status"]
    import yaml
    assert yaml.safe_load(tf("workload", "list", "-o", "yaml", env=env, check=True).stdout)[0]["name"] == "train-a"

    # joining a workload that does not exist is refused before any vGPU is allocated
    line = one_line_error(tf("run", "--workload", "train-b", "--", "true", env=env))
    assert line == ("tensorfusion run: workload 'train-b' does not exist in namespace 'default': create it with "
                    "`tensorfusion workload apply -f FILE`"), line
    assert "no allocations" in tf("status", env=env, check=True).stdout.lower()
    # piped without --once: one frame and exit (a live view would print nothing until it is stopped)
    r = tf("top", env=env, timeout=60)
    assert r.returncode == 0 and "TensorFusion Emulat" in r.stdout and "Workloads" in r.stdout, r.stdout + r.stderr


def test_bad_workload_files_are_one_line_naming_the_field(embedded_up, tmp_path):
    env, _ = embedded_up
    bad = tmp_path / "bad.yaml"
    bad.write_text(WORKLOAD_YAML.replace("targetResource: all", "targetResource: gpu"))
    line = one_line_error(tf("workload", "apply", "-f", str(bad), env=env))
    assert "autoScalingConfig.autoSetResources.targetResource: 'gpu' must be all, tflops, vram or empty" in line
    bad.write_text("name: [unclosed\n")
    assert "is not valid YAML (line" in one_line_error(tf("workload", "apply", "-f", str(bad), env=env))
    assert "cannot read" in one_line_error(tf("workload", "apply", "-f", str(tmp_path / "none.yaml"), env=env))
    assert "'nope' does not exist" in one_line_error(tf("workload", "get", "nope", env=env))
