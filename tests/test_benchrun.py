"""`benchmarks/run` (one command for every benchmark): the --quick smoke run produces ONE table with every section,
each row beside a baseline measured in the same run, and bad invocations fail with one line. Shape only: timings
on a shared CI machine mean nothing, so no figure is asserted (figures live in benchmarks/RESULTS.md)."""
import re
import shutil
import subprocess
import sys

import pytest

from cudabuild import REPO

RUN = REPO / "benchmarks" / "run"
QUICK_TIMEOUT_S = 900      # about a minute on an idle machine; over 5 on a loaded shared one
# the suite's pytest-timeout (300 s, pyproject.toml) counts the module fixture's --quick run in its first test, so it
# cut that run off before the fixture's own limit could apply (a fresh clone's `make test` failed so under load)
pytestmark = pytest.mark.timeout(QUICK_TIMEOUT_S + 60)
COLUMNS = ["section", "measure", "through the stack", "baseline (same run)", "ratio", "target"]


def table_rows(stdout: str) -> tuple[list[str], list[list[str]]]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    assert cells and cells[1] == ["---"] * len(COLUMNS), stdout
    return cells[0], cells[2:]


@pytest.fixture(scope="module")
def quick():
    return subprocess.run([sys.executable, str(RUN), "--quick"], capture_output=True, text=True,
                          timeout=QUICK_TIMEOUT_S, cwd=REPO)


def test_quick_run_prints_one_table_with_every_section(quick):
    assert quick.returncode == 0, quick.stdout + quick.stderr
    header, rows = table_rows(quick.stdout)
    assert header == COLUMNS
    assert quick.stdout.count("| section |") == 1                     # ONE table
    assert {r[0] for r in rows} == {"data path", "copies", "limiter", "scheduler", "emulator"}
    for r in rows:
        assert len(r) == len(COLUMNS), r
        assert re.fullmatch(r"[\d.e+-]+x|n/a", r[4]), r                # stack / baseline
        assert re.search(r"\d", r[2]) and re.search(r"\d", r[3]), r    # a value and a named baseline value
    head = quick.stdout.split("\n|", 1)[0]
    assert "load average" in head and "commit" in head


def test_quick_run_has_the_baselines_and_copy_sizes(quick):
    _, rows = table_rows(quick.stdout)
    baselines = " ".join(r[3] for r in rows)
    for b in ("raw Unix ping-pong", "raw TCP ping-pong", "raw Unix stream", "raw TCP stream", "host memcpy",
              "direct", "without limiter", "empty RPC", "compiled for this CPU"):
        assert b in baselines, (b, baselines)
    measures = [r[1] for r in rows]
    for way in ("H2D", "D2H"):
        for size in ("4 KiB", "1 MiB"):
            for path in ("Unix + shared memory", "Unix socket only", "TCP loopback"):
                assert any(m.startswith(f"{way} {size}, {path}") for m in measures), (way, size, path)
    assert any(m.startswith("D2D 1 MiB") for m in measures)
    for q in ("p50", "p99", "p99.9"):
        assert any(m.startswith(f"sync round trip {q}, TCP") for m in measures), q


def test_nvidia_backend_without_a_gpu_fails_with_one_line():
    smi = shutil.which("nvidia-smi")
    if smi and subprocess.run([smi, "-L"], capture_output=True).returncode == 0:
        pytest.skip("a GPU is present here")
    r = subprocess.run([sys.executable, str(RUN), "--backend", "nvidia", "--quick"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "needs an NVIDIA GPU" in r.stderr, r.stderr


def test_unknown_section_fails_with_one_line():
    r = subprocess.run([sys.executable, str(RUN), "--only", "datapath,nosuch"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "unknown section 'nosuch'" in r.stderr, r.stderr
