"""NVIDIA's cuda-samples on the emulated device: build each sample of Samples/{0_Introduction, 1_Utilities,
2_Concepts_and_Techniques, 3_CUDA_Features, 6_Performance} with nvcc (PTX for compute_90), run it (a) directly on
build/emu/libcuda.so.1 and (b) through the whole stack with `tensorfusion run` (an embedded default on the emulated
device, in an isolated TF_HOME), and print one table of verdicts with the first cause of each failure.
Slow (tens of minutes) and not part of `make test`.

Getting the samples (the script cannot download them): from a git clone, or from a bare mirror, extracted file by
file because a few documentation/data blobs may be missing from a mirror:
    cd MIRROR.git && git ls-tree -r HEAD | while read m t sha p; do mkdir -p "DEST/$(dirname "$p")";
        git cat-file blob $sha > "DEST/$p" 2>/dev/null || rm -f "DEST/$p"; done
NVRTC / cuRAND / cuBLAS samples need their libraries from PyPI, and `interval` needs Boost's headers from Debian
(else they are recorded as build failures):
    .venv/bin/python -m pip install --no-deps --target build/cuda-samples-deps \
        nvidia-cuda-nvrtc==13.0.88 nvidia-curand==10.4.0.35 nvidia-cublas==13.0.0.19
    apt-get install -y libboost-dev
Usage: .venv/bin/python benchmarks/cuda_samples.py SAMPLES_DIR [--timeout 120] [--jobs 2] [--only NAME ...]
           [--modes direct,stack] [--emu-devices N] [--write]
A direct run also reports the CPU seconds the sample's process used (user + system, all its threads: the emulated
device runs inside it), so a timeout on a loaded machine can be told from a sample that needs more than 2 cores x
the timeout. A run through the stack with `--jobs 1` reports the CPU seconds of the embedded deployment's process
tree during the run (the session's GPU worker process, where the emulated device runs, its JIT compiler, and the
daemons' small share); with more jobs the sessions' shares cannot be told apart and none is reported.
Per-sample logs (build commands and outputs, both runs) go to build/cuda-samples/log-DATE-TIME.txt (one per run).
Devices: every run sees `--emu-devices N` emulated devices (TF_EMU_DEVICES; default: the environment's
TF_EMU_DEVICES, else 2). Two is the default because a 2-GPU machine is a normal configuration and simpleP2P and
streamOrderedAllocationP2P need it (they waive with 1); the 22 samples that ask for the device count pass with 2
(benchmarks/RESULTS.md, "Several emulated devices"). `--emu-devices 1` gives the one-device runs of before. Through
the stack the embedded worker gets TF_EMU_DEVICES=N (it registers N GPUs) and each sample runs with
`tensorfusion run --gpus N` (N GPUs of that worker, STACK_VRAM each).
"""
import argparse
import concurrent.futures
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from results_md import write_section  # noqa: E402

CATEGORIES = ["0_Introduction", "1_Utilities", "2_Concepts_and_Techniques", "3_CUDA_Features", "6_Performance"]
OUT = REPO / "build" / "cuda-samples"
EMU_LIB = REPO / "build" / "emu"
NVCC_FLAGS = ["-O2", "-std=c++17", "--extended-lambda", "-Wno-deprecated-gpu-targets",
              "-gencode", "arch=compute_90,code=compute_90"]

# Samples outside the set: they need a graphics API or MPI (found from their CMakeLists' find_package).
EXCLUDED_PACKAGES = re.compile(r"find_package\((OpenGL|GLUT|Vulkan|EGL|MPI|X11)\b")

