"""Remote data path benchmark: the client stub + tf-executor against direct calls and raw sockets,
measured side by side in the same run (tests/cuda/dp_bench.cu does the timing in C).

    .venv/bin/python benchmarks/bench_datapath.py [--backend emu|nvidia] [--reps 3] [--write] [--tls-only]

Reports (median of --reps runs each):
  async launch rate   empty-kernel cuLaunchKernel through the stub (enqueue and completed) vs direct
  sync round trip     cuCtxSynchronize p50/p99 through the stub (Unix and TCP) vs a raw Unix-socket
                      16-byte ping-pong between two processes
  copy bandwidth      64 MiB cuMemcpyHtoD/DtoH through the stub (shared-memory window, and socket only)
                      vs raw Unix-socket streaming
  TLS cost            the same sync round trip and 64 MiB copies over TCP loopback, plain and TLS
                      (TF_WORKER=tls:, OpenSSL in the stub and the executor), runs interleaved
--write replaces the data-path sections of benchmarks/RESULTS.md with the tables; --tls-only measures
and writes only the TLS comparison.

    .venv/bin/python benchmarks/bench_datapath.py --against DIR [--reps 5]

compares this tree's stub + executor with another checkout's (DIR, built, with its own .venv: e.g. the
main branch), runs interleaved, the same dp_bench binary: the sync round trip and 4 KiB synchronous copies
(pageable: every kind; page-locked: H2D, D2H, and D2H async + stream synchronize, the last two also at 1 MiB
and 64 MiB) over the shared-memory window, a Unix socket without it (TF_SHM=0) and TCP. Prints the table;
nothing is written.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tfclient import native  # noqa: E402
from results_md import write_section  # noqa: E402

TARGETS = {"launch": 200_000, "sync_ratio": 2.0, "copy_ratio": 0.9, "tls_copy_ratio": 0.8}


def build_bench() -> Path:
    spec = importlib.util.spec_from_file_location("cudabuild", REPO / "tests" / "cudabuild.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_cuda("dp_bench", flags=("-L", str(native.stub_lib_dir()), "-lcuda"))


def run(binary: Path, env: dict, *args) -> dict:
    out = subprocess.run([str(binary), *map(str, args)], env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"dp_bench {' '.join(map(str, args))} failed: {out.stdout}{out.stderr}")
    kv = {}
    for tok in out.stdout.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            kv[k] = float(v)
    return kv


def median(binary: Path, env: dict, reps: int, *args) -> dict:
    runs = [run(binary, env, *args) for _ in range(reps)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def lib_env(lib_dir: Path | None, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    if lib_dir:
        env["LD_LIBRARY_PATH"] = f"{lib_dir}:{env.get('LD_LIBRARY_PATH', '')}".rstrip(":")
    env.update(extra or {})
    return env


def _load_tests_module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tests" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod        # (dataclasses look their module up there)
    spec.loader.exec_module(mod)
    return mod


def _start_dataplane(args: list[str]) -> tuple[subprocess.Popen, int]:
    server = subprocess.Popen([sys.executable, "-m", "tfworker.dataplane", *args], stdout=subprocess.PIPE, text=True,
                              cwd=REPO)
    line = server.stdout.readline().strip()
    if "tcp_port=" not in line:
        server.kill()
        raise RuntimeError(f"data plane did not start: {line!r}")
    return server, int(line.split("tcp_port=")[1])


def measure_tls(bench: Path, backend: str, reps: int, tmp: str) -> dict:
    """Plain TCP and TLS over loopback, each rep interleaved (one server of each kind, same backend)."""
    certs = _load_tests_module("tls_certs")
    ca = certs.make_ca(Path(tmp) / "certs")
    server_cert = certs.issue(Path(tmp) / "certs", ca, "worker")
    plain, plain_port = _start_dataplane(["--tcp", "127.0.0.1:0", "--backend", backend])
    tls, tls_port = _start_dataplane(["--tcp", "127.0.0.1:0", "--backend", backend, "--tls-cert", server_cert.cert,
                                      "--tls-key", server_cert.key])
    try:
        env_tcp = lib_env(native.stub_lib_dir(), {"TF_WORKER": f"tcp:127.0.0.1:{plain_port}", "TF_LEASE": ""})
        env_tls = lib_env(native.stub_lib_dir(), {"TF_WORKER": f"tls:127.0.0.1:{tls_port}", "TF_LEASE": "",
                                                  "TF_TLS_CA": ca.cert})
        runs: dict[str, list] = {"sync_tcp": [], "sync_tls": [], "copy_tcp": [], "copy_tls": []}
        for _ in range(reps):
            runs["sync_tcp"].append(run(bench, env_tcp, "sync", 5000))
            runs["sync_tls"].append(run(bench, env_tls, "sync", 5000))
            runs["copy_tcp"].append(run(bench, env_tcp, "copy", 64, 4))
            runs["copy_tls"].append(run(bench, env_tls, "copy", 64, 4))
        return {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    finally:
        for p in (plain, tls):
            p.terminate()
            p.wait(10)


def tls_table(t: dict, backend: str, reps: int) -> str:
    ratio_h2d = t["copy_tls"]["h2d_gbs"] / t["copy_tcp"]["h2d_gbs"]
    ratio_d2h = t["copy_tls"]["d2h_gbs"] / t["copy_tcp"]["d2h_gbs"]
    goal = TARGETS["tls_copy_ratio"]
    rows = [
        ("sync round trip p50 / p99 (us)", f"{t['sync_tcp']['p50_us']:.1f} / {t['sync_tcp']['p99_us']:.1f}",
         f"{t['sync_tls']['p50_us']:.1f} / {t['sync_tls']['p99_us']:.1f}",
         f"+{t['sync_tls']['p50_us'] - t['sync_tcp']['p50_us']:.1f} us p50", "", None),
        ("H2D 64 MiB (GB/s)", f"{t['copy_tcp']['h2d_gbs']:.2f}", f"{t['copy_tls']['h2d_gbs']:.2f}", f"{ratio_h2d:.0%}",
         f">= {goal:.0%}", ratio_h2d >= goal),
        ("D2H 64 MiB (GB/s)", f"{t['copy_tcp']['d2h_gbs']:.2f}", f"{t['copy_tls']['d2h_gbs']:.2f}", f"{ratio_d2h:.0%}",
         f">= {goal:.0%}", ratio_d2h >= goal),
    ]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = (f"Backend `{backend}`, {os.cpu_count()} CPUs ({platform.machine()}), median of {reps} interleaved runs, "
            f"{when}, load average {os.getloadavg()[0]:.1f} while measuring (`uptime`: {_uptime()}). "
            "TCP loopback, the same stub and executor, plain vs TLS (`bench_datapath.py --tls-only`).")
    table = ["| measure | TCP | TCP + TLS | TLS / TCP | target | met |", "|---|---|---|---|---|---|"]
    for name, a, b, ratio, target, ok in rows:
        table.append(f"| {name} | {a} | {b} | {ratio} | {target} | {'' if ok is None else ('yes' if ok else 'no')} |")
    notes = [
        "",
        "TLS is OpenSSL 3 in userspace at both ends (kernel TLS is not available on this machine: "
        "`/proc/sys/net/ipv4/tcp_available_ulp` has no `tls`); TLS 1.3, AES-GCM with AES-NI. Small frames of "
        "one call are gathered into one record (one syscall, as sendmsg on the plain path); both ends read with "
        "read-ahead into a 256 KiB buffer, so a burst of records costs one read. A copy's bytes are encrypted "
        "once and decrypted once: with the emulator, H2D payloads are decrypted straight into device memory "
        "and D2H payloads encrypted straight from it, as the plain path reads and writes them.",
    ]
    return "\n".join([head, "", *table, *notes])


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return "n/a"


def _dataplane_of(root: Path, python: str, tmp: str, tag: str) -> tuple[subprocess.Popen, str, int]:
    sock = Path(tmp) / f"{tag}.sock"
    server = subprocess.Popen([python, "-m", "tfworker.dataplane", "--unix", str(sock), "--tcp", "127.0.0.1:0",
                               "--backend", "emu"], stdout=subprocess.PIPE, text=True, cwd=root)
    line = server.stdout.readline().strip()
    if "tcp_port=" not in line:
        server.kill()
        raise RuntimeError(f"data plane of {root} did not start: {line!r}")
    return server, str(sock), int(line.split("tcp_port=")[1])


# (label, dp_bench arguments, the keys reported) of the --against comparison
AGAINST_RUNS = [("sync", ("sync", 3000), ("p50_us",)),
                ("copyk", ("copyk", 4, 2000), ("h2d_us", "d2h_us")),
                ("copykinds", ("copykinds", 4, 500), ("h2d2d_us", "d2h2d_us", "htoa_us", "atoh_us")),
                ("pinnedk", ("pinnedk", 4, 2000), ("h2d_us", "d2h_us", "d2h_async_us")),
                ("pinnedk 1 MiB", ("pinnedk", 1024, 200), ("d2h_us", "d2h_async_us")),
                ("pinnedk 64 MiB", ("pinnedk", 65536, 6), ("d2h_us", "d2h_async_us"))]


def compare_against(bench: Path, other: Path, reps: int) -> str:
    """This tree vs `other` (a built checkout with its .venv), every run interleaved, medians of reps."""
    trees = {"this": (REPO, sys.executable), "other": (other, str(other / ".venv" / "bin" / "python"))}
    res: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {name: _dataplane_of(root, py, tmp, name) for name, (root, py) in trees.items()}
        try:
            for _ in range(reps):
                for name, (root, _py) in trees.items():
                    _srv, sock, port = servers[name]
                    lib = root / "build" / "stub"
                    for transport, extra in (("window", {"TF_WORKER": f"unix:{sock}"}),
                                             ("TF_SHM=0", {"TF_WORKER": f"unix:{sock}", "TF_SHM": "0"}),
                                             ("TCP", {"TF_WORKER": f"tcp:127.0.0.1:{port}"})):
                        env = lib_env(lib, {"TF_LEASE": "", **extra})
                        for label, args, keys in AGAINST_RUNS:
                            kv = run(bench, env, *args)
                            for k in keys:
                                res.setdefault((transport, label, k), {}).setdefault(name, []).append(kv[k])
        finally:
            for srv, _sock, _port in servers.values():
                srv.terminate()
                srv.wait(10)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = (f"Backend `emu`, {os.cpu_count()} CPUs ({platform.machine()}), median of {reps} interleaved runs, {when}, "
            f"`uptime`: {_uptime()}. This tree vs `{other}` (`bench_datapath.py --against`), the same dp_bench "
            "binary, 4 KiB copies unless named, microseconds per call (sync: per cuCtxSynchronize, p50).")
    table = ["| transport | measure | other | this | this / other |", "|---|---|---|---|---|"]
    for (transport, label, k), v in res.items():
        a, b = statistics.median(v["other"]), statistics.median(v["this"])
        table.append(f"| {transport} | {label} {k} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
    return "\n".join([head, "", *table])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("emu", "nvidia"), default="emu")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--launches", type=int, default=200_000)
    ap.add_argument("--write", action="store_true", help="update the data-path section of benchmarks/RESULTS.md")
    ap.add_argument("--tls-only", action="store_true", help="only the TLS vs plain TCP comparison")
    ap.add_argument("--against", type=Path, help="compare with this built checkout (its stub and executor)")
    a = ap.parse_args()

    bench = build_bench()
    if a.against:
        print(compare_against(bench, a.against.resolve(), a.reps))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tls_text = tls_table(measure_tls(bench, a.backend, a.reps, tmp), a.backend, a.reps)
    print(tls_text)
    if a.write:
        write_section("datapath_tls", "Remote data path: TLS cost on TCP", tls_text)
    if a.tls_only:
        return
    backend_dir = native.emu_lib_dir() if a.backend == "emu" else None
    with tempfile.TemporaryDirectory() as tmp:
        sock = Path(tmp) / "dp.sock"
        server = subprocess.Popen([sys.executable, "-m", "tfworker.dataplane", "--unix", str(sock), "--tcp",
                                   "127.0.0.1:0", "--backend", a.backend], stdout=subprocess.PIPE, text=True,
                                  cwd=REPO)
        try:
            line = server.stdout.readline().strip()
            port = int(line.split("tcp_port=")[1])
            stub_unix = lib_env(native.stub_lib_dir(), {"TF_WORKER": f"unix:{sock}", "TF_LEASE": ""})
            stub_noshm = lib_env(native.stub_lib_dir(), {"TF_WORKER": f"unix:{sock}", "TF_LEASE": "", "TF_SHM": "0"})
            stub_tcp = lib_env(native.stub_lib_dir(), {"TF_WORKER": f"tcp:127.0.0.1:{port}", "TF_LEASE": ""})
            direct = lib_env(backend_dir)
            r = {
                "launch_stub": median(bench, stub_unix, a.reps, "launch", a.launches),
                "launch_direct": median(bench, direct, a.reps, "launch", a.launches),
                "sync_stub": median(bench, stub_unix, a.reps, "sync", 5000),
                "sync_tcp": median(bench, stub_tcp, a.reps, "sync", 5000),
                "sync_direct": median(bench, direct, a.reps, "sync", 5000),
                "raw_pp": median(bench, stub_unix, a.reps, "raw-pingpong", 5000),
                "copy_stub": median(bench, stub_unix, a.reps, "copy", 64, 4),
                "copy_noshm": median(bench, stub_noshm, a.reps, "copy", 64, 4),
                "copy_tcp": median(bench, stub_tcp, a.reps, "copy", 64, 4),
                "copy_direct": median(bench, direct, a.reps, "copy", 64, 4),
                "raw_stream": median(bench, stub_unix, a.reps, "raw-stream", 64, 4),
            }
        finally:
            server.terminate()
            server.wait(10)

    raw_gbs = r["raw_stream"]["gbs"]
    rows = [
        ("async launches/s via stub (enqueue)", f"{r['launch_stub']['enqueue_per_s']:,.0f}",
         f"direct {r['launch_direct']['enqueue_per_s']:,.0f}", f">= {TARGETS['launch']:,}",
         r["launch_stub"]["enqueue_per_s"] >= TARGETS["launch"]),
        ("async launches/s via stub (completed)", f"{r['launch_stub']['total_per_s']:,.0f}",
         f"direct {r['launch_direct']['total_per_s']:,.0f}", "", None),
        ("sync round trip p50 / p99, Unix (us)", f"{r['sync_stub']['p50_us']:.1f} / {r['sync_stub']['p99_us']:.1f}",
         f"raw ping-pong {r['raw_pp']['p50_us']:.1f} / {r['raw_pp']['p99_us']:.1f}",
         f"p50 <= {TARGETS['sync_ratio']:.0f}x raw ({r['sync_stub']['p50_us'] / r['raw_pp']['p50_us']:.2f}x)",
         r["sync_stub"]["p50_us"] <= TARGETS["sync_ratio"] * r["raw_pp"]["p50_us"]),
        ("sync round trip p50 / p99, TCP loopback (us)",
         f"{r['sync_tcp']['p50_us']:.1f} / {r['sync_tcp']['p99_us']:.1f}",
         f"direct {r['sync_direct']['p50_us']:.2f} / {r['sync_direct']['p99_us']:.2f}", "", None),
        ("H2D 64 MiB, Unix, shared memory (GB/s)", f"{r['copy_stub']['h2d_gbs']:.2f}", f"raw socket {raw_gbs:.2f}",
         f">= 90% raw ({r['copy_stub']['h2d_gbs'] / raw_gbs:.0%})",
         r["copy_stub"]["h2d_gbs"] >= TARGETS["copy_ratio"] * raw_gbs),
        ("D2H 64 MiB, Unix, shared memory (GB/s)", f"{r['copy_stub']['d2h_gbs']:.2f}", f"raw socket {raw_gbs:.2f}",
         f">= 90% raw ({r['copy_stub']['d2h_gbs'] / raw_gbs:.0%})",
         r["copy_stub"]["d2h_gbs"] >= TARGETS["copy_ratio"] * raw_gbs),
        ("H2D / D2H 64 MiB, Unix, socket only: TF_SHM=0 (GB/s)",
         f"{r['copy_noshm']['h2d_gbs']:.2f} / {r['copy_noshm']['d2h_gbs']:.2f}",
         f"raw socket {raw_gbs:.2f}", f">= 90% raw ({min(r['copy_noshm']['h2d_gbs'], r['copy_noshm']['d2h_gbs']) / raw_gbs:.0%})",
         min(r["copy_noshm"]["h2d_gbs"], r["copy_noshm"]["d2h_gbs"]) >= TARGETS["copy_ratio"] * raw_gbs),
        ("H2D / D2H 64 MiB, TCP loopback (GB/s)", f"{r['copy_tcp']['h2d_gbs']:.2f} / {r['copy_tcp']['d2h_gbs']:.2f}",
         f"direct {r['copy_direct']['h2d_gbs']:.2f} / {r['copy_direct']['d2h_gbs']:.2f}", "", None),
    ]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]
    head = (f"Backend `{a.backend}`, {os.cpu_count()} CPUs ({platform.machine()}), median of {a.reps} runs, {when}, "
            f"load average {load:.1f} while measuring (a shared machine: absolute numbers move by tens of percent "
            "between runs; each ratio is taken within one run). "
            "Measured by `benchmarks/bench_datapath.py` (timing in C: `tests/cuda/dp_bench.cu`).")
    table = ["| measure | via stub | baseline (same run) | target | met |", "|---|---|---|---|---|"]
    for name, val, base, target, ok in rows:
        table.append(f"| {name} | {val} | {base} | {target} | {'' if ok is None else ('yes' if ok else 'no')} |")
    notes = [
        "",
        "Baselines: *raw ping-pong* = 16-byte request/answer between two processes over a Unix socketpair "
        "(what one synchronous call cannot beat); *raw socket* = 64 MiB sent in 8 MiB writes over a Unix "
        "socketpair into a 64 MiB destination buffer (what one copy of that size cannot beat); *direct* = the same "
        "program on the backend libcuda without the stub. Launches are queued by the stub and sent in batches "
        "(one write per 256 KiB of frames); the executor reads a batch with one read. Same-host copies of 256 KiB "
        "and more go through a shared-memory window (a memfd passed once over the socket, two 8 MiB slots in "
        "flight); TF_SHM=0 and TCP use the socket, where with the emulator (device memory is host memory of "
        "the executor) big copies go from the socket straight into device memory without a staging copy.",
    ]
    text = "\n".join([head, "", *table, *notes])
    print(text)
    if a.write:
        write_section("datapath", "Remote data path", text)


if __name__ == "__main__":
    main()
