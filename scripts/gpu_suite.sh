#!/usr/bin/env bash
# The device check, as one command for a lent GPU host (the device tool's machine: system Python with torch,
# cupy, numba-cuda; nothing can be downloaded there). Prepared here, run there with the build carried over:
#   run(command="bash scripts/gpu_suite.sh", carry=["build", "tfclient/_gen"], timeout_s=540)
# Steps, each with its own time budget so the whole finishes in under 8 minutes:
#   1. check the carried build/ is there
#   2. pytest -m gpu (tests/stub/test_gpu.py, tests/limiter/test_limiter_gpu.py) on NVIDIA's driver
#   3. benchmarks/bench_frameworks.py --backend nvidia: PyTorch training step (eager, CUDA graph,
#      torch.compile reduce-overhead) and CuPy (matmul, random, CUB sum), native vs through the stub
#   4. benchmarks/bench_datapath.py --backend nvidia (launch rate, round trip, copies against native)
# Results land in benchmarks/RESULTS.md (--write) and $OUT/ (logs), which the device tool brings back.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/gpu-suite}
mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi -L | tee "$OUT/device.txt" || { echo "gpu_suite: no NVIDIA GPU visible (nvidia-smi -L failed)"; exit 2; }
# the build comes from here (carry build and tfclient/_gen): the device machine cannot pip-install setup's deps
[ -x build/bin/tf-executor ] && [ -e build/stub/libcuda.so.1 ] \
  || { echo "gpu_suite: build/ missing: run 'make native' here and carry build and tfclient/_gen"; exit 1; }
rc=0
step() {  # step NAME SECONDS CMD...
  local name=$1 secs=$2; shift 2
  echo "== $name (budget ${secs}s)"
  timeout "$secs" "$@" >"$OUT/$name.log" 2>&1
  local r=$?
  tail -25 "$OUT/$name.log"
  echo "== $name: exit $r"
  [ $r -eq 0 ] || rc=1
}
step pytest-gpu 180 "$PY" -m pytest -m gpu -q -p no:cacheprovider tests/stub/test_gpu.py tests/limiter/test_limiter_gpu.py
step frameworks 180 "$PY" benchmarks/bench_frameworks.py --backend nvidia --steps 30 --timeout 80 --write
step datapath 90 "$PY" benchmarks/bench_datapath.py --backend nvidia --reps 1 --write
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
exit $rc