# Built and counted, but not run: their device code cannot be PTX, which is all the emulator runs.
NOT_PTX = {
    "cdpAdvancedQuicksort": "dynamic parallelism (-rdc, device-side launches)",
    "cdpBezierTessellation": "dynamic parallelism (-rdc, device-side launches)",
    "cdpQuadtree": "dynamic parallelism (-rdc, device-side launches)",
    "cdpSimplePrint": "dynamic parallelism (-rdc, device-side launches)",
    "cdpSimpleQuicksort": "dynamic parallelism (-rdc, device-side launches)",
    "clock_nvrtc": "NVRTC compiles to a SASS cubin (sm_XX)",
    "matrixMul_nvrtc": "NVRTC compiles to a SASS cubin (sm_XX)",
    "simpleAssert_nvrtc": "NVRTC compiles to a SASS cubin (sm_XX)",
    "simpleAtomicIntrinsics_nvrtc": "NVRTC compiles to a SASS cubin (sm_XX)",
    "vectorAdd_nvrtc": "NVRTC compiles to a SASS cubin (sm_XX)",
    "inlinePTX_nvrtc": "NVRTC compiles to a SASS cubin (sm_XX)",
}

# Per-sample special cases: extra nvcc flags, run arguments.
SPECIAL = {
    "cdpAdvancedQuicksort": {"flags": ["-rdc=true", "-lcudadevrt"]},
    "cdpBezierTessellation": {"flags": ["-rdc=true", "-lcudadevrt"]},
    "cdpQuadtree": {"flags": ["-rdc=true", "-lcudadevrt"]},
    "cdpSimplePrint": {"flags": ["-rdc=true", "-lcudadevrt"]},
    "cdpSimpleQuicksort": {"flags": ["-rdc=true", "-lcudadevrt"]},
}

# CMake link targets -> nvcc flags ({stub}: the generated link-time libcuda, {deps}: the PyPI libraries' folder).
LINK = {
    "CUDA::cuda_driver": ["-L{stub}", "-lcuda"],
    "CUDA::nvrtc": ["-I{deps}/nvidia/cu13/include", "-L{deps}/nvidia/cu13/lib", "-l:libnvrtc.so.13"],
    "CUDA::curand": ["-I{deps}/nvidia/cu13/include", "-L{deps}/nvidia/cu13/lib", "-l:libcurand.so.10"],
    "CUDA::cublas": ["-I{deps}/nvidia/cu13/include", "-L{deps}/nvidia/cu13/lib", "-l:libcublas.so.13",
                     "-Xlinker", "-rpath-link={deps}/nvidia/cu13/lib"],
    "OpenMP::OpenMP_CXX": ["-Xcompiler", "-fopenmp"],
    "dl": ["-ldl"], "pthread": ["-lpthread"], "rt": ["-lrt"],
}

STACK_VRAM = "6Gi"   # two sessions at once fit in the emulated device's 16 GiB

ERROR_LINE = re.compile(r"^tensorfusion \w+:|CUDA_ERROR_\w+|cuda\w*Error\w*|error|unsupported|not supported|unimplemented|fail|"
                        r"mismatch|abort|segmentation fault|exception|assert|illegal|invalid|terminate", re.I)
PASS_LINE = re.compile(r"Result = PASS|Test passed|PASSED|Passed", re.I)


@dataclass
class Sample:
    name: str
    category: str
    src: Path
    status: str = ""              # "" until built; "build-failed"; "built"; "not-PTX"
    cause: str = ""
    exe: Path | None = None
    results: dict = field(default_factory=dict)   # mode -> (verdict, cause, wall seconds, CPU seconds or None)


def discover(samples_dir: Path, only: list[str]) -> tuple[list[Sample], list[str]]:
    samples, excluded = [], []
    for cat in CATEGORIES:
        for d in sorted((samples_dir / "Samples" / cat).iterdir()):
            cm = d / "CMakeLists.txt"
            if not cm.exists() or (only and d.name not in only):
                continue
            if EXCLUDED_PACKAGES.search(cm.read_text()):
                excluded.append(d.name)
                continue
            samples.append(Sample(d.name, cat, d))
    return samples, excluded


def link_stub(deps: Path) -> Path:
    """A link-time libcuda.so (every cu* name of cuda.h, empty bodies): the toolkit here has none; at run time the
    emulator's or the TensorFusion stub's libcuda.so.1 is loaded instead."""
    stub = OUT / "linkstub"
    if (stub / "libcuda.so").exists():
        return stub
    stub.mkdir(parents=True, exist_ok=True)
    cuda_h = Path(subprocess.run([REPO / "scripts" / "cuda_include_dir.sh"], capture_output=True, text=True,
                                 check=True).stdout.strip()) / "cuda.h"
    pre = subprocess.run(["cc", "-E", "-P", "-x", "c", str(cuda_h)], capture_output=True, text=True, check=True).stdout
    names = sorted(set(re.findall(r"\b(cu[A-Z]\w*)\s*\(", pre)))
    (stub / "linkstub.c").write_text("".join(f"void {n}(void) {{}}\n" for n in names))
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", str(stub / "libcuda.so"),
                    str(stub / "linkstub.c")], check=True)
    return stub


def cmake_list(text: str, command: str, target: str) -> list[str]:
    """Words of `command(target [PUBLIC|PRIVATE] ...)` in a CMakeLists (all occurrences)."""
    words = []
    for m in re.finditer(rf"{command}\(\s*{target}\s+([^)]*)\)", text):
        words += [w for w in m.group(1).split() if w not in ("PUBLIC", "PRIVATE", "INTERFACE")]
    return words


def build(s: Sample, samples_dir: Path, stub: Path, deps: Path, log) -> None:
    work = OUT / s.name
    shutil.copytree(s.src, work, dirs_exist_ok=True)
    cm = (s.src / "CMakeLists.txt").read_text()
    # paths outside the sample's folder (../../../Common/x.cpp) are taken from the source tree
    sources = [str((s.src / w).resolve()) if w.startswith("..") else w for w in cmake_list(cm, "add_executable", s.name)]
    fmt = {"stub": stub, "deps": deps}
    libs = [f.format(**fmt) for w in cmake_list(cm, "target_link_libraries", s.name) for f in LINK.get(w, [])]
    incs = ["-I", str(samples_dir / "Common")] + (["-I", str(work / "inc")] if (work / "inc").is_dir() else [])
    if (deps / "nvidia" / "cu13" / "include").is_dir():   # curand_kernel.h: device-side cuRAND needs no library
        incs += ["-I", str(deps / "nvidia" / "cu13" / "include")]
    extra = SPECIAL.get(s.name, {}).get("flags", [])
    cmds = []
    kernel = re.search(r'set\(CUDA_KERNEL_SOURCE\s+"\$\{CMAKE_CURRENT_SOURCE_DIR\}/([^"]+)"', cm)
    module = re.search(r'set\(CUDA_(FATBIN|PTX)_FILE\s+"\$\{CMAKE_CURRENT_BINARY_DIR\}/([^"]+)"', cm)
    if kernel and module:   # driver-API sample: the module it loads at run time
        kind = "-fatbin" if module.group(1) == "FATBIN" else "-ptx"
        cmds.append(["nvcc", *NVCC_FLAGS, *incs, kind, "-o", module.group(2), kernel.group(1)])
    s.exe = work / s.name
    cmds.append(["nvcc", *NVCC_FLAGS, *incs, *extra, "-o", s.name, *sources, *libs])
    stamp = work / ".build-commands"    # an executable built by the same commands is reused
    if s.exe.exists() and stamp.exists() and stamp.read_text() == repr(cmds):
        log.append("(built earlier by the same commands)")
        s.status = "not-PTX" if s.name in NOT_PTX else "built"
        return
    stamp.unlink(missing_ok=True)
    for cmd in cmds:
        p = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        log.append(f"$ {' '.join(cmd)}\n{p.stdout}{p.stderr}")
        if p.returncode != 0:
            s.status = "build-failed"
            s.cause = first_error(p.stdout + p.stderr) or f"nvcc exited {p.returncode}"
            return
    stamp.write_text(repr(cmds))
    s.status = "not-PTX" if s.name in NOT_PTX else "built"


def first_error(text: str) -> str:
    for line in text.splitlines():
        if ERROR_LINE.search(line) and not PASS_LINE.search(line):
            line = line.strip().replace(f"{OUT}/", "")   # "symbol lookup error: NAME/NAME: undefined symbol: cuX"
            return "".join(c if c.isprintable() else "?" for c in line[:160])
    return ""


def wait_with_rusage(proc: subprocess.Popen, timeout: float) -> tuple[int | None, float]:
    """Wait up to `timeout` s for `proc` (stdout drained by the caller's thread); kill its process group on timeout.
    Returns (exit code or None on timeout, CPU seconds of the process: user + system, from wait4)."""
    deadline = time.monotonic() + timeout
    sig = None
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return (None if sig else proc.returncode), ru.ru_utime + ru.ru_stime
        now = time.monotonic()
        if sig is None and now > deadline:
            os.killpg(proc.pid, signal.SIGTERM)   # `run` releases its lease on SIGTERM
            sig, deadline = signal.SIGTERM, now + 10
        elif sig == signal.SIGTERM and now > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            sig = signal.SIGKILL
        time.sleep(0.05)


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) used so far by the live processes under `root` (itself included) and by the
    children they reaped: the embedded deployment's share of the machine, GPU worker processes included."""
    stats = {}
    for entry in os.listdir("/proc"):
        try:
            text = Path(f"/proc/{entry}/stat").read_text() if entry.isdigit() else ""
        except OSError:          # exited meanwhile
            continue
        if text:
            fields = text[text.rfind(")") + 2:].split()   # after "pid (comm) "
            stats[int(entry)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))   # ppid; utime..cstime
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0))[1]
        todo += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def run(s: Sample, mode: str, env: dict, timeout: float, log,
        stack_root: int | None = None, gpus: int = 1) -> tuple[str, str, float, float | None]:
    """One run of `s`; `stack_root`: the embedded deployment's pid, whose process tree's CPU time is the run's
    (through the stack, one run at a time); `gpus`: the GPUs a stack run asks for (`run --gpus`)."""
    cmd = [str(s.exe), *SPECIAL.get(s.name, {}).get("args", [])]
    if mode == "stack":
        cmd = [sys.executable, "-m", "tfclient.cli", "run", "--vram", STACK_VRAM, "--gpus", str(gpus), "--", *cmd]
    stack_cpu0 = tree_cpu_seconds(stack_root) if stack_root else 0.0
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=s.exe.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stdout.read(65536), b"")), daemon=True)
    reader.start()
    rc, cpu = wait_with_rusage(proc, timeout)
    reader.join(timeout=10)
    secs = time.monotonic() - t0
    if mode == "stack":   # the work runs in the GPU worker process, not in the client
        time.sleep(0.5)   # the session's end reaches its GPU worker process
        cpu = tree_cpu_seconds(stack_root) - stack_cpu0 if stack_root else 0.0
    cpu_s = cpu if mode == "direct" or stack_root else None
    text = b"".join(chunks).decode(errors="replace")
    log.append(f"--- {mode}: {' '.join(cmd)} (exit {rc}, {secs:.1f} s, CPU {cpu:.1f} s)\n{text}")
    if rc is None:
        return "timeout", f"no verdict after {timeout:.0f} s", secs, cpu_s
    if rc == 2 or "Waiving" in text:
        return "waived", first_line(text, "Waiving") or "exit 2", secs, cpu_s
    if rc == 0 and not re.search(r"Result = FAIL|Test failed|FAILED", text):
        return "pass", "", secs, cpu_s
    why = first_error(text) or (f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}")
    return "fail", why, secs, cpu_s


def first_line(text: str, word: str) -> str:
    return next((ln.strip()[:160] for ln in text.splitlines() if word in ln), "")


def start_embedded(tf_home: Path, env: dict) -> subprocess.Popen:
    """`tensorfusion up --backend emu` in its own session, like tests/test_cli.py; waits for embedded.json."""
    shutil.rmtree(tf_home, ignore_errors=True)
    proc = subprocess.Popen([sys.executable, "-m", "tfclient.cli", "up", "--backend", "emu"], env=env,
                            stdout=open(OUT / "up.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while not (tf_home / "embedded.json").exists():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"`tensorfusion up` did not come up: see {OUT / 'up.log'}")
        time.sleep(0.2)
    return proc


def stop_embedded(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def cell(s: Sample, mode: str) -> str:
    if s.status == "build-failed":
        return "build-failed"
    if s.status == "not-PTX":
        return "not-PTX"
    if mode not in s.results:
        return "not run"
    verdict, _, secs, cpu = s.results[mode]
    if verdict == "timeout":
        return "timeout" if cpu is None else f"timeout (CPU {cpu:.0f} s)"
    return f"{verdict} ({secs:.0f} s)" if cpu is None else f"{verdict} ({secs:.0f} s, CPU {cpu:.0f} s)"


def cause(s: Sample) -> str:
    if s.status == "build-failed":
        return f"build: {s.cause}"
    if s.status == "not-PTX":
        return NOT_PTX[s.name]
    runs = [(label, s.results[m]) for label, m in (("direct", "direct"), ("stack", "stack")) if m in s.results]
    if len(runs) == 2 and runs[0][1][0] != "pass" and runs[1][1][0] != "pass" and runs[0][1][1] == runs[1][1][1]:
        return runs[0][1][1]
    return "; ".join(f"{label}: {r[1]}" for label, r in runs if r[0] != "pass" and r[1])


def table(samples: list[Sample], excluded: list[str]) -> str:
    def esc(t: str) -> str:
        return t.replace("|", "\\|").replace("`", "'")
    lines = ["| sample | emulated device directly | through `tensorfusion run` | first cause |", "|---|---|---|---|"]
    for s in samples:
        lines.append(f"| {s.category[:1]}/{s.name} | {cell(s, 'direct')} | {cell(s, 'stack')} | {esc(cause(s))} |")
    m = len(samples)
    ran = [s for s in samples if s.status == "built"]
    count = {mode: {v: sum(1 for s in ran if mode in s.results and s.results[mode][0] == v)
                    for v in ("pass", "fail", "waived", "timeout")} for mode in ("direct", "stack")}
    nbf = sum(1 for s in samples if s.status == "build-failed")
    nptx = sum(1 for s in samples if s.status == "not-PTX")
    lines.append("")
    ran_modes = [mode for mode in ("direct", "stack") if any(mode in s.results for s in ran)]
    labels = {"direct": ("directly", "Directly"), "stack": ("through the stack", "Through the stack")}
    lines.append("**" + ", ".join(f"{count[mode]['pass']}/{m} pass {labels[mode][0]}" for mode in ran_modes) + ".** "
                 + " ".join(f"{labels[mode][1]}: {count[mode]['fail']} fail, {count[mode]['waived']} waived, "
                            f"{count[mode]['timeout']} timeout;" for mode in ran_modes)
                 + f" {nbf} build-failed, {nptx} not runnable on a PTX device (built, not run).")
    runnable = len(ran)
    if runnable:
        lines.append(f"Of the {runnable} samples a PTX device can run (built, not dynamic parallelism or NVRTC SASS): "
                     + ", ".join(f"{100 * count[mode]['pass'] / runnable:.0f}% pass {labels[mode][0]}"
                                 for mode in ran_modes) + " (issue #10's target: 90%).")
    lines.append(f"Not in the set (graphics API or MPI): {', '.join(excluded)}.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("samples_dir", type=Path, help="cuda-samples source folder (holds Samples/ and Common/)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per run (default 120)")
    ap.add_argument("--jobs", type=int, default=2, help="builds/runs in parallel (default 2)")
    ap.add_argument("--deps", type=Path, default=REPO / "build" / "cuda-samples-deps",
                    help="pip --target folder holding nvidia-cuda-nvrtc / nvidia-curand / nvidia-cublas")
    ap.add_argument("--only", nargs="*", default=[], help="only these samples")
    ap.add_argument("--modes", default="direct,stack",
                    help="comma-separated: direct (the emulator's libcuda.so.1), stack (tensorfusion run)")
    ap.add_argument("--emu-devices", default=os.environ.get("TF_EMU_DEVICES") or "2",
                    help="emulated devices of direct runs and GPUs of stack runs, 1..8 (TF_EMU_DEVICES; default: the environment's, else 2)")
    ap.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = ap.parse_args()
    samples_dir = args.samples_dir.resolve()
    deps = args.deps.resolve()
    OUT.mkdir(parents=True, exist_ok=True)
    samples, excluded = discover(samples_dir, args.only)
    stub = link_stub(deps)
    logs: dict[str, list[str]] = {s.name: [] for s in samples}
    t0 = time.time()

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda s: build(s, samples_dir, stub, deps, logs[s.name]), samples))
    print(f"# built {sum(s.status != 'build-failed' for s in samples)}/{len(samples)} in {time.time() - t0:.0f} s",
          file=sys.stderr)

    lib_path = ":".join(p for p in [str(deps / "nvidia" / "cu13" / "lib"), os.environ.get("LD_LIBRARY_PATH", "")] if p)
    base = dict(os.environ, LD_LIBRARY_PATH=lib_path, TF_EMU_THREADS=os.environ.get("TF_EMU_THREADS", "2"),
                PYTHONPATH=str(REPO))
    base.pop("TF_SCHEDULER", None)
    base.pop("TF_EMU_DEVICES", None)
    direct_env = dict(base, LD_LIBRARY_PATH=f"{EMU_LIB}:{lib_path}", TF_EMU_DEVICES=str(args.emu_devices))
    tf_home = OUT / "tfhome"
    stack_env = dict(base, TF_HOME=str(tf_home))
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - {"direct", "stack"}:
        raise SystemExit(f"--modes takes direct and/or stack, comma-separated; got {args.modes!r}")
    up = (start_embedded(tf_home, dict(stack_env, TF_EMU_DEVICES=str(args.emu_devices)))
          if "stack" in modes else None)
    try:
        ran = [s for s in samples if s.status == "built"]
        jobs = [(s, m, direct_env if m == "direct" else stack_env) for s in ran for m in modes]

        def one(job):
            s, mode, env = job
            stack_root = up.pid if mode == "stack" and args.jobs == 1 else None
            s.results[mode] = run(s, mode, env, args.timeout, logs[s.name], stack_root, int(args.emu_devices))
            print(f"# {s.name} {mode}: {s.results[mode][0]} {s.results[mode][1]}", file=sys.stderr)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(one, jobs))
    finally:
        if up is not None:
            stop_embedded(up)

    log_file = OUT / time.strftime("log-%Y%m%d-%H%M.txt", time.gmtime())
    print(f"# per-sample log: {log_file}", file=sys.stderr)
    log_file.write_text("".join(f"===== {s.category}/{s.name}\n" + "\n".join(logs[s.name]) + "\n"
                                         for s in samples))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    header = (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `{' '.join(platform.uname()[:3])}` "
              f"{os.cpu_count()} CPUs, load `{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}`, "
              f"commit {commit}, cuda-samples `{samples_dir.name}`, timeout {args.timeout:.0f} s, "
              f"{args.jobs} in parallel, TF_EMU_THREADS={base['TF_EMU_THREADS']}, "
              f"TF_EMU_DEVICES={args.emu_devices} (direct; stack: `run --gpus {args.emu_devices}`), {time.time() - t0:.0f} s in all.\n"
              f"Rerun: `.venv/bin/python benchmarks/cuda_samples.py SAMPLES_DIR --write` (see the script's header).\n")
    text = header + "\n" + table(samples, excluded)
    print(text)
    if args.write:
        write_section("cuda_samples", "NVIDIA cuda-samples on the emulated device (directly and through the stack)",
                      text)


if __name__ == "__main__":
    main()
